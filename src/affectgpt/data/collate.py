"""Batches of token ids: training items right-padded into a Batch, inference prompts left-padded for generation.

Right padding (training) is model/prompt.py's `collate`, the original's layout (PAD = EOS, labels -100, mask
`ids != eos`), checked by the fidelity tests; left padding puts every prompt's last token in the last column, so
batched generation continues each prompt where it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from affectgpt.errors import InputError
from affectgpt.model.affectgpt import Batch
from affectgpt.model.prompt import Encoded, collate


def skipped_in(items: Sequence[dict[str, Any] | None]) -> int:
    """How many items of a batch were skipped (None: over-long with on_overflow="skip")."""
    return sum(item is None for item in items)


def collate_batch(items: Sequence[dict[str, Any] | None], pad_id: int) -> Batch:
    """Right-pad ids (pad_id, = EOS) and labels (-100) as model/prompt.collate does; stack the modality inputs.

    None items (skipped) are dropped; an InputError when none is left or the items carry different inputs.
    """
    kept = [item for item in items if item is not None]
    if not kept:
        raise InputError("every item of the batch was skipped (over-long)", field="batch",
                         fix="raise max_length, or filter samples with TrainingDataset.overlong()")
    padded = collate([Encoded(item["input_ids"].tolist(), item["labels"].tolist()) for item in kept], pad_id)
    stacked: dict[str, torch.Tensor | None] = {}
    for key in ("frames", "audio_clips", "visual_features", "audio_features"):
        present = [key in item for item in kept]
        if any(present) and not all(present):
            raise InputError(f"only some items carry {key}", field="batch", fix="build every item the same way")
        stacked[key] = torch.stack([item[key] for item in kept]) if all(present) else None
    return Batch(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"], labels=padded["labels"],
                 **stacked)


def left_pad(rows: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids [B, S] and their attention mask, for batched generation."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
    return ids, mask
