"""THE dataset table of MER-UniBench: one DatasetSpec row per test set, the single place this knowledge lives.

Each row says what the task is, how big the test set is, which metric ranks it and where its ground truth
lives in the original release (its row of formats.labels.LABEL_SOURCES).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from affectgpt.formats.labels import LABEL_SOURCES, LabelSource
from affectgpt.registry import unknown_name

Task = Literal["basic", "sentiment", "ov"]

# Metric keys of the JSON contract, per task family: (primary, *secondary).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "basic": ("hit",),
    "sentiment": ("waf", "acc"),
    "ov": ("f", "p", "r"),
}


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """One MER-UniBench test set.

    Attributes:
        key: the dataset name used on the command line and as folder name.
        title: the name printed in tables.
        task: 'basic' (HIT), 'sentiment' (WAF/ACC) or 'ov' (emotion-wheel F/P/R).
        size: the number of test samples in the full test set.
        label_space: the ground-truth classes, or a description of the value range.
        labels: where the ground truth lives (its row of formats.labels.LABEL_SOURCES).
        higher_is_better: every MER-UniBench metric is; kept explicit for user-supplied sets.
        candidates: the candidate classes of a basic set, when the set declares them (user datasets, see
            bench/spec.py); empty for the published nine, whose label_space says them in words.
        primary_metric: the metric that ranks the set, when it is not the task's first (user datasets); empty
            means `metrics[0]`.
    """

    key: str
    title: str
    task: Task
    size: int
    label_space: str
    labels: LabelSource
    higher_is_better: bool = True
    candidates: tuple[str, ...] = ()
    primary_metric: str = ""

    @property
    def metrics(self) -> tuple[str, ...]:
        return TASK_METRICS[self.task]

    @property
    def primary(self) -> str:
        return self.primary_metric or self.metrics[0]


_MER_CLASSES = "neutral, angry, happy, sad, worried, surprise"


def _row(key: str, title: str, task: Task, size: int, label_space: str) -> DatasetSpec:
    return DatasetSpec(key, title, task, size, label_space, LABEL_SOURCES[key])


_ROWS = (
    _row("mer2023", "MER2023", "basic", 411, _MER_CLASSES),
    _row("mer2024", "MER2024", "basic", 1169, _MER_CLASSES),
    _row("meld", "MELD", "basic", 2610, ", ".join(LABEL_SOURCES["meld"].classes)),
    _row("iemocapfour", "IEMOCAP", "basic", 1241, ", ".join(LABEL_SOURCES["iemocapfour"].classes) + " (Session 5)"),
    _row("cmumosi", "CMU-MOSI", "sentiment", 686, "float in [-3, 3]"),
    _row("cmumosei", "CMU-MOSEI", "sentiment", 4659, "float in [-3, 3]"),
    _row("sims", "CH-SIMS", "sentiment", 457, "float in [-1, 1]"),
    _row("simsv2", "CH-SIMS v2", "sentiment", 1034, "float in [-1, 1]"),
    _row("ovmerdplus", "OV-MERD+", "ov", 532, "a list of open-vocabulary emotion words"),
)

DATASETS: dict[str, DatasetSpec] = {d.key: d for d in _ROWS}
"""Every MER-UniBench dataset, in the order of the published table."""


USER_DATASETS: dict[str, DatasetSpec] = {}
"""User-defined datasets read in this process (`--dataset-spec`, bench/spec.py `load_dataset_spec`), by name.
Never part of DATASETS: the published table, its order and its 9-dataset mean stay the nine above."""


def all_datasets() -> dict[str, DatasetSpec]:
    """The published nine in their order, then the user datasets read in this process."""
    return {**DATASETS, **USER_DATASETS}


def get_dataset(key: str) -> DatasetSpec:
    """The spec of `key` (a published set, else a user dataset read in this process), or an InputError with the
    closest known name."""
    spec = DATASETS.get(key) or USER_DATASETS.get(key)
    if spec is None:
        raise unknown_name("dataset", key, [*DATASETS, *USER_DATASETS])
    return spec
