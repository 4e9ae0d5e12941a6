"""The language model side: the tokenizer with AffectGPT's special tokens, and the causal LM with LoRA (peft).

The tokenizer rules are the original loader's (../shared/reference/fidelity/README.md, "Tokenizer"): BOS is
`<|im_start|>` (Qwen has none), PAD = EOS = `<|im_end|>`, and five placeholder tokens are added after the
vocabulary (ids len(tokenizer)+0..4, 151665..151669 for Qwen2.5) without resizing the embeddings: their rows are
never read, because placeholder ids are zeroed before the embedding lookup.

With peft, the LoRA parameters are named `base_model.model.model.layers.<i>.self_attn.q_proj.lora_A.default.weight`
(PeftModelForCausalLM -> LoraModel -> Qwen2ForCausalLM -> Qwen2Model): the original checkpoint's keys are these
with the prefix `llama_model.`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.model.config import ModelConfig
from affectgpt.model.known import DOWNLOAD_FIX

PLACEHOLDERS = ("<ImageHere>", "<AudioHere>", "<FrameHere>", "<FaceHere>", "<MultiHere>")
"""In the original's order: their ids are len(tokenizer) + 0..4 after loading."""
BOS = "<|im_start|>"
EOS = "<|im_end|>"
LORA_MARK = ".lora_"


def load_tokenizer(path_or_id: str | Path, *, local_files_only: bool = True, use_fast: bool = True) -> Any:
    """The LLM's tokenizer with BOS `<|im_start|>`, PAD = EOS = `<|im_end|>` and the 5 placeholders added.

    Slow and fast Qwen2 tokenizers give the same ids on the fidelity strings (README "Tokenizer").
    """
    transformers = require("transformers", extra="model")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path_or_id), local_files_only=local_files_only,
                                                               use_fast=use_fast)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the tokenizer from {path_or_id!r} ({exc})", field="model.llm",
                         fix=DOWNLOAD_FIX) from exc
    vocab = tokenizer.get_vocab()
    missing = [token for token in (BOS, EOS) if token not in vocab]
    if missing:
        raise InputError(f"the tokenizer has no {' or '.join(missing)} token", field="model.llm",
                         fix="use a Qwen2-family (ChatML) tokenizer")
    tokenizer.bos_token = BOS
    tokenizer.eos_token = EOS
    tokenizer.pad_token = EOS
    tokenizer.add_tokens(list(PLACEHOLDERS), special_tokens=True)
    return tokenizer


def placeholder_ids(tokenizer: Any) -> dict[str, int]:
    """Placeholder string -> id, in PLACEHOLDERS order."""
    return {token: tokenizer.convert_tokens_to_ids(token) for token in PLACEHOLDERS}


def _lora_config(cfg: ModelConfig) -> Any:
    peft = require("peft", extra="model")
    return peft.LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                           target_modules=list(cfg.lora_targets), bias="none", task_type="CAUSAL_LM")


def add_lora(model: nn.Module, cfg: ModelConfig) -> nn.Module:
    """Freeze `model` and wrap it with LoRA (peft) as cfg says; lora_r 0 returns the frozen base unchanged.

    LoRA A is Kaiming-random and B zero at creation (peft's default, as in the original), so a fresh adapter
    changes nothing until trained or loaded. Scaling is alpha / r.
    """
    for param in model.parameters():
        param.requires_grad_(False)
    if cfg.lora_r == 0:
        return model
    peft = require("peft", extra="model")
    with warnings.catch_warnings():  # peft calls a transformers 5 deprecated alias; not ours to fix
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return peft.get_peft_model(model, _lora_config(cfg))


def load_llm(path_or_id: str | Path, cfg: ModelConfig, *, dtype: torch.dtype = torch.float32,
             local_files_only: bool = True, **kwargs: Any) -> nn.Module:
    """The causal LM (Qwen2ForCausalLM for Qwen2.5) from a folder or hub id, frozen, with LoRA from cfg.

    Extra keyword arguments go to `from_pretrained` (attn_implementation, device_map...).
    """
    transformers = require("transformers", extra="model")
    auto = transformers.AutoModelForCausalLM
    try:
        try:
            model = auto.from_pretrained(str(path_or_id), local_files_only=local_files_only, dtype=dtype, **kwargs)
        except TypeError:  # transformers < 4.56 calls it torch_dtype
            model = auto.from_pretrained(str(path_or_id), local_files_only=local_files_only, torch_dtype=dtype,
                                         **kwargs)
    except OSError as exc:
        raise InputError(f"cannot load the LLM from {path_or_id!r} ({exc})", field="model.llm",
                         fix=DOWNLOAD_FIX) from exc
    return add_lora(model, cfg)


def build_llm_from_config(cfg: ModelConfig, *, device: str | torch.device = "meta",
                          dtype: torch.dtype = torch.float32) -> nn.Module:
    """The LLM architecture from `cfg.llm_config` with LoRA, without any file: on the meta device by default
    (no allocation), for parameter counts and summaries. Weights are uninitialised (meta: absent)."""
    if not cfg.llm_config:
        raise InputError("the model config has no llm_config", field="model.llm_config",
                         fix="use a preset (e.g. released) or give the LLM's transformers config as llm_config")
    transformers = require("transformers", extra="model")
    values = dict(cfg.llm_config)
    model_type = values.pop("model_type", None)
    if model_type is None:
        raise InputError("llm_config has no model_type", field="model.llm_config.model_type",
                         fix="add the transformers model_type (qwen2 for Qwen2.5)")
    config = transformers.AutoConfig.for_model(model_type, **values)
    with torch.device(device):
        try:
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
        except TypeError:  # transformers < 4.56 calls it torch_dtype
            model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=dtype)
        return add_lora(model, cfg)


def lora_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Name -> parameter for every LoRA weight (lora_A / lora_B) of the model."""
    return {name: param for name, param in model.named_parameters() if LORA_MARK in name}


def lora_parameter_count(model: nn.Module) -> int:
    """Number of LoRA parameters (40,370,176 for Qwen2.5-7B with r = 16 on the 7 projections)."""
    return sum(param.numel() for param in lora_parameters(model).values())
