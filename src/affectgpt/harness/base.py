"""The multimodal backend interface of `bench run`: one clip's inputs and an instruction -> the model's text, recorded.

A backend is built once (`BACKENDS` in harness/backends/__init__.py builds it by name from options) and answers
a batch of `Job`s; it may answer them concurrently and reports each `Output` through `on_result` as it comes, so
the caller can log it for resume. A backend says which inputs it reads (`needs`: "frames", "faces", "audio",
"subtitle", "video"), so the caller decodes only those. Torch-free: backends that need torch import it inside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

INPUTS = ("frames", "faces", "audio", "subtitle", "video")
"""What a backend may read of a clip: sampled frames, face crops, the 16 kHz waveform, the subtitle, the file."""


@dataclass(frozen=True, eq=False)
class ClipInputs:
    """One clip as a backend sees it (only what the backend's `needs` asked for is filled in).

    Attributes:
        name: the clip's name (the label files' name).
        video: the clip file.
        frames: [n, H, W, 3] uint8 RGB frames sampled uniformly in time, or None.
        faces: [n, H, W, 3] uint8 RGB crops of the main face, or None.
        audio: float32 mono waveform at 16 kHz, or None (also when the clip has no audio).
        subtitle: what is said ("" when unknown).
        audio_file: a separate audio file for the clip (ROOT/<dataset>/audio/<name>.wav), used instead of the
            video's own audio stream; None when there is none.
    """

    name: str
    video: Path
    frames: np.ndarray | None = None
    faces: np.ndarray | None = None
    audio: np.ndarray | None = None
    subtitle: str = ""
    audio_file: Path | None = None


@dataclass(frozen=True)
class Prompt:
    """An instruction and its id (a versioned template name, or `file:<sha256 prefix>` for a user's file)."""

    id: str
    text: str


@dataclass(frozen=True, eq=False)
class Job:
    """One request: a clip, the instruction, and the task it serves ("description" or "labels")."""

    clip: ClipInputs
    prompt: Prompt
    task: str = "description"


@dataclass
class Output:
    """A backend's answer to one job: its text, or the error saying why there is none.

    Attributes:
        name: the clip's name.
        text: the answer (None on error).
        error: why there is no answer (None on success).
        backend, model: who answered.
        sampling: the decoding settings used (JSON-able).
        seconds: time spent on this job by the backend.
        cached: the answer came from the cache (nothing was sent).
    """

    name: str
    text: str | None
    error: str | None = None
    backend: str = ""
    model: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


OnResult = Callable[[int, Output], None]


class MultimodalBackend(Protocol):
    """Answers jobs. `name` is its BACKENDS name, `model` what it runs, `needs` the inputs it reads."""

    name: str
    model: str
    needs: frozenset[str]

    def answer(self, jobs: Sequence[Job], on_result: OnResult | None = None) -> list[Output]: ...

    def provenance(self) -> dict[str, Any]:
        """What to record about this backend (model, sampling, options, versions); JSON-able, no secrets."""
        ...
