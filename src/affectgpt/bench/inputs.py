"""Find prediction and label files, read ground truth, and align prediction names with it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectgpt.bench.datasets import DatasetSpec
from affectgpt.errors import InputError
from affectgpt.formats import labels as label_files
from affectgpt.formats.checkpoints import (
    CHECKPOINT_FILE,
    GENERATED_SUFFIX,
    PREDICTION_KEYS,
    TASK_SUFFIX,
    checkpoint_files,
    checkpoint_name,
)
from affectgpt.io.tables import read_table


@dataclass(frozen=True)
class PredictionFile:
    """One prediction file and the checkpoint epoch its name gives (None when it gives none)."""

    path: Path
    epoch: int | None


def find_prediction_files(path: str | Path, spec: DatasetSpec) -> list[PredictionFile]:
    """The prediction files for `spec` at `path`: the file itself, or one per epoch in a directory.

    In a directory, files named `checkpoint_<EEEEEE>[_loss_<x>]-openset.npz` (or `-openset-sentiment` for
    sentiment sets; .csv and .jsonl with the same stem too) are taken, sorted by epoch.
    """
    path = Path(path)
    if path.is_file():
        match = CHECKPOINT_FILE.match(path.name)
        return [PredictionFile(path, int(match["epoch"]) if match else None)]
    if not path.is_dir():
        raise InputError("predictions not found", path=path, fix="pass a prediction file or a folder of them")
    suffix = TASK_SUFFIX[spec.task]
    found: dict[int, Path] = {}
    for entry, match in checkpoint_files(path, suffix):
        epoch = int(match["epoch"])
        if epoch in found:
            raise InputError(f"two prediction files for epoch {epoch}: {found[epoch].name}, {entry.name}",
                             path=path, field="epoch", fix="keep one file per epoch")
        found[epoch] = entry
    if not found:
        wanted = checkpoint_name("<epoch>", "<x>", suffix, "npz") + " (or .csv/.jsonl)"
        if checkpoint_files(path, GENERATED_SUFFIX):
            raise InputError(f"holds generated text but no extracted {spec.task} answers ({wanted})",
                             path=path, fix="run `affectgpt extract` on this folder first")
        raise InputError(f"no prediction files named {wanted}", path=path,
                         fix="point --predictions at a file, or name per-epoch files like the original release")
    return [PredictionFile(found[e], e) for e in sorted(found)]


def read_predictions(pred: PredictionFile, spec: DatasetSpec) -> dict[str, str]:
    """name -> raw answer string (an OV list for basic/ov sets, a sentiment word for sentiment sets)."""
    table = read_table(pred.path, PREDICTION_KEYS[spec.task])
    return {n: v if isinstance(v, str) else str(v) for n, v in zip(table.names, table.values, strict=True)}


def find_label_file(path: str | Path, spec: DatasetSpec) -> Path:
    """The ground-truth file: `path` itself, or the first known label file inside the folder `path`."""
    return label_files.find_label_file(path, spec.labels, spec.key)


def load_ground_truth(path: str | Path, spec: DatasetSpec) -> dict[str, Any]:
    """name -> ground truth: a label string (basic, ov) or a finite float (sentiment)."""
    label_file = find_label_file(path, spec)
    if label_file.suffix.lower() == ".npz":
        raw = label_files.read_label_npz(label_file, spec.labels, spec.key)
    else:
        table = read_table(label_file, (spec.labels.csv_column, "label"))
        raw = table.as_dict()
    return {name: _check_label(label_file, spec, name, value) for name, value in raw.items()}


def _check_label(path: Path, spec: DatasetSpec, name: str, value: Any) -> Any:
    if spec.task == "sentiment":
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise InputError(f"label of {name!r} is not a finite number ({value!r})", path=path,
                             field=f"{name}.label", fix="give every sample a numeric sentiment score")
        return number
    if isinstance(value, float) and math.isnan(value):
        raise InputError(f"label of {name!r} is NaN", path=path, field=f"{name}.label",
                         fix="give every sample a label")
    if label_files.is_missing_label(value):
        # "nan" / "None" as text: what pandas or str() write for a missing value, never an emotion word.
        raise InputError(f"label of {name!r} is missing (written {str(value).strip()!r})", path=path,
                         field=f"{name}.label", fix="give every sample a label")
    text = str(value).strip()
    if spec.task == "ov" and text in ("", "[]"):
        # The original OV-MERD+ reader turns an empty label list into ['neutral'].
        return "neutral"
    if not text:
        raise InputError(f"label of {name!r} is empty", path=path, field=f"{name}.label",
                         fix="give every sample a label")
    return text


@dataclass(frozen=True)
class Alignment:
    """Predictions lined up with the ground-truth names."""

    names: tuple[str, ...]
    answers: tuple[str, ...]
    missing: tuple[str, ...]
    extra: int


def align(gt: Mapping[str, Any], predictions: Mapping[str, str], source: Path, *,
          allow_missing: bool = False) -> Alignment:
    """One answer per ground-truth name; a missing one is an error unless `allow_missing` (then empty)."""
    missing = tuple(n for n in gt if n not in predictions)
    if missing and not allow_missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise InputError(f"{len(missing)} of {len(gt)} ground-truth names have no prediction ({shown})",
                         path=source, field="name",
                         fix="predict every test sample, or pass --allow-missing to score them as empty")
    extra = sum(1 for n in predictions if n not in gt)
    names = tuple(gt)
    answers = tuple(predictions.get(n, "") for n in names)
    return Alignment(names, answers, missing, extra)
