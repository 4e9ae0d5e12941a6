"""The per-epoch file names of the original release, and that the scorer and extraction read them alike."""

from __future__ import annotations

import pytest

from affectgpt.bench.datasets import DATASETS, TASK_METRICS
from affectgpt.bench.inputs import find_prediction_files
from affectgpt.extract.job import FORMATS, plan
from affectgpt.formats.checkpoints import (
    CHECKPOINT_FILE,
    EXTRACTION_STEPS,
    FILE_EXTENSIONS,
    GENERATED_SUFFIX,
    OPENSET_SUFFIX,
    PREDICTION_KEYS,
    SENTIMENT_SUFFIX,
    TASK_SUFFIX,
    checkpoint_files,
    checkpoint_name,
)

NAMES = ("checkpoint_000100_loss_0.1-openset.csv", "checkpoint_000020_loss_0.9-openset.npz",
         "checkpoint_000020_loss_0.9-openset-sentiment.npz", "checkpoint_000020_loss_0.9.npz",
         "checkpoint_000100_loss_0.1.jsonl", "checkpoint_x_loss_0.1-openset.npz", "checkpoint_000030_loss_0.5.txt",
         "notes.txt")


def test_task_suffixes_cover_every_task_family():
    assert set(TASK_SUFFIX) == set(TASK_METRICS) == set(PREDICTION_KEYS)
    assert TASK_SUFFIX == {"basic": "-openset", "ov": "-openset", "sentiment": "-openset-sentiment"}
    assert {TASK_SUFFIX[d.task] for d in DATASETS.values()} == {OPENSET_SUFFIX, SENTIMENT_SUFFIX}


def test_extraction_steps_chain_into_what_the_scorer_reads():
    labels_reads, labels_writes = EXTRACTION_STEPS["labels"]
    sentiment_reads, sentiment_writes = EXTRACTION_STEPS["sentiment"]
    assert labels_reads == GENERATED_SUFFIX == ""
    assert labels_writes == sentiment_reads == TASK_SUFFIX["basic"] == TASK_SUFFIX["ov"]
    assert sentiment_writes == TASK_SUFFIX["sentiment"]
    assert FORMATS == FILE_EXTENSIONS == ("npz", "csv", "jsonl")


@pytest.mark.parametrize(("name", "parts"), [
    ("checkpoint_000030_loss_0.602-openset.npz", ("000030", "0.602", "-openset", "npz")),
    ("checkpoint_000030_loss_0.602-openset-sentiment.csv", ("000030", "0.602", "-openset-sentiment", "csv")),
    ("checkpoint_000030_loss_0.602.jsonl", ("000030", "0.602", "", "jsonl")),
    ("checkpoint_7_loss_1e-3-openset.npz", ("7", "1e-3", "-openset", "npz")),
    ("checkpoint_000300.npz", ("000300", None, "", "npz")),  # a training run's checkpoint_<step>/ folder
    ("checkpoint_000300-openset.csv", ("000300", None, "-openset", "csv")),
    ("checkpoint_000300-openset-sentiment.jsonl", ("000300", None, "-openset-sentiment", "jsonl")),
])
def test_checkpoint_names_round_trip(name, parts):
    match = CHECKPOINT_FILE.match(name)
    assert (match["epoch"], match["loss"], match["kind"], match["ext"]) == parts
    assert checkpoint_name(*parts) == name


@pytest.mark.parametrize("name", ["checkpoint_000030_loss_0.602-openset.txt", "checkpoint__loss_0.6.npz",
                                  "checkpoint_000030_loss_0.602-sentiment.npz", "x-checkpoint_1_loss_1.npz",
                                  "checkpoint_000300_loss_.npz", "checkpoint_000300x.npz", "ckpt60.npz"])
def test_other_names_do_not_match(name):
    assert CHECKPOINT_FILE.match(name) is None


def test_checkpoint_files_filters_by_suffix_in_name_order(tmp_path):
    for name in NAMES:
        (tmp_path / name).write_text("x")
    assert [p.name for p, _ in checkpoint_files(tmp_path, GENERATED_SUFFIX)] == \
        ["checkpoint_000020_loss_0.9.npz", "checkpoint_000100_loss_0.1.jsonl"]
    assert [m["epoch"] for _, m in checkpoint_files(tmp_path, OPENSET_SUFFIX)] == ["000020", "000100"]


def test_scorer_and_extraction_discover_the_same_files(tmp_path):
    for name in NAMES:
        (tmp_path / name).write_text("x")
    out = tmp_path / "out"
    for step, (reads, _writes) in EXTRACTION_STEPS.items():
        expected = [p for p, _ in checkpoint_files(tmp_path, reads)]
        assert [t.source for t in plan(step, tmp_path, out)] == expected, step
    scored = {task: [f.path for f in find_prediction_files(tmp_path, DATASETS[key])]
              for task, key in (("basic", "mer2023"), ("sentiment", "cmumosi"))}
    assert scored["basic"] == [t.source for t in plan("sentiment", tmp_path, out)]
    assert scored["sentiment"] == [p for p, _ in checkpoint_files(tmp_path, SENTIMENT_SUFFIX)]
    # what extraction writes is what the scorer then reads
    written = [t.target.name for t in plan("labels", tmp_path, out)]
    assert written == ["checkpoint_000020_loss_0.9-openset.npz", "checkpoint_000100_loss_0.1-openset.npz"]
    assert all(CHECKPOINT_FILE.match(n)["kind"] == TASK_SUFFIX["basic"] for n in written)


def test_names_without_a_loss_are_found_by_extraction_and_the_scorer_alike(tmp_path):
    """`predict` on a training checkpoint writes checkpoint_<step>.npz: extraction finds it, the scorer then finds
    what extraction wrote, and the placeholder names in their messages show the loss part as optional."""
    (tmp_path / "checkpoint_000300.npz").write_text("x")
    (tmp_path / "checkpoint_000100_loss_0.1.npz").write_text("x")
    out = tmp_path / "out"
    written = [t.target.name for t in plan("labels", tmp_path, out)]
    assert written == ["checkpoint_000100_loss_0.1-openset.npz", "checkpoint_000300-openset.npz"]
    for name in written:
        (tmp_path / name).write_text("x")
    assert [(f.path.name, f.epoch) for f in find_prediction_files(tmp_path, DATASETS["mer2023"])] == \
        [("checkpoint_000100_loss_0.1-openset.npz", 100), ("checkpoint_000300-openset.npz", 300)]
    assert checkpoint_name("<E>", "<x>", "", "npz") == "checkpoint_<E>[_loss_<x>].npz"
