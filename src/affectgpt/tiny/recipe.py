"""The random-init model for training (`model.init: random`): the word tokenizer of the training texts around
tiny/random_init.py's seeded model, for the CPU recipe, tests and benchmarks.

The tokenizer is written to `<output>/tokenizer`; the base record returned with the model is what checkpoints
keep, and what `random_init.from_checkpoint` (describe, predict) rebuilds the model from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from affectgpt.data.sample import Sample
from affectgpt.errors import InputError
from affectgpt.model.config import ModelConfig
from affectgpt.tiny.random_init import RANDOM, random_model
from affectgpt.tiny.tokenizer import build_word_tokenizer, sample_texts


def build_random_model(cfg: ModelConfig, samples: Sequence[Sample], output: str | Path, *,
                       seed: int) -> tuple[Any, Any, dict[str, Any]]:
    """(AffectGPT, tokenizer, base) for `model.init: random`: the word tokenizer of the samples' texts (written to
    <output>/tokenizer), then tiny/random_init.py's `random_model` around it.

    `base` (recorded in checkpoints) says the model is a random init with this seed and where its tokenizer is,
    which is what `random_init.from_checkpoint` (describe, predict) rebuilds it from.
    """
    if not cfg.llm_config:
        raise InputError("model.init random needs an llm_config", field="model.config.llm_config",
                         fix="give the tiny LLM's transformers config (model_type, hidden_size, ...)")
    folder = Path(output) / "tokenizer"
    tokenizer = build_word_tokenizer(sample_texts(samples, cfg), folder)
    model = random_model(cfg, tokenizer, seed=seed)
    return model, tokenizer, {"init": RANDOM, "seed": seed, "tokenizer": str(folder)}
