"""Result dataclasses of the scorer and their JSON contract (other tools depend on it: keep it stable).

Per dataset: top-level `dataset`, `protocol`, `epochs` (list of {"epoch": int|null, "source": path,
"metrics": {...}}), `best` (the per-dataset oracle, labelled so) and, when an epoch was fixed, `fixed`.
Metric keys are `hit`, `hit_precision`, `waf`, `acc`, `f`, `p`, `r`, fractions in [0, 1]. `warnings` (on
each epoch, on the dataset and on the suite) lists {"code", "message"} objects, e.g. `hit_uninformative`.
With an epoch range, `mean` is the summary {"selection": "mean", "epochs": [...], "metrics": {...}}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
ORACLE_NOTE = ("oracle: the epoch with the best primary metric on the test set itself, as in the published "
               "table; not a fair model selection")


@dataclass(frozen=True)
class EpochResult:
    """Scores of one prediction file.

    Attributes:
        epoch: the checkpoint epoch from the file name, or None.
        source: the prediction file.
        metrics: metric key -> fraction in [0, 1].
        per_wheel: for wheel-based tasks, one dict per wheel: name, its metric values, scored, skipped.
        diagnostics: counts a careful user checks: samples, extra/missing names, unknown words,
            unparseable sentiment answers.
    """

    epoch: int | None
    source: str
    metrics: dict[str, float]
    per_wheel: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "source": self.source, "metrics": dict(self.metrics),
                "per_wheel": list(self.per_wheel), "diagnostics": dict(self.diagnostics),
                "warnings": list(self.warnings)}


@dataclass(frozen=True)
class Summary:
    """One chosen epoch, `fixed` (chosen by the user) or `oracle` (best on the test set), or the `mean` of
    each metric over the epochs of a stated range (`epochs`, `range`; epoch None, no source)."""

    kind: str
    epoch: int | None
    source: str
    metrics: dict[str, float]
    epochs: tuple[int, ...] = ()
    range: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epoch": self.epoch, "source": self.source, "metrics": dict(self.metrics),
                               "selection": self.kind}
        if self.kind == "oracle":
            out["note"] = ORACLE_NOTE
        if self.kind == "mean":
            out["epochs"] = list(self.epochs)
            out["range"] = self.range
            out["note"] = MEAN_NOTE.format(range=self.range)
        return out


MEAN_NOTE = "mean over the epochs {range} present: no epoch chosen on the test set"


@dataclass(frozen=True)
class DatasetResult:
    """Every epoch of one dataset scored under one protocol, with both summaries."""

    dataset: str
    task: str
    protocol: str
    protocol_note: str
    primary: str
    labels: str
    predictions: str
    n_labels: int
    epochs: tuple[EpochResult, ...]
    best: Summary
    fixed: Summary | None = None
    mean: Summary | None = None
    warnings: tuple[dict[str, Any], ...] = ()

    @property
    def headline(self) -> Summary:
        """The summary a table row shows: the fixed epoch when one was chosen, else the oracle."""
        return self.fixed or self.best

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "dataset": self.dataset,
            "task": self.task,
            "protocol": self.protocol,
            "protocol_note": self.protocol_note,
            "primary_metric": self.primary,
            "labels": self.labels,
            "predictions": self.predictions,
            "n_labels": self.n_labels,
            "epochs": [e.to_json() for e in self.epochs],
            "best": self.best.to_json(),
        }
        if self.fixed is not None:
            out["fixed"] = self.fixed.to_json()
        if self.mean is not None:
            out["mean"] = self.mean.to_json()
        out["warnings"] = [dict(w) for w in self.warnings]
        return out


@dataclass(frozen=True)
class RowCell:
    """One dataset's cell of the published table row."""

    dataset: str
    title: str
    metric: str
    value: float | None
    epoch: int | None
    reason: str | None = None  # why the cell is n/a
    mean: Summary | None = None  # the mean over the --epochs range, when one was asked for
    warnings: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = {"dataset": self.dataset, "title": self.title, "metric": self.metric, "value": self.value,
               "epoch": self.epoch, "reason": self.reason, "warnings": [dict(w) for w in self.warnings]}
        if self.mean is not None:
            out["mean"] = {"value": self.mean.metrics[self.metric], "epochs": list(self.mean.epochs)}
        return out


@dataclass(frozen=True)
class SuiteResult:
    """Every dataset found under a root, the table row in published order and the 9-dataset mean."""

    protocol: str
    protocol_note: str
    selection: str  # "oracle" or "fixed"
    results: dict[str, DatasetResult]
    row: tuple[RowCell, ...]
    epochs_range: str = ""  # the --epochs range whose mean each cell carries too, or ""

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """The warnings of the cells the mean is made of, each naming its dataset."""
        return [{**w, "message": f"the mean includes {c.title}: {w['message']}", "dataset": c.dataset}
                for c in self.row for w in c.warnings]

    @property
    def range_means(self) -> tuple[float | None, float | None, int]:
        """Over the --epochs range: the 9-dataset mean (None unless all are present), the mean over the
        present ones and how many they are."""
        values = [c.mean.metrics[c.metric] if c.mean is not None else None for c in self.row]
        present = [v for v in values if v is not None]
        full = None if len(present) < len(values) else sum(present) / len(present)
        return full, (sum(present) / len(present) if present else None), len(present)

    @property
    def mean(self) -> float | None:
        """The plain mean of the 9 primary metrics; None unless every dataset was scored."""
        values = [c.value for c in self.row]
        if any(v is None for v in values):
            return None
        return sum(values) / len(values)  # type: ignore[arg-type]

    @property
    def mean_present(self) -> tuple[float | None, int]:
        """Mean over the datasets that were scored, and how many they are (labelled as partial)."""
        values = [c.value for c in self.row if c.value is not None]
        return (sum(values) / len(values) if values else None), len(values)

    def to_json(self) -> dict[str, Any]:
        partial, count = self.mean_present
        return {
            "schema_version": SCHEMA_VERSION,
            "protocol": self.protocol,
            "protocol_note": self.protocol_note,
            "selection": self.selection,
            "selection_note": ORACLE_NOTE if self.selection == "oracle" else "fixed epoch chosen by the user",
            "results": {k: r.to_json() for k, r in self.results.items()},
            "row": [c.to_json() for c in self.row],
            "mean": self.mean,
            "mean_present": {"value": partial, "datasets": count, "of": len(self.row)},
            "warnings": self.warnings,
            **({"epochs_mean": self._range_json()} if self.epochs_range else {}),
        }

    def _range_json(self) -> dict[str, Any]:
        full, partial, count = self.range_means
        return {"range": self.epochs_range, "selection": "mean", "value": full,
                "mean_present": {"value": partial, "datasets": count, "of": len(self.row)},
                "note": MEAN_NOTE.format(range=self.epochs_range)}
