"""The original checkpoint's keys map onto our parameters (or onto a documented skip); unknown keys are reported."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from affectgpt.model.keymap import LLM_PREFIX, PREFIXES, QFORMER_UNUSED, SKIPPED, is_unknown, map_key, map_keys

FIDELITY = Path(os.environ.get("AFFECTGPT_FIDELITY_DIR")
                or Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "fidelity")
CONFIGS = sorted(p.name for p in (FIDELITY / "fixtures").glob("*") if (p / "meta.json").is_file())


def header_shapes(path: Path) -> dict[str, list[int]]:
    """Key -> shape from a safetensors header (8-byte little-endian length, then JSON): no torch needed."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def test_table_examples() -> None:
    assert map_key("video_attention_mlp.weight").target == "video_pool.score.weight"
    assert map_key("affectgpt_proj.bias").target == "video_pool.proj.bias"
    assert map_key("attention_mlp.weight").target == "fusion.hidden.weight"
    assert map_key("fc_att.bias").target == "fusion.weights.bias"
    assert map_key("multi_query_tokens").target == "fusion.queries"
    assert map_key("audio_Qformer.bert.encoder.layer.1.crossattention.self.key.weight").target == (
        "audio_pool.qformer.encoder.layer.1.crossattention.self.key.weight")
    assert map_key("video_Qformer.bert.encoder.layer.0.output_query.dense.bias").target == (
        "video_pool.qformer.encoder.layer.0.output_query.dense.bias")
    lora = "model.layers.3.mlp.down_proj.lora_B.default.weight"
    assert map_key("llama_model.base_model.model." + lora).target == LLM_PREFIX + lora
    assert map_key("llama_model.base_model.model." + lora, llm_prefix="x.").target == "x." + lora


@pytest.mark.parametrize("key", ["image_llama_proj.weight", "multi_Qformer.bert.embeddings.position_ids",
                                 "video_Qformer.bert.encoder.layer.0.intermediate.dense.weight",
                                 "video_Qformer.bert.encoder.layer.1.output.LayerNorm.bias",
                                 "audio_Qformer.cls.predictions.bias"])
def test_documented_skips(key: str) -> None:
    mapping = map_key(key)
    assert mapping.target is None and mapping.reason.startswith("skipped: ") and not is_unknown(mapping)


@pytest.mark.parametrize("key", ["visual_encoder.model.weight", "video_query_tokens_extra", "fc_att",
                                 "llama_model.base_model.model.model.embed_tokens.weight",
                                 "llama_model.base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"])
def test_unknown_keys_are_reported(key: str) -> None:
    assert is_unknown(map_key(key))
    report = map_keys(["affectgpt_proj.weight", key, "image_llama_proj.bias"])
    assert report.unknown == [key]
    assert report.mapped == {"affectgpt_proj.weight": "video_pool.proj.weight"}
    assert list(report.skipped) == ["image_llama_proj.bias"]


def test_tables_are_consistent() -> None:
    assert all(ours.split(".")[0] in {"video_pool", "audio_pool", "fusion"} for ours in PREFIXES.values())
    assert all(o.endswith(".") == t.endswith(".") for o, t in PREFIXES.items())
    assert SKIPPED and QFORMER_UNUSED


@pytest.mark.parametrize("name", CONFIGS or [None])
def test_every_fixture_key_maps_to_a_parameter(name: str | None) -> None:
    if name is None:
        pytest.skip(f"fidelity fixtures not found under {FIDELITY} (set AFFECTGPT_FIDELITY_DIR)")
    torch = pytest.importorskip("torch")
    from affectgpt.model.config import ModelConfig
    from affectgpt.model.fusion import build_fusion
    from affectgpt.model.pooling import build_pooler

    folder = FIDELITY / "fixtures" / name
    shapes = header_shapes(folder / "ckpt_model.safetensors")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert set(shapes) == set(meta["checkpoint_keys"])
    # the tiny widths of the README (d_v 24, d_a 32, pre-fusion 32, Q-Former 40/4/80, LLM 64); N from model_cfg
    original = meta["model_cfg"]
    cfg = ModelConfig(video_pooling=original["video_fusion_type"], audio_pooling=original["audio_fusion_type"],
                      fusion=original["multi_fusion_type"], video_tokens=original["num_video_query_token"],
                      audio_tokens=original["num_audio_query_token"], multi_tokens=original["num_multi_query_token"],
                      visual_dim=24, audio_dim=32, fusion_dim=32, llm_dim=64, qformer_hidden=40, qformer_heads=4,
                      qformer_intermediate=80, qformer_layers=2)
    with torch.device("meta"):
        modules = {"video_pool": build_pooler(cfg.video_pooling, cfg.visual_dim, cfg, cfg.video_tokens,
                                              cfg.video_positions),
                   "audio_pool": build_pooler(cfg.audio_pooling, cfg.audio_dim, cfg, cfg.audio_tokens,
                                              cfg.audio_positions),
                   "fusion": build_fusion(cfg)}
    ours = {f"{prefix}.{k}": list(p.shape) for prefix, m in modules.items() for k, p in m.named_parameters()}

    report = map_keys(shapes)
    assert not report.unknown
    assert set(report.skipped) == {k for k in shapes if k.startswith("image_llama_proj.")} | set(
        meta["checkpoint_buffer_keys"])
    lora = {k: v for k, v in report.mapped.items() if v.startswith(LLM_PREFIX)}
    assert lora and all(".lora_A." in v or ".lora_B." in v for v in lora.values())
    rest = {k: v for k, v in report.mapped.items() if k not in lora}
    for key, target in rest.items():
        assert target in ours, f"{key} -> {target}: no such parameter"
        assert ours[target] == shapes[key], f"{key} -> {target}: shape {shapes[key]} != {ours[target]}"
    assert sorted(rest.values()) == sorted(ours), "a parameter of ours gets no checkpoint tensor"
