"""Result dataclasses of the scorer and their JSON contract (other tools depend on it: keep it stable).

Per dataset: top-level `dataset`, `protocol`, `epochs` (list of {"epoch": int|null, "source": path,
"metrics": {...}}), `best` (the per-dataset oracle, labelled so) and, when an epoch was fixed, `fixed`.
Metric keys are `hit`, `waf`, `acc`, `f`, `p`, `r`, fractions in [0, 1].
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

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "source": self.source, "metrics": dict(self.metrics),
                "per_wheel": list(self.per_wheel), "diagnostics": dict(self.diagnostics)}


@dataclass(frozen=True)
class Summary:
    """One chosen epoch: `fixed` (chosen by the user) or `oracle` (best on the test set)."""

    kind: str
    epoch: int | None
    source: str
    metrics: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epoch": self.epoch, "source": self.source, "metrics": dict(self.metrics),
                               "selection": self.kind}
        if self.kind == "oracle":
            out["note"] = ORACLE_NOTE
        return out


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

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "title": self.title, "metric": self.metric, "value": self.value,
                "epoch": self.epoch, "reason": self.reason}


@dataclass(frozen=True)
class SuiteResult:
    """Every dataset found under a root, the table row in published order and the 9-dataset mean."""

    protocol: str
    protocol_note: str
    selection: str  # "oracle" or "fixed"
    results: dict[str, DatasetResult]
    row: tuple[RowCell, ...]

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
        }
