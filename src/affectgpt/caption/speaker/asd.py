"""The "asd-weights" speaker detector: your own active-speaker weights (TalkNet / LR-ASD / Light-ASD style) in a tiny
audio-visual model of ours, run per frame. Needs torch (imported on first use) and safetensors.

Files: `weights` is a .safetensors file; its config is a JSON file (`config`, default: the same name with .json):
    {"architecture": "tiny-av-asd", "n_mels": 40, "mouth_size": [32, 32], "hidden": 64}
The model (asd_model.py): per video frame, the log-mel frames of its audio (4 at 100 a second, 25 ms windows) and
its grey mouth crop (signals.py) are each embedded linearly, fused by a GRU over time and scored by a linear head:
a speaking probability per frame. The clip's score is the mean probability over its voiced frames (Silero VAD);
>= threshold (0.5) is a match. Weights from TalkNet-style checkpoints need converting to this layout (key names and
shapes are checked: an unknown or missing key, or a wrong shape, is an InputError naming the file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.caption.speaker import SpeakerVerdict
from affectgpt.errors import InputError

CONFIG_KEYS = {"architecture": "tiny-av-asd", "n_mels": 40, "mouth_size": [32, 32], "hidden": 64}
MELS_PER_FRAME = 4


def load_config(path: Path) -> dict[str, Any]:
    """The model's JSON config, checked (unknown keys, a wrong architecture -> InputError naming the file)."""
    if not path.is_file():
        raise InputError("active-speaker config not found", path=path, fix="write the model's JSON config beside "
                         "the weights (same name, .json), e.g. " + json.dumps(CONFIG_KEYS))
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not a JSON file ({exc})", path=path, fix="write the config as JSON") from exc
    unknown = sorted(set(config) - set(CONFIG_KEYS)) if isinstance(config, dict) else ["<not an object>"]
    if unknown:
        raise InputError(f"unknown config keys {unknown}", path=path, fix=f"use only {sorted(CONFIG_KEYS)}")
    config = {**CONFIG_KEYS, **config}
    if config["architecture"] != "tiny-av-asd":
        raise InputError(f"unknown architecture {config['architecture']!r}", path=path, field="architecture",
                         fix="use tiny-av-asd (the only one defined here)")
    return config


@dataclass
class AsdWeightsDetector:
    """Speaking probability per frame from active-speaker weights (see the module docstring).

    Args:
        weights: the .safetensors file.
        config: its JSON config (None: the weights' name with .json).
        threshold: the lowest mean speaking probability of a match.
    """

    weights: str | Path
    config: str | Path | None = None
    threshold: float = 0.5
    model: Any = field(default=None, init=False, repr=False)
    settings: dict[str, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        from affectgpt.caption.speaker.asd_model import build, load_weights

        self.weights = Path(self.weights)
        self.settings = load_config(Path(self.config) if self.config else self.weights.with_suffix(".json"))
        self.model = build(self.settings)
        load_weights(self.model, self.weights)

    def __call__(self, video: str | Path, audio: str | Path | None = None) -> SpeakerVerdict:
        from affectgpt.caption.speaker.signals import read_signals
        from affectgpt.perception.speech import voice_activity

        sig = read_signals(video, audio)
        spans = voice_activity(sig.audio) if sig.audio.size else []
        details: dict[str, Any] = {"frames": len(sig.times), "speech_segments": [list(s) for s in spans],
                                   "face_share": sig.face_share, "timings": dict(sig.timings)}
        if not spans:
            return SpeakerVerdict("silent", 0.0, self.threshold, details=details)
        if not sig.face_found:
            return SpeakerVerdict("no_face", 0.0, self.threshold, details=details)
        probabilities = self.frame_scores(sig.mouths, sig.audio, sig.times, sig.fps)
        voiced = np.zeros(len(sig.times), bool)
        for start, end in spans:
            voiced |= (sig.times >= start) & (sig.times < end)
        score = float(probabilities[voiced].mean()) if voiced.any() else float(probabilities.mean())
        details["frame_scores"] = [round(float(p), 4) for p in probabilities]
        return SpeakerVerdict("match" if score >= self.threshold else "mismatch", round(score, 4), self.threshold,
                              margin=round(score - self.threshold, 4), confidence=round(abs(score - 0.5) * 2, 4),
                              details=details)

    def frame_scores(self, mouths: np.ndarray, audio: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
        """[T] speaking probabilities from the mouth crops [T, h, w] and the 16 kHz audio."""
        from affectgpt.caption.speaker.asd_model import run

        mels = log_mel(audio, self.settings["n_mels"])
        hop = 100.0 / fps  # mel frames per video frame
        audio_frames = np.zeros((len(times), MELS_PER_FRAME, self.settings["n_mels"]), np.float32)
        for t, when in enumerate(times):
            start = round(when * 100.0)
            part = mels[start:start + max(MELS_PER_FRAME, int(hop))][:MELS_PER_FRAME]
            audio_frames[t, :len(part)] = part
        return run(self.model, audio_frames, mouths, self.settings["mouth_size"])


def log_mel(audio: np.ndarray, n_mels: int, rate: int = 16000) -> np.ndarray:
    """[frames, n_mels] log-mel energies: 25 ms Hann windows every 10 ms, a triangular mel filterbank to 8 kHz."""
    window, hop, n_fft = 400, 160, 512
    if audio.size < window:
        audio = np.pad(audio, (0, window - audio.size))
    n = 1 + (audio.size - window) // hop
    frames = np.lib.stride_tricks.sliding_window_view(audio, window)[::hop][:n] * np.hanning(window)
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
    mel = np.linspace(0.0, 2595 * np.log10(1 + (rate / 2) / 700), n_mels + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    bins = np.floor((n_fft + 1) * hz / rate).astype(int)
    bank = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(1, n_mels + 1):
        left, centre, right = bins[m - 1], bins[m], max(bins[m + 1], bins[m] + 1)
        bank[m - 1, left:centre] = (np.arange(left, centre) - left) / max(1, centre - left)
        bank[m - 1, centre:right] = (right - np.arange(centre, right)) / max(1, right - centre)
    return np.log(power @ bank.T + 1e-6).astype(np.float32)
