"""Prosody measurements of a waveform with numpy: pitch track (YIN), loudness per frame, active spans, syllable peaks.

All frame-based at a 10 ms hop. The pitch tracker is YIN (de Cheveigné & Kawahara 2002): the cumulative-mean-
normalised difference function, computed for all frames at once through the FFT, its first dip under a threshold
between the lags of 500 and 50 Hz, refined by a parabola. Frames whose best dip is not deep enough are unvoiced.
"""

from __future__ import annotations

import numpy as np

HOP_S = 0.010  # frame hop: 100 frames per second
FRAME_S = 0.025  # loudness frame
PITCH_MIN_HZ = 50.0
PITCH_MAX_HZ = 500.0
YIN_THRESHOLD = 0.15  # first dip under it is the period (the paper's 0.10-0.15)
YIN_VOICED = 0.35  # a frame whose deepest dip stays above it has no clear period: unvoiced
NOISE_MARGIN_DB = 6.0  # unvoiced frames (consonants) count as sound this far above the noise floor
SILENCE_DB = -50.0  # frames quieter than this (dBFS) are never active
ACTIVE_RANGE_DB = 35.0  # ... nor those this far below the clip's loud frames (its 95th percentile)


def frames(audio: np.ndarray, rate: int, length: int) -> np.ndarray:
    """[n_frames, length] frames starting every HOP_S (the last ones zero-padded)."""
    hop = round(HOP_S * rate)
    n = max(1, int(np.ceil(audio.shape[0] / hop)))
    padded = np.zeros((n - 1) * hop + length, dtype=np.float32)
    padded[: audio.shape[0]] = audio
    return np.lib.stride_tricks.sliding_window_view(padded, length)[::hop][:n]


def loudness_db(audio: np.ndarray, rate: int) -> np.ndarray:
    """RMS level of each FRAME_S frame in dBFS (a full-scale sine is -3 dB); silence is -120."""
    window = frames(audio, rate, round(FRAME_S * rate))
    rms = np.sqrt(np.mean(np.square(window, dtype=np.float64), axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def active_mask(db: np.ndarray, voiced: np.ndarray | None = None) -> np.ndarray:
    """Frames of sound: above SILENCE_DB and within ACTIVE_RANGE_DB of the clip's loud frames, and, when the
    frames' voicing is given, either within 0.1 s of a voiced frame or NOISE_MARGIN_DB above the noise floor
    (the clip's 10th percentile): steady background noise is loud enough but has no pitch."""
    if db.size == 0:
        return np.zeros(0, dtype=bool)
    loud = (db > SILENCE_DB) & (db > np.percentile(db, 95) - ACTIVE_RANGE_DB)
    if voiced is None:
        return loud
    near = np.convolve(voiced[: db.shape[0]].astype(float), np.ones(21), mode="same")[: db.shape[0]] > 0
    return loud & (near | (db > np.percentile(db, 10) + NOISE_MARGIN_DB))


def spans_of(mask: np.ndarray, bridge_s: float = 0.2, min_s: float = 0.05) -> list[tuple[float, float]]:
    """Runs of True frames as (start, end) seconds; gaps shorter than `bridge_s` joined, runs under `min_s` dropped."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    # a frame is active as soon as its window reaches the sound: a run starts FRAME_S - HOP_S after its first frame
    runs = [[a * HOP_S + (FRAME_S - HOP_S if a else 0.0), b * HOP_S] for a, b in zip(edges[::2], edges[1::2],
                                                                                    strict=True)]
    merged: list[list[float]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < bridge_s:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [(round(a, 3), round(b, 3)) for a, b in merged if b - a >= min_s]


def pitch_track(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz per HOP_S frame with NaN where unvoiced, the frames' best YIN dip) of `audio` at `rate`."""
    lag_min = int(np.floor(rate / PITCH_MAX_HZ))
    lag_max = int(np.ceil(rate / PITCH_MIN_HZ))
    width = lag_max + 1  # integration window: one period of the lowest pitch
    window = frames(audio, rate, width + lag_max + 1).astype(np.float64)
    window = window - window.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * window.shape[1])))
    spectrum = np.fft.rfft(window, size)
    head = np.fft.rfft(window[:, :width], size)
    cross = np.fft.irfft(spectrum * np.conj(head), size)[:, : lag_max + 1]  # sum_j x[j] x[j + lag], j < width
    energy = np.concatenate([np.zeros((window.shape[0], 1)), np.cumsum(np.square(window), axis=1)], axis=1)
    lags = np.arange(lag_max + 1)
    shifted = energy[:, lags + width] - energy[:, lags]  # sum_j x[j + lag]^2
    diff = np.maximum(energy[:, [width]] + shifted - 2.0 * cross, 0.0)
    cumulative = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(cumulative, 1e-12)
    search = cmnd[:, lag_min:]
    below = search < YIN_THRESHOLD
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    # walk down to the bottom of the first dip
    for _ in range(lag_max):
        step = (first + 1 < search.shape[1]) & (search[np.arange(len(first)), np.minimum(first + 1,
                                                                                       search.shape[1] - 1)]
                                                  < search[np.arange(len(first)), first])
        if not step.any():
            break
        first = first + step
    rows = np.arange(len(first))
    lag = first + lag_min
    best = cmnd[rows, lag]
    inner = (lag > 1) & (lag < lag_max)
    left = cmnd[rows, np.maximum(lag - 1, 0)]
    right = cmnd[rows, np.minimum(lag + 1, lag_max)]
    curvature = left - 2 * best + right
    offset = np.where(inner & (curvature > 1e-12), 0.5 * (left - right) / np.where(curvature > 1e-12, curvature, 1),
                      0.0)
    f0 = rate / (lag + np.clip(offset, -1, 1))
    audible = energy[:, width] > width * 1e-8  # RMS above -80 dBFS: digital silence has no period
    voiced = audible & (best < YIN_VOICED) & (f0 >= PITCH_MIN_HZ) & (f0 <= PITCH_MAX_HZ)
    return np.where(voiced, f0, np.nan), best


def clean_pitch(f0: np.ndarray, jump_st: float = 5.0, min_run: int = 3) -> np.ndarray:
    """`f0` without its octave slips and specks: a frame more than `jump_st` semitones from the median of its
    voiced neighbours (+-50 ms), and voiced runs shorter than `min_run` frames, become NaN."""
    out = f0.copy()
    voiced = np.flatnonzero(np.isfinite(f0))
    for i in voiced:
        near = f0[max(0, i - 5): i + 6]
        local = np.nanmedian(near)
        if abs(12 * np.log2(f0[i] / local)) > jump_st:
            out[i] = np.nan
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.isfinite(out).astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a < min_run:
            out[a:b] = np.nan
    return out


def syllable_peaks(db: np.ndarray, mask: np.ndarray, prominence_db: float = 3.0, min_gap_s: float = 0.1) -> int:
    """Syllable-like loudness peaks in the active frames: local maxima of the 50 ms-smoothed level that rise at
    least `prominence_db` above the dip to their neighbouring peak and lie at least `min_gap_s` apart."""
    smooth = np.convolve(db, np.ones(5) / 5, mode="same")
    inside = np.flatnonzero(mask[1:-1] & (smooth[1:-1] >= smooth[:-2]) & (smooth[1:-1] > smooth[2:])) + 1
    peaks = list(inside)
    changed = True
    while changed and len(peaks) > 1:
        changed = False
        for i in range(len(peaks) - 1):
            a, b = peaks[i], peaks[i + 1]
            dip = smooth[a:b + 1].min()
            gated = not mask[a:b + 1].all()  # a silence between them separates them anyway
            if (b - a) * HOP_S < min_gap_s or (not gated and min(smooth[a], smooth[b]) - dip < prominence_db):
                peaks.pop(i + 1 if smooth[a] >= smooth[b] else i)
                changed = True
                break
    return len(peaks)
