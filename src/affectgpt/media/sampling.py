"""Pure sampling rules: which frames (indices, then times) and which 2 s audio windows the model sees.

No I/O and no third-party imports: values in, values out. decode.py applies the frame rules to a real stream and
audio.py the window rule to a real waveform.

Frames. The original (`load_video`, decord) counted the decoded frames T and took
`np.arange(0, T, T / min(n, T)).astype(int)`, repeating the last index up to n when T < n (spec, first section).
`frame_indices` is that rule in integer arithmetic: `floor(i * T / m)` for i < m = min(n, T), which equals the
numpy expression for every T when n = 8 (T / 8 is exact in floating point; test_sampling checks T = 1..5000).

From indices to times (variable frame rate). Counting frames picks frames unevenly in time when the frame rate
varies, so we pick by TIME instead, on a uniform grid that reproduces the count rule exactly for a constant rate:

1. The video stream has T frames (T = the original's frame count) whose presentation times span
   `span = last_time - first_time + duration of the last frame`, i.e. the clip's duration.
2. Lay a uniform grid of T slots over that span: slot j starts at `first_time + j * span / T`.
3. The index rule picks slots `j_k = frame_indices(T, n)[k]`; the target time of sample k is slot j_k's start
   (`target_times`).
4. Sample k is the frame whose timestamp is nearest the target time, the earlier one on a tie
   (`nearest_indices` / `NearestPicker`).

For a constant frame rate r, frame j is at `first_time + j / r` and `span = T / r`, so slot j starts exactly at
frame j's timestamp: the nearest frame to slot j_k is frame j_k (distance 0, its neighbours are 1/r away), and
we pick exactly the frames the original rule picks. The pick is still exact if the span is off by less than half
a frame (an unknown last-frame duration, say). For a variable rate the samples are evenly spaced in time.

Audio. The original cut 8 windows of 2 s with pytorchvideo's ConstantClipsPerVideoSampler over the zero-padded
waveform: start_k = k * max(duration - 2, 0) / (8 - 1) seconds, in exact fractions of the float duration
`n_samples / sample_rate`, and the window is `waveform[int(start * sr) : int((start + 2) * sr)]`
(`audio_clip_starts`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

Number = int | float | Fraction


def frame_indices(n_total: int, n_frames: int = 8) -> list[int]:
    """The original's uniform frame indices: floor(i * T / min(n, T)), the last one repeated up to n.

    Args:
        n_total: T, the number of frames in the video (>= 1).
        n_frames: n, how many indices to return (>= 1).

    Returns:
        n indices in [0, T), non-decreasing. T=100, n=8 -> [0, 12, 25, 37, 50, 62, 75, 87];
        T=3 -> [0, 1, 2, 2, 2, 2, 2, 2].
    """
    if n_total < 1 or n_frames < 1:
        raise ValueError(f"need n_total >= 1 and n_frames >= 1, got {n_total} and {n_frames}")
    m = min(n_frames, n_total)  # the original reads at most T frames, then pads with the last
    indices = [(i * n_total) // m for i in range(m)]
    return indices + [indices[-1]] * (n_frames - m)


def target_times(first: Number, span: Number, n_total: int, n_frames: int = 8) -> list[Fraction]:
    """Target time of each sample: the start of slot `frame_indices(T, n)[k]` of a uniform grid of T slots.

    Args:
        first: timestamp of the first frame (any unit: seconds, or stream ticks for exact arithmetic).
        span: the stream's duration in the same unit (last timestamp - first + last frame's duration).
        n_total: T, the number of frames.
        n_frames: n, the number of samples.

    Returns:
        n exact fractions, non-decreasing, in the unit of `first`.
    """
    slot = Fraction(span) / n_total
    return [Fraction(first) + j * slot for j in frame_indices(n_total, n_frames)]


class NearestPicker:
    """Streaming nearest-time choice: offer frame times in increasing order; each target keeps its nearest.

    Ties go to the earlier frame (a later frame must be strictly nearer to replace it). The picker only ever
    holds the current best candidate per target, so a decoder can keep just those frames.
    """

    def __init__(self, targets: Sequence[Number]) -> None:
        self.targets = [Fraction(t) for t in targets]
        self.best: list[int | None] = [None] * len(self.targets)  # offer number of the best frame so far
        # Exact arithmetic, fast: scale every target to a whole number (integer stream ticks stay integers).
        self._scale = math.lcm(*(t.denominator for t in self.targets)) if self.targets else 1
        self._scaled = [t.numerator * (self._scale // t.denominator) for t in self.targets]
        self._distance: list[int | Fraction | None] = [None] * len(self.targets)
        self._count = 0
        self._last_target = max(self.targets) if self.targets else Fraction(0)

    def offer(self, time: Number) -> bool:
        """Consider the next frame; True if it is now the best for at least one target."""
        scaled = Fraction(time) * self._scale
        at: int | Fraction = scaled.numerator if scaled.denominator == 1 else scaled
        taken = False
        for k, target in enumerate(self._scaled):
            distance = abs(at - target)
            best = self._distance[k]
            if best is None or distance < best:
                self.best[k], self._distance[k] = self._count, distance
                taken = True
        self._count += 1
        return taken

    def done(self, time: Number) -> bool:
        """True once a frame at `time` (already offered) reached the last target: later frames are farther."""
        return Fraction(time) >= self._last_target

    def chosen(self) -> list[int]:
        """Offer number (0-based) of the frame chosen for each target; needs at least one offer."""
        if self._count == 0:
            raise ValueError("no frame was offered")
        return [b for b in self.best if b is not None]


def nearest_indices(times: Sequence[Number], targets: Sequence[Number]) -> list[int]:
    """For each target, the index of the nearest of the increasing `times` (ties: the earlier one)."""
    picker = NearestPicker(targets)
    for time in times:
        picker.offer(time)
    return picker.chosen()


def audio_clip_starts(n_samples: int, sample_rate: int = 16000, n_clips: int = 8,
                      clip_seconds: float = 2.0) -> list[int]:
    """First sample of each audio window, as the original's ConstantClipsPerVideoSampler computed it.

    Args:
        n_samples: length of the (already zero-padded) waveform; at least one window long.
        sample_rate: samples per second.
        n_clips: number of windows.
        clip_seconds: window length in seconds; `clip_seconds * sample_rate` must be a whole number.

    Returns:
        n_clips start indices; window k is `audio[start_k : start_k + clip_seconds * sample_rate]`.
        10 s at 16 kHz -> [0, 18285, 36571, 54857, 73142, 91428, 109714, 128000].
    """
    clip_length = window_length(sample_rate, clip_seconds)
    if n_samples < clip_length:
        raise ValueError(f"{n_samples} samples is shorter than one window ({clip_length}): pad first")
    if n_clips < 1:
        raise ValueError(f"need n_clips >= 1, got {n_clips}")
    # The original passed the duration as a float (tensor length / rate) into Fraction arithmetic; keeping
    # the float makes the rare exact-integer starts floor exactly as it did.
    duration = n_samples / sample_rate
    max_start = Fraction(max(duration - Fraction(clip_seconds), 0))
    step = max_start / max(n_clips - 1, 1)
    return [int(step * k * sample_rate) for k in range(n_clips)]


def window_length(sample_rate: int, clip_seconds: float) -> int:
    """Samples per audio window; refuses a window that is not a whole number of samples."""
    length = Fraction(clip_seconds) * sample_rate
    if length.denominator != 1 or length < 1:
        raise ValueError(f"clip_seconds * sample_rate must be a positive whole number, got {float(length)}")
    return int(length)
