"""Audio samples -> the model's audio input: mono 16 kHz float32, zero-padded to >= 2 s, cut into 8 windows of 2 s.

The steps follow the original (spec, first section; `load_and_transform_audio_data`): resample, zero-pad a
waveform shorter than one window at the end, then cut the windows that sampling.audio_clip_starts places. The
mono mix is the channel mean (what `ffmpeg -ac 1` does for stereo; the original's wav files were mono already),
taken before resampling, which is the same result for a linear resampler at a fraction of the cost.
Resampling uses soxr at high quality ("HQ"); a waveform already at the target rate is left untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectgpt.extras import require
from affectgpt.media.sampling import audio_clip_starts, window_length


@dataclass(frozen=True)
class ModelAudio:
    """The audio half of a Clip.

    Attributes:
        audio: [n_samples] float32 mono at `sample_rate`, zero-padded to at least one window.
        clips: [n_clips, window] float32, window = clip_seconds * sample_rate (32000 by default).
        starts: first sample of each window in `audio`.
        padded: True when the waveform was shorter than one window and zeros were appended.
    """

    audio: np.ndarray
    clips: np.ndarray
    starts: tuple[int, ...]
    padded: bool


def to_mono(samples: np.ndarray) -> np.ndarray:
    """[channels, n] (or [n]) float -> [n] float32, the mean over channels."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        return samples
    if samples.shape[0] == 1:
        return samples[0]
    return samples.mean(axis=0, dtype=np.float32)


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """[n] float32 at rate_in -> [round(n * rate_out / rate_in)] float32 at rate_out (soxr, high quality)."""
    if rate_in == rate_out or samples.size == 0:
        return np.asarray(samples, dtype=np.float32)
    soxr = require("soxr", extra="media")
    return np.asarray(soxr.resample(samples, rate_in, rate_out, quality="HQ"), dtype=np.float32)


def pad_to(samples: np.ndarray, length: int) -> tuple[np.ndarray, bool]:
    """Zero-pad at the end to at least `length` samples; returns (samples, whether it padded)."""
    if samples.shape[0] >= length:
        return samples, False
    out = np.zeros(length, dtype=np.float32)
    out[: samples.shape[0]] = samples
    return out, True


def cut_clips(audio: np.ndarray, starts: list[int], length: int) -> np.ndarray:
    """[n] -> [len(starts), length]: window k is audio[starts[k] : starts[k] + length]."""
    return np.stack([audio[s : s + length] for s in starts]).astype(np.float32, copy=False)


def prepare_audio(samples: np.ndarray | None, rate: int, *, sample_rate: int = 16000, n_clips: int = 8,
                  clip_seconds: float = 2.0) -> ModelAudio:
    """Decoded samples -> ModelAudio. `samples` is [channels, n] float in [-1, 1], or None for silence.

    Args:
        samples: decoded audio, or None when there is none (the result is one window of zeros).
        rate: the samples' rate in Hz (ignored when samples is None).
        sample_rate: the model's rate (16 kHz for HuBERT).
        n_clips: number of windows.
        clip_seconds: window length in seconds.

    Returns:
        ModelAudio; `padded` is also True for the silence stand-in.
    """
    length = window_length(sample_rate, clip_seconds)
    mono = np.zeros(0, np.float32) if samples is None else resample(to_mono(samples), rate, sample_rate)
    audio, padded = pad_to(mono, length)
    starts = audio_clip_starts(audio.shape[0], sample_rate, n_clips, clip_seconds)
    return ModelAudio(audio=audio, clips=cut_clips(audio, starts, length), starts=tuple(starts), padded=padded)
