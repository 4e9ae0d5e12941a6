"""The perception layer's shared records: the class spaces, a clue, one perceiver's reading, the scene it reads.

Torch-free (numpy only). Every perceiver (speech.py, voice.py, face.py, text.py) is a callable that takes the
`Scene` of one clip and returns a `Reading`; the pipeline (pipeline.py) runs them in `PERCEIVERS` order, so a
later perceiver can read what an earlier one put on the scene (the voice reads the speech segments, the text
reads the transcript). fuse.py turns the readings into the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

EMOTIONS: tuple[str, ...] = ("neutral", "angry", "happy", "sad", "worried", "surprise")
"""The emotion classes every perceiver reports probabilities over (MER2023's six; IEMOCAP's four are a subset)."""

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
"""The sentiment classes (the answers the scorer's sentiment sets read)."""

BACKEND = "perception"
"""What every answer of this layer says it comes from: the perception pipeline, not AffectGPT."""


@dataclass(frozen=True)
class Clue:
    """One English sentence a perceiver can vouch for, with how sure it is (0..1)."""

    modality: str
    text: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"modality": self.modality, "text": self.text, "confidence": round(float(self.confidence), 3)}


@dataclass
class Reading:
    """What one perceiver read from one clip.

    Attributes:
        modality: "speech", "voice", "face" or "text".
        clues: the sentences the description is built from (may be empty).
        emotions: probability per EMOTIONS class (sums to 1), or {} when this modality says nothing of emotion.
        sentiment: probability per SENTIMENTS class, or {}.
        weight: how much the fusion trusts `emotions` / `sentiment` (0 = ignore them); the perceiver sets it from
            its own evidence (speech length, faces found, text length...).
        figures: JSON-able measurements (pitch in Hz, transcript, per-frame probabilities...).
        flags: short machine-readable notes ("no_face", "transcript_dropped:repetition", ...).
        seconds: time this perceiver took, filled in by the pipeline.
    """

    modality: str
    clues: list[Clue] = field(default_factory=list)
    emotions: dict[str, float] = field(default_factory=dict)
    sentiment: dict[str, float] = field(default_factory=dict)
    weight: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Scene:
    """One clip as the perceivers see it; perceivers add to `transcript`, `speech_segments` and `readings`.

    Attributes:
        name: the clip's name (file stem).
        audio: float32 mono waveform at `sample_rate`, or None when the clip has no audio.
        sample_rate: 16000.
        faces: [n, H, W, 3] uint8 RGB crops of the main face track, or None when no face was found.
        frame_times: the time of each face crop / frame, seconds from the start.
        face_detected: per crop, whether the face was found in that frame (others are interpolated or held);
            () when unknown (then every crop counts as a face).
        duration: the clip's duration in seconds.
        subtitle: the given subtitle ("" when none); when given it wins over speech recognition.
        transcript: the text the text perceiver reads: the subtitle, or a transcript the ASR vouched for.
        transcript_source: "subtitle", "asr" or "" (none).
        speech_segments: (start, end) seconds of voice activity, set by the speech perceiver.
        readings: modality -> Reading, in pipeline order.
        flags: clip-level flags (from media: "no_audio", "no_face", ...).
    """

    name: str
    audio: np.ndarray | None = None
    sample_rate: int = 16000
    faces: np.ndarray | None = None
    frame_times: tuple[float, ...] = ()
    face_detected: tuple[bool, ...] = ()
    duration: float = 0.0
    subtitle: str = ""
    transcript: str = ""
    transcript_source: str = ""
    speech_segments: list[tuple[float, float]] = field(default_factory=list)
    readings: dict[str, Reading] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


class Perceiver(Protocol):
    """Reads one modality of a scene. Built once (models loaded), then called per clip."""

    modality: str

    def __call__(self, scene: Scene) -> Reading: ...


PerceiverFactory = Callable[..., Perceiver]


@dataclass
class Perception:
    """The perception pipeline's answer for one clip (or one transcript).

    Attributes:
        name: the clip's (or row's) name.
        description: English, in the style of MER-Caption ("In the text, ... Taken together, ...").
        labels: the open-vocabulary emotion words (at most 3; what the basic and OV sets are scored on).
        sentiment: "positive", "negative" or "neutral".
        emotions: the fused probability per EMOTIONS class.
        clues: modality -> its clues.
        flags: every flag of the clip and of its readings.
        timings: seconds per stage ("media", "speech", "voice", "face", "text", "fusion", "total").
        transcript: the text that was read ("" when none) and where it came from.
        backend: always BACKEND.
    """

    name: str
    description: str
    labels: list[str]
    sentiment: str
    emotions: dict[str, float] = field(default_factory=dict)
    clues: dict[str, list[Clue]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    transcript: str = ""
    transcript_source: str = ""
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    backend: str = BACKEND

    def to_dict(self) -> dict[str, Any]:
        """One JSON-able object (what `describe --format json` prints)."""
        return {
            "backend": self.backend,
            "name": self.name,
            "description": self.description,
            "labels": list(self.labels),
            "sentiment": self.sentiment,
            "emotions": {k: round(float(v), 4) for k, v in self.emotions.items()},
            "transcript": {"text": self.transcript, "source": self.transcript_source},
            "clues": {m: [c.to_dict() for c in cs] for m, cs in self.clues.items()},
            "figures": self.figures,
            "flags": list(self.flags),
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }


def normalised(scores: dict[str, float], classes: tuple[str, ...]) -> dict[str, float]:
    """`scores` over `classes` (missing classes 0), scaled to sum to 1; {} when they sum to nothing."""
    values = np.array([max(0.0, float(scores.get(c, 0.0))) for c in classes], dtype=np.float64)
    total = values.sum()
    if not np.isfinite(total) or total <= 0:
        return {}
    return {c: float(v / total) for c, v in zip(classes, values, strict=True)}
