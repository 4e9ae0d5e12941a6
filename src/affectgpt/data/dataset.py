"""TrainingDataset: samples -> encoded training items (ids, labels, encoder features or media).

Each access `dataset[i]` draws the task (data/targets.py) with a generator seeded by (seed, epoch, i), so a run
is reproducible whatever the number of DDP ranks or dataloader workers, and a resumed run draws what the
uninterrupted one would have (call `set_epoch(epoch)` at the start of every epoch, as for DistributedSampler).
The prompt is model/prompt.py's `prompt_for(cfg, question, subtitle)`, the ids `encode_training` (BOS + prompt +
target + EOS, loss on target + EOS only).

Modality inputs per item: with `features_dir`, `visual_features` [8, dv] / `audio_features` [8, da] from the
feature cache (data/features.py; checked against cfg's encoders and visual input); otherwise `frames`
[8, 224, 224, 3] uint8 (faces or frames per cfg.visual_input) / `audio_clips` [8, 32000] from the media
(media/inputs.load_inputs; slow: faces are tracked on every access, so extract features for real runs). Only
the inputs the config's modalities use are loaded.

Over-long samples (prompt + target > max_length tokens): an InputError naming the sample (default), or with
`on_overflow="skip"` the item is None and data/collate.py's `collate_batch` drops it (`skipped_in(items)` counts
them for the caller's log). `overlong()` lists them up front, so a trainer can filter them out before training.
Items become batches in data/collate.py.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectgpt.data.features import feature_file, load_features
from affectgpt.data.manifests import check_unique
from affectgpt.data.sample import Sample
from affectgpt.data.targets import TASKS, check_mode, draw_task, question_answer
from affectgpt.errors import InputError
from affectgpt.model.config import ModelConfig
from affectgpt.model.prompt import Encoded, encode_training, prompt_for


class TrainingDataset(Dataset):
    """Training items of `samples` for a model config.

    Args:
        samples: the samples (unique names); every one must have the targets `task` asks for.
        tokenizer: the LLM tokenizer with the placeholder tokens (model/lm.py load_tokenizer).
        cfg: the model config (modalities, visual input, token counts, encoder ids).
        task: "hybrid" (released), "description" or "labels".
        features_dir: a feature cache folder (data/features.py); None reads media on every access.
        seed: the base seed of the task draws.
        max_length: prompt and target token limit (as encode_training).
        media_cache: a preprocess cache folder tried first for media (without features_dir).
        on_overflow: "error" or "skip" (see the module docstring).
    """

    def __init__(self, samples: Sequence[Sample], tokenizer: Any, cfg: ModelConfig, *, task: str = "hybrid",
                 features_dir: str | Path | None = None, seed: int = 0, max_length: int = 1024,
                 media_cache: str | Path | None = None, on_overflow: str = "error") -> None:
        check_mode(task)
        if not samples:
            raise InputError("no training samples", field="samples", fix="pass at least one sample")
        check_unique(samples)
        if on_overflow not in ("error", "skip"):
            raise InputError(f"{on_overflow!r} is not error or skip", field="on_overflow", fix="choose error or skip")
        self.samples = list(samples)
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.task = task
        self.features_dir = None if features_dir is None else Path(features_dir)
        self.media_cache = media_cache
        self.seed = int(seed)
        self.max_length = int(max_length)
        self.on_overflow = on_overflow
        self.epoch = 0
        self.need_visual = "video" in cfg.modalities or cfg.uses_multi
        self.need_audio = "audio" in cfg.modalities or cfg.uses_multi
        lacking = [s.name for s in self.samples if (task not in s.tasks if task != "hybrid" else not s.tasks)]
        if lacking:
            shown = ", ".join(lacking[:5]) + (", ..." if len(lacking) > 5 else "")
            raise InputError(f"{len(lacking)} samples have no {'target' if task == 'hybrid' else task} ({shown})",
                             field="task", fix="drop them, or use task hybrid")
        if self.features_dir is not None and (self.need_visual or self.need_audio):
            missing = [s.name for s in self.samples if not feature_file(self.features_dir, s.name).is_file()]
            if missing:
                shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
                raise InputError(f"{len(missing)} of {len(self.samples)} samples have no cached features ({shown})",
                                 path=self.features_dir, field="features_dir",
                                 fix="extract features for every sample first (their failures list says why), "
                                     "or drop those samples")

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Use the task draws of this epoch (call at the start of each epoch, on every rank)."""
        self.epoch = int(epoch)

    def task_of(self, index: int) -> str:
        """The task `self[index]` asks in the current epoch (drawn from (seed, epoch, index) only)."""
        rng = random.Random(f"affectgpt-task:{self.seed}:{self.epoch}:{index}")
        return draw_task(self.samples[index], self.task, rng)

    def encode(self, sample: Sample, task: str) -> Encoded | None:
        question, target = question_answer(sample, task)
        prompt = prompt_for(self.cfg, question, sample.subtitle)
        return encode_training(self.tokenizer, prompt, target, self.max_length, name=sample.name,
                               on_overflow=self.on_overflow)

    def overlong(self) -> list[tuple[str, str]]:
        """(name, task) of every sample and task this dataset may ask that exceeds max_length (tokenises all)."""
        out = []
        for sample in self.samples:
            for task in TASKS if self.task == "hybrid" else (self.task,):
                if task in sample.tasks:
                    question, target = question_answer(sample, task)
                    prompt = prompt_for(self.cfg, question, sample.subtitle)
                    if encode_training(self.tokenizer, prompt, target, self.max_length, on_overflow="skip") is None:
                        out.append((sample.name, task))
        return out

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        sample = self.samples[index]
        task = self.task_of(index)
        encoded = self.encode(sample, task)
        if encoded is None:
            return None
        item: dict[str, Any] = {"name": sample.name, "task": task,
                                "input_ids": torch.tensor(encoded.input_ids, dtype=torch.long),
                                "labels": torch.tensor(encoded.labels, dtype=torch.long)}
        if not (self.need_visual or self.need_audio):
            return item
        if self.features_dir is not None:
            visual, audio = load_features(self.features_dir, sample.name, visual_encoder=self.cfg.visual_encoder,
                                          audio_encoder=self.cfg.audio_encoder, visual_input=self.cfg.visual_input)
            if self.need_visual:
                item["visual_features"] = visual
            if self.need_audio:
                item["audio_features"] = audio
            return item
        from affectgpt.media.inputs import load_inputs

        inputs = load_inputs(sample.name, video=sample.video, audio=sample.audio, faces=sample.faces,
                             cache=self.media_cache, visual_input=self.cfg.visual_input,
                             need_visual=self.need_visual, need_audio=self.need_audio)
        visual, audio = inputs.visual, inputs.audio_clips
        if visual is not None:
            item["frames"] = torch.from_numpy(np.ascontiguousarray(visual))
        if audio is not None:
            item["audio_clips"] = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        return item
