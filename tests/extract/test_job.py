"""The extraction job: which files become which outputs, skipping finished ones, and no partial output.

A small scripted Extractor stands in for a backend here: these tests are about files, not extraction
(the extractors have their own tests).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectgpt.bench.datasets import DATASETS
from affectgpt.bench.inputs import find_prediction_files, read_predictions
from affectgpt.errors import InputError
from affectgpt.extract.base import LabelResult, SentimentResult
from affectgpt.extract.job import plan, run_file, run_job
from affectgpt.io.tables import read_table


class ScriptedExtractor:
    """Answers from a fixed table; texts listed in `fail` get a failed result."""

    name = "scripted"

    def __init__(self, fail=()):
        self.fail = set(fail)
        self.calls = 0

    def describe(self):
        return {"backend": "scripted"}

    def labels(self, texts, on_result=None):
        self.calls += 1
        out = []
        for i, text in enumerate(texts):
            result = (LabelResult(None, "", "failed", "HTTP 500") if text in self.fail
                      else LabelResult(None, "oops", "malformed", "prose") if "?" in text
                      else LabelResult(("happy",), "[happy]"))
            if on_result:
                on_result(i, result)
            out.append(result)
        return out

    def sentiment(self, answers, on_result=None):
        return [SentimentResult("positive", "positive") for _ in answers]


def _generated(folder, epochs=(30, 35)):
    folder.mkdir(parents=True, exist_ok=True)
    for epoch in epochs:
        np.savez(folder / f"checkpoint_{epoch:06d}_loss_0.5.npz",
                 name2reason={"a": "He smiles.", "b": "She laughs?"})
    return folder


def test_plan_for_a_folder_follows_the_original_naming(tmp_path):
    src = _generated(tmp_path / "gen")
    (src / "checkpoint_000030_loss_0.5-openset.npz").write_text("x")  # not an input of the labels step
    tasks = plan("labels", src, tmp_path / "out")
    assert [(t.source.name, t.target.name) for t in tasks] == [
        ("checkpoint_000030_loss_0.5.npz", "checkpoint_000030_loss_0.5-openset.npz"),
        ("checkpoint_000035_loss_0.5.npz", "checkpoint_000035_loss_0.5-openset.npz")]
    sentiment = plan("sentiment", src, src, "csv")
    assert [t.target.name for t in sentiment] == ["checkpoint_000030_loss_0.5-openset-sentiment.csv"]


def test_plan_errors(tmp_path):
    with pytest.raises(InputError, match="input not found"):
        plan("labels", tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no input files named"):
        plan("labels", tmp_path / "empty", tmp_path / "out")
    src = _generated(tmp_path / "gen")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="must be a folder"):
        plan("labels", src, tmp_path / "file.txt")


def test_outputs_are_read_by_the_scorer_and_carry_provenance(tmp_path):
    src = _generated(tmp_path / "gen")
    reports = run_job("labels", src, src, ScriptedExtractor())
    assert [(r.ok, r.malformed, r.failed) for r in reports] == [(1, 1, 0), (1, 1, 0)]
    files = find_prediction_files(src, DATASETS["mer2023"])
    assert [f.epoch for f in files] == [30, 35]
    assert read_predictions(files[0], DATASETS["mer2023"]) == {"a": "[happy]", "b": "oops"}
    meta = json.loads((src / "checkpoint_000030_loss_0.5-openset.npz.extract.json").read_text())
    assert meta["extractor"] == {"backend": "scripted"} and meta["malformed"] == 1
    assert meta["problems"] == [{"name": "b", "status": "malformed", "answer": "oops", "detail": "prose"}]
    sentiment = run_job("sentiment", src, src, ScriptedExtractor(), fmt="jsonl")
    assert [r.ok for r in sentiment] == [2, 2]
    target = src / "checkpoint_000030_loss_0.5-openset-sentiment.jsonl"
    assert read_table(target, ("sentiment",)).as_dict() == {"a": "positive", "b": "positive"}


def test_finished_outputs_are_skipped_unless_forced(tmp_path):
    src = _generated(tmp_path / "gen", epochs=(30,))
    task = plan("labels", src, tmp_path / "out")[0]
    extractor = ScriptedExtractor()
    assert not run_file("labels", task, extractor).skipped
    assert run_file("labels", task, extractor).skipped and extractor.calls == 1
    assert not run_file("labels", task, extractor, force=True).skipped and extractor.calls == 2


def test_a_failed_item_leaves_no_output(tmp_path):
    src = _generated(tmp_path / "gen", epochs=(30,))
    task = plan("labels", src, tmp_path / "out", "csv")[0]
    report = run_file("labels", task, ScriptedExtractor(fail={"He smiles."}))
    assert report.failed == 1 and report.problems[0]["detail"] == "HTTP 500"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_progress_is_reported_through_callbacks(tmp_path):
    src = _generated(tmp_path / "gen", epochs=(30,))
    task = plan("labels", src, tmp_path / "out")[0]
    started, items = [], []
    run_file("labels", task, ScriptedExtractor(), on_start=started.append, on_item=items.append)
    assert started == [2] and items == [1, 1]
    started.clear()
    assert run_file("labels", task, ScriptedExtractor(), on_start=started.append).skipped
    assert started == []  # a skipped file starts no progress
    items.clear()
    run_job("labels", src, tmp_path / "out", ScriptedExtractor(), force=True, on_start=started.append,
            on_item=items.append)
    assert started == [2] and items == [1, 1]


def test_a_file_mostly_malformed_is_not_written(tmp_path):
    """One rule for every backend: more than half of the items malformed or unreadable -> not written."""
    src = tmp_path / "gen"
    src.mkdir()
    np.savez(src / "checkpoint_000030_loss_0.5.npz", name2reason={"a": "Why?", "b": "How?", "c": "He smiles."})
    task = plan("labels", src, tmp_path / "out", "csv")[0]
    report = run_file("labels", task, ScriptedExtractor())
    assert (report.ok, report.malformed) == (1, 2) and report.incomplete and not report.written
    assert "2 of 3 items are malformed or unreadable" in report.refused
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
