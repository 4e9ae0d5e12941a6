"""The record store of a caption run: an append-only event log of finished stages, folded into one record per clip.

`OUT/stages.jsonl` gets one line per (clip, stage) that finished: {"name", "stage", "key", "fields", "dropped",
"info", "seconds", "params"}, flushed and fsynced before the next result is taken; only the parent process
writes it (workers return their events). Reading folds the lines by (name, stage, key), the last line winning,
so a stage is skipped whenever the log holds its current key (a config switched back to an earlier value is
served from the log too). A line cut by a kill (no newline, or not JSON) ends the log: it is truncated away
before anything is appended, and that stage is simply run again.

`OUT/records.jsonl` (one record per clip, the contract of the output writer) is written atomically at the end of
a run, from the events the run used.

Why an event log and a final file, rather than appending records: a clip's record grows stage by stage, possibly
on another worker, and a dataset stage (the length filter) needs every clip's merge before it can decide any; a
record appended per clip would be rewritten (or duplicated) as it grows. Events never change once written: kill
-9 loses nothing (every finished stage is a synced line; at most the line being written is lost and redone),
and nothing is duplicated (the fold keeps one event per (name, stage, key), and the record of a clip takes one
event per stage: the one whose key the current config and inputs give).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError

LOG = "stages.jsonl"
RECORDS = "records.jsonl"
EVENT_KEYS = ("name", "stage", "key", "fields", "dropped", "info", "seconds")


class EventLog:
    """OUT/stages.jsonl, read and folded on open, then appended to (single writer: the parent process)."""

    def __init__(self, output: str | Path) -> None:
        self.path = Path(output) / LOG
        self._events: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._handle = None
        self.loaded = 0
        if self.path.is_file():
            for event in self._read_and_repair():
                self._events[(event["name"], event["stage"], event["key"])] = event
                self.loaded += 1

    def lookup(self, name: str, stage: str, key: str) -> dict[str, Any] | None:
        """The logged event of `stage` on clip `name` with `key`, if any."""
        return self._events.get((name, stage, key))

    def candidates(self, name: str, stage: str) -> dict[str, dict[str, Any]]:
        """key -> event of every logged run of `stage` on clip `name` (what a worker may reuse)."""
        return {k: e for (n, s, k), e in self._events.items() if n == name and s == stage}

    def append(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Append events (one line each), flushed and fsynced before returning; returns how many."""
        lines = []
        for event in events:
            event = dict(event)
            self._events[(event["name"], event["stage"], event["key"])] = event
            lines.append(json.dumps(event, ensure_ascii=False, sort_keys=True, default=str) + "\n")
        if not lines:
            return 0
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._handle.write("".join(lines))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return len(lines)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_and_repair(self) -> list[dict[str, Any]]:
        """The log's complete events; a cut or damaged tail is truncated off the file (it is redone)."""
        data = self.path.read_bytes()
        events, good = [], 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                event = json.loads(line)
                if not isinstance(event, dict) or any(k not in event for k in ("name", "stage", "key")):
                    raise ValueError("not an event")
            except ValueError:  # UnicodeDecodeError is a ValueError
                break
            events.append(event)
            good += len(line)
        if good < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good)
                handle.flush()
                os.fsync(handle.fileno())
        return events


def make_record(name: str, video: str, events: Sequence[Mapping[str, Any]], *, reused: Iterable[str] = (),
                error: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One clip's record from its events in stage order (the last may be a drop), or an `error` drop
    ({"stage", "reason"}) that ended it."""
    reused = set(reused)
    fields: dict[str, Any] = {}
    stages: dict[str, Any] = {}
    dropped = None
    for event in events:
        fields.update(event.get("fields") or {})
        entry = {"key": event["key"], "seconds": event.get("seconds", 0.0), "info": event.get("info") or {},
                 "reused": event["stage"] in reused}
        if event.get("params"):
            entry["params"] = event["params"]
        stages[event["stage"]] = entry
        if event.get("dropped"):
            dropped = {"stage": event["stage"], "reason": str(event["dropped"])}
            break
    if dropped is None and error is not None:
        dropped = {"stage": error["stage"], "reason": error["reason"]}
    return {"name": name, "video": video, "fields": fields, "stages": stages, "dropped": dropped}


def write_records(output: str | Path, records: Sequence[Mapping[str, Any]]) -> Path:
    """OUT/records.jsonl, atomically (one JSON line per record, in the given order)."""
    from affectgpt.io.atomic import write_text

    path = Path(output) / RECORDS
    write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n"
                             for r in records))
    return path


def read_records(output: str | Path) -> list[dict[str, Any]]:
    """The records of a finished run (OUT/records.jsonl)."""
    path = Path(output) / RECORDS
    if not path.is_file():
        raise InputError("no records file", path=path, fix="run `affectgpt caption run` first")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise InputError(f"line {number} is not a record", path=path,
                             fix="rerun `affectgpt caption run` (records are rebuilt from stages.jsonl)") from exc
    return records


def comparable(record: Mapping[str, Any]) -> str:
    """A record as canonical JSON without its run provenance: `reused`, and the timings of its stage entries
    (`seconds`, and any `*_seconds` key of a stage's info, e.g. the probe's decode_seconds). Equal results give
    equal strings, whichever executor and however many interruptions."""
    def strip(entry: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in entry.items() if k not in ("seconds", "reused")}
        if isinstance(out.get("info"), Mapping):
            out["info"] = {k: v for k, v in out["info"].items() if not str(k).endswith("seconds")}
        return out

    stages = {s: strip(e) for s, e in (record.get("stages") or {}).items()}
    return json.dumps({**record, "stages": stages}, sort_keys=True, ensure_ascii=False, default=str)
