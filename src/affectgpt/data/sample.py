"""Sample: one training clip with its media sources, subtitle and targets (what every reader returns)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Sample:
    """One clip to train on.

    Attributes:
        name: the clip name (unique within a dataset).
        video: the video file, when the clip is read from media.
        audio: a separate audio file, when there is one.
        faces: a face-track file in the original `openface_face/<name>.npy` layout, when there is one.
        subtitle: what is said (in the chosen language).
        description: the target description with reasoning (MER-Caption+ `reason`), when known.
        labels: the open-vocabulary emotion labels (OV-MERD `openset`), when known; () means "neutral".
    """

    name: str
    video: Path | None = None
    audio: Path | None = None
    faces: Path | None = None
    subtitle: str = ""
    description: str | None = None
    labels: tuple[str, ...] | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        """The question types this sample can answer: "description" and/or "labels"."""
        return tuple(t for t, v in (("description", self.description), ("labels", self.labels)) if v is not None)
