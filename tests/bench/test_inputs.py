"""Finding prediction files, reading ground truth (and its cache), aligning names."""

from __future__ import annotations

import numpy as np
import pytest

from affectgpt.bench.datasets import DATASETS
from affectgpt.bench.inputs import align, find_prediction_files, load_ground_truth
from affectgpt.errors import InputError
from affectgpt.formats import labels as label_files


def test_prediction_files_are_sorted_by_epoch_and_filtered_by_task(tmp_path):
    for name in ("checkpoint_000100_loss_0.1-openset.csv", "checkpoint_000020_loss_0.9-openset.npz",
                 "checkpoint_000020_loss_0.9-openset-sentiment.npz", "checkpoint_000020_loss_0.9.npz",
                 "notes.txt"):
        (tmp_path / name).write_text("x")
    basic = find_prediction_files(tmp_path, DATASETS["mer2023"])
    assert [(f.epoch, f.path.name) for f in basic] == [(20, "checkpoint_000020_loss_0.9-openset.npz"),
                                                       (100, "checkpoint_000100_loss_0.1-openset.csv")]
    sentiment = find_prediction_files(tmp_path, DATASETS["cmumosi"])
    assert [f.path.name for f in sentiment] == ["checkpoint_000020_loss_0.9-openset-sentiment.npz"]


def test_two_files_for_one_epoch_is_an_error(tmp_path):
    (tmp_path / "checkpoint_000020_loss_0.9-openset.csv").write_text("x")
    (tmp_path / "checkpoint_000020_loss_0.8-openset.npz").write_text("x")
    with pytest.raises(InputError, match="two prediction files for epoch 20"):
        find_prediction_files(tmp_path, DATASETS["mer2023"])


def test_single_file_keeps_the_epoch_its_name_gives(tmp_path):
    path = tmp_path / "checkpoint_000045_loss_0.551-openset.npz"
    path.write_text("x")
    assert find_prediction_files(path, DATASETS["ovmerdplus"])[0].epoch == 45
    other = tmp_path / "mine.csv"
    other.write_text("x")
    assert find_prediction_files(other, DATASETS["ovmerdplus"])[0].epoch is None


def test_ground_truth_is_unpickled_once_then_served_from_the_cache(tmp_path, monkeypatch):
    np.savez(tmp_path / "label.npz", test_corpus={"a": {"emo": 0, "val": np.float32(1.5)},
                                                  "b": {"emo": 0, "val": -0.5}})
    first = load_ground_truth(tmp_path, DATASETS["cmumosi"])
    assert first == {"a": 1.5, "b": -0.5}

    def no_unpickling(*args):
        raise AssertionError("the label file was unpickled again")

    monkeypatch.setattr(label_files, "_unpickle_labels", no_unpickling)
    assert load_ground_truth(tmp_path, DATASETS["cmumosi"]) == first
    # another dataset reading the same file with another recipe is not served the wrong entry
    np.savez(tmp_path / "label.npz", test_corpus={"a": {"emo": 0, "val": 2.0}})
    with pytest.raises(AssertionError, match="unpickled again"):
        load_ground_truth(tmp_path, DATASETS["cmumosi"])


def test_ov_empty_label_becomes_neutral(tmp_path):
    (tmp_path / "ovlabel.csv").write_text('name,openset\na,[]\nb,"[\'happy\']"\n')
    assert load_ground_truth(tmp_path, DATASETS["ovmerdplus"]) == {"a": "neutral", "b": "['happy']"}


def test_split_missing_from_the_label_file(tmp_path):
    np.savez(tmp_path / "label.npz", train_corpus={"a": {"val": 1.0}})
    with pytest.raises(InputError, match="no split 'test_corpus'"):
        load_ground_truth(tmp_path, DATASETS["sims"])


def test_class_index_out_of_range(tmp_path):
    np.savez(tmp_path / "label_4way.npz", whole_corpus={"Ses05F_x": {"emo": 9, "val": -10}})
    with pytest.raises(InputError, match=r"class index 9 out of range 0\.\.3"):
        load_ground_truth(tmp_path, DATASETS["iemocapfour"])


def test_align_counts_extra_and_reports_the_first_missing(tmp_path):
    gt = {f"n{i}": "happy" for i in range(8)}
    preds = {"n0": "[happy]", "zz": "[sad]"}
    expected = r"7 of 8 ground-truth names have no prediction \(n1, n2, n3, n4, n5, \.\.\.\)"
    with pytest.raises(InputError, match=expected):
        align(gt, preds, tmp_path / "p.csv")
    aligned = align(gt, preds, tmp_path / "p.csv", allow_missing=True)
    assert aligned.answers[0] == "[happy]" and aligned.answers[1] == "" and aligned.extra == 1
