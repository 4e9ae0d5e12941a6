"""The word-level tokenizer of the tiny recipe: the words of the training texts, as a normal HF tokenizer folder.

Nothing is downloaded. The folder is loaded back through model/lm.py's `load_tokenizer`, so BOS/EOS/PAD and the
placeholders follow the real rules.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from affectgpt.data.sample import Sample
from affectgpt.data.targets import question_answer
from affectgpt.model.config import ModelConfig
from affectgpt.model.lm import BOS, EOS

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
    # Every process of a distributed run builds the same tokenizer: each writes into its own folder and moves
    # the files into place one by one (atomic renames), so no process reads another's half-written file.
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".writing-") as scratch:
        fast.save_pretrained(scratch)
        for written in Path(scratch).iterdir():
            os.replace(written, folder / written.name)
    return load_tokenizer(folder)
