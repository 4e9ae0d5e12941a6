"""The random-init model (`model.init: random`): a word-level tokenizer from the training texts and a small LLM
built in-process from `llm_config` with variance-preserving weights, for the CPU recipe, tests and benchmarks.

Nothing is downloaded. The tokenizer is written to `<output>/tokenizer` (a normal HF tokenizer folder, loaded back
through model/lm.py's `load_tokenizer`, so BOS/EOS/PAD and the placeholders follow the real rules); the LLM's
base weights are redrawn from a generator seeded by the config's seed, so the same config rebuilds the same model
(which is what resume relies on).
"""

from __future__ import annotations

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
    fast.save_pretrained(str(folder))
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

    The LLM vocabulary is sized to the tokenizer; llm_dim is the llm_config's hidden_size; encoders are loaded
    when visual_encoder / audio_encoder name local folders (else the batches must carry features).
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
    visual, audio, cfg = _local_encoders(cfg)
    torch.manual_seed(seed)  # LoRA's A matrices
    llm = build_llm_from_config(cfg, device="cpu")
    redraw(llm, seed)
    ids = {PLACEHOLDER_NAMES[token]: i for token, i in placeholder_ids(tokenizer).items()}
    model = AffectGPT(cfg, llm, ids, visual_encoder=visual, audio_encoder=audio)
    return model, tokenizer, {"llm": f"random (seed {seed})", "tokenizer": str(folder)}


def _local_encoders(cfg: ModelConfig) -> tuple[Any, Any, ModelConfig]:
    from affectgpt.model.encoders import ClipVisualEncoder, HubertAudioEncoder

    visual = audio = None
    if Path(cfg.visual_encoder).is_dir() and {"video", "multi"} & set(cfg.modalities):
        visual = ClipVisualEncoder(cfg.visual_encoder)
        cfg = replace(cfg, visual_dim=visual.dim)
    if Path(cfg.audio_encoder).is_dir() and {"audio", "multi"} & set(cfg.modalities):
        audio = HubertAudioEncoder(cfg.audio_encoder, normalization=cfg.hubert_normalization)
        cfg = replace(cfg, audio_dim=audio.dim)
    if visual is not None and audio is not None:
        cfg = replace(cfg, fusion_dim=max(cfg.visual_dim, cfg.audio_dim))
    return visual, audio, cfg
