"""The whole model on tiny random weights built in-process: every pooling/fusion/modality mode forward and
backward, splicing positions, padding, greedy determinism, learning one example, checkpoints, bad inputs."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from affectgpt.errors import InputError  # noqa: E402
from affectgpt.model import checkpoint  # noqa: E402
from affectgpt.model.affectgpt import AffectGPT, Batch  # noqa: E402
from affectgpt.model.config import ModelConfig  # noqa: E402
from affectgpt.model.keymap import PREFIXES  # noqa: E402
from affectgpt.model.lm import build_llm_from_config  # noqa: E402

VOCAB, PAD = 96, 1
IDS = {"image": 90, "audio": 91, "frame": 92, "face": 93, "multi": 94}
TINY_LLM = {"model_type": "qwen2", "hidden_size": 48, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": VOCAB, "max_position_embeddings": 128,
            "tie_word_embeddings": False}
TINY = ModelConfig(visual_dim=24, audio_dim=20, llm_dim=48, fusion_dim=24, qformer_hidden=16, qformer_heads=2,
                   qformer_intermediate=32, lora_r=4, llm_config=TINY_LLM)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def tiny_model(cfg: ModelConfig = TINY) -> AffectGPT:
    llm = build_llm_from_config(cfg, device="cpu")
    _redraw(llm)
    return AffectGPT(cfg, llm, IDS).eval()


def _redraw(llm: torch.nn.Module) -> None:
    """Variance-preserving base weights (as the fidelity fixtures' tiny models): with HF's 0.02 init the frozen
    output layer gives near-uniform logits that no LoRA can sharpen, and nothing could be learned."""
    with torch.no_grad():
        for name, param in llm.named_parameters():
            if ".lora_" in name:
                continue
            if param.ndim == 2:
                std = 1.0 if "embed_tokens" in name else param.shape[1] ** -0.5
                param.normal_(0.0, std)


def batch_for(cfg: ModelConfig, lengths=(12, 9), with_labels=True) -> Batch:
    """Prompts of random text ids with each modality's placeholder block, answers supervised, right-padded."""
    rows, label_rows = [], []
    blocks = {"multi": cfg.multi_tokens if cfg.uses_multi else 0,
              "audio": cfg.audio_tokens if "audio" in cfg.modalities else 0,
              cfg.visual_input: cfg.video_tokens if "video" in cfg.modalities else 0}
    for n_text in lengths:
        prompt = [5, 6]
        for kind, n in blocks.items():
            prompt += [IDS[kind]] * n + [7]
        answer = torch.randint(10, 80, (n_text,)).tolist()
        rows.append(prompt + answer)
        label_rows.append([-100] * len(prompt) + answer)
    width = max(map(len, rows))
    ids = torch.tensor([r + [PAD] * (width - len(r)) for r in rows])
    labels = torch.tensor([r + [-100] * (width - len(r)) for r in label_rows])
    b = len(lengths)
    return Batch(input_ids=ids, attention_mask=(ids != PAD).long(), labels=labels if with_labels else None,
                 visual_features=torch.randn(b, cfg.n_frames, cfg.visual_dim),
                 audio_features=torch.randn(b, cfg.n_audio_clips, cfg.audio_dim))


MODES = [
    ("attention", "attention", ("multi", "audio", "video", "text")),
    ("mean", "attention", ("multi", "audio", "video", "text")),
    ("qformer", "qformer", ("multi", "audio", "video", "text")),
    ("attention", "none", ("audio", "video", "text")),
    ("attention", "none", ("audio", "text")),
    ("attention", "none", ("video", "text")),
    ("attention", "none", ("text",)),
]


@pytest.mark.parametrize(("pooling", "fusion", "modalities"), MODES)
@pytest.mark.parametrize("visual", ["face", "frame"])
def test_forward_backward_every_mode(pooling, fusion, modalities, visual):
    cfg = replace(TINY, video_pooling=pooling, audio_pooling=pooling, fusion=fusion, modalities=modalities,
                  visual_input=visual, video_tokens=2, multi_tokens=3)
    model = tiny_model(cfg)
    out = model(batch_for(cfg))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for _, p in trainable)
    assert all(not p.requires_grad for n, p in model.named_parameters() if ".lora_" not in n and n.startswith("llm."))


def test_placeholders_are_replaced_at_their_positions():
    cfg = replace(TINY, multi_tokens=2, audio_tokens=1, video_tokens=3)
    model = tiny_model(cfg)
    batch = batch_for(cfg, with_labels=False)
    with torch.no_grad():
        parts = model.modality_tokens(batch)
        embeds = model.splice(batch.input_ids, parts)
        plain = model.llm.get_input_embeddings()(batch.input_ids.clamp(max=VOCAB - 1))
    for kind in ("multi", "audio", "face"):
        for b in range(2):
            positions = (batch.input_ids[b] == IDS[kind]).nonzero().flatten()
            assert torch.equal(embeds[b, positions], parts[kind][b])
    text = ~torch.isin(batch.input_ids, torch.tensor(list(IDS.values())))
    assert torch.equal(embeds[text], plain[text])


def test_padding_does_not_change_a_sample():
    model = tiny_model()
    both = batch_for(TINY, lengths=(14, 6), with_labels=False)
    alone = Batch(input_ids=both.input_ids[1:, :both.attention_mask[1].sum()],
                  attention_mask=both.attention_mask[1:, :both.attention_mask[1].sum()],
                  visual_features=both.visual_features[1:], audio_features=both.audio_features[1:])
    with torch.no_grad():
        padded = model(both).logits[1, : alone.input_ids.shape[1]]
        single = model(alone).logits[0]
    torch.testing.assert_close(padded, single, atol=1e-5, rtol=1e-5)


def test_greedy_generation_is_deterministic():
    model = tiny_model()
    batch = batch_for(TINY, lengths=(4,), with_labels=False)
    first = model.generate(batch, max_new_tokens=6)
    assert torch.equal(first, model.generate(batch, max_new_tokens=6))
    assert first.shape[1] <= 6
    sampled = [model.generate(batch, max_new_tokens=6, do_sample=True, seed=3) for _ in range(2)]
    assert torch.equal(sampled[0], sampled[1])


def test_a_tiny_model_learns_one_example():
    model = tiny_model()
    model.train()
    batch = batch_for(TINY, lengths=(5,))
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(100):
        optimiser.zero_grad()
        loss = model(batch).loss
        loss.backward()
        optimiser.step()
    model.eval()
    answer = batch.labels[0][batch.labels[0] != -100]
    prompt = batch.input_ids[:, : batch.input_ids.shape[1] - len(answer)]
    gen = model.generate(Batch(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                               visual_features=batch.visual_features, audio_features=batch.audio_features),
                         max_new_tokens=len(answer))
    assert gen[0].tolist() == answer.tolist(), loss.item()


def _original_state(model: AffectGPT) -> dict[str, torch.Tensor]:
    """A checkpoint in the original's naming, built from the spec's key names (inverse of the key table)."""
    inverse = {ours: original for original, ours in PREFIXES.items()}
    state = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("llm.base_model.model."):
            state["llama_model." + name[len("llm."):]] = torch.randn_like(param)
            continue
        prefix = next(p for p in sorted(inverse, key=len, reverse=True) if name.startswith(p))
        state[inverse[prefix] + name[len(prefix):]] = torch.randn_like(param)
    state["image_llama_proj.weight"] = torch.randn(TINY.llm_dim, TINY.visual_dim)  # unused by the original too
    return state


def test_original_checkpoint_import_round_trips_values():
    model = tiny_model()
    state = _original_state(model)
    report = checkpoint.import_original(model, state)
    assert [k for k, _ in report.skipped] == ["image_llama_proj.weight"] and report.missing == []
    ours = dict(model.named_parameters())
    assert torch.equal(ours["fusion.weights.weight"], state["fc_att.weight"])
    assert torch.equal(ours["video_pool.proj.bias"], state["affectgpt_proj.bias"])
    lora = "model.layers.1.mlp.down_proj.lora_B.default.weight"
    assert torch.equal(ours["llm.base_model.model." + lora], state["llama_model.base_model.model." + lora])


def test_a_checkpoint_of_another_config_is_refused():
    state = _original_state(tiny_model(replace(TINY, lora_r=8)))
    with pytest.raises(InputError, match="another configuration"):
        checkpoint.import_original(tiny_model(), state)
    no_fusion = _original_state(tiny_model(replace(TINY, fusion="none", modalities=("audio", "video", "text"))))
    with pytest.raises(InputError, match="holds no weights for 10 trainable parameters"):
        checkpoint.import_original(tiny_model(), no_fusion)


def test_our_checkpoint_round_trip(tmp_path):
    model = tiny_model()
    checkpoint.save(model, tmp_path / "ckpt")
    cfg, _ = checkpoint.read_config(tmp_path / "ckpt")
    assert cfg == TINY
    other = tiny_model(cfg)
    checkpoint.load_weights(other, tmp_path / "ckpt")
    for key, value in model.trainable_state_dict().items():
        assert torch.equal(value, other.trainable_state_dict()[key])
    with pytest.raises(InputError, match="does not fit this model"):
        checkpoint.load_weights(tiny_model(replace(TINY, fusion="qformer")), tmp_path / "ckpt")


def test_missing_modality_and_wrong_shapes_are_clear_errors():
    model = tiny_model()
    batch = batch_for(TINY, with_labels=False)
    with pytest.raises(InputError, match="needs audio"):
        model(replace(batch, audio_features=None))
    with pytest.raises(InputError):
        model(replace(batch, visual_features=torch.randn(2, 8, TINY.visual_dim + 1)))
    no_multi = replace(batch, input_ids=batch.input_ids.clone())
    no_multi.input_ids[0, 2] = 5  # break one placeholder block
    with pytest.raises(InputError, match="expected one block"):
        model(no_multi)


def test_encoders_are_chosen_by_name_from_the_table():
    from affectgpt.model.build import build_model
    from affectgpt.model.encoders import ENCODERS, ClipVisualEncoder, HubertAudioEncoder

    assert ENCODERS.get("clip") is ClipVisualEncoder and ENCODERS.get("hubert") is HubertAudioEncoder
    with pytest.raises(InputError, match=r"unknown encoder 'clipp'.*did you mean 'clip'"):
        build_model(replace(TINY, visual_kind="clipp"))
