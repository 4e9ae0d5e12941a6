"""Samples whose media cannot be read are counted and listed, never replaced (the original swapped in others)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from affectgpt.data.sample import Sample
from affectgpt.errors import InputError
from affectgpt.train.build import usable_samples


def test_unreadable_media_is_listed_and_the_rest_kept(tmp_path, square_clip):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    samples = [Sample("ok", video=square_clip, labels=("happy",)),
               Sample("gone", video=tmp_path / "missing.mp4", labels=("sad",)),
               Sample("empty", video=empty, labels=("angry",))]
    kept = usable_samples(samples, "face", tmp_path)
    assert [s.name for s in kept] == ["ok"]
    listed = json.loads((tmp_path / "skipped_samples.json").read_text())
    assert sorted(row["name"] for row in listed) == ["empty", "gone"]
    assert all(row["reason"] for row in listed)


def test_no_usable_sample_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no sample has readable media"):
        usable_samples([Sample("gone", video=Path(tmp_path / "x.mp4"), labels=("sad",))], "face", tmp_path)
