"""The random-init model (`model.init: random`): a word-level tokenizer from the training texts, a small LLM
built in-process from `llm_config` with variance-preserving weights and, for an encoder named `random`, a small
frozen CLIP / HuBERT built in-process from `visual_config` / `audio_config`, for the CPU recipe, tests and
benchmarks.

Nothing is downloaded. The tokenizer is written to `<output>/tokenizer` (a normal HF tokenizer folder, loaded back
through model/lm.py's `load_tokenizer`, so BOS/EOS/PAD and the placeholders follow the real rules); the LLM's
base weights are redrawn from a generator seeded by the config's seed, so the same config rebuilds the same model
(which is what resume relies on).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from affectgpt.data.sample import Sample
from affectgpt.data.targets import question_answer
from affectgpt.errors import InputError
from affectgpt.model.config import ModelConfig
from affectgpt.model.lm import BOS, EOS, LORA_MARK

UNK = "<unk>"
RANDOM = "random"
"""The encoder name (`visual_encoder` / `audio_encoder`) of an in-process random encoder."""


def sample_texts(samples: Sequence[Sample], cfg: ModelConfig) -> list[str]:
    """Every prompt and target the samples can produce (both questions where both targets exist)."""
    from affectgpt.model.prompt import prompt_for

    texts = []
    for sample in samples:
        for task in sample.tasks:
            question, target = question_answer(sample, task)
            texts += [prompt_for(cfg, question, sample.subtitle), target]
    return texts


def build_word_tokenizer(texts: Iterable[str], folder: str | Path) -> Any:
    """A word-level tokenizer (words and punctuation runs of `texts`, plus <unk>, BOS, EOS) saved to `folder`
    and loaded back with the AffectGPT rules (model/lm.py: load_tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from affectgpt.model.lm import load_tokenizer

    splitter = pre_tokenizers.Whitespace()
    words = sorted({word for text in texts for word, _ in splitter.pre_tokenize_str(text)})
    vocab = {token: i for i, token in enumerate([UNK, BOS, EOS, *(w for w in words if w not in (UNK, BOS, EOS))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = splitter
    fast = PreTrainedTokenizerFast(tokenizer_object=core, unk_token=UNK, bos_token=BOS, eos_token=EOS, pad_token=EOS)
    fast.add_special_tokens({"additional_special_tokens": [BOS, EOS]})
    # Every process of a distributed run builds the same tokenizer: each writes into its own folder and moves
    # the files into place one by one (atomic renames), so no process reads another's half-written file.
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".writing-") as scratch:
        fast.save_pretrained(scratch)
        for written in Path(scratch).iterdir():
            os.replace(written, folder / written.name)
    return load_tokenizer(folder)


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


def build_random_model(cfg: ModelConfig, samples: Sequence[Sample], output: str | Path, *,
                       seed: int) -> tuple[Any, Any, dict[str, str]]:
    """(AffectGPT, tokenizer, base locations) for `model.init: random`.

    The LLM vocabulary is sized to the tokenizer; llm_dim is the llm_config's hidden_size; an encoder named
    `random` is built in-process from visual_config / audio_config (seeded), one naming a local folder is loaded,
    any other leaves the batches to carry features.
    """
    from affectgpt.model.affectgpt import AffectGPT
    from affectgpt.model.lm import build_llm_from_config, placeholder_ids
    from affectgpt.model.prompt import PLACEHOLDER_NAMES

    if not cfg.llm_config:
        raise InputError("model.init random needs an llm_config", field="model.config.llm_config",
                         fix="give the tiny LLM's transformers config (model_type, hidden_size, ...)")
    folder = Path(output) / "tokenizer"
    tokenizer = build_word_tokenizer(sample_texts(samples, cfg), folder)
    cfg = replace(cfg, llm_config={**cfg.llm_config, "vocab_size": len(tokenizer)},
                  llm_dim=int(cfg.llm_config["hidden_size"]))
    visual, audio, cfg = _local_encoders(cfg, seed)
    torch.manual_seed(seed)  # LoRA's A matrices
    llm = build_llm_from_config(cfg, device="cpu")
    redraw(llm, seed)
    ids = {PLACEHOLDER_NAMES[token]: i for token, i in placeholder_ids(tokenizer).items()}
    model = AffectGPT(cfg, llm, ids, visual_encoder=visual, audio_encoder=audio)
    return model, tokenizer, {"llm": f"random (seed {seed})", "tokenizer": str(folder)}


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
