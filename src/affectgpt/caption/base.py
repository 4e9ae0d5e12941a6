"""The caption pipeline's contract: a clip's record, a stage (a pure function of the record's fields), its key.

A run turns each clip into a record: `fields` (everything the stages produced so far, JSON-able), and per stage
the key it ran with. A stage reads some fields (`reads`) and its own config section, and returns new fields, or
drops the clip with a reason. Its key is the sha256 of (name, version, its config section, the values it reads,
its dataset parameters): a rerun skips a stage whose key is unchanged, and a changed config re-runs exactly the
stages whose inputs changed (a stage after a changed one reads changed fields, so its key changes too).

Two scopes: a `clip` stage sees one record; a `dataset` stage first sees every surviving record's fields
(`prepare`, e.g. the description-length distribution whose tails are dropped) and then decides per clip with
those parameters, which are part of its key. STAGE_ORDER is the order of the pipeline (the spec's stages).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

STAGE_ORDER: tuple[str, ...] = ("probe", "subtitle", "acoustic", "visual", "merge", "lowlevel", "highlevel",
                                "labels")
"""1 probe and preprocess, 2 subtitle, 3 acoustic clues, 4 visual clues, 5 merge into a description, 6 low-level
filters, 7 high-level filter, 8 OV labels and sentiment from the description."""


@dataclass(frozen=True)
class StageResult:
    """What a stage made of one clip: new fields, or the reason the clip is dropped; `info` is provenance
    (backend, model, prompt id...), recorded beside the fields."""

    fields: dict[str, Any] = field(default_factory=dict)
    dropped: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    """What a stage may use besides the record.

    Attributes:
        config: the stage's own config section.
        output: the run's output folder (a stage may write per-clip files under it, e.g. audio/<name>.wav).
        resources: objects built once per worker and shared by its stages (backends, models), by key.
        params: a dataset stage's parameters from `prepare` ({} for clip stages).
    """

    config: Mapping[str, Any]
    output: Path
    resources: dict[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)


class Stage(Protocol):
    """One step of the pipeline (see the module docstring)."""

    name: str
    version: str
    scope: str  # "clip" or "dataset"
    reads: tuple[str, ...]

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult: ...


class DatasetStage(Stage, Protocol):
    def prepare(self, all_fields: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]: ...


def stage_key(stage: Stage, config: Mapping[str, Any], fields: Mapping[str, Any],
              params: Mapping[str, Any] | None = None) -> str:
    """The content hash that says whether `stage` must run again on a clip (see the module docstring)."""
    payload = [stage.name, stage.version, dict(config), {f: fields.get(f) for f in stage.reads}, dict(params or {})]
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
