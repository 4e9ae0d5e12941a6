"""THE dataset table of MER-UniBench: one DatasetSpec row per test set, the single place this knowledge lives.

Each row says what the task is, how big the test set is, which metric ranks it and where its ground truth
lives in the original release (file names, the split key inside a `label*.npz`, the field, and how to
turn the stored value into a label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from affectgpt.registry import unknown_name

Task = Literal["basic", "sentiment", "ov"]

# Metric keys of the JSON contract, per task family: (primary, *secondary).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "basic": ("hit",),
    "sentiment": ("waf", "acc"),
    "ov": ("f", "p", "r"),
}


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


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """One MER-UniBench test set.

    Attributes:
        key: the dataset name used on the command line and as folder name.
        title: the name printed in tables.
        task: 'basic' (HIT), 'sentiment' (WAF/ACC) or 'ov' (emotion-wheel F/P/R).
        size: the number of test samples in the full test set.
        label_space: the ground-truth classes, or a description of the value range.
        labels: where the ground truth lives.
        higher_is_better: every MER-UniBench metric is; kept explicit for user-supplied sets.
    """

    key: str
    title: str
    task: Task
    size: int
    label_space: str
    labels: LabelSource
    higher_is_better: bool = True

    @property
    def metrics(self) -> tuple[str, ...]:
        return TASK_METRICS[self.task]

    @property
    def primary(self) -> str:
        return self.metrics[0]

    @property
    def prediction_suffix(self) -> str:
        """The original per-epoch file suffix that holds this task's extracted answers."""
        return "-openset-sentiment" if self.task == "sentiment" else "-openset"


_MER_CLASSES = "neutral, angry, happy, sad, worried, surprise"
_MELD_CLASSES = ("anger", "joy", "sadness", "neutral", "disgust", "fear", "surprise")
_IEMOCAP_CLASSES = ("happy", "sad", "neutral", "anger")

_ROWS = (
    DatasetSpec("mer2023", "MER2023", "basic", 411, _MER_CLASSES,
                LabelSource(npz_names=("label-6way.npz",), split="test1_corpus", field="emo")),
    DatasetSpec("mer2024", "MER2024", "basic", 1169, _MER_CLASSES,
                LabelSource(npz_names=("label-6way.npz",), split="test1_corpus", field="emo")),
    DatasetSpec("meld", "MELD", "basic", 2610, ", ".join(_MELD_CLASSES),
                LabelSource(npz_names=("label.npz",), split="test_corpus", field="emo",
                            classes=_MELD_CLASSES)),
    DatasetSpec("iemocapfour", "IEMOCAP", "basic", 1241, ", ".join(_IEMOCAP_CLASSES) + " (Session 5)",
                LabelSource(npz_names=("label_4way.npz",), split="whole_corpus", field="emo",
                            classes=_IEMOCAP_CLASSES, session="5")),
    DatasetSpec("cmumosi", "CMU-MOSI", "sentiment", 686, "float in [-3, 3]",
                LabelSource(npz_names=("label.npz",), field="val")),
    DatasetSpec("cmumosei", "CMU-MOSEI", "sentiment", 4659, "float in [-3, 3]",
                LabelSource(npz_names=("label.npz",), field="val")),
    DatasetSpec("sims", "CH-SIMS", "sentiment", 457, "float in [-1, 1]",
                LabelSource(npz_names=("label.npz",), field="val")),
    DatasetSpec("simsv2", "CH-SIMS v2", "sentiment", 1034, "float in [-1, 1]",
                LabelSource(npz_names=("label.npz",), field="val")),
    DatasetSpec("ovmerdplus", "OV-MERD+", "ov", 532, "a list of open-vocabulary emotion words",
                LabelSource(csv_names=("ovlabel.csv", "check-openset.csv", "test_labels.csv"),
                            csv_column="openset")),
)

DATASETS: dict[str, DatasetSpec] = {d.key: d for d in _ROWS}
"""Every MER-UniBench dataset, in the order of the published table."""


def get_dataset(key: str) -> DatasetSpec:
    """The spec of `key`, or an InputError with the closest known name."""
    try:
        return DATASETS[key]
    except KeyError:
        raise unknown_name("dataset", key, list(DATASETS)) from None
