"""Parameter counts of a configuration, built on the meta device from configs alone (nothing downloaded).

`summarize(cfg)` -> {"total", "trainable", "lora", "fusion", "llm", "visual_encoder", "audio_encoder"}, where
fusion = pooling + pre-fusion + projections (the original's unused image projection omitted) and trainable =
lora + fusion. `train_flops_per_token(cfg, seq_len)`: the model FLOPs of one training token, behind MFU.
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


def train_flops_per_token(cfg: ModelConfig, seq_len: int) -> dict[str, int]:
    """Model FLOPs of one token of a training step (forward + backward) through the LLM with LoRA, for MFU.

    A matmul with N weights costs 2N FLOPs per token forward. Trained (LoRA A and B) weights cost 3 such
    matmuls (forward, gradient wrt the activations, gradient wrt the weights): 6 N_trained. Frozen weights (every
    other Linear of the LLM, lm_head included) cost 2 (forward, gradient wrt the activations, which the LoRA
    weights of earlier layers and the fusion modules below the LLM need): 4 N_frozen. Attention scores (QK^T and
    the weighted sum of V, no weights) cost 2 * 2 * seq_len * heads * head_dim per layer forward, counted over the
    full seq_len (no halving for the causal mask, as PaLM's MFU counts them) and twice that backward: 12 *
    layers * seq_len * heads * head_dim. Left out: the embedding lookup (no matmul), biases, norms, activations,
    softmax, LoRA dropout (elementwise), and the poolers and pre-fusion, which run once per sample on 8 feature
    vectors (< 0.01 % of a step of the released model). Recomputation (none here) would not count: these are
    model FLOPs, not hardware FLOPs.

    Returns {"trained_params", "frozen_params" (the Linear weights counted), "trained", "frozen", "attention",
    "total" (FLOPs)}. Counted from the LLM built on the meta device, so nothing is allocated.
    """
    torch = require("torch", extra="model")
    from affectgpt.model.lm import build_llm_from_config

    if cfg.llm_config is None:
        raise InputError("this configuration has no llm_config to count FLOPs from", field="model.llm_config",
                         fix="use a preset (affectgpt model ls) or add the LLM's config dict")
    trained = frozen = 0
    llm = build_llm_from_config(cfg, device="meta")
    for module in llm.modules():
        if isinstance(module, torch.nn.Linear):
            if module.weight.requires_grad:
                trained += module.weight.numel()
            else:
                frozen += module.weight.numel()
    llm_cfg = llm.config
    head_dim = getattr(llm_cfg, "head_dim", None) or llm_cfg.hidden_size // llm_cfg.num_attention_heads
    attention = 12 * llm_cfg.num_hidden_layers * seq_len * llm_cfg.num_attention_heads * head_dim
    flops = {"trained_params": trained, "frozen_params": frozen, "trained": 6 * trained, "frozen": 4 * frozen,
             "attention": attention}
    flops["total"] = flops["trained"] + flops["frozen"] + attention
    return flops
