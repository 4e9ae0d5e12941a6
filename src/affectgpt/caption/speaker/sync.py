"""The default speaker detector ("sync"): does the visible mouth move with the audible speech? Torch-free.

For one clip (signals.py decodes it densely and measures the mouth):
1. **Speech**: Silero VAD (perception.speech.voice_activity, the ONNX model faster-whisper ships) on the 16 kHz
   audio. No speech (or no audio stream) -> `silent`, score 0: reported, never dropped.
2. **Face**: no face in any frame -> `no_face`, score 0 (the filter drops it: speech with nobody to say it).
3. **Still mouth**: a mean mouth motion below `min_motion` pixels a frame (a frozen picture, a photo) gives
   score 0 -> `mismatch`: correlation would only measure compression noise there.
4. **Synchrony**: the mouth motion and the log-RMS speech envelope (one value per frame), each smoothed over 3
   frames, are correlated (Pearson) at every lag up to +-`max_lag` seconds (0.3 s: audio-video offsets of real
   recordings and the lips' lead over the sound stay within it); the score is the highest correlation. It is
   taken over the whole clip, its pauses included: a mouth that is still while nobody speaks is half the
   evidence. Restricting it to the voiced frames scored the 1-s-delayed variant of the test clip higher
   (0.40-0.68 by the features tried) than the original.
5. **Decision**: score >= threshold -> `match`, else `mismatch`; margin = score - threshold; confidence = the
   peak's height above the median correlation over lags up to +-1 s (a true offset stands out of its
   neighbours; a chance peak does not). **Offset**: when the correlation at some lag between max_lag and 1 s
   beats the score by more than OFFSET_TOLERANCE (0.05), the sound is the person's but shifted beyond max_lag:
   `mismatch` (details `note`, `best_lag_within_1s`), whatever the score.

Measured on the reference clip (a 3.5 s close-up of one speaker, 25 fps; 0.3-0.5 s a clip on 2 cores) and the
variants tests/caption/test_speaker.py builds from it: the original scores 0.575 (lag -0.16 s: match, margin
+0.225); over an espeak-ng voice 0.167; over its own audio delayed by 1 s -0.126; a frozen first frame is a still
mouth (0.0); delayed by 0.1 / 0.2 s 0.625 / 0.594 (match: within the lag window); delayed by 0.5 s 0.479 at the
window's edge but 0.690 at +0.40 s (offset -> mismatch); advanced by 0.5 / 1 s 0.238 / 0.106; the video played
backwards 0.169; at half resolution 0.528. DEFAULT_THRESHOLD 0.35 sits between the matches (>= 0.53) and the
unrelated pairs (<= 0.24). It rests on one speaker's clip: tune it on your own with
`affectgpt caption speaker CLIP...` (chance peaks grow on clips shorter than about 3 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.caption.speaker import SpeakerVerdict
from affectgpt.errors import InputError

DEFAULT_THRESHOLD = 0.35
MAX_LAG = 0.3
MIN_MOTION = 0.05  # px a frame: a frozen picture measures about 0.02, a speaking close-up 0.3-0.5
MIN_FRAMES = 8
OFFSET_TOLERANCE = 0.05  # a correlation this much higher at a lag beyond max_lag (up to 1 s) is an offset


def correlations(visual: np.ndarray, audio: np.ndarray, max_shift: int) -> dict[int, float]:
    """Pearson correlation of visual[t] with audio[t + lag] for lag in [-max_shift, max_shift] (0.0 where either
    side is constant or fewer than MIN_FRAMES frames overlap)."""
    out: dict[int, float] = {}
    n = min(len(visual), len(audio))
    for lag in range(-max_shift, max_shift + 1):
        a = visual[max(0, -lag):n - max(0, lag)]
        b = audio[max(0, lag):n + min(0, lag)]
        if len(a) < MIN_FRAMES or a.std() < 1e-9 or b.std() < 1e-9:
            out[lag] = 0.0
        else:
            out[lag] = float(np.corrcoef(a, b)[0, 1])
    return out


def smooth(values: np.ndarray, width: int = 3) -> np.ndarray:
    """Moving average over `width` frames, edges repeated (the length is kept)."""
    if len(values) < width:
        return values.astype(np.float64)
    padded = np.pad(values.astype(np.float64), width // 2, mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")


@dataclass
class SyncDetector:
    """Mouth motion x speech envelope (see the module docstring).

    Args:
        threshold: the lowest score of a match.
        max_lag: the largest audio-video offset searched, in seconds.
        min_motion: below this mean mouth motion (px a frame) the mouth counts as still (score 0).
        fps: the frame rate the video is read at (at most the stream's own).
        face_detector: a media.faces detector or its name (None: the default Haar cascades).
    """

    threshold: float = DEFAULT_THRESHOLD
    max_lag: float = MAX_LAG
    min_motion: float = MIN_MOTION
    fps: float = 25.0
    face_detector: Any = None

    def __post_init__(self) -> None:
        for name, low, high in (("threshold", -1.0, 1.0), ("max_lag", 0.0, 2.0), ("min_motion", 0.0, 100.0),
                                ("fps", 5.0, 120.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise InputError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}", field=name)

    def __call__(self, video: str | Path, audio: str | Path | None = None) -> SpeakerVerdict:
        import time

        from affectgpt.caption.speaker.signals import envelope, read_signals
        from affectgpt.perception.speech import voice_activity

        started = time.perf_counter()
        sig = read_signals(video, audio, fps=self.fps, detector=self.face_detector)
        vad_start = time.perf_counter()
        spans = voice_activity(sig.audio) if sig.audio.size else []
        timings = {**sig.timings, "vad": round(time.perf_counter() - vad_start, 4)}
        voiced = round(sum(e - s for s, e in spans), 3)
        details: dict[str, Any] = {"frames": len(sig.times), "fps": round(sig.fps, 3),
                                   "duration": round(float(sig.times[-1]) + 1.0 / sig.fps, 3),
                                   "speech_segments": [list(s) for s in spans], "voiced_seconds": voiced,
                                   "face_share": sig.face_share,
                                   "mouth_motion": round(float(sig.motion.mean()), 4), "timings": timings}
        if not spans:
            return self._verdict("silent", details, started, note="no speech heard" if sig.audio.size
                                 else "no audio stream")
        if not sig.face_found:
            return self._verdict("no_face", details, started, note="speech heard, no face found")
        if details["mouth_motion"] < self.min_motion:
            return self._verdict("mismatch", details, started, score=0.0,
                                 note=f"the mouth is still (motion < {self.min_motion:g} px a frame)")
        env = envelope(sig.audio, sig.times, sig.fps)
        visual, sound = smooth(sig.motion), smooth(env)
        near = correlations(visual, sound, int(self.max_lag * sig.fps + 1e-9))
        wide = correlations(visual, sound, round(1.0 * sig.fps))
        lag = max(near, key=lambda k: (near[k], -abs(k)))
        score = near[lag]
        far = max(wide, key=lambda k: (wide[k], -abs(k)))
        details["lag_seconds"] = round(lag / sig.fps, 3)  # > 0: the sound comes after the mouth
        details["best_lag_within_1s"] = round(far / sig.fps, 3)
        confidence = score - float(np.median(list(wide.values())))
        if score >= self.threshold and wide[far] - score > OFFSET_TOLERANCE:
            return self._verdict("mismatch", details, started, score=score, confidence=confidence,
                                 note=f"offset: the mouth and the sound agree best {far / sig.fps:+.2f} s apart "
                                      f"(correlation {wide[far]:.3f}), beyond +-{self.max_lag:g} s")
        return self._verdict("match" if score >= self.threshold else "mismatch", details, started, score=score,
                             confidence=confidence)

    def _verdict(self, decision: str, details: dict[str, Any], started: float, *, score: float = 0.0,
                 confidence: float = 0.0, note: str | None = None) -> SpeakerVerdict:
        import time

        if note:
            details["note"] = note
        details["timings"]["total"] = round(time.perf_counter() - started, 4)
        compared = decision in ("match", "mismatch")
        return SpeakerVerdict(decision=decision, score=round(float(score), 4), threshold=float(self.threshold),
                              margin=round(float(score) - self.threshold, 4) if compared else 0.0,
                              confidence=round(float(confidence), 4), details=details)
