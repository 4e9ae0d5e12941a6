"""run_caption(): clips -> records, stage by stage in base.STAGE_ORDER, resumable from OUT/stages.jsonl.

The stages come from a stage table (caption.stages.STAGES, a Registry; tests pass their own). The order is cut
into segments: a run of consecutive clip stages, or one dataset stage. A clip segment runs for every surviving
clip before the next segment starts (a dataset stage sees every clip's fields); within it, each clip's stages run
back to back on one worker. Before sending a clip anywhere, the parent walks its plan: a stage whose key
(base.stage_key of its section and the fields it reads) is in the log is reused, and a clip whose whole plan is
logged is not sent at all; otherwise the worker gets the rest of the plan and the logged events of those stages,
and reuses any whose key still matches after the stages before them ran again.

A dataset stage first gets `prepare(every surviving clip's fields, section)` in the parent, then runs per clip
with those parameters (part of its key). A dropped clip stops at the stage that dropped it. A stage that raises
drops its clip with "error: <stage>: <Type>: <message>"; such drops are not logged, so a rerun tries again, and
neither are drops for a reason in RETRIED_DROPS (a backend that failed for the clip). An
InputError whose field is a config key ("stages.merge.backend") is the config's fault, not the clip's: the run
stops with it, naming the config file (what finished is in the log).

At the end the records (store.make_record) go to the output writer (caption.layout.write_released and
caption.report.write_report, when they exist) and to OUT/records.jsonl (written last: it marks a finished run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.caption.base import STAGE_ORDER
from affectgpt.caption.config import CaptionConfig
from affectgpt.caption.executors import Worker, WorkerSpec, make_executor
from affectgpt.caption.store import EventLog, make_record, write_records
from affectgpt.errors import InputError

Progress = Callable[[str, str, str], None]
"""progress(stage, status, clip name); status: ran, reused, dropped, error."""


@dataclass
class StageStats:
    ran: int = 0
    reused: int = 0
    dropped: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass
class RunSummary:
    """What a run did: per stage counts, the clips kept and dropped, the dataset parameters, the wall time."""

    output: Path
    executor: str
    workers: int
    clips: int = 0
    kept: int = 0
    dropped: int = 0
    stages: dict[str, StageStats] = field(default_factory=lambda: {s: StageStats() for s in STAGE_ORDER})
    params: dict[str, Any] = field(default_factory=dict)
    wall_seconds: dict[str, float] = field(default_factory=dict)
    run_seconds: float = 0.0
    written: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"output": str(self.output), "executor": self.executor, "workers": self.workers,
                "clips": self.clips, "kept": self.kept, "dropped": self.dropped,
                "stages": {s: vars(v) for s, v in self.stages.items()}, "params": self.params,
                "wall_seconds": self.wall_seconds, "run_seconds": round(self.run_seconds, 3)}


@dataclass
class _Clip:
    name: str
    video: str
    seed: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    reused: set[str] = field(default_factory=set)
    error: dict[str, str] | None = None

    @property
    def alive(self) -> bool:
        return self.error is None and not (self.events and self.events[-1].get("dropped"))

    @property
    def fields(self) -> dict[str, Any]:
        merged = dict(self.seed)
        for event in self.events:
            merged.update(event.get("fields") or {})
        return merged


def run_caption(clips: Sequence[tuple[str, str | Path]], config: CaptionConfig, output: str | Path, *,
                executor: Any = None, progress: Progress | None = None, table: Any = None,
                seeds: Mapping[str, Mapping[str, Any]] | None = None) -> RunSummary:
    """Run every stage on `clips` ((name, video path) pairs) into `output` (see the module docstring).

    `executor`: one of caption.executors (default: the config's); `table`: the stage Registry (default
    caption.stages.STAGES); `seeds`: extra first fields per clip name (e.g. a given subtitle)."""
    started = time.perf_counter()
    output = Path(output)
    table = table if table is not None else _stage_table()
    names = [str(n) for n, _ in clips]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"clip names must be unique; {', '.join(twice[:5])} appear twice", field="--clips",
                         fix="give each clip its own file stem")
    output.mkdir(parents=True, exist_ok=True)
    spec = WorkerSpec(table=table, sections={s: config.section(s) for s in STAGE_ORDER},
                      output=str(output.resolve()))
    parent = Worker(spec)
    states = [_Clip(str(n), str(v), {"name": str(n), **_source_fields(parent, v), **dict((seeds or {}).get(n, {}))})
              for n, v in clips]
    own = executor is None
    executor = executor or make_executor(config.executor, spec, config.workers, config.ray_address)
    summary = RunSummary(output=output, executor=getattr(executor, "name", config.executor), workers=config.workers,
                         clips=len(states))
    try:
        with EventLog(output) as log:
            for segment in _segments(parent):
                begin = time.perf_counter()
                plan: list[tuple[str, dict[str, Any]]]
                if parent.stage(segment[0]).scope == "dataset":
                    stage = parent.stage(segment[0])
                    alive = [c.fields for c in states if c.alive]
                    params = dict(stage.prepare(alive, spec.sections.get(segment[0], {})) or {}) if alive else {}
                    summary.params[segment[0]] = params
                    plan = [(segment[0], params)]
                else:
                    plan = [(name, {}) for name in segment]
                _run_segment(states, plan, parent, executor, log, summary, progress, config.source)
                _share_wall(summary, segment, time.perf_counter() - begin)
    finally:
        if own:
            executor.close()
    records = [make_record(c.name, c.video, c.events, reused=c.reused, error=c.error) for c in states]
    summary.kept = sum(1 for r in records if r["dropped"] is None)
    summary.dropped = len(records) - summary.kept
    summary.run_seconds = time.perf_counter() - started
    _write_outputs(records, output, summary)
    return summary


def _run_segment(states: list[_Clip], plan: list[tuple[str, dict[str, Any]]], parent: Worker, executor: Any,
                 log: EventLog, summary: RunSummary, progress: Progress | None, source: str) -> None:
    """Walk each surviving clip's plan against the log; send the clips with stages left to the executor."""
    by_name = {c.name: c for c in states}
    items = []
    for clip in states:
        if not clip.alive:
            continue
        fields = clip.fields
        for index, (name, params) in enumerate(plan):
            event = log.lookup(clip.name, name, parent.key(name, fields, params))
            if event is None:
                rest = plan[index:]
                items.append({"name": clip.name, "fields": fields, "plan": rest,
                              "cached": {s: log.candidates(clip.name, s) for s, _ in rest}})
                break
            _apply(clip, event, reused=True, summary=summary, progress=progress)
            fields.update(event.get("fields") or {})
            if event.get("dropped"):
                break
    for result in executor.run(items, num_gpus=_gpus(parent, plan)):
        clip = by_name[result["name"]]
        fresh = set(result["new"])
        log.append(e for e in result["events"] if e["stage"] in fresh and not retried_drop(e))
        if result.get("fatal"):  # a stage refused its config section: what finished is logged, the run stops
            fatal = result["fatal"]
            raise InputError(fatal["what"], path=source, field=fatal["field"], fix=fatal["fix"])
        for event in result["events"]:
            _apply(clip, event, reused=event["stage"] not in fresh, summary=summary, progress=progress)
        if result.get("error"):
            clip.error = result["error"]
            summary.stages[clip.error["stage"]].errors += 1
            if progress:
                progress(clip.error["stage"], "error", clip.name)


RETRIED_DROPS = ("backend_error: ",)
"""Drop reasons that are not logged, so a rerun asks again: a backend that failed for a clip (a server down, a
timeout) may answer next time. Other drops (an unreadable clip, a length tail) are decisions, logged and reused."""


def retried_drop(event: dict[str, Any]) -> bool:
    """Whether `event` drops its clip for a reason a rerun should try again (RETRIED_DROPS)."""
    return str(event.get("dropped") or "").startswith(RETRIED_DROPS)


def _apply(clip: _Clip, event: dict[str, Any], *, reused: bool, summary: RunSummary,
           progress: Progress | None) -> None:
    stats = summary.stages.setdefault(event["stage"], StageStats())
    clip.events.append(event)
    if reused:
        clip.reused.add(event["stage"])
        stats.reused += 1
    else:
        stats.ran += 1
        stats.seconds = round(stats.seconds + float(event.get("seconds") or 0.0), 6)
    if event.get("dropped"):
        stats.dropped += 1
    if progress:
        progress(event["stage"], "dropped" if event.get("dropped") else "reused" if reused else "ran", clip.name)


def _share_wall(summary: RunSummary, segment: list[str], wall: float) -> None:
    """A segment's wall time shared among its stages in proportion to their busy seconds (its stages run back
    to back per clip, so this is the estimate of each one's wall time); even shares when nothing ran."""
    busy = {name: summary.stages[name].seconds for name in segment}
    total = sum(busy.values())
    for name in segment:
        share = busy[name] / total if total > 0 else 1 / len(segment)
        summary.wall_seconds[name] = round(wall * share, 6)


def _segments(parent: Worker) -> list[list[str]]:
    """STAGE_ORDER cut into runs of consecutive clip stages and single dataset stages."""
    segments: list[list[str]] = []
    for name in STAGE_ORDER:
        scope = parent.stage(name).scope
        if scope not in ("clip", "dataset"):
            raise InputError(f"stage {name!r} has scope {scope!r}", field=f"stages.{name}",
                             fix="a stage's scope is 'clip' or 'dataset'")
        if scope == "clip" and segments and parent.stage(segments[-1][0]).scope == "clip":
            segments[-1].append(name)
        else:
            segments.append([name])
    return segments


def _gpus(parent: Worker, plan: Iterable[tuple[str, Any]]) -> float:
    return max((float(getattr(parent.stage(name), "num_gpus", 0) or 0) for name, _ in plan), default=0.0)


def _source_fields(parent: Worker, video: str | Path) -> dict[str, Any]:
    """The first fields of a clip: the first stage's `source_fields(path)` (its module's, or its own), else
    {"video": path}."""
    import sys

    probe = parent.stage(STAGE_ORDER[0])
    make = getattr(probe, "source_fields", None) or getattr(sys.modules.get(type(probe).__module__),
                                                            "source_fields", None)
    if callable(make):
        try:
            return dict(make(video))
        except OSError:  # an unreadable clip: the probe drops it with its reason
            pass
    return {"video": str(video)}


def _stage_table() -> Any:
    from affectgpt.caption.stages import STAGES

    return STAGES


def _write_outputs(records: list[dict[str, Any]], output: Path, summary: RunSummary) -> None:
    """The released layout and the run report, then records.jsonl."""
    from affectgpt.caption.layout import write_released
    from affectgpt.caption.report import write_report

    write_released(records, output)
    summary.written.append("layout")
    write_report(records, output, summary.to_json())
    summary.written.append("report")
    write_records(output, records)
