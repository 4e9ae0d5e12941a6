"""Speaker detection: does the audible speech come from the visible person? The interface, the verdict, the table.

A SpeakerDetector is any callable `(video, audio=None) -> SpeakerVerdict`. The decision is one of:

| decision | meaning | the low-level filter |
|---|---|---|
| `match` | speech is heard and the visible mouth moves with it (score >= threshold) | kept |
| `mismatch` | speech is heard but no visible mouth moves with it (score < threshold) | dropped |
| `no_face` | speech is heard and no face is found in the clip | dropped |
| `silent` | no speech is heard (Silero VAD), so there is nothing to match | kept, reported |

DETECTORS names the implementations: "sync" (the default, torch-free: mouth motion against the speech envelope,
sync.py) and "asd-weights" (your own active-speaker weights in a tiny audio-visual model, asd.py; needs torch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from affectgpt.registry import Registry

DECISIONS = ("match", "mismatch", "no_face", "silent")
DROPPED = ("mismatch", "no_face")
"""The decisions the low-level filter drops (a silent clip is reported, not dropped)."""

DETECTORS = Registry("speaker detector", {
    "sync": "affectgpt.caption.speaker.sync:SyncDetector",  # mouth motion x speech envelope; no torch, no weights
    "asd-weights": "affectgpt.caption.speaker.asd:AsdWeightsDetector",  # TalkNet/LR-ASD-style weights; torch
})
DEFAULT_DETECTOR = "sync"


@dataclass(frozen=True)
class SpeakerVerdict:
    """One clip's decision.

    Attributes:
        decision: one of DECISIONS.
        score: the detector's synchrony (sync: a correlation in [-1, 1]; asd-weights: the mean speaking
            probability over the voiced frames); 0.0 when there was nothing to compare (silent, no_face).
        threshold: the score a match needs.
        margin: score - threshold (negative for a mismatch; 0.0 for silent and no_face).
        confidence: how clearly the score stands out (sync: the peak's height above the median correlation
            over lags up to +-1 s); 0.0 when there was nothing to compare.
        details: what the decision was made from (lag, voiced seconds, face share, timings...), JSON-able.
    """

    decision: str
    score: float
    threshold: float
    margin: float = 0.0
    confidence: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def reason(self) -> str:
        """The drop reason of the low-level filter: "speaker_mismatch: <decision> (score ...)"."""
        return f"speaker_mismatch: {self.decision} (score {self.score:.3f}, threshold {self.threshold:g})"


class SpeakerDetector(Protocol):
    """A clip's video file (+ a separate audio file) -> its SpeakerVerdict."""

    threshold: float

    def __call__(self, video: str | Path, audio: str | Path | None = None) -> SpeakerVerdict: ...


def build_detector(name: str = DEFAULT_DETECTOR, **options: Any) -> SpeakerDetector:
    """The detector called `name` in DETECTORS, built with `options` (threshold=..., weights=...)."""
    return DETECTORS.get(name)(**options)
