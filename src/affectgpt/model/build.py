"""build_model(): a ModelConfig + base-model folders -> a ready AffectGPT and its tokenizer (the normal path).

The widths are read off the loaded base models (CLIP projection, HuBERT hidden size, LLM hidden size), so a
config names models and choices, not sizes. `config_from_original` turns the original's yaml `model_cfg` into
our config, for importing original checkpoints.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.model.config import ModelConfig

_PLACEHOLDER_KINDS = {"<ImageHere>": "image", "<AudioHere>": "audio", "<FrameHere>": "frame",
                      "<FaceHere>": "face", "<MultiHere>": "multi"}


def build_model(cfg: ModelConfig, *, dtype: Any = None, local_files_only: bool = True) -> tuple[Any, Any]:
    """AffectGPT (encoders and LLM loaded from cfg's paths or ids, LoRA applied) and its tokenizer."""
    import torch

    from affectgpt.model.affectgpt import AffectGPT
    from affectgpt.model.encoders import ENCODERS
    from affectgpt.model.lm import load_llm, load_tokenizer, placeholder_ids

    dtype = dtype or torch.float32
    visual = ENCODERS.get(cfg.visual_kind)(cfg.visual_encoder, local_files_only=local_files_only, dtype=dtype) \
        if {"video", "multi"} & set(cfg.modalities) else None
    audio = ENCODERS.get(cfg.audio_kind)(cfg.audio_encoder, normalization=cfg.hubert_normalization,
                                         local_files_only=local_files_only, dtype=dtype) \
        if {"audio", "multi"} & set(cfg.modalities) else None
    tokenizer = load_tokenizer(cfg.llm, local_files_only=local_files_only)
    llm = load_llm(cfg.llm, cfg, dtype=dtype, local_files_only=local_files_only)
    dims = {"llm_dim": int(llm.get_input_embeddings().weight.shape[1])}
    if visual is not None:
        dims["visual_dim"] = visual.dim
    if audio is not None:
        dims["audio_dim"] = audio.dim
    if visual is not None and audio is not None:
        dims["fusion_dim"] = max(visual.dim, audio.dim)  # the original's max_dim
    cfg = replace(cfg, **dims)
    ids = {_PLACEHOLDER_KINDS[token]: i for token, i in placeholder_ids(tokenizer).items()}
    model = AffectGPT(cfg, llm, ids, visual_encoder=visual, audio_encoder=audio)
    return model.eval(), tokenizer


def config_from_original(model_cfg: dict[str, Any], *, llm: str | Path, visual_encoder: str | Path,
                         audio_encoder: str | Path, qformer: dict[str, Any] | None = None,
                         visual_input: str = "face", **overrides: Any) -> ModelConfig:
    """Our config for an original AffectGPT `model_cfg` (the yaml the original training read).

    Args:
        model_cfg: the original's model section (multi/video/audio_fusion_type, num_*_query_token, lora_r).
        llm, visual_encoder, audio_encoder: where the base models are.
        qformer: the BERT config dict the original's Q-Former was shaped by (bert-base-uncased by default).
        visual_input: "face" or "frame" (the original chose it by its `face_or_frame` setting).
        overrides: any other ModelConfig field (e.g. hubert_normalization="batch" to reproduce training).
    """
    try:
        values: dict[str, Any] = {
            "llm": str(llm), "visual_encoder": str(visual_encoder), "audio_encoder": str(audio_encoder),
            "visual_input": visual_input, "video_pooling": model_cfg["video_fusion_type"],
            "audio_pooling": model_cfg["audio_fusion_type"], "fusion": model_cfg["multi_fusion_type"],
            "video_tokens": int(model_cfg["num_video_query_token"]),
            "audio_tokens": int(model_cfg["num_audio_query_token"]),
            "multi_tokens": int(model_cfg["num_multi_query_token"]),
            "lora_r": int(model_cfg.get("lora_r", 16)), "max_length": int(model_cfg.get("max_length", 1024)),
        }
    except KeyError as exc:
        raise InputError(f"the original model config has no {exc.args[0]!r}", field=f"model.{exc.args[0]}",
                         fix="pass the `model` section of the original training yaml") from exc
    if qformer:
        values.update(qformer_hidden=qformer["hidden_size"], qformer_heads=qformer["num_attention_heads"],
                      qformer_intermediate=qformer["intermediate_size"], qformer_eps=qformer["layer_norm_eps"])
    return ModelConfig(**{**values, **overrides})


def with_base_models(cfg: ModelConfig, *, llm: str | Path | None = None, visual_encoder: str | Path | None = None,
                     audio_encoder: str | Path | None = None) -> ModelConfig:
    """`cfg` pointed at other base models; from local folders, the architecture and widths are read from their
    config.json (no weights are loaded), so shapes can be checked before anything big is read."""
    import json

    values: dict[str, Any] = {}
    for key, path in (("llm", llm), ("visual_encoder", visual_encoder), ("audio_encoder", audio_encoder)):
        if path is None:
            continue
        values[key] = str(path)
        config_file = Path(path) / "config.json"
        if not config_file.is_file():
            continue
        try:
            data = json.loads(config_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"not valid JSON ({exc})", path=config_file, fix="check the model folder") from exc
        if key == "llm":
            values.update(llm_config=data, llm_dim=int(data["hidden_size"]))
        elif key == "visual_encoder":  # the folder's architecture replaces the preset's (a summary counts it)
            values.update(visual_config=data,
                          visual_dim=int(data.get("projection_dim", data.get("vision_config", {}).get("hidden_size"))))
        else:
            values.update(audio_config=data, audio_dim=int(data["hidden_size"]))
    merged = replace(cfg, **values)
    if {"visual_dim", "audio_dim"} & set(values):
        merged = replace(merged, fusion_dim=max(merged.visual_dim, merged.audio_dim))
    return merged
