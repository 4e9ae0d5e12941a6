"""Audio steps on arrays: mono mix, resampling, padding, windows (decoding is tested in test_clip.py)."""

from __future__ import annotations

import numpy as np
import pytest

from affectgpt.media.audio import cut_clips, pad_to, prepare_audio, resample, to_mono


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_to_mono_is_the_channel_mean() -> None:
    stereo = np.array([[1.0, 0.5, -1.0], [0.0, 0.5, 1.0]], np.float32)
    np.testing.assert_array_equal(to_mono(stereo), [0.5, 0.5, 0.0])
    assert to_mono(stereo).dtype == np.float32
    np.testing.assert_array_equal(to_mono(stereo[:1]), stereo[0])


def test_resample_keeps_frequency_and_duration() -> None:
    t = np.arange(48000 * 2) / 48000
    out = resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 48000, 16000)
    assert out.dtype == np.float32 and out.shape == (32000,)
    assert abs(dominant_frequency(out, 16000) - 1000) <= 1.0
    assert 0.95 < np.abs(out[1000:-1000]).max() < 1.05


def test_resample_leaves_the_target_rate_untouched() -> None:
    samples = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    np.testing.assert_array_equal(resample(samples, 16000, 16000), samples)


def test_pad_and_cut() -> None:
    padded, did = pad_to(np.ones(10, np.float32), 16)
    assert did and padded.tolist() == [1.0] * 10 + [0.0] * 6
    same, did = pad_to(np.ones(20, np.float32), 16)
    assert not did and same.shape == (20,)
    clips = cut_clips(np.arange(10, dtype=np.float32), [0, 3, 6], 4)
    assert clips.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]


def test_prepare_audio_without_samples_is_one_silent_window() -> None:
    prepared = prepare_audio(None, 0)
    assert prepared.audio.shape == (32000,) and not prepared.audio.any()
    assert prepared.clips.shape == (8, 32000) and prepared.clips.dtype == np.float32
    assert prepared.padded and prepared.starts == (0,) * 8


@pytest.mark.parametrize("seconds", [0.5, 2.0, 10.0])
def test_prepare_audio_windows_are_slices_of_the_audio(seconds: float) -> None:
    samples = np.random.default_rng(1).uniform(-1, 1, (2, round(seconds * 16000))).astype(np.float32)
    prepared = prepare_audio(samples, 16000)
    assert prepared.audio.shape[0] == max(32000, samples.shape[1])
    assert prepared.padded == (seconds < 2)
    for start, clip in zip(prepared.starts, prepared.clips, strict=True):
        np.testing.assert_array_equal(clip, prepared.audio[start : start + 32000])
