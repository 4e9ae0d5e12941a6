"""Parameter counts of a configuration, built on the meta device from configs alone (nothing downloaded).

`summarize(cfg)` -> {"total", "trainable", "lora", "fusion", "llm", "visual_encoder", "audio_encoder"}, where
fusion = pooling + pre-fusion + projections (the original's unused image projection omitted) and trainable =
lora + fusion.
"""

from __future__ import annotations

from typing import Any

from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.model.config import ModelConfig


def summarize(cfg: ModelConfig) -> dict[str, int]:
    """Count every parameter of the full architecture of `cfg` without allocating any memory."""
    torch = require("torch", extra="model")
    from affectgpt.model.fusion import build_fusion
    from affectgpt.model.lm import build_llm_from_config, lora_parameter_count
    from affectgpt.model.pooling import build_pooler

    if cfg.llm_config is None:
        raise InputError("this configuration has no llm_config to build the LLM from", field="model.llm_config",
                         fix="use a preset (affectgpt model ls) or add the LLM's config dict")
    with torch.device("meta"):
        fusion_modules = []
        if "video" in cfg.modalities:
            fusion_modules.append(build_pooler(cfg.video_pooling, cfg.visual_dim, cfg, cfg.video_tokens,
                                               cfg.video_positions))
        if "audio" in cfg.modalities:
            fusion_modules.append(build_pooler(cfg.audio_pooling, cfg.audio_dim, cfg, cfg.audio_tokens,
                                               cfg.audio_positions))
        if cfg.uses_multi:
            fusion_modules.append(build_fusion(cfg))
        fusion = sum(_count(m) for m in fusion_modules)
        llm = build_llm_from_config(cfg, device="meta")
        lora = lora_parameter_count(llm)
        counts = {"lora": lora, "fusion": fusion, "llm": _count(llm) - lora,
                  "visual_encoder": _encoder_count(cfg.visual_config, "clip"),
                  "audio_encoder": _encoder_count(cfg.audio_config, "hubert")}
    counts["trainable"] = counts["lora"] + counts["fusion"]
    counts["total"] = sum(counts[k] for k in ("lora", "fusion", "llm", "visual_encoder", "audio_encoder"))
    return counts


def _count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _encoder_count(config: dict[str, Any] | None, kind: str) -> int:
    """Parameters of the frozen encoder as AffectGPT uses it (CLIP: vision tower + projection)."""
    if config is None:
        return 0
    transformers = require("transformers", extra="model")
    if kind == "clip":
        vision = transformers.CLIPVisionConfig(**config["vision_config"], projection_dim=config["projection_dim"])
        return _count(transformers.CLIPVisionModelWithProjection(vision))
    settings = {k: v for k, v in config.items() if k != "model_type"}
    return _count(transformers.HubertModel(transformers.HubertConfig(**settings)))
