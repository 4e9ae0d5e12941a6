"""Where the original release keeps each dataset's ground truth, and reading its `label*.npz` files (cached).

LABEL_SOURCES says, per dataset name, which file names hold the labels, which split key inside a
`label*.npz` is the test set, which per-name field holds the label and how to turn a stored value into a
label. The label files hold pickled dicts; they are read with the allow-list unpickler (io/npy.py,
io/safe_pickle.py) once and then served from the per-user cache (io/cache.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.registry import unknown_name


@dataclass(frozen=True, slots=True)
class LabelSource:
    """Where and how one dataset's ground truth is stored.

    Attributes:
        npz_names: original `label*.npz` file names, tried in order.
        split: the key of the test split inside the npz.
        field: the per-name field holding the label ('emo' or 'val').
        classes: for integer-coded 'emo' fields, the class names by index.
        session: keep only names whose 5th character is this digit (IEMOCAP: Session 5 is the test set).
        csv_names: CSV files (name + one label column), tried after the npz files.
        csv_column: the label column of those CSVs ('openset' for the OV-MERD files, else 'label').
    """

    npz_names: tuple[str, ...] = ()
    split: str = "test_corpus"
    field: str = "emo"
    classes: tuple[str, ...] = ()
    session: str | None = None
    csv_names: tuple[str, ...] = ("test_labels.csv",)
    csv_column: str = "label"

    @property
    def file_names(self) -> tuple[str, ...]:
        """Every label file name this source looks for, in the order tried."""
        return (*self.npz_names, *self.csv_names)

    @property
    def holds_scores(self) -> bool:
        """The stored label is a sentiment score (field 'val'), not an emotion word."""
        return self.field == "val"


_MELD_CLASSES = ("anger", "joy", "sadness", "neutral", "disgust", "fear", "surprise")
_IEMOCAP_CLASSES = ("happy", "sad", "neutral", "anger")
_SCORES = LabelSource(npz_names=("label.npz",), field="val")

LABEL_SOURCES: dict[str, LabelSource] = {
    "mer2023": LabelSource(npz_names=("label-6way.npz",), split="test1_corpus", field="emo"),
    "mer2024": LabelSource(npz_names=("label-6way.npz",), split="test1_corpus", field="emo"),
    "meld": LabelSource(npz_names=("label.npz",), split="test_corpus", field="emo", classes=_MELD_CLASSES),
    "iemocapfour": LabelSource(npz_names=("label_4way.npz",), split="whole_corpus", field="emo",
                               classes=_IEMOCAP_CLASSES, session="5"),
    "cmumosi": _SCORES,
    "cmumosei": _SCORES,
    "sims": _SCORES,
    "simsv2": _SCORES,
    "ovmerdplus": LabelSource(csv_names=("ovlabel.csv", "check-openset.csv", "test_labels.csv"),
                              csv_column="openset"),
}
"""The ground-truth location of every MER-UniBench dataset of the original release, by dataset name."""


def label_source(dataset: str) -> LabelSource:
    """The label location of `dataset`, or an InputError with the closest known name."""
    try:
        return LABEL_SOURCES[dataset]
    except KeyError:
        raise unknown_name("dataset", dataset, list(LABEL_SOURCES)) from None


def find_label_file(path: str | Path, source: LabelSource, dataset: str) -> Path:
    """The ground-truth file: `path` itself, or the first of `source.file_names` inside the folder `path`."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise InputError("labels not found", path=path, fix="pass a label file or a folder holding one")
    for name in source.file_names:
        if (path / name).is_file():
            return path / name
    raise InputError(f"no label file for {dataset} (looked for {', '.join(source.file_names)})", path=path,
                     fix="pass --labels with the file, or a CSV with columns name,label")


MISSING_MARKERS = frozenset({"nan", "none"})
"""Texts (whole value, stripped, any case) that pandas, numpy or Python write for a missing label: never a word."""


def is_missing_label(value: Any) -> bool:
    """True for a value that stands for "no label": None, a float NaN, or the text "nan"/"None" (any case).

    Only the whole value counts: "[nan]", "nanny" or "none of them" are labels.
    """
    if value is None:
        return True
    if isinstance(value, float):
        return value != value  # NaN
    return isinstance(value, str) and value.strip().lower() in MISSING_MARKERS


_LABEL_CACHE_FORMAT = 1


def read_label_npz(path: Path, source: LabelSource, dataset: str) -> dict[str, Any]:
    """name -> stored label of the split `source.split` of an original label file of `dataset`.

    The file is unpickled once; later reads of the same bytes with the same recipe come from the cache.
    """
    import hashlib
    import json

    from affectgpt.io.cache import read_entry, write_entry

    recipe = json.dumps([source.split, source.field, source.classes, source.session])
    key = hashlib.sha256(path.read_bytes() + recipe.encode()).hexdigest()
    cached = read_entry("labels", key, _LABEL_CACHE_FORMAT)
    if isinstance(cached, dict):
        return cached
    labels = _unpickle_labels(path, source, dataset)
    write_entry("labels", key, _LABEL_CACHE_FORMAT, labels)
    return labels


def _unpickle_labels(path: Path, source: LabelSource, dataset: str) -> dict[str, Any]:
    from affectgpt.io.npy import read_npz

    arrays = read_npz(path, keys=[source.split])
    corpus = arrays.get(source.split)
    if not isinstance(corpus, Mapping):
        raise InputError(f"no split {source.split!r} (keys: {sorted(arrays)})", path=path, field=source.split,
                         fix=f"use the original label file of {dataset}, or a CSV name,label")
    out = {}
    for name, entry in corpus.items():
        name = str(name)
        if source.session is not None and (len(name) < 5 or name[4] != source.session):
            continue
        if not isinstance(entry, Mapping) or source.field not in entry:
            raise InputError(f"entry {name!r} has no field {source.field!r}", path=path,
                             field=f"{source.split}.{name}.{source.field}", fix="use the original label file")
        out[name] = _class_name(path, source, name, entry[source.field])
    if not out:
        raise InputError(f"split {source.split!r} holds no test names", path=path, field=source.split,
                         fix="use the original label file")
    return out


def _class_name(path: Path, source: LabelSource, name: str, value: Any) -> Any:
    """An integer class code of a `classes` source becomes its class name; anything else is kept."""
    if not source.classes or isinstance(value, str):
        return value
    index = int(value)
    if not 0 <= index < len(source.classes):
        raise InputError(f"class index {index} out of range 0..{len(source.classes) - 1}", path=path,
                         field=f"{source.split}.{name}.{source.field}", fix="use the original label file")
    return source.classes[index]
