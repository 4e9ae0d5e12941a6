"""The one road from a clip's files to the model's arrays: clip cache, face track + audio, or the video itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from media_clips import write_audio

from affectgpt.errors import InputError
from affectgpt.media.batch import ClipOptions, preprocess
from affectgpt.media.cache import cache_file, load_cached_clip
from affectgpt.media.clip import load_clip
from affectgpt.media.inputs import load_inputs, read_audio_file, visual_of


def test_media_from_face_track_and_audio_file(square_clip: Path, tmp_path: Path) -> None:
    faces = np.stack([np.full((112, 112, 3), i * 20, np.uint8) for i in range(12)])
    np.save(tmp_path / "f.npy", faces)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(66150) / 22050)).astype(np.float32)
    wav = write_audio(tmp_path / "a.wav", np.stack([tone, tone]), 22050)
    inputs = load_inputs("npy", faces=tmp_path / "f.npy", audio=wav)
    visual, audio = inputs.visual, inputs.audio_clips
    assert visual.shape == (8, 224, 224, 3) and visual.dtype == np.uint8
    # the original's indices for T=12: floor(i * 12 / 8)
    assert [int(v[100, 100, 0]) for v in visual] == [20 * i for i in (0, 1, 3, 4, 6, 7, 9, 10)]
    assert audio.shape == (8, 32000) and np.allclose(audio, read_audio_file(wav))
    assert 0.2 < float(np.abs(audio).max()) < 0.35  # resampled to 16 kHz, mono, not normalised
    with pytest.raises(InputError, match="'lost'"):
        load_inputs("lost", video=tmp_path / "lost.mp4")
    with pytest.raises(InputError, match="no media"):
        load_inputs("bare", faces=tmp_path / "f.npy")
    # frame input cannot use the face track: it needs the video
    frames = load_inputs("npy", faces=tmp_path / "f.npy", audio=wav, video=square_clip, visual_input="frame").visual
    assert frames.shape == (8, 224, 224, 3) and not np.array_equal(frames, visual)


def test_the_cache_wins_and_gives_what_the_video_gives(square_clip: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    report = preprocess([square_clip], cache, ClipOptions(subtitles=None))
    assert report.written == ["square"]
    for visual_input in ("face", "frame"):
        cached = load_inputs("square", cache=cache, visual_input=visual_input)
        direct = load_inputs("square", video=square_clip, visual_input=visual_input)
        assert cached.source == str(cache_file(cache, "square")) and direct.source == str(square_clip)
        assert np.array_equal(cached.visual, direct.visual) and np.array_equal(cached.audio_clips, direct.audio_clips)
    # a clip missing from the cache falls through to its video; only what is asked for is read
    frames_only = load_inputs("square", video=square_clip, cache=tmp_path / "empty", visual_input="frame",
                              need_audio=False)
    assert frames_only.audio_clips is None and frames_only.visual.shape == (8, 224, 224, 3)
    audio_only = load_inputs("square", cache=cache, need_visual=False)
    assert audio_only.visual is None and audio_only.audio_clips.shape == (8, 32000)


def test_faces_skipped_are_never_given_to_a_face_model(square_clip: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    preprocess([square_clip], cache, ClipOptions(faces=False))
    clip = load_cached_clip(cache_file(cache, "square"))
    assert np.array_equal(visual_of(clip, "frame"), clip.frames)
    with pytest.raises(InputError, match="no faces") as caught:
        load_inputs("square", cache=cache, visual_input="face")
    assert caught.value.field == "sample 'square'"
    assert load_inputs("square", cache=cache, visual_input="frame").visual.shape == (8, 224, 224, 3)
    with pytest.raises(InputError, match="not face or frame"):
        visual_of(load_clip(square_clip, faces=False), "faces")


def test_small_frames_are_resized_to_the_model_size(square_clip: Path, tmp_path: Path) -> None:
    """A cache made at another size or frame count still gives [8, 224, 224, 3]."""
    cache = tmp_path / "cache"
    preprocess([square_clip], cache, ClipOptions(n_frames=4, size=64, faces=False))
    inputs = load_inputs("square", cache=cache, visual_input="frame")
    assert inputs.visual.shape == (8, 224, 224, 3) and inputs.visual.dtype == np.uint8
