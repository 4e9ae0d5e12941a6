"""harness/clips.py and harness/encode.py: a generated clip -> ClipInputs -> content parts that decode back to it."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from media_clips import frame_image, read_frame_number, tone, write_video  # noqa: E402

from affectgpt.errors import InputError  # noqa: E402
from affectgpt.harness.base import ClipInputs  # noqa: E402
from affectgpt.harness.clips import cache_path, load_clip_inputs  # noqa: E402
from affectgpt.harness.encode import content_parts, mp4_bytes, options_tag, wav_bytes  # noqa: E402
from affectgpt.llm.base import AudioPart, ImagePart, TextPart, VideoPart  # noqa: E402

ALL = frozenset({"frames", "audio", "subtitle"})


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 numbered frames at 10 fps (3 s) and 2.5 s of exact PCM 16 kHz 440 Hz tone."""
    path = tmp_path_factory.mktemp("encode") / "numbered.mkv"
    return write_video(path, n_frames=30, fps=10, audio=tone([440], 2.5, 16000), audio_codec="pcm_s16le")


@pytest.fixture(scope="module")
def clip(clip_file: Path) -> ClipInputs:
    return load_clip_inputs(clip_file, needs=ALL, n_frames=8, size=160, subtitle="Hello there.")


def _image(part: ImagePart) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(part.data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_the_clip_inputs_hold_what_was_asked_for(clip_file, clip):
    assert clip.name == "numbered" and clip.video == clip_file and clip.subtitle == "Hello there."
    assert clip.frames.shape == (8, 160, 160, 3) and clip.faces is None
    assert clip.audio.dtype == np.float32 and clip.audio.shape == (40000,)  # 2.5 s at 16 kHz, as written
    only_video = load_clip_inputs(clip_file, needs=frozenset({"video"}), subtitle="not asked for")
    assert only_video.frames is None and only_video.audio is None and only_video.subtitle == ""


def test_jpeg_frames_decode_to_the_stated_size_and_are_the_clip_frames_in_order(clip):
    parts = content_parts(clip, "What is felt?", n_frames=4, size=96)
    assert [type(p) for p in parts] == [ImagePart] * 4 + [AudioPart, TextPart]
    images = [_image(p) for p in parts[:4]]
    assert all(image.shape == (96, 96, 3) for image in images)
    numbers = [read_frame_number(image) for image in images]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4 and numbers[-1] > 20  # spread over the clip
    assert parts[-1].text == "What is felt?"


def test_the_wav_is_16_khz_mono_16_bit_with_the_clips_length_and_samples(clip):
    [audio] = [p for p in content_parts(clip, "x") if isinstance(p, AudioPart)]
    with wave.open(io.BytesIO(audio.data)) as track:
        assert (track.getframerate(), track.getnchannels(), track.getsampwidth()) == (16000, 1, 2)
        assert track.getnframes() == 40000
        samples = np.frombuffer(track.readframes(track.getnframes()), "<i2") / 32767
    expected = tone([440], 2.5, 16000)[0]
    assert np.abs(samples - expected).max() < 2e-3  # PCM all the way: the tone comes back


def test_modality_options_drop_parts_and_a_clip_without_audio_sends_none(clip, no_audio_clip):
    assert [p.kind for p in content_parts(clip, "x", modalities=("audio", "text"))] == ["audio", "text"]
    # the instruction always goes ("text" is whether the caller rendered the subtitle into it)
    assert [p.kind for p in content_parts(clip, "x", modalities=("image",), n_frames=2)] == ["image", "image", "text"]
    silent = load_clip_inputs(no_audio_clip, needs=ALL, n_frames=2, size=64)
    assert silent.audio is None
    assert [p.kind for p in content_parts(silent, "x", n_frames=2, size=64)] == ["image", "image", "text"]
    assert options_tag(("text", "image"), 4, 96) == "image+text/4f/96px/jpeg90"
    with pytest.raises(InputError, match="did you mean 'image'"):
        content_parts(clip, "x", modalities=("imgae",))
    with pytest.raises(InputError, match="size"):
        content_parts(clip, "x", size=0)


def test_frames_as_one_video_that_pyav_opens_with_n_frames(clip):
    import av

    parts = content_parts(clip, "x", video_as="video", n_frames=6, size=128)
    assert [p.kind for p in parts] == ["video", "audio", "text"] and isinstance(parts[0], VideoPart)
    with av.open(io.BytesIO(parts[0].data)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (128, 128, 3)
    numbers = [read_frame_number(f) for f in frames]
    assert numbers == sorted(numbers) and len(set(numbers)) == 6
    again = content_parts(clip, "x", video_as="video", n_frames=6, size=128)
    assert again[0].data == parts[0].data  # the same bytes every time: the LLM cache can hit


def test_encoding_is_deterministic_and_helpers_round_trip():
    frames = [frame_image(i) for i in range(3)]
    assert mp4_bytes(frames) == mp4_bytes(frames)
    with wave.open(io.BytesIO(wav_bytes(np.array([0.0, 1.0, -1.0, 2.0], np.float32)))) as track:
        assert np.frombuffer(track.readframes(4), "<i2").tolist() == [0, 32767, -32767, 32767]  # loud samples clip


def test_the_clip_cache_is_reused_and_a_rerun_decodes_nothing(clip_file, tmp_path, monkeypatch):
    from affectgpt.media import clip as media_clip

    first = load_clip_inputs(clip_file, needs=ALL, n_frames=4, size=64, cache_dir=tmp_path)
    assert cache_path(clip_file, tmp_path, n_frames=4, size=64).is_file()

    decoded = []
    real = media_clip.load_clip
    monkeypatch.setattr(media_clip, "load_clip", lambda *a, **k: decoded.append(a) or real(*a, **k))
    again = load_clip_inputs(clip_file, needs=ALL, n_frames=4, size=64, cache_dir=tmp_path)
    assert decoded == []
    assert np.array_equal(again.frames, first.frames) and np.array_equal(again.audio, first.audio)
    other = load_clip_inputs(clip_file, needs=ALL, n_frames=5, size=64, cache_dir=tmp_path)  # another entry
    assert len(decoded) == 1 and other.frames.shape == (5, 64, 64, 3)


def test_an_unreadable_or_missing_video_is_an_input_error_naming_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(InputError) as caught:
        load_clip_inputs(bad, needs=ALL)
    assert "broken.mp4" in str(caught.value)
    with pytest.raises(InputError, match="not found"):
        load_clip_inputs(tmp_path / "missing.mp4", needs=ALL)
    with pytest.raises(InputError, match="unknown input"):
        load_clip_inputs(bad, needs=frozenset({"pixels"}))


def test_faces_are_tracked_only_when_asked(clip_file):
    with_faces = load_clip_inputs(clip_file, needs=frozenset({"faces"}), n_frames=2, size=48)
    assert with_faces.faces.shape == (2, 48, 48, 3) and with_faces.frames is None
    assert with_faces.faces.any()  # the tracker's fallback (centre squares): not the zeros of skipped faces


def test_a_separate_audio_file_is_used_instead_of_the_videos_own(no_audio_clip, tmp_path):
    from media_clips import write_audio

    wav = write_audio(tmp_path / "clip.wav", tone([330], 3.0, 16000), 16000)
    alone = load_clip_inputs(no_audio_clip, needs=frozenset({"audio"}))
    assert alone.audio is None and alone.audio_file is None
    paired = load_clip_inputs(no_audio_clip, needs=frozenset({"audio", "video"}), audio=wav, cache_dir=tmp_path)
    assert paired.audio_file == wav and paired.audio is not None and len(paired.audio) == 3 * 16000
    # the decoded clip is cached per audio file: with and without it are two entries
    assert cache_path(no_audio_clip, tmp_path, audio=wav) != cache_path(no_audio_clip, tmp_path)
    with pytest.raises(InputError, match="audio file not found"):
        load_clip_inputs(no_audio_clip, needs=frozenset({"audio"}), audio=tmp_path / "missing.wav")


def test_a_datasets_audio_folder_reaches_the_backend(no_audio_clip, tmp_path):
    """ROOT/<dataset>/audio/<name>.wav is found by the layout and decoded by `bench run`'s loader."""
    import shutil

    from media_clips import write_audio

    from affectgpt.bench.datasets import get_dataset
    from affectgpt.harness.layout import clip_set
    from affectgpt.harness.run import default_loader

    folder = tmp_path / "clips" / "mer2023"
    (folder / "audio").mkdir(parents=True)
    shutil.copy(no_audio_clip, folder / "a.mp4")
    shutil.copy(no_audio_clip, folder / "b.mp4")
    wav = write_audio(folder / "audio" / "a.wav", tone([330], 2.5, 16000), 16000)
    labels = tmp_path / "labels.csv"
    labels.write_text("name,label\na,happy\nb,sad\n", encoding="utf-8")
    clips = clip_set(get_dataset("mer2023"), labels, tmp_path / "clips")
    assert [(c.name, c.audio) for c in clips.clips] == [("a", wav), ("b", None)]

    class Listener:
        needs = frozenset({"audio"})

    load = default_loader(Listener(), tmp_path / "cache")
    with_audio, without = (load(c) for c in clips.clips)
    assert with_audio.audio_file == wav and len(with_audio.audio) == int(2.5 * 16000)
    assert without.audio is None and without.audio_file is None
