"""Pooling and pre-fusion: numerical equivalence with the original (fidelity fixtures), shapes, gradients, size."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import load_file  # noqa: E402
from tiny_models import FIDELITY  # noqa: E402

from affectgpt.errors import InputError  # noqa: E402
from affectgpt.model.config import PRESETS, ModelConfig  # noqa: E402
from affectgpt.model.fusion import FUSIONS, NoFusion, build_fusion  # noqa: E402
from affectgpt.model.keymap import map_keys  # noqa: E402
from affectgpt.model.pooling import POOLERS, build_pooler  # noqa: E402

CONFIGS = sorted(p.name for p in (FIDELITY / "fixtures").glob("*") if (p / "meta.json").is_file())
TOL = {"atol": 1e-4, "rtol": 1e-5}  # the README's tolerance for tokens (and, here, every intermediate)


def fixture_config(folder: Path, tensors: dict[str, torch.Tensor]) -> ModelConfig:
    """The tiny ModelConfig of one fixture configuration: fusion types and N from the original's model_cfg,
    widths from the recorded tensors and the tiny BERT config (the original forces 2 layers)."""
    original = json.loads((folder / "meta.json").read_text(encoding="utf-8"))["model_cfg"]
    bert = json.loads((FIDELITY / "models" / "tiny-bert-qformer" / "config.json").read_text(encoding="utf-8"))
    vis = "face" if "face_encoder_features" in tensors else "frame"
    dv, da = tensors[f"{vis}_encoder_features"].shape[-1], tensors["audio_encoder_features"].shape[-1]
    return ModelConfig(
        visual_input=vis, video_pooling=original["video_fusion_type"], audio_pooling=original["audio_fusion_type"],
        fusion=original["multi_fusion_type"], video_tokens=original["num_video_query_token"],
        audio_tokens=original["num_audio_query_token"], multi_tokens=original["num_multi_query_token"],
        visual_dim=dv, audio_dim=da, fusion_dim=max(dv, da), llm_dim=tensors["multi_tokens"].shape[-1],
        qformer_hidden=bert["hidden_size"], qformer_heads=bert["num_attention_heads"],
        qformer_intermediate=bert["intermediate_size"], qformer_layers=2, qformer_eps=bert["layer_norm_eps"])


def load_part(module: torch.nn.Module, prefix: str, checkpoint: dict[str, torch.Tensor]) -> None:
    """Load the checkpoint tensors that keymap sends under `prefix` (strict: every parameter must get one)."""
    report = map_keys(checkpoint)
    assert not report.unknown, report.unknown
    state = {ours[len(prefix):]: checkpoint[key] for key, ours in report.mapped.items() if ours.startswith(prefix)}
    module.load_state_dict(state, strict=True)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", CONFIGS or [None])
def test_matches_the_original(name: str | None) -> None:
    if name is None:
        pytest.skip(f"fidelity fixtures not found under {FIDELITY} (set AFFECTGPT_FIDELITY_DIR)")
    folder = FIDELITY / "fixtures" / name
    tensors = load_file(folder / "tensors.safetensors")
    checkpoint = load_file(folder / "ckpt_model.safetensors")
    cfg = fixture_config(folder, tensors)
    vis = cfg.visual_input
    video_x, audio_x = tensors[f"{vis}_encoder_features"], tensors["audio_encoder_features"]
    diffs: dict[str, float] = {}

    def check(key: str, ours: torch.Tensor | None) -> None:
        if key not in tensors:  # this configuration does not record it (e.g. scores without attention)
            return
        assert ours is not None, key
        torch.testing.assert_close(ours, tensors[key], **TOL, msg=lambda m: f"{name} {key}: {m}")
        diffs[key] = max_diff(ours, tensors[key])

    parts = [("video_pool.", build_pooler(cfg.video_pooling, cfg.visual_dim, cfg, cfg.video_tokens,
                                          cfg.video_positions), video_x, vis),
             ("audio_pool.", build_pooler(cfg.audio_pooling, cfg.audio_dim, cfg, cfg.audio_tokens,
                                          cfg.audio_positions), audio_x, "audio")]
    with torch.no_grad():
        for prefix, pooler, x, tag in parts:
            load_part(pooler, prefix, checkpoint)
            out = pooler.eval()(x)
            check(f"{tag}_tokens", out.tokens)
            check(f"{tag}_pooled", out.pooled)
            check(f"{tag}_attention_scores", out.scores)
        if "multi_tokens" in tensors:
            fusion = build_fusion(cfg)
            load_part(fusion, "fusion.", checkpoint)
            out = fusion.eval()(video_x, audio_x)
            check("multi_tokens", out.tokens)
            check("multi_video_embs_out", out.video_emb)
            check("multi_audio_embs_out", out.audio_emb)
            check("multi_attention_weights", out.weights)
            check("multi_pooled", out.pooled)
            check("multi_hidden_returned", out.pooled)
    assert {f"{vis}_tokens", "audio_tokens"} <= set(diffs)
    print(f"\n{name} max |diff|: " + ", ".join(f"{k} {v:.2e}" for k, v in sorted(diffs.items())))


# Distinct small widths, so that a swapped or transposed weight fails.
DV, DA, F_, L, H = 6, 7, 9, 10, 12
TINY = replace(PRESETS["released"], visual_dim=DV, audio_dim=DA, fusion_dim=F_, llm_dim=L, qformer_hidden=H,
               qformer_heads=3, qformer_intermediate=14, qformer_layers=2, video_positions=8, audio_positions=9,
               multi_positions=20, llm_config=None)


def assert_grads(module: torch.nn.Module, n_tokens: int) -> None:
    """Every parameter gets a gradient; all are non-zero except those zero in exact arithmetic."""
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        # softmax is shift-invariant, so attention key biases get no gradient; with one query, the
        # self-attention softmax is over one key, so its query and key projections get none either
        maybe_zero = name.endswith("self.key.bias") or (n_tokens == 1 and ".attention.self.query." in name) or (
            n_tokens == 1 and ".attention.self.key." in name)
        if not maybe_zero:
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", sorted(POOLERS))
@pytest.mark.parametrize("t", [8, 5])
@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("n", [1, 3])
def test_pooler_forward_backward(kind: str, n: int, b: int, t: int) -> None:
    torch.manual_seed(0)
    pooler = build_pooler(kind, DA, TINY, n, 9).eval()
    x = torch.randn(b, t, DA, requires_grad=True)
    out = pooler(x)
    assert out.tokens.shape == (b, n, L)
    assert (out.scores is not None) == (kind == "attention")
    if kind == "qformer":
        assert out.pooled.shape == (b, n, H)
    else:
        assert out.pooled.shape == (b, DA)
        assert torch.equal(out.tokens, out.tokens[:, :1].expand(-1, n, -1))  # the original repeats one token
    (out.tokens * torch.randn(b, n, L)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert_grads(pooler, n)
    if kind == "qformer":  # only the first T position rows are used
        used = pooler.positions.weight.grad.abs().sum(dim=1) > 0
        assert used.tolist() == [i < t for i in range(9)]


@pytest.mark.parametrize("kind", sorted(FUSIONS))
@pytest.mark.parametrize("t", [8, 5])
@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("n", [1, 3])
def test_fusion_forward_backward(kind: str, n: int, b: int, t: int) -> None:
    torch.manual_seed(0)
    fusion = build_fusion(replace(TINY, fusion=kind, multi_tokens=n)).eval()
    video = torch.randn(b, t, DV, requires_grad=True)
    audio = torch.randn(b, t, DA, requires_grad=True)
    out = fusion(video, audio)
    if isinstance(fusion, NoFusion):
        assert out is None and not list(fusion.parameters())
        return
    assert out.tokens.shape == (b, n, L)
    if kind == "attention":
        assert out.video_emb.shape == out.audio_emb.shape == out.pooled.shape == (b, F_)
        assert out.weights.shape == (b, 2)
        # raw weights, no softmax (README step 6)
        torch.testing.assert_close(out.pooled, out.weights[:, :1] * out.video_emb + out.weights[:, 1:] * out.audio_emb)
    else:
        assert out.video_emb.shape == out.audio_emb.shape == (b, t, F_)
        assert out.weights is None and out.pooled.shape == (b, n, H)
    (out.tokens * torch.randn(b, n, L)).sum().backward()
    assert video.grad.abs().sum() > 0 and audio.grad.abs().sum() > 0
    assert_grads(fusion, n)
    if kind == "qformer":  # video then audio: 2T rows used
        used = fusion.positions.weight.grad.abs().sum(dim=1) > 0
        assert used.tolist() == [i < 2 * t for i in range(20)]


def test_qformer_fusion_puts_video_first() -> None:
    torch.manual_seed(0)
    fusion = build_fusion(replace(TINY, fusion="qformer")).eval()
    fusion.positions.weight.data.zero_()
    video, audio = torch.randn(2, 4, DV), torch.randn(2, 4, DA)
    captured = {}
    fusion.qformer.register_forward_hook(lambda m, args, out: captured.update(states=args[1]))
    fusion(video, audio)
    torch.testing.assert_close(captured["states"][:, :4], fusion.video_in(video))
    torch.testing.assert_close(captured["states"][:, 4:], fusion.audio_in(audio))


def test_qformer_dropout_is_active_only_in_training() -> None:
    torch.manual_seed(0)
    pooler = build_pooler("qformer", DV, TINY, 2, 8)
    x = torch.randn(2, 8, DV)
    assert torch.equal(pooler.eval()(x).tokens, pooler(x).tokens)
    assert not torch.equal(pooler.train()(x).tokens, pooler.eval()(x).tokens)


def test_bad_inputs_are_input_errors() -> None:
    pooler = build_pooler("qformer", DV, TINY, 1, 4)
    with pytest.raises(InputError, match="position table has 4 rows"):
        pooler(torch.randn(1, 5, DV))
    with pytest.raises(InputError, match=r"\[B, T, 6\]"):
        build_pooler("attention", DV, TINY, 1, 4)(torch.randn(1, 5, DV + 1))
    with pytest.raises(InputError, match="not a pooling"):
        build_pooler("max", DV, TINY, 1, 4)
    with pytest.raises(InputError, match="audio features"):
        build_fusion(TINY)(torch.randn(1, 5, DV), torch.randn(1, 5, DV))


def test_released_size_is_the_originals() -> None:
    """Full-size released pooling + pre-fusion + projections (image projection omitted): 14,042,372 parameters."""
    cfg = PRESETS["released"]
    with torch.device("meta"):
        modules = [build_pooler(cfg.video_pooling, cfg.visual_dim, cfg, cfg.video_tokens, cfg.video_positions),
                   build_pooler(cfg.audio_pooling, cfg.audio_dim, cfg, cfg.audio_tokens, cfg.audio_positions),
                   build_fusion(cfg)]
    assert sum(p.numel() for m in modules for p in m.parameters()) == 14_042_372
    assert all(p.is_meta for m in modules for p in m.parameters())
