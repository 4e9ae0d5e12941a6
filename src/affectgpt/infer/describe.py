"""One clip (or a batch of prepared clips) -> AffectGPT's answer text: media inputs joined to the model.

`load_model(path)` opens our checkpoint folder (config.json names the base models; model.safetensors holds the
trained weights); `answer(model, tokenizer, clips, task=...)` builds the prompts, left-pads the batch and
generates (greedy by default; seeded sampling with the published settings as an option).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError

TASKS = ("description", "labels")


@dataclass(frozen=True, slots=True)
class Generation:
    """Decoding settings. `published()` gives the original's sampling (temperature 1.0, top_p 0.9, 1200 tokens)."""

    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 0.9
    seed: int | None = None

    @classmethod
    def published(cls, seed: int = 0) -> Generation:
        return cls(max_new_tokens=1200, do_sample=True, temperature=1.0, top_p=0.9, seed=seed)


def load_model(path: str | Path, *, dtype: Any = None, overrides: dict[str, str] | None = None) -> tuple[Any, Any]:
    """Our checkpoint folder -> (AffectGPT in eval mode, tokenizer), all in `dtype` (default float32).
    `overrides` may relocate base models ({"llm": ..., "visual_encoder": ..., "audio_encoder": ...})."""
    from dataclasses import replace

    from affectgpt.model import random_init
    from affectgpt.model.build import build_model
    from affectgpt.model.checkpoint import load_weights, read_config

    cfg, base = read_config(path)
    if overrides:
        cfg = replace(cfg, **{k: str(v) for k, v in overrides.items() if v})
    if base.get("init") == random_init.RANDOM:  # a random-init run (tiny recipe): rebuilt from its seed
        model, tokenizer = random_init.from_checkpoint(path, cfg, base)
    else:
        model, tokenizer = build_model(cfg, dtype=dtype)
    load_weights(model, path)
    if dtype is not None:
        model = model.to(dtype)  # the trained (float32) weights too: one dtype for inference
    return model.eval(), tokenizer


def answer(model: Any, tokenizer: Any, clips: Sequence[Any], *, task: str = "description",
           generation: Generation = Generation()) -> list[str]:
    """The model's answer for each clip (a media.Clip or anything with frames/faces/audio_clips/subtitle)."""
    import torch

    from affectgpt.model.affectgpt import Batch
    from affectgpt.model.prompt import QUESTIONS, decode_answer, encode_inference, prompt_for

    if task not in TASKS:
        raise InputError(f"unknown task {task!r}", field="--task", fix=f"choose one of {', '.join(TASKS)}")
    cfg = model.cfg
    rows = [encode_inference(tokenizer, prompt_for(cfg, QUESTIONS[task], clip.subtitle)) for clip in clips]
    ids, mask = left_pad(rows, tokenizer.pad_token_id)
    visual = [clip.faces if cfg.visual_input == "face" else clip.frames for clip in clips]
    batch = Batch(input_ids=ids, attention_mask=mask,
                  frames=torch.as_tensor(_stack(visual)) if "video" in cfg.modalities or cfg.uses_multi else None,
                  audio_clips=torch.as_tensor(_stack([c.audio_clips for c in clips]))
                  if "audio" in cfg.modalities or cfg.uses_multi else None)
    new_ids = model.generate(batch, max_new_tokens=generation.max_new_tokens, do_sample=generation.do_sample,
                             temperature=generation.temperature, top_p=generation.top_p, seed=generation.seed,
                             **_stops(tokenizer))
    texts = tokenizer.batch_decode(new_ids, skip_special_tokens=True)
    return [decode_answer(text) for text in texts]


def _stops(tokenizer: Any) -> dict[str, Any]:
    """Stop at EOS and at the answer's end marker "###". A word-level tokenizer (the random-init recipe's) has the
    marker as one word, so it stops on that id (transformers' stop strings cannot read a word-level vocabulary);
    a subword tokenizer stops on the string, however it is split."""
    from affectgpt.model.prompt import TARGET_END

    backend = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    if type(backend).__name__ == "WordLevel" and TARGET_END in tokenizer.get_vocab():
        return {"stop_ids": [tokenizer.eos_token_id, tokenizer.get_vocab()[TARGET_END]]}
    return {"stop_ids": [tokenizer.eos_token_id], "stop_strings": [TARGET_END], "tokenizer": tokenizer}


def left_pad(rows: Sequence[list[int]], pad_id: int) -> tuple[Any, Any]:
    """Left-padded ids [B, S] and their attention mask, for batched generation."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
    return ids, mask


def _stack(arrays: Sequence[Any]) -> Any:
    import numpy as np

    return np.stack([np.asarray(a) for a in arrays])
