"""load_clip end to end on generated clips: the right frames, orientation, audio, flags; and the real sample."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media_clips import MARKER, SQUARE, VFR_FPS, VFR_TIMES, read_frame_number

from affectgpt.media import load_clip
from affectgpt.media.clip import Clip


def numbers(clip: Clip) -> list[int]:
    return [read_frame_number(frame) for frame in clip.frames]


def amplitude_at(samples: np.ndarray, rate: int, frequency: float) -> float:
    """Amplitude of a sine at `frequency` (bin-exact lengths: whole seconds)."""
    spectrum = np.abs(np.fft.rfft(samples)) * 2 / len(samples)
    return float(spectrum[round(frequency * len(samples) / rate)])


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def is_marker(pixel: np.ndarray) -> bool:
    return bool(np.abs(pixel.astype(int) - MARKER).max() < 40)


def test_constant_rate_clip_gives_the_original_frames(square_clip: Path) -> None:
    clip = load_clip(square_clip, faces=False)
    assert clip.frames.shape == (8, 224, 224, 3) and clip.frames.dtype == np.uint8
    # 37 frames: the original's indices floor(k * 37 / 8)
    assert numbers(clip) == [0, 4, 9, 13, 18, 23, 27, 32]
    assert clip.frame_times == pytest.approx([i / 10 for i in (0, 4, 9, 13, 18, 23, 27, 32)])
    assert clip.duration == pytest.approx(3.7)
    assert clip.name == "square" and clip.source == str(square_clip)
    assert "variable_frame_rate" not in clip.flags and "short_video" not in clip.flags


def test_the_moving_square_is_where_the_frame_put_it(square_clip: Path) -> None:
    clip = load_clip(square_clip, faces=False)
    frame = clip.frames[3].astype(int)  # frame 13: a 16 px square at x = 65 of 128, stretched by 224 / 128
    red = np.abs(frame - SQUARE).max(axis=2) < 40
    xs = np.nonzero(red.any(axis=0))[0]
    assert (xs.min() + xs.max() + 1) / 2 == pytest.approx((65 + 8) * 224 / 128, abs=2)  # centre
    assert xs.max() + 1 - xs.min() == pytest.approx(16 * 224 / 128, abs=4)  # width (colour edges blur)


def test_faces_skipped_is_explicit(square_clip: Path) -> None:
    clip = load_clip(square_clip, faces=False)
    assert clip.faces.shape == clip.frames.shape and clip.faces.dtype == np.uint8
    assert not clip.faces.any() and "faces_skipped" in clip.flags


def test_pad_keeps_the_aspect_ratio(square_clip: Path) -> None:
    clip = load_clip(square_clip, faces=False, resize="pad", size=224)
    # 128x96 -> 224x168, centred: 28 black rows above and below
    assert not clip.frames[:, :28].any() and not clip.frames[:, 196:].any()
    assert [read_frame_number(f[28:196]) for f in clip.frames] == [0, 4, 9, 13, 18, 23, 27, 32]


def test_other_frame_counts_and_sizes(square_clip: Path) -> None:
    clip = load_clip(square_clip, n_frames=4, size=64, faces=False)
    assert clip.frames.shape == (4, 64, 64, 3)
    assert numbers(clip) == [0, 9, 18, 27]  # floor(k * 37 / 4)


def test_variable_frame_rate_frames_are_chosen_by_time(vfr_clip: Path) -> None:
    clip = load_clip(vfr_clip, faces=False)
    # Expected from the generated timestamps by the documented rule: a grid of T slots over the span
    # (last time + the last frame's 1 / fps), slot floor(k T / 8) for sample k, nearest frame (earlier on ties).
    n_total = len(VFR_TIMES)
    span = VFR_TIMES[-1] + Fraction(1, VFR_FPS)
    targets = [span * ((k * n_total) // 8) / n_total for k in range(8)]
    expected = [min(range(n_total), key=lambda i, t=t: (abs(VFR_TIMES[i] - t), i)) for t in targets]
    assert expected == [0, 1, 3, 4, 6, 7, 9, 10]  # counting frames would give [0, 2, 5, 7, 10, 12, 15, 17]
    assert numbers(clip) == expected
    assert clip.frame_times == pytest.approx([float(VFR_TIMES[i]) for i in expected])
    assert clip.duration == pytest.approx(float(span))
    assert "variable_frame_rate" in clip.flags


def test_display_matrix_rotation_is_applied(rotated_clip: Path) -> None:
    clip = load_clip(rotated_clip, faces=False)
    frame = clip.frames[0]
    # +90 degrees counter-clockwise: the stored top-left marker shows at the bottom left.
    assert is_marker(frame[168, 56]) and not is_marker(frame[56, 56]) and not is_marker(frame[168, 168])
    assert "rotated" in clip.flags
    padded = load_clip(rotated_clip, faces=False, resize="pad").frames[0]
    # shown 48 wide x 64 tall -> 168 x 224: 28 black columns left and right, the marker bottom-left inside
    assert not padded[:, :28].any() and not padded[:, 196:].any()
    assert is_marker(padded[168, 60]) and not is_marker(padded[56, 60])


def test_rotate_tag_is_applied_clockwise(rotate_tag_clip: Path) -> None:
    clip = load_clip(rotate_tag_clip, faces=False)
    frame = clip.frames[0]
    # rotate=90 is clockwise: the stored top-left marker shows at the top right.
    assert is_marker(frame[56, 168]) and not is_marker(frame[56, 56]) and not is_marker(frame[168, 168])
    assert "rotated" in clip.flags


def test_odd_sizes(odd_clip: Path) -> None:
    clip = load_clip(odd_clip, faces=False)
    assert clip.frames.shape == (8, 224, 224, 3)
    assert numbers(clip) == [0, 1, 2, 3, 5, 6, 7, 8]  # floor(k * 10 / 8)


def test_one_frame(one_frame_clip: Path) -> None:
    clip = load_clip(one_frame_clip, faces=False)
    assert numbers(clip) == [0] * 8
    assert clip.frame_times == (0.0,) * 8 and clip.duration == pytest.approx(0.1)
    assert {"short_video", "no_audio"} <= clip.flags


def test_short_clip_repeats_the_last_frame_and_pads_audio(short_clip: Path) -> None:
    clip = load_clip(short_clip, faces=False)
    assert numbers(clip) == [0, 1, 2, 2, 2, 2, 2, 2]
    assert {"short_video", "audio_padded"} <= clip.flags and "no_audio" not in clip.flags
    assert clip.audio.shape == (32000,) and clip.audio.dtype == np.float32
    t = np.arange(4800) / 16000
    np.testing.assert_allclose(clip.audio[:4800], 0.5 * np.sin(2 * np.pi * 440 * t), atol=1e-4)  # PCM s16
    assert not clip.audio[4800:].any()
    assert clip.audio_clips.shape == (8, 32000)
    for window in clip.audio_clips:
        np.testing.assert_array_equal(window, clip.audio)


def test_tone_is_resampled_to_16k(tone_clip: Path) -> None:
    clip = load_clip(tone_clip, faces=False)
    assert clip.audio.shape == (40000,)  # 2.5 s at 16 kHz
    assert abs(dominant_frequency(clip.audio, 16000) - 1000) <= 1.0
    starts = [0, 1142, 2285, 3428, 4571, 5714, 6857, 8000]  # k * 0.5 s / 7, at 16 kHz, floored
    for start, window in zip(starts, clip.audio_clips, strict=True):
        np.testing.assert_array_equal(window, clip.audio[start : start + 32000])
    assert "audio_padded" not in clip.flags


def test_aac_tone(square_clip: Path) -> None:
    clip = load_clip(square_clip, faces=False)
    # AAC adds up to a frame of padding (1024 samples at 16 kHz), which FFmpeg's own extraction keeps too
    assert 3.7 * 16000 <= clip.audio.shape[0] <= 3.7 * 16000 + 2048
    assert abs(dominant_frequency(clip.audio, 16000) - 440) <= 1.0


def test_stereo_48k_is_mixed_to_mono_and_resampled(stereo_clip: Path) -> None:
    clip = load_clip(stereo_clip, faces=False)
    assert clip.audio.shape == (32000,)
    # left 0.5 sin(440), right 0.5 sin(440) + 0.4 sin(1500): the mean has 0.5 at 440 Hz and 0.2 at 1500 Hz
    assert amplitude_at(clip.audio, 16000, 440) == pytest.approx(0.5, abs=0.01)
    assert amplitude_at(clip.audio, 16000, 1500) == pytest.approx(0.2, abs=0.01)


def test_silence_is_audio_not_missing_audio(silent_clip: Path) -> None:
    clip = load_clip(silent_clip, faces=False)
    assert "no_audio" not in clip.flags
    assert np.abs(clip.audio).max() < 1e-4 and clip.audio.shape[0] >= 32000


def test_no_audio_stream_gives_flagged_silence(no_audio_clip: Path) -> None:
    clip = load_clip(no_audio_clip, faces=False)
    assert {"no_audio", "audio_padded"} <= clip.flags
    assert clip.audio.shape == (32000,) and not clip.audio.any()
    assert clip.audio_clips.shape == (8, 32000) and clip.audio_clips.dtype == np.float32
    assert not clip.audio_clips.any()


def test_separate_audio_file_replaces_the_video_audio(square_clip: Path, wav_file: Path) -> None:
    clip = load_clip(square_clip, audio=wav_file, faces=False)
    with wave.open(str(wav_file)) as handle:
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
    assert clip.audio.shape == (48000,)
    np.testing.assert_array_equal(clip.audio, pcm / np.float32(32768))
    assert abs(dominant_frequency(clip.audio, 16000) - 660) <= 1.0
    assert numbers(clip) == [0, 4, 9, 13, 18, 23, 27, 32]


def test_subtitle_and_timings(square_clip: Path) -> None:
    clip = load_clip(square_clip, subtitle="I am fine.", faces=False)
    assert clip.subtitle == "I am fine."
    assert load_clip(square_clip, faces=False).subtitle == ""
    assert set(clip.timings) == {"decode", "faces", "audio", "total"}
    assert all(v >= 0 for v in clip.timings.values())
    assert clip.timings["total"] >= clip.timings["decode"]


def test_faces_on_a_clip_without_a_face(square_clip: Path) -> None:
    clip = load_clip(square_clip)
    assert clip.faces.shape == (8, 224, 224, 3) and clip.faces.dtype == np.uint8
    assert "no_face" in clip.flags and "faces_skipped" not in clip.flags


# -- the real clip of the original release -------------------------------------------------------------------


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path)) as handle:
        assert handle.getframerate() == 16000 and handle.getnchannels() == 1
        return np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / np.float32(32768)


def pytorchvideo_starts(n_samples: int) -> list[int]:
    """The original's windows: start_k = k * (n / 16000 - 2) / 7 seconds, floored to samples."""
    max_start = Fraction(n_samples / 16000) - 2
    return [int(max_start * k / 7 * 16000) for k in range(8)]


def test_reference_sample(reference_dir: Path) -> None:
    video = reference_dir / "media" / "sample_00000000.mp4"
    clip = load_clip(video, faces=False)
    assert clip.frames.shape == (8, 224, 224, 3) and clip.frames.dtype == np.uint8
    assert clip.duration == pytest.approx(3.52)  # 88 frames at 25 fps
    assert clip.frame_times == pytest.approx([k * 11 / 25 for k in range(8)])  # frames 0, 11, ..., 77
    assert clip.audio.dtype == np.float32 and clip.audio_clips.shape == (8, 32000)
    for start, window in zip(pytorchvideo_starts(clip.audio.shape[0]), clip.audio_clips, strict=True):
        np.testing.assert_array_equal(window, clip.audio[start : start + 32000])
    # the mono 16 kHz mix of the AAC stereo track matches the original's extracted wav
    original = wav_samples(video.with_suffix(".wav"))
    assert abs(clip.audio.shape[0] - original.shape[0]) <= 2
    n = min(clip.audio.shape[0], original.shape[0])
    assert np.corrcoef(clip.audio[:n], original[:n])[0, 1] > 0.99
    assert not clip.flags - {"faces_skipped"}


def test_reference_sample_with_its_wav(reference_dir: Path) -> None:
    video = reference_dir / "media" / "sample_00000000.mp4"
    clip = load_clip(video, audio=video.with_suffix(".wav"), faces=False)
    original = wav_samples(video.with_suffix(".wav"))
    np.testing.assert_array_equal(clip.audio, original)  # already 16 kHz mono: untouched
    # k * (55357 / 16000 - 2) / 7 s; the last is 23356, not 23357: the original's float duration (3.4598125 is
    # not exact in binary, and rounds down) floors it one sample early, and we keep that
    assert pytorchvideo_starts(original.shape[0]) == [0, 3336, 6673, 10010, 13346, 16683, 20020, 23356]
    for start, window in zip(pytorchvideo_starts(original.shape[0]), clip.audio_clips, strict=True):
        np.testing.assert_array_equal(window, original[start : start + 32000])


def test_reference_sample_faces(reference_dir: Path) -> None:
    clip = load_clip(reference_dir / "media" / "sample_00000000.mp4")
    assert clip.faces.shape == (8, 224, 224, 3) and clip.faces.dtype == np.uint8
    assert "faces_skipped" not in clip.flags and "no_face" not in clip.flags
