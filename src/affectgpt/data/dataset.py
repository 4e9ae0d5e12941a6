"""TrainingDataset: samples -> encoded training items (ids, labels, encoder features or media), and their batches.

Each access `dataset[i]` draws the task (data/targets.py) with a generator seeded by (seed, epoch, i), so a run
is reproducible whatever the number of DDP ranks or dataloader workers, and a resumed run draws what the
uninterrupted one would have (call `set_epoch(epoch)` at the start of every epoch, as for DistributedSampler).
The prompt is model/prompt.py's `prompt_for(cfg, question, subtitle)`, the ids `encode_training` (BOS + prompt +
target + EOS, loss on target + EOS only).

Modality inputs per item: with `features_dir`, `visual_features` [8, dv] / `audio_features` [8, da] from the
feature cache (data/features.py; checked against cfg's encoders and visual input); otherwise `frames`
[8, 224, 224, 3] uint8 (faces or frames per cfg.visual_input) / `audio_clips` [8, 32000] from the media
(data/features.load_media; slow: faces are tracked on every access, so extract features for real runs). Only
the inputs the config's modalities use are loaded.

Over-long samples (prompt + target > max_length tokens): an InputError naming the sample (default), or with
`on_overflow="skip"` the item is None and `collate_batch` drops it (`skipped_in(items)` counts them for the
caller's log). `overlong()` lists them up front, so a trainer can filter them out before training.

`make_synthetic_dataset(folder, n)` writes a tiny generated dataset (short videos, tone audio, deterministic
targets) and its manifest, for configs/tiny-cpu.yaml and the tests.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectgpt.data.features import feature_file, load_features, load_media
from affectgpt.data.manifests import check_unique
from affectgpt.data.sample import Sample
from affectgpt.data.targets import TASKS, check_mode, draw_task, question_answer
from affectgpt.errors import InputError
from affectgpt.model.affectgpt import Batch
from affectgpt.model.config import ModelConfig
from affectgpt.model.prompt import Encoded, collate, encode_training, prompt_for


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
        visual, audio = load_media(sample, visual_input=self.cfg.visual_input, media_cache=self.media_cache,
                                   need_visual=self.need_visual, need_audio=self.need_audio)
        if visual is not None:
            item["frames"] = torch.from_numpy(np.ascontiguousarray(visual))
        if audio is not None:
            item["audio_clips"] = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        return item


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


# -- a generated dataset ---------------------------------------------------------------------------------------------
SYNTHETIC = (
    # emotion, secondary label, background RGB, intense tone Hz, subtitle
    ("happy", "excited", (230, 200, 60), 660.0, "This is the best day ever, I can't stop smiling."),
    ("sad", "disappointed", (60, 80, 160), 220.0, "I really thought it would work out this time."),
    ("angry", "annoyed", (200, 40, 40), 770.0, "How many times do I have to tell you?"),
    ("worried", "nervous", (120, 120, 90), 260.0, "What if they never call back?"),
    ("surprise", "curious", (60, 190, 190), 880.0, "Wait, you did all of this for me?"),
    ("neutral", None, (128, 128, 128), 550.0, "The meeting is at three, in the usual room."),
)
CALM_TONE = 440.0  # a "middle" voice: the emotion without its secondary label


def make_synthetic_dataset(folder: str | Path, n: int, *, seed: int = 0, size: int = 64, fps: int = 10) -> Path:
    """Write `n` tiny clips and `<folder>/manifest.jsonl`; returns the manifest path.

    Clip i (`synth_0000i`) is 1-2 s of `size`x`size` video at `fps` (a background colour and a moving square per
    emotion) with an AAC tone. Each run of 12 clips holds every emotion once with each voice, in an order
    shuffled by `seed`; length and pitch jitter are drawn from (seed, i). The targets are a function of what the
    model is shown, so identical inputs never have different answers: the emotion follows from the subtitle and
    the background colour; the voice is either the emotion's intense tone (high or low pitch, +-2%) and then the
    labels add the emotion's secondary label, or a calm middle tone (440 Hz +-2%) and then they do not, so the
    secondary label can only be read from the audio. The description names the cues and the labels (a reason,
    then "Therefore, the person may feel ..."). Existing clips are rewritten.
    """
    import av

    if n < 1:
        raise InputError(f"n must be >= 1, got {n}", field="n", fix="ask for at least one clip")
    folder = Path(folder)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    kinds = [(row, calm) for row in SYNTHETIC for calm in (False, True)]
    random.Random(f"affectgpt-synthetic:{seed}").shuffle(kinds)
    lines = []
    for i in range(n):
        rng = random.Random(f"affectgpt-synthetic:{seed}:{i}")
        (emotion, secondary, colour, intense, subtitle), calm = kinds[i % len(kinds)]
        pitch = CALM_TONE if calm else intense
        seconds = round(1.0 + rng.random(), 1)
        name = f"synth_{i:05d}"
        video = folder / "clips" / f"{name}.mp4"
        _write_clip(av, video, colour, pitch * (1 + 0.02 * rng.uniform(-1, 1)), seconds, size, fps)
        labels = [emotion] + ([secondary] if secondary and _pitch_word(pitch) != "middle" else [])
        description = (f"The background is {_colour_word(colour)} and the voice holds a {_pitch_word(pitch)} tone. "
                       f"The subtitle says \"{subtitle}\" Therefore, the person may feel {' and '.join(labels)}.")
        lines.append(json.dumps({"name": name, "video": f"clips/{name}.mp4", "subtitle": subtitle,
                                 "description": description, "labels": labels}, ensure_ascii=False))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def _colour_word(colour: tuple[int, int, int]) -> str:
    return {(230, 200, 60): "bright yellow", (60, 80, 160): "dark blue", (200, 40, 40): "red",
            (120, 120, 90): "murky olive", (60, 190, 190): "light cyan"}.get(colour, "grey")


def _pitch_word(pitch: float) -> str:
    return "high" if pitch > 600 else "low" if pitch < 300 else "middle"


def _write_clip(av: Any, path: Path, colour: tuple[int, int, int], pitch: float, seconds: float, size: int,
                fps: int) -> None:
    n_frames = max(1, round(seconds * fps))
    rate = 16000
    t = np.arange(round(seconds * rate)) / rate
    audio = (0.4 * np.sin(2 * np.pi * pitch * t)).astype(np.float32)[None]
    side = max(2, size // 4)
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "18"})
        stream.height = stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        sound = container.add_stream("aac", rate=rate)
        sound.layout = "mono"
        for i in range(n_frames):
            image = np.empty((size, size, 3), np.uint8)
            image[:] = colour
            x = (3 * i) % max(1, size - side)
            image[size // 2 - side // 2: size // 2 + side // 2, x:x + side] = (250, 250, 250)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round(Fraction(i, fps) / time_base)
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        frame = av.AudioFrame.from_ndarray(audio, format="fltp", layout="mono")
        frame.sample_rate = rate
        container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
