"""`affectgpt preprocess`: a folder of clips -> safe cache files; bad files are listed and the batch goes on."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from media_clips import read_frame_number

from affectgpt.cli import main
from affectgpt.errors import InputError
from affectgpt.media.batch import ClipOptions, preprocess
from affectgpt.media.cache import cache_file, load_cached_clip
from affectgpt.media.files import find_videos


@pytest.fixture
def clip_folder(tmp_path, square_clip, no_audio_clip, tone_clip):
    folder = tmp_path / "clips"
    folder.mkdir()
    for source, name in ((square_clip, "a.mp4"), (no_audio_clip, "b.mp4"), (tone_clip, "c.mkv")):
        shutil.copyfile(source, folder / name)
    (folder / "broken.mp4").write_bytes(b"this is not a video")
    (folder / "empty.avi").write_bytes(b"")
    (folder / "notes.txt").write_text("not a clip")  # not a video suffix: ignored
    return folder


def test_batch_writes_caches_lists_failures_and_resumes(clip_folder, tmp_path):
    out = tmp_path / "cache"
    report = preprocess([clip_folder], out, ClipOptions(faces=False))
    assert sorted(report.written) == ["a", "b", "c"]
    assert sorted(f["file"].rsplit("/", 1)[1] for f in report.failures) == ["broken.mp4", "empty.avi"]
    listed = json.loads((out / "failures.json").read_text())["failures"]
    assert [f["file"] for f in listed] == sorted(f["file"] for f in report.failures)
    assert all(f["reason"] for f in listed)
    assert report.flags["no_audio"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.safetensors", "b.safetensors", "c.safetensors",
                                                     "failures.json"]  # no partial file for the bad clips
    again = preprocess([clip_folder], out, ClipOptions(faces=False))
    assert sorted(again.skipped) == ["a", "b", "c"] and again.written == []


def test_cache_round_trip_keeps_every_array_and_field(clip_folder, tmp_path):
    out = tmp_path / "cache"
    options = ClipOptions(n_frames=4, size=64, faces=False)
    preprocess([clip_folder / "a.mp4"], out, options)
    clip = load_cached_clip(cache_file(out, "a"))
    assert clip.name == "a" and clip.source.endswith("a.mp4")
    assert clip.frames.shape == (4, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.audio_clips.shape == (8, 32000) and clip.audio_clips.dtype == np.float32
    assert "faces_skipped" in clip.flags and len(clip.frame_times) == 4
    # the square clip numbers its 37 frames: the index rule floor(i * 37 / 4) picks 0, 9, 18, 27
    assert [read_frame_number(f) for f in clip.frames] == [0, 9, 18, 27]


def test_two_workers_give_the_same_caches(clip_folder, tmp_path):
    one = preprocess([clip_folder], tmp_path / "one", ClipOptions(faces=False))
    two = preprocess([clip_folder], tmp_path / "two", ClipOptions(faces=False), workers=2)
    assert sorted(one.written) == sorted(two.written)
    for name in one.written:
        a, b = (load_cached_clip(cache_file(tmp_path / d, name)) for d in ("one", "two"))
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)


def test_subtitles_from_a_csv_and_the_no_subtitle_flag(clip_folder, tmp_path):
    table = tmp_path / "subtitles.csv"
    table.write_text("name,chinese,english\na,你好,Hello there.\n", encoding="utf-8")
    out = tmp_path / "cache"
    preprocess([clip_folder / "a.mp4", clip_folder / "b.mp4"], out,
               ClipOptions(faces=False, subtitles=str(table)))
    assert load_cached_clip(cache_file(out, "a")).subtitle == "Hello there."
    b = load_cached_clip(cache_file(out, "b"))
    assert b.subtitle == "" and "no_subtitle" in b.flags


def test_faces_npy_export_in_the_openface_layout(clip_folder, tmp_path):
    out, npy = tmp_path / "cache", tmp_path / "openface_face"
    preprocess([clip_folder / "a.mp4"], out, ClipOptions(faces_npy=str(npy)))
    faces = np.load(npy / "a.npy", allow_pickle=False)
    assert faces.shape == (8, 224, 224, 3) and faces.dtype == np.uint8
    assert np.array_equal(faces, load_cached_clip(cache_file(out, "a")).faces)


def test_inputs_errors(tmp_path):
    with pytest.raises(InputError, match="input not found"):
        find_videos([tmp_path / "missing"])
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="no video files found"):
        find_videos([tmp_path / "x"])
    (tmp_path / "x" / "a.mp4").write_bytes(b"")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "a.mkv").write_bytes(b"")
    with pytest.raises(InputError, match="two videos share the name 'a'"):
        find_videos([tmp_path / "x", tmp_path / "y"])


def test_a_corrupt_cache_file_is_a_clear_error(tmp_path):
    path = tmp_path / "a.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(InputError, match="not a readable clip cache file"):
        load_cached_clip(path)


def test_preprocess_command_exit_codes(clip_folder, tmp_path, capsys):
    out = tmp_path / "cache"
    assert main(["preprocess", str(clip_folder / "a.mp4"), "--output", str(out), "--no-faces",
                 "--no-progress"]) == 0
    assert "1 written" in capsys.readouterr().err
    assert main(["preprocess", str(clip_folder), "--output", str(out), "--no-faces", "--no-progress",
                 "--workers", "2"]) == 3
    err = capsys.readouterr().err
    assert "2 written, 1 already cached, 2 failed" in err and "broken.mp4" in err


# -- what every clip shares is checked once, before the first clip --------------------------------------------------
def _fake_clip(tmp_path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"never decoded: the options are refused first")
    return video


def _preprocess_error(capsys, args):
    assert main(["preprocess", *args, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_a_bad_subtitle_table_is_one_error_naming_it(tmp_path, capsys):
    video = _fake_clip(tmp_path)
    table = tmp_path / "subs.csv"
    table.write_text("name,chinese\na,你好\n", encoding="utf-8")
    out = tmp_path / "cache"
    err = _preprocess_error(capsys, [str(video), "--output", str(out), "--subtitles", str(table)])
    assert str(table) in err and "no column 'english'" in err
    err = _preprocess_error(capsys, [str(video), "--output", str(out), "--subtitles", str(tmp_path / "none.csv")])
    assert "none.csv: subtitle file not found" in err
    assert not out.exists()  # refused before the batch: no cache folder, no failures.json
    with pytest.raises(InputError, match=r"subs\.csv"):
        preprocess([video], out, ClipOptions(subtitles=str(table)))


def test_a_bad_asr_model_folder_is_one_error_naming_it(tmp_path, capsys):
    video = _fake_clip(tmp_path)
    out = tmp_path / "cache"
    err = _preprocess_error(capsys, [str(video), "--output", str(out), "--asr-model", str(tmp_path / "whisper")])
    assert f"{tmp_path / 'whisper'}: --asr-model: ASR model folder not found" in err
    (tmp_path / "whisper").mkdir()
    (tmp_path / "whisper" / "config.json").write_text("{}")
    err = _preprocess_error(capsys, [str(video), "--output", str(out), "--asr-model", str(tmp_path / "whisper")])
    assert "--asr-model: not a faster-whisper model folder: no model.bin" in err
    assert not out.exists()


def test_a_missing_audio_folder_is_refused(tmp_path, capsys):
    video = _fake_clip(tmp_path)
    err = _preprocess_error(capsys, [str(video), "--output", str(tmp_path / "c"), "--audio-dir", str(tmp_path / "x")])
    assert "--audio-dir: audio folder not found" in err


@pytest.mark.parametrize(("option", "value", "fix"), [("--size", "100000", "from 16 to 4096"),
                                                      ("--size", "8", "from 16 to 4096"),
                                                      ("--frames", "0", "from 1 to 256"),
                                                      ("--frames", "1000", "from 1 to 256"),
                                                      ("--workers", "0", "1 or more")])
def test_numbers_out_of_range_are_refused_up_front(tmp_path, capsys, option, value, fix):
    video = _fake_clip(tmp_path)
    err = _preprocess_error(capsys, [str(video), "--output", str(tmp_path / "c"), option, value])
    assert f"{option}: {value} is out of range" in err and fix in err


def test_a_clip_whose_name_is_not_plain_fails_alone(tmp_path, square_clip):
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copyfile(square_clip, folder / "a.mp4")
    shutil.copyfile(square_clip, folder / ".hidden.mp4")
    report = preprocess([folder], tmp_path / "cache", ClipOptions(n_frames=2, size=32, faces=False))
    assert report.written == ["a"]
    assert [f["file"] for f in report.failures] == [str(folder / ".hidden.mp4")]
    assert "not a plain file name" in report.failures[0]["reason"]
