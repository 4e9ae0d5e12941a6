"""`predict --backend perception`: transcript tables and clip folders -> the files `bench score` reads, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectgpt.cli import main
from affectgpt.errors import InputError
from affectgpt.infer.perceive import (
    PARTIAL,
    keep_named,
    output_files,
    perceive_transcripts,
    read_transcripts,
)
from affectgpt.io.npy import read_npz
from affectgpt.perception.pipeline import Pipeline
from conftest import write_csv

ROWS = [("r1", "我今天太开心了，我们赢了！", "I am so happy today, we won!"),
        ("r2", "我好担心他出事了。", "I'm so worried something happened to him."),
        ("r3", "你给我滚出去！我受够了！", "Get out of here! I've had enough!"),
        ("r4", "", ""),
        ("r5", "他走了，再也不会回来了。", "He is gone and will never come back.")]


@pytest.fixture(scope="module")
def text_pipeline() -> Pipeline:
    return Pipeline(modalities=("text",))


def _transcripts(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "t.csv", "name,chinese,english", ROWS)


def test_transcripts_give_the_files_the_scorer_reads_and_it_scores_them(tmp_path):
    out = tmp_path / "out"
    assert main(["predict", "--backend", "perception", "--transcripts", str(_transcripts(tmp_path)),
                 "--output", str(out)]) == 0
    files = output_files(out)
    labels = read_npz(files["labels"], ["filenames", "fileitems"])
    assert list(labels["filenames"]) == [r[0] for r in ROWS]
    by_name = dict(zip(labels["filenames"], labels["fileitems"], strict=True))
    assert "happy" in by_name["r1"] and "angry" in by_name["r3"]
    assert by_name["r4"] == ""  # no text: no evidence, no label
    sentiment = dict(zip(*read_npz(files["sentiment"], ["filenames", "fileitems"]).values(), strict=True))
    assert sentiment["r1"] == "positive" and sentiment["r3"] == "negative"
    records = [json.loads(line) for line in files["records"].read_text(encoding="utf-8").splitlines()]
    assert all(r["backend"] == "perception" for r in records)
    assert "no_text" in records[3]["flags"] and "no_evidence" in records[3]["flags"]
    assert not (out / PARTIAL).exists()
    # the scorer reads the folder directly (epoch 0), for a basic set and a sentiment set
    gt = write_csv(tmp_path / "gt.csv", "name,label", [("r1", "happy"), ("r2", "worried"), ("r3", "angry"),
                                                        ("r5", "sad")])
    result = tmp_path / "score.json"
    assert main(["bench", "score", "--dataset", "mer2023", "--protocol", "builtin", "--predictions", str(out),
                 "--labels", str(gt), "--format", "json", "--output", str(result)]) == 0
    scored = json.loads(result.read_text(encoding="utf-8"))
    assert scored["epochs"][0]["epoch"] == 0 and scored["epochs"][0]["metrics"]["hit"] >= 0.5
    scores = write_csv(tmp_path / "scores.csv", "name,label", [("r1", 2.0), ("r3", -2.4), ("r5", -1.0)])
    assert main(["bench", "score", "--dataset", "cmumosi", "--protocol", "builtin", "--predictions", str(out),
                 "--labels", str(scores), "--format", "json", "--output", str(result)]) == 0


def test_a_killed_run_resumes_and_ends_with_the_same_files(tmp_path, text_pipeline):
    rows = read_transcripts(_transcripts(tmp_path))
    whole = tmp_path / "whole"
    perceive_transcripts(text_pipeline, rows, whole, batch_size=2)

    class Killed(Exception):
        pass

    def kill_after_first_batch(_: int) -> None:
        raise Killed

    cut = tmp_path / "cut"
    with pytest.raises(Killed):
        perceive_transcripts(text_pipeline, rows, cut, batch_size=2, on_item=kill_after_first_batch)
    assert not output_files(cut)["labels"].exists()
    kept = (cut / PARTIAL).read_text(encoding="utf-8").splitlines()
    assert len(kept) == 2
    (cut / PARTIAL).write_text("\n".join(kept) + '\n{"name": "r3", "descr', encoding="utf-8")  # a cut last line
    report = perceive_transcripts(text_pipeline, rows, cut, batch_size=2)
    assert report.resumed == 2 and report.answered == 3
    for role, path in output_files(whole).items():
        if role == "records":  # the same answers; only the measured timings differ
            def untimed(p: Path) -> list[dict]:
                return [{k: v for k, v in json.loads(line).items() if k != "timings"}
                        for line in p.read_text(encoding="utf-8").splitlines()]

            assert untimed(output_files(cut)[role]) == untimed(path)
        else:
            assert output_files(cut)[role].read_bytes() == path.read_bytes(), role
    again = perceive_transcripts(text_pipeline, rows, cut, batch_size=2)
    assert again.answered == 0 and again.resumed == len(rows)


def test_names_keep_only_the_rows_a_label_file_names(tmp_path):
    rows = read_transcripts(_transcripts(tmp_path))
    names = write_csv(tmp_path / "names.csv", "name,label", [("r2", "worried"), ("zz", "sad")])
    assert [r[0] for r in keep_named(rows, names)] == ["r2"]
    with pytest.raises(InputError, match="none of its names"):
        keep_named(rows, write_csv(tmp_path / "other.csv", "name,label", [("zz", "sad")]))


@pytest.mark.parametrize(("header", "rows", "message"), [
    ("id,text", [("a", "hi")], "no name column"),
    ("name,label", [("a", "happy")], "no text column"),
    ("name,text", [("a", "hi"), ("a", "ho")], "appears twice"),
])
def test_bad_transcript_tables_are_input_errors_naming_the_file(tmp_path, header, rows, message):
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(InputError, match=message) as caught:
        read_transcripts(path)
    assert "bad.csv" in str(caught.value)


def test_a_name_text_table_reads_its_text_column(tmp_path):
    path = write_csv(tmp_path / "t.csv", "name,text", [("a", "I am happy")])
    assert read_transcripts(path) == [("a", "I am happy", "")]


@pytest.mark.parametrize("argv", [
    ["predict", "--backend", "perception", "--output", "out"],  # neither --clips nor --transcripts
    ["predict", "--backend", "perception", "--clips", "c", "--transcripts", "t.csv", "--output", "out"],
    ["predict", "--backend", "perception", "--transcripts", "t.csv", "--model", "ckpt", "--output", "out"],
    ["predict", "--transcripts", "t.csv", "--output", "out"],  # the affectgpt backend has no text-only mode
    ["predict", "--backend", "perception", "--clips", "c", "--names", "n.csv", "--output", "out"],
])
def test_option_mistakes_are_one_error_line_and_nothing_written(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert not (tmp_path / "out").exists()


def test_a_clip_folder_lists_the_unreadable_clip_and_a_rerun_answers_only_what_is_missing(
        tmp_path, square_clip, no_audio_clip, capsys):
    import shutil

    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(square_clip, clips / "a.mp4")
    shutil.copy(no_audio_clip, clips / "b.mp4")
    (clips / "c.mp4").write_bytes(b"not a video" * 50)
    out = tmp_path / "out"
    argv = ["predict", "--backend", "perception", "--clips", str(clips), "--output", str(out)]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "c.mp4" in err and "perception.failures.json" in err
    failures = json.loads((out / "perception.failures.json").read_text(encoding="utf-8"))["failures"]
    assert [Path(f["file"]).name for f in failures] == ["c.mp4"]
    labels = read_npz(output_files(out)["labels"], ["filenames", "fileitems"])
    assert list(labels["filenames"]) == ["a", "b"]
    records = [json.loads(line) for line in output_files(out)["records"].read_text(encoding="utf-8").splitlines()]
    assert "no_audio" in records[1]["flags"] and all(r["backend"] == "perception" for r in records)
    (clips / "c.mp4").unlink()
    assert main(argv) == 0
    assert "0 answered, 2 kept from before, 0 failed" in capsys.readouterr().err
    assert not (out / "perception.failures.json").exists()


def test_answers_of_another_pipeline_are_not_resumed(tmp_path, text_pipeline, monkeypatch):
    rows = read_transcripts(_transcripts(tmp_path))
    out = tmp_path / "out"
    perceive_transcripts(text_pipeline, rows, out)
    assert (out / "perception.fingerprint").read_text().strip() == text_pipeline.fingerprint()
    again = perceive_transcripts(text_pipeline, rows, out)  # the same pipeline: everything is kept
    assert again.resumed == len(rows) and again.answered == 0
    from affectgpt.perception import labels

    monkeypatch.setattr(labels, "RATIO", 0.3)  # another label rule: the old answers would be wrong now
    assert text_pipeline.fingerprint() != (out / "perception.fingerprint").read_text().strip()
    with pytest.raises(InputError, match="another perception pipeline") as caught:
        perceive_transcripts(text_pipeline, rows, out)
    assert "out" in str(caught.value)
