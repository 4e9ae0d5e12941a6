"""The README's chain on a folder, with no renaming: predict -> extract labels -> bench score, through main([...]).

The tiny fidelity checkpoint answers clips the tests generate; the checkpoint folder is named like a training
run's (`checkpoint_000300`, no loss in the name), and like nothing at all (`ckpt60`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("av")

from tiny_models import released_checkpoint

from affectgpt.cli import main
from conftest import write_csv

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Our checkpoint folder of the original `released` fixture on the tiny base models, named like a training
    run's checkpoint."""
    return released_checkpoint(tmp_path_factory.mktemp("run") / "checkpoint_000300")


@pytest.fixture
def clips(tmp_path, square_clip, tone_clip) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(square_clip, folder / "sample_a.mp4")
    shutil.copy(tone_clip, folder / "sample_b.mkv")
    return folder


def _score(out: Path, labels: Path) -> list[str]:
    return ["bench", "score", "--protocol", "builtin", "--dataset", "mer2023", "--predictions", str(out),
            "--labels", str(labels)]


def test_predict_extract_score_on_one_folder(tiny_checkpoint, clips, tmp_path, capsys):
    labels = write_csv(tmp_path / "labels.csv", "name,label", [("sample_a", "happy"), ("sample_b", "sad")])
    out = tmp_path / "out"
    assert main(["predict", "--clips", str(clips), "--model", str(tiny_checkpoint), "--output", str(out),
                 "--max-new-tokens", "4"]) == 0
    assert (out / "checkpoint_000300.npz").is_file()
    assert main(["extract", "labels", "--input", str(out), "--output", str(out), "--no-progress"]) == 0
    assert (out / "checkpoint_000300-openset.npz").is_file()
    capsys.readouterr()
    assert main(_score(out, labels)) == 0
    table = capsys.readouterr().out
    assert re.search(r"\d+\.\d+", table) and "300" in table  # a score, for the checkpoint's step


def test_a_checkpoint_named_otherwise_says_how_extract_finds_it(tiny_checkpoint, clips, tmp_path, capsys):
    other = shutil.copytree(tiny_checkpoint, tmp_path / "ckpt60")
    labels = write_csv(tmp_path / "labels.csv", "name,label", [("sample_a", "happy"), ("sample_b", "sad")])
    out = tmp_path / "out"
    assert main(["predict", "--clips", str(clips), "--model", str(other), "--output", str(out),
                 "--max-new-tokens", "4"]) == 0
    err = capsys.readouterr().err
    assert f"--input {out / 'ckpt60.npz'}" in err and "checkpoint_<E>[_loss_<x>]" in err
    assert main(["extract", "labels", "--input", str(out / "ckpt60.npz"), "--output",
                 str(out / "ckpt60-openset.npz"), "--no-progress"]) == 0
    assert main(_score(out / "ckpt60-openset.npz", labels)) == 0
