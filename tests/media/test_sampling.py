"""The pure sampling rules: the original's frame indices, their mapping onto time, the audio window starts."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from affectgpt.media.sampling import (
    NearestPicker,
    audio_clip_starts,
    frame_indices,
    nearest_indices,
    target_times,
    window_length,
)


def original_indices(n_total: int, n_frames: int = 8) -> list[int]:
    """The original's load_video (decord): np.arange over the frame count, padded with the last index."""
    indices = np.arange(0, n_total, n_total / min(n_frames, n_total)).astype(int).tolist()
    while len(indices) < n_frames:
        indices.append(indices[-1])
    return indices


@pytest.mark.parametrize(("n_total", "expected"), [
    (100, [0, 12, 25, 37, 50, 62, 75, 87]),
    (3, [0, 1, 2, 2, 2, 2, 2, 2]),  # fewer frames than samples: the last index repeats
    (8, [0, 1, 2, 3, 4, 5, 6, 7]),
    (1, [0, 0, 0, 0, 0, 0, 0, 0]),
    (9, [0, 1, 2, 3, 4, 5, 6, 7]),
    (37, [0, 4, 9, 13, 18, 23, 27, 32]),
    (88, [0, 11, 22, 33, 44, 55, 66, 77]),  # the reference sample clip
])
def test_frame_indices_table(n_total: int, expected: list[int]) -> None:
    assert frame_indices(n_total, 8) == expected


def test_frame_indices_equal_the_original_numpy_rule_for_eight_frames() -> None:
    for n_total in range(1, 5001):
        assert frame_indices(n_total, 8) == original_indices(n_total, 8), n_total


def test_frame_indices_other_counts() -> None:
    assert frame_indices(10, 4) == [0, 2, 5, 7]
    assert frame_indices(2, 3) == [0, 1, 1]
    assert frame_indices(5, 1) == [0]


@pytest.mark.parametrize(("n_total", "n_frames"), [(0, 8), (5, 0), (-1, 8)])
def test_frame_indices_refuse_empty(n_total: int, n_frames: int) -> None:
    with pytest.raises(ValueError):
        frame_indices(n_total, n_frames)


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001), Fraction(10)])
@pytest.mark.parametrize("first", [Fraction(0), Fraction(7, 3)])
def test_constant_frame_rate_time_picks_equal_the_count_rule(rate: Fraction, first: Fraction) -> None:
    # Frame j of a constant-rate stream is at first + j / rate and the stream spans T / rate.
    for n_total in [*range(1, 40), 88, 100, 257, 1000]:
        times = [first + j / rate for j in range(n_total)]
        targets = target_times(first, n_total / rate, n_total, 8)
        assert nearest_indices(times, targets) == frame_indices(n_total, 8), n_total


def test_constant_rate_picks_survive_a_span_error_under_half_a_frame() -> None:
    times = list(range(0, 3700, 100))  # 37 frames, 100 ticks apart
    for span in (3700 - 49, 3700, 3700 + 49):  # e.g. an unknown last-frame duration
        assert nearest_indices(times, target_times(0, span, 37)) == frame_indices(37)


def test_variable_frame_rate_picks_by_time() -> None:
    # 4 frames 1 s apart, then 12 frames 0.1 s apart: the count rule would take 5 of its 8 samples from the
    # last 1.2 s; by time, the targets are k * span / 8 with span = 4 + 1.1 + 0.1 = 5.2 s.
    times = [Fraction(i) for i in range(4)] + [4 + Fraction(i, 10) for i in range(12)]
    targets = target_times(0, Fraction(52, 10), 16)
    assert targets == [Fraction(52, 80) * k for k in range(8)]
    # nearest: 0 -> 0 s; 0.65 -> 1 s; 1.3 -> 1 s; 1.95 -> 2 s; 2.6 -> 3 s; 3.25 -> 3 s; 3.9 -> 4.0 s;
    # 4.55 -> 4.5 s (a tie with 4.6 s: the earlier frame)
    assert nearest_indices(times, targets) == [0, 1, 1, 2, 3, 3, 4, 9]
    assert frame_indices(16) == [0, 2, 4, 6, 8, 10, 12, 14]


def test_ties_go_to_the_earlier_frame() -> None:
    assert nearest_indices([0, 10], [5]) == [0]
    assert nearest_indices([0, 10, 20], [15, 5]) == [1, 0]


def test_picker_keeps_only_best_candidates_and_knows_when_done() -> None:
    picker = NearestPicker([Fraction(0), Fraction(25)])
    assert picker.offer(0)  # best for both so far
    assert not picker.done(0)
    assert picker.offer(10)  # nearer to 25
    assert not picker.offer(40)  # farther than 10 from 25 (15 = 15: the earlier stays)
    assert picker.done(40)
    assert picker.chosen() == [0, 1]
    with pytest.raises(ValueError):
        NearestPicker([1]).chosen()


@pytest.mark.parametrize(("seconds", "expected"), [
    (1, [0] * 8),  # padded to 2 s first: one window, repeated
    (2, [0] * 8),
    (2.5, [0, 1142, 2285, 3428, 4571, 5714, 6857, 8000]),  # k * 0.5 s / 7 * 16000, floored
    (10, [0, 18285, 36571, 54857, 73142, 91428, 109714, 128000]),  # k * 8 s / 7
    (20, [0, 41142, 82285, 123428, 164571, 205714, 246857, 288000]),  # k * 18 s / 7
])
def test_audio_clip_starts_table(seconds: float, expected: list[int]) -> None:
    n_samples = max(32000, round(seconds * 16000))
    assert audio_clip_starts(n_samples, 16000, 8, 2.0) == expected


def test_audio_clip_starts_keep_the_float_duration_quirk() -> None:
    # 55357 samples (the reference wav): exactly, the last start is 55357 - 32000 = 23357; the original took the
    # duration as the float 55357 / 16000, which is just below 3.4598125, so it floored to 23356.
    assert audio_clip_starts(55357) == [0, 3336, 6673, 10010, 13346, 16683, 20020, 23356]


def test_audio_windows_stay_inside_the_waveform() -> None:
    for n_samples in range(32000, 200000, 997):
        starts = audio_clip_starts(n_samples)
        assert starts[0] == 0 and starts == sorted(starts)
        assert starts[-1] + 32000 <= n_samples and starts[-1] >= n_samples - 32001


def test_audio_clip_starts_other_counts() -> None:
    assert audio_clip_starts(48000, 16000, 1, 2.0) == [0]
    assert audio_clip_starts(48000, 16000, 3, 1.0) == [0, 16000, 32000]


def test_audio_rules_refuse_bad_values() -> None:
    with pytest.raises(ValueError):
        audio_clip_starts(31999)  # shorter than one window: pad first
    with pytest.raises(ValueError):
        window_length(16000, 0.00001)  # 0.16 samples
    assert window_length(16000, 2.0) == 32000
