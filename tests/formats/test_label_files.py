"""The original release's label locations (LABEL_SOURCES), finding a label file, and the cached npz reader."""

from __future__ import annotations

import numpy as np
import pytest

from affectgpt.bench.datasets import DATASETS
from affectgpt.bench.inputs import find_label_file as bench_find_label_file
from affectgpt.errors import InputError
from affectgpt.formats import labels as label_files
from affectgpt.formats.labels import LABEL_SOURCES, find_label_file, label_source, read_label_npz


def test_label_sources_cover_every_dataset_in_the_table_order():
    assert list(LABEL_SOURCES) == list(DATASETS)
    for key, spec in DATASETS.items():
        assert spec.labels is LABEL_SOURCES[key]


def test_only_the_sentiment_sets_store_scores():
    assert {k for k, s in LABEL_SOURCES.items() if s.holds_scores} == \
        {k for k, d in DATASETS.items() if d.task == "sentiment"}


def test_an_unknown_dataset_names_the_closest_one():
    assert label_source("meld") is LABEL_SOURCES["meld"]
    with pytest.raises(InputError, match="unknown dataset 'mer2099'") as caught:
        label_source("mer2099")
    assert "did you mean 'mer20" in str(caught.value.fix)


def test_label_file_names_are_tried_in_order(tmp_path):
    source = LABEL_SOURCES["ovmerdplus"]
    assert source.file_names == ("ovlabel.csv", "check-openset.csv", "test_labels.csv")
    (tmp_path / "test_labels.csv").write_text("name,label\na,happy\n")
    (tmp_path / "check-openset.csv").write_text("name,openset\na,happy\n")
    assert find_label_file(tmp_path, source, "ovmerdplus") == tmp_path / "check-openset.csv"
    assert find_label_file(tmp_path / "test_labels.csv", source, "ovmerdplus") == tmp_path / "test_labels.csv"


def test_the_scorer_finds_label_files_with_the_same_rule(tmp_path):
    (tmp_path / "label-6way.npz").write_text("x")
    assert bench_find_label_file(tmp_path, DATASETS["mer2023"]) == \
        find_label_file(tmp_path, LABEL_SOURCES["mer2023"], "mer2023")
    for find in (lambda p: bench_find_label_file(p, DATASETS["meld"]),
                 lambda p: find_label_file(p, LABEL_SOURCES["meld"], "meld")):
        with pytest.raises(InputError, match=r"no label file for meld \(looked for label.npz, test_labels.csv\)"):
            find(tmp_path)
        with pytest.raises(InputError, match="labels not found"):
            find(tmp_path / "absent")


def test_read_label_npz_maps_class_codes_keeps_the_session_and_caches(tmp_path, monkeypatch):
    path = tmp_path / "label_4way.npz"
    np.savez(path, whole_corpus={"Ses05F_a": {"emo": 3}, "Ses01M_b": {"emo": 0}, "Ses05M_c": {"emo": "sad"}})
    source = LABEL_SOURCES["iemocapfour"]
    first = read_label_npz(path, source, "iemocapfour")
    assert first == {"Ses05F_a": "anger", "Ses05M_c": "sad"}

    def no_unpickling(*args):
        raise AssertionError("unpickled again")

    monkeypatch.setattr(label_files, "_unpickle_labels", no_unpickling)
    assert read_label_npz(path, source, "iemocapfour") == first


def test_read_label_npz_names_the_dataset_when_the_split_is_missing(tmp_path):
    path = tmp_path / "label.npz"
    np.savez(path, train_corpus={"a": {"val": 1.0}})
    with pytest.raises(InputError, match="no split 'test_corpus'") as caught:
        read_label_npz(path, LABEL_SOURCES["cmumosei"], "cmumosei")
    assert "original label file of cmumosei" in str(caught.value.fix)
