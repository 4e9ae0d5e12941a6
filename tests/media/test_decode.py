"""decode.py: source-resolution frames, the early downscale, and bad inputs -> InputError (never a PyAV trace)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_clips import frame_image, read_frame_number, tone, write_audio, write_video

from affectgpt.errors import InputError
from affectgpt.media import decode, load_clip


def read(path: Path, **options: object) -> decode.VideoSamples:
    with decode.open_media(path) as media:
        return decode.read_video(media, **options)


def test_source_frames_keep_the_source_resolution(odd_clip: Path) -> None:
    video = read(odd_clip, keep_source=True)
    assert video.source is not None and video.source.shape == (8, 179, 321, 3)
    assert [read_frame_number(f) for f in video.source] == [0, 1, 2, 3, 5, 6, 7, 8]
    assert "downscaled" not in video.flags
    assert read(odd_clip, keep_source=False).source is None


def test_large_frames_are_capped_early(wide_clip: Path) -> None:
    video = read(wide_clip, keep_source=True)
    assert video.source.shape == (8, 77, 1280, 3)  # 1600x96 -> longest side 1280: 96 * 0.8 = 76.8
    assert video.frames.shape == (8, 224, 224, 3)
    assert [read_frame_number(f) for f in video.source] == [0, 1, 2, 3, 3, 3, 3, 3]  # T < 8: last repeats
    assert {"downscaled", "short_video"} <= video.flags
    assert read(wide_clip, keep_source=True, max_side=2000).flags.isdisjoint({"downscaled"})


def test_skipping_unreferenced_frames_changes_nothing(bframes_clip: Path) -> None:
    # Reference: PyAV decodes every frame; take the original's indices; scale to 224 the same way.
    import av

    with av.open(str(bframes_clip)) as container:
        every = sorted(container.decode(video=0), key=lambda frame: frame.pts)
    assert [av.video.frame.PictureType(f.pict_type).name for f in every[:5]] == ["I", "B", "B", "B", "P"]
    indices = [0, 5, 10, 15, 20, 25, 30, 35]  # floor(k * 40 / 8); most of them B-frames
    expected = [every[i].reformat(224, 224, "rgb24", interpolation="BICUBIC").to_ndarray() for i in indices]
    video = read(bframes_clip, keep_source=False)
    np.testing.assert_array_equal(video.frames, np.stack(expected))
    assert [read_frame_number(f) for f in video.frames] == indices


def test_unknown_resize_policy(square_clip: Path) -> None:
    with pytest.raises(InputError, match="resize"):
        read(square_clip, resize="crop")


# -- bad inputs ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(media_dir: Path) -> dict[str, Path]:
    folder = media_dir / "bad"
    folder.mkdir(exist_ok=True)
    files = {"empty": folder / "empty.mp4", "text": folder / "text.mp4", "folder": folder / "a_folder.mp4"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not a video\n" * 20)
    files["folder"].mkdir(exist_ok=True)
    audio = np.zeros((1, 16000), np.float32)
    # index (moov) at the end, cut in half: FFmpeg cannot even open it
    whole = write_video(folder / "whole.mp4", audio=audio).read_bytes()
    (files.setdefault("cut_index", folder / "cut_index.mp4")).write_bytes(whole[: len(whole) // 2])
    # index at the start, data cut: it opens, but has fewer frames than the index lists
    fast = write_video(folder / "fast.mp4", audio=audio, container_options={"movflags": "faststart"}).read_bytes()
    (files.setdefault("cut_data", folder / "cut_data.mp4")).write_bytes(fast[: len(fast) * 2 // 3])
    # Matroska cut in half: no frame count, but a declared duration
    mkv = write_video(folder / "whole.mkv", n_frames=40, audio=audio).read_bytes()
    (files.setdefault("cut_mkv", folder / "cut.mkv")).write_bytes(mkv[: len(mkv) // 2])
    # a codec FFmpeg does not know: the Matroska codec id renamed
    assert mkv.count(b"V_MPEG4/ISO/AVC") == 1
    (files.setdefault("codec", folder / "codec.mkv")).write_bytes(mkv.replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC"))
    files["audio_only"] = write_audio(folder / "speech.wav", tone([440], 1.0, 16000), 16000)
    files["no_audio"] = write_video(folder / "no_audio.mp4", n_frames=5)
    return files


@pytest.mark.parametrize(("name", "message"), [
    ("empty", "empty"),
    ("text", "not a readable media file"),
    ("folder", "got a folder"),
    ("cut_index", "not a readable media file, or a truncated one"),
    ("cut_data", "truncated: the container lists 20 video frames"),
    ("cut_mkv", "truncated: the video stream should last 4.00 s"),
    ("codec", "cannot decode this video codec"),
    ("audio_only", "no video stream (it holds audio only)"),
])
def test_bad_video_files(bad_files: dict[str, Path], name: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_clip(bad_files[name], faces=False)
    error = caught.value
    assert message in error.what
    assert error.path == str(bad_files[name]) and error.fix
    assert str(bad_files[name]) in str(error) and "Fix:" in str(error)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="video file not found") as caught:
        load_clip(tmp_path / "nowhere.mp4")
    assert caught.value.path == str(tmp_path / "nowhere.mp4")


def test_bad_separate_audio(bad_files: dict[str, Path], square_clip: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="audio file not found"):
        load_clip(square_clip, audio=tmp_path / "nowhere.wav", faces=False)
    with pytest.raises(InputError, match="no audio stream") as caught:
        load_clip(square_clip, audio=bad_files["no_audio"], faces=False)
    assert caught.value.path == str(bad_files["no_audio"])
    with pytest.raises(InputError, match="the audio file is empty"):
        load_clip(square_clip, audio=bad_files["empty"], faces=False)


@pytest.mark.parametrize(("options", "field"), [
    ({"n_frames": 0}, "n_frames"),
    ({"size": -1}, "size"),
    ({"n_audio_clips": 0}, "n_audio_clips"),
    ({"subtitle": b"bytes"}, "subtitle"),
    ({"clip_seconds": 0.00001}, "clip_seconds"),
    ({"resize": "crop"}, "resize"),
])
def test_bad_arguments(square_clip: Path, options: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as caught:
        load_clip(square_clip, faces=False, **options)
    assert caught.value.field == field


def test_frame_image_round_trip() -> None:
    # the test clips' frame numbers survive the drawing and reading, at the stored and the model size
    import cv2

    for i in (0, 1, 37, 128, 255):
        image = frame_image(i)
        assert read_frame_number(image) == i
        assert read_frame_number(cv2.resize(image, (224, 224))) == i
