"""Random-init AffectGPT models built in-process from configs and a seed, for the CPU recipe, tests, benchmarks.

A small LLM with variance-preserving weights and, for an encoder named `random`, a small frozen CLIP / HuBERT.

The same (config, tokenizer, seed) always gives the same frozen weights (each part draws from its own seeded
generator), so a checkpoint of such a model needs only its trainable weights, its tokenizer and the seed:
`from_checkpoint` rebuilds it for inference. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from affectgpt.errors import InputError
from affectgpt.model.config import ModelConfig
from affectgpt.model.lm import LORA_MARK

RANDOM = "random"
"""The encoder name (`visual_encoder` / `audio_encoder`) of an in-process random encoder, and `init` of a random
model in a checkpoint's base record."""


def random_model(cfg: ModelConfig, tokenizer: Any, *, seed: int) -> Any:
    """AffectGPT with a random LLM sized to `tokenizer` (llm_dim = llm_config's hidden_size) and encoders as the
    config names them: `random` built in-process (seeded), a local folder loaded, anything else None (the batches
    then carry features)."""
    from affectgpt.model.affectgpt import AffectGPT
    from affectgpt.model.lm import build_llm_from_config, placeholder_ids
    from affectgpt.model.prompt import PLACEHOLDER_NAMES

    if not cfg.llm_config:
        raise InputError("a random model needs an llm_config", field="model.config.llm_config",
                         fix="give the tiny LLM's transformers config (model_type, hidden_size, ...)")
    cfg = replace(cfg, llm_config={**cfg.llm_config, "vocab_size": len(tokenizer)},
                  llm_dim=int(cfg.llm_config["hidden_size"]))
    visual, audio, cfg = _local_encoders(cfg, seed)
    torch.manual_seed(seed)  # LoRA's A matrices
    llm = build_llm_from_config(cfg, device="cpu")
    redraw(llm, seed)
    ids = {PLACEHOLDER_NAMES[token]: i for token, i in placeholder_ids(tokenizer).items()}
    return AffectGPT(cfg, llm, ids, visual_encoder=visual, audio_encoder=audio)


def from_checkpoint(cfg: ModelConfig, base: dict[str, Any], folder: str | Path, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a random-init checkpoint (`init: random` in its config.json, infer/sources.py): the
    tokenizer saved with it and the seeded weights, in float32 whatever `dtype` (the caller loads the trained
    weights on top, then casts the whole model)."""
    from affectgpt.model.lm import load_tokenizer

    tokenizer_dir = Path(folder) / str(base.get("tokenizer", "tokenizer"))
    if not tokenizer_dir.is_dir():
        raise InputError("the random-init checkpoint has no tokenizer folder", path=tokenizer_dir,
                         field="base.tokenizer", fix="copy the run's tokenizer/ folder into the checkpoint folder")
    tokenizer = load_tokenizer(tokenizer_dir)
    return random_model(cfg, tokenizer, seed=int(base.get("seed", 0))), tokenizer


def redraw(llm: nn.Module, seed: int) -> None:
    """Variance-preserving base weights: embeddings N(0, 1), other matrices N(0, 1/fan_in); LoRA untouched.

    With HF's 0.02 init the frozen output layer gives near-uniform logits that no LoRA can sharpen.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in llm.named_parameters():
            if LORA_MARK in name or param.ndim != 2:
                continue
            std = 1.0 if "embed_tokens" in name else param.shape[1] ** -0.5
            param.copy_(torch.randn(param.shape, generator=generator) * std)


def _local_encoders(cfg: ModelConfig, seed: int = 0) -> tuple[Any, Any, ModelConfig]:
    """The encoders of a random-init model: `random` (built in-process, seeded), a local folder (loaded) or
    neither (None: the batches must carry features). Widths are read off them into the config."""
    from affectgpt.model.encoders import ClipVisualEncoder, HubertAudioEncoder

    visual = audio = None
    if {"video", "multi"} & set(cfg.modalities):
        if cfg.visual_encoder == RANDOM:
            visual = random_visual_encoder(cfg, seed)
        elif Path(cfg.visual_encoder).is_dir():
            visual = ClipVisualEncoder(cfg.visual_encoder)
        if visual is not None:
            cfg = replace(cfg, visual_dim=visual.dim)
    if {"audio", "multi"} & set(cfg.modalities):
        if cfg.audio_encoder == RANDOM:
            audio = random_audio_encoder(cfg, seed)
        elif Path(cfg.audio_encoder).is_dir():
            audio = HubertAudioEncoder(cfg.audio_encoder, normalization=cfg.hubert_normalization)
        if audio is not None:
            cfg = replace(cfg, audio_dim=audio.dim)
    if visual is not None and audio is not None:
        cfg = replace(cfg, fusion_dim=max(cfg.visual_dim, cfg.audio_dim))
    return visual, audio, cfg


def random_visual_encoder(cfg: ModelConfig, seed: int) -> Any:
    """A ClipVisualEncoder around a CLIPModel built from `cfg.visual_config` with transformers' random init
    (seeded by `seed`, without touching the global RNG) and OpenAI CLIP's preprocessing."""
    from transformers import CLIPModel

    from affectgpt.model.encoders import ClipVisualEncoder

    model = _random_model(CLIPModel, "clip", cfg.visual_config, "visual_config", seed * 1_000_003 + 1)
    return ClipVisualEncoder.from_model(model)


def random_audio_encoder(cfg: ModelConfig, seed: int) -> Any:
    """A HubertAudioEncoder around a HubertModel built from `cfg.audio_config` (keep the real conv strides, so a
    2-s clip gives 99 frames) with transformers' random init, seeded, and input normalisation on."""
    from transformers import HubertModel

    from affectgpt.model.encoders import HubertAudioEncoder

    model = _random_model(HubertModel, "hubert", cfg.audio_config, "audio_config", seed * 1_000_003 + 2)
    return HubertAudioEncoder.from_model(model, normalization=cfg.hubert_normalization)


def _random_model(cls: Any, model_type: str, config: dict[str, Any] | None, key: str, seed: int) -> Any:
    from transformers import AutoConfig

    if not config:
        raise InputError(f"a random {model_type} encoder needs its transformers config", field=f"model.config.{key}",
                         fix=f"give {key}: {{model_type: {model_type}, hidden_size: ..., ...}}")
    given = {k: v for k, v in config.items() if k != "model_type"}
    if config.get("model_type", model_type) != model_type:
        raise InputError(f"{key} has model_type {config.get('model_type')!r}", field=f"model.config.{key}",
                         fix=f"use model_type {model_type}")
    try:
        hf_config = AutoConfig.for_model(model_type, **given)
    except (TypeError, ValueError) as exc:
        raise InputError(f"not a valid {model_type} config ({exc})", field=f"model.config.{key}",
                         fix="check the transformers config keys") from exc
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(hf_config)
    model.config._name_or_path = RANDOM  # the feature cache's encoder id (data/features.py: encoder_id)
    return model.eval()
