"""Every command's output option is checked before any work: a folder where a file is expected, a file where a
folder is expected, a place that cannot be written -> one `error:` line naming the option, exit 2, no traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from affectgpt.cli import main
from conftest import write_csv


def _one_error(capsys, *parts: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def _score_inputs(tmp_path: Path) -> list[str]:
    labels = write_csv(tmp_path / "labels.csv", "name,label", [("s1", "happy"), ("s2", "sad")])
    preds = write_csv(tmp_path / "preds" / "checkpoint_000001_loss_0.1-openset.csv", "name,openset",
                      [("s1", "[happy]"), ("s2", "[sad]")])
    return ["--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels), "--protocol", "builtin"]


def test_bench_score_output_that_is_a_folder(tmp_path, capsys):
    folder = tmp_path / "existing"
    folder.mkdir()
    assert main(["bench", "score", *_score_inputs(tmp_path), "--output", str(folder)]) == 2
    _one_error(capsys, str(folder), "--output", "is a folder", "Fix: name a file")
    assert list(folder.iterdir()) == []


def test_bench_score_output_below_a_file(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    assert main(["bench", "score", *_score_inputs(tmp_path), "--output", str(tmp_path / "plain" / "r.json")]) == 2
    _one_error(capsys, "--output", "is a file, not a folder")


def test_bench_score_output_in_a_place_that_is_not_writable(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    assert main(["bench", "score", *_score_inputs(tmp_path), "--output", str(locked / "r.json")]) == 2
    _one_error(capsys, f"the folder {locked} is not writable")


def test_bench_suite_output_that_is_a_folder(tmp_path, capsys):
    (tmp_path / "root").mkdir()
    assert main(["bench", "suite", "--predictions-root", str(tmp_path / "root"), "--labels-root",
                 str(tmp_path / "root"), "--protocol", "builtin", "--output", str(tmp_path)]) == 2
    _one_error(capsys, "--output", "is a folder")


def test_bench_report_output_that_is_a_folder(tmp_path, capsys):
    result = tmp_path / "r.json"
    assert main(["bench", "score", *_score_inputs(tmp_path), "--format", "json", "--output", str(result)]) == 0
    capsys.readouterr()
    assert json.loads(result.read_text())["dataset"] == "mer2023"
    assert main(["bench", "report", str(result), "--output", str(tmp_path / "preds")]) == 2
    _one_error(capsys, "--output", "is a folder")


def test_bench_fetch_wheels_dest_that_is_a_file(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    assert main(["bench", "fetch-wheels", "--dest", str(tmp_path / "plain"), "--base-url", "http://127.0.0.1:9"]) == 2
    _one_error(capsys, "--dest", "is a file, but a folder is expected")


def test_preprocess_output_and_faces_npy_that_are_files(tmp_path, capsys):
    (tmp_path / "a.mp4").write_bytes(b"not checked before the outputs")
    (tmp_path / "plain").write_text("x")
    assert main(["preprocess", str(tmp_path / "a.mp4"), "--output", str(tmp_path / "plain"), "--no-progress"]) == 2
    _one_error(capsys, "--output", "is a file, but a folder is expected")
    assert main(["preprocess", str(tmp_path / "a.mp4"), "--output", str(tmp_path / "cache"), "--faces-npy",
                 str(tmp_path / "plain"), "--no-progress"]) == 2
    _one_error(capsys, "--faces-npy", "is a file, but a folder is expected")


def test_model_import_output_that_is_a_file(tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "ckpt.pth").write_bytes(b"x")
    (tmp_path / "plain").write_text("x")
    assert main(["model", "import", str(tmp_path / "ckpt.pth"), "--output", str(tmp_path / "plain")]) == 2
    _one_error(capsys, "--output", "is a file, but a folder is expected")


def test_predict_output_that_is_a_file(tmp_path, capsys):
    pytest.importorskip("torch")
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.mp4").write_bytes(b"x")
    (tmp_path / "plain").write_text("x")
    assert main(["predict", "--clips", str(clips), "--model", str(tmp_path / "ckpt"), "--output",
                 str(tmp_path / "plain")]) == 2
    _one_error(capsys, "--output", "is a file, but a folder is expected")


def test_predict_refuses_checkpoints_whose_outputs_collide(tmp_path, capsys):
    pytest.importorskip("torch")
    assert main(["predict", "--clips", str(tmp_path), "--model", str(tmp_path / "a" / "ckpt"),
                 str(tmp_path / "b" / "ckpt"), "--output", str(tmp_path / "out")]) == 2
    _one_error(capsys, "--model", "same name")


def test_features_extract_output_that_is_a_file(tmp_path, capsys):
    pytest.importorskip("torch")
    manifest = tmp_path / "m.csv"
    manifest.write_text("name,video,description\na,a.mp4,Smiles.\n")
    (tmp_path / "plain").write_text("x")
    assert main(["features", "extract", "--manifest", str(manifest), "--output", str(tmp_path / "plain"),
                 "--visual-encoder", "none", "--audio-encoder", "none", "--no-progress"]) == 2
    _one_error(capsys, "--output", "is a file, but a folder is expected")


def test_extract_single_file_input_needs_a_file_output(tmp_path, capsys):
    texts = write_csv(tmp_path / "texts.csv", "name,text", [("a", "She smiles, happy.")])
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["extract", "labels", "--input", str(texts), "--output", str(folder), "--no-progress"]) == 2
    line = _one_error(capsys, str(folder), "--output", "the input is a single file")
    assert "Fix: name the output file, such as" in line
    assert list(folder.iterdir()) == []
    assert main(["extract", "labels", "--input", str(texts), "--output", str(folder / "a.csv"), "--format", "csv",
                 "--no-progress"]) == 0
    assert (folder / "a.csv").is_file()


def test_extract_folder_input_needs_a_folder_output(tmp_path, capsys):
    import numpy as np

    source = tmp_path / "gen"
    source.mkdir()
    np.savez(source / "checkpoint_000030_loss_0.5.npz", name2reason={"a": "He smiles."})
    (tmp_path / "plain").write_text("x")
    assert main(["extract", "labels", "--input", str(source), "--output", str(tmp_path / "plain"),
                 "--no-progress"]) == 2
    _one_error(capsys, "--output", "must be a folder")
    assert main(["extract", "labels", "--input", str(source), "--output", str(tmp_path / "plain" / "sub"),
                 "--no-progress"]) == 2
    _one_error(capsys, "--output", "is a file, not a folder")


def test_extract_help_states_the_output_rule(capsys):
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a single input file gives a single output file, so --output names a file" in text
    assert "an input folder gives one output per file, so --output names a folder" in text
