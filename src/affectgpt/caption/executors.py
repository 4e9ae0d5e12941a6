"""Where a caption run's stage calls execute: in the parent, on a local process pool, or on Ray Data actors.

Every executor runs the same `Worker.run` on work items and yields its results as they finish; only the parent
writes the event log. A work item is one clip and a plan (the stages to run in order, with a dataset stage's
parameters), plus the logged events of those stages (key -> event) that the worker reuses when the key it
computes matches. A Worker builds its stages and shared resources (backends, models) once per process/actor.

- `inline`: the calling process itself (for tests and debugging: its thread settings are the caller's);
- `local`: concurrent.futures.ProcessPoolExecutor with `workers` spawned processes, a bounded number of items in
  flight;
- `ray`: ray.data.from_items(items).map_batches(RayWorker, concurrency=workers) over JSON rows; `ray_address`
  joins an existing cluster, else a local Ray with num_cpus=workers starts (and stops after the run); a stage
  with a `num_gpus` attribute makes each actor ask Ray for that many GPUs. Ray is imported only here, on use.
Items and results are plain JSON-able data, so every executor gives the same events (timings aside).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectgpt.caption.base import StageContext, StageResult, stage_key
from affectgpt.errors import InputError, failure_reason

RAY_EXTRA = "caption-ray"


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to build its stages: the stage table (a Registry), every stage's section, OUT."""

    table: Any
    sections: Mapping[str, Mapping[str, Any]]
    output: str


class Worker:
    """One process's stages (built on first use) and the resources they share."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.resources: dict[str, Any] = {}
        self._stages: dict[str, Any] = {}

    def stage(self, name: str) -> Any:
        if name not in self._stages:
            self._stages[name] = self.spec.table.get(name)()
        return self._stages[name]

    def key(self, name: str, fields: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> str:
        return stage_key(self.stage(name), self.spec.sections.get(name, {}), fields, params)

    def run(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Run `item["plan"]` on `item["fields"]`: {"name", "events": [...], "new": [stage...], "error"}."""
        fields = dict(item["fields"])
        events, new, error = [], [], None
        cached = item.get("cached") or {}
        for name, params in item["plan"]:
            key = self.key(name, fields, params)
            event = (cached.get(name) or {}).get(key)
            if event is None:
                event = self._call(item["name"], name, key, fields, params)
                if "error" in event:
                    error = event["error"]
                    break
                if "fatal" in event:
                    return {"name": item["name"], "events": events, "new": new, "error": None,
                            "fatal": event["fatal"]}
                new.append(name)
            events.append(event)
            fields.update(event.get("fields") or {})
            if event.get("dropped"):
                break
        return {"name": item["name"], "events": events, "new": new, "error": error}

    def _call(self, clip: str, name: str, key: str, fields: Mapping[str, Any],
              params: Mapping[str, Any]) -> dict[str, Any]:
        stage = self.stage(name)
        context = StageContext(config=dict(self.spec.sections.get(name, {})), output=Path(self.spec.output),
                               resources=self.resources, params=dict(params or {}))
        start = time.perf_counter()
        try:
            result = stage(fields, context)
            if not isinstance(result, StageResult):
                raise TypeError(f"the stage returned {type(result).__name__}, not a StageResult")
            # JSON round trip: what is logged is exactly what the next stage and a resumed run see
            out = json.loads(json.dumps({"fields": result.fields, "info": result.info}, ensure_ascii=False))
        except InputError as exc:
            where = _config_field(name, exc, context.config)
            if where is not None:  # the config is wrong, for every clip: stop the run
                return {"fatal": {"what": exc.what, "field": where, "fix": exc.fix}}
            return {"error": {"stage": name, "reason": f"error: {name}: {failure_reason(exc)}"}}
        except Exception as exc:  # one clip's failure must not stop the run: the clip is dropped with the reason
            return {"error": {"stage": name, "reason": f"error: {name}: {failure_reason(exc)}"}}
        event = {"name": clip, "stage": name, "key": key, "fields": out["fields"],
                 "dropped": str(result.dropped) if result.dropped else None, "info": out["info"],
                 "seconds": round(time.perf_counter() - start, 6)}
        if params:
            event["params"] = dict(params)
        return event


def _config_field(stage: str, exc: InputError, section: Mapping[str, Any]) -> str | None:
    """`stages.<stage>.<key>` when `exc` is about the stage's config section (its field is `stages.*` or a key of
    the section, and it names no file), else None (a problem of this clip)."""
    field = exc.field or ""
    if field.startswith("stages."):
        return field
    if exc.path is None and field and field.split(".")[0] in section:
        return f"stages.{stage}.{field}"
    return None


class InlineExecutor:
    """Runs items one by one in the calling process."""

    name = "inline"

    def __init__(self, spec: WorkerSpec) -> None:
        self.worker = Worker(spec)

    def run(self, items: Iterable[Mapping[str, Any]], *, num_gpus: float = 0) -> Iterator[dict[str, Any]]:
        for item in items:
            yield self.worker.run(item)

    def close(self) -> None:
        pass


_WORKER: Worker | None = None


def worker_threads() -> str:
    """OMP_NUM_THREADS of every worker process and Ray actor: the caller's, else 1 (what Ray gives a one-CPU
    actor). One value everywhere: some kernels (CTranslate2's Whisper) give other results with other thread
    counts, and the same config must give the same records on either executor."""
    return os.environ.get("OMP_NUM_THREADS") or "1"


def _init_process(spec: WorkerSpec, threads: str) -> None:
    global _WORKER
    import signal
    import threading

    os.environ["OMP_NUM_THREADS"] = threads  # spawned: no stage module is loaded yet
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool and says how to resume
    _WORKER = Worker(spec)

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A pool process whose parent was killed outright (kill -9) is never told to stop: it ends itself."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _run_in_process(item: Mapping[str, Any]) -> dict[str, Any]:
    assert _WORKER is not None, "the pool initialiser builds the worker"
    return _WORKER.run(item)


class LocalExecutor:
    """A process pool of `workers` processes (each builds its Worker once); results in completion order."""

    name = "local"

    def __init__(self, spec: WorkerSpec, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = max(1, workers)
        # spawn, not fork: a parent that already ran a stage holds model thread pools (onnxruntime, OpenMP)
        # whose locks a forked child inherits locked (the pool then hangs)
        self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_process, initargs=(spec, worker_threads()))

    def run(self, items: Iterable[Mapping[str, Any]], *, num_gpus: float = 0) -> Iterator[dict[str, Any]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        pending: set = set()
        window = 4 * self.workers
        for item in items:
            pending.add(self.pool.submit(_run_in_process, item))
            if len(pending) >= window:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in done)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayWorker:
    """The Ray Data actor: one Worker per actor, JSON rows in and out."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.worker = Worker(spec)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out = [json.dumps(self.worker.run(json.loads(str(row))), ensure_ascii=False) for row in batch["item"]]
        return {"result": np.array(out, dtype=object)}


class RayExecutor:
    """Ray Data map_batches over the items (see the module docstring)."""

    name = "ray"

    def __init__(self, spec: WorkerSpec, workers: int, address: str | None = None) -> None:
        from affectgpt.extras import require

        self.ray = require("ray", extra=RAY_EXTRA)
        require("ray.data", extra=RAY_EXTRA)
        self.spec = spec
        self.workers = max(1, workers)
        self.started = False
        if not self.ray.is_initialized():
            import logging

            logging.getLogger("ray.data").setLevel(logging.WARNING)  # one INFO line per dataset otherwise
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": logging.WARNING}
            if address:
                self.ray.init(address=address, **options)
            else:
                self.ray.init(num_cpus=self.workers, **options)
            self.started = True

    def run(self, items: Iterable[Mapping[str, Any]], *, num_gpus: float = 0) -> Iterator[dict[str, Any]]:
        rows = [{"item": json.dumps(item, ensure_ascii=False)} for item in items]
        if not rows:
            return
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        pool = ray.data.ActorPoolStrategy(size=min(self.workers, len(rows)))
        mapped = dataset.map_batches(RayWorker, fn_constructor_kwargs={"spec": self.spec}, batch_size=1,
                                     batch_format="numpy", compute=pool, num_cpus=1, num_gpus=num_gpus or None,
                                     runtime_env={"env_vars": {"OMP_NUM_THREADS": worker_threads()}})
        for row in mapped.iter_rows():
            yield json.loads(str(row["result"]))

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False


def make_executor(kind: str, spec: WorkerSpec, workers: int, address: str | None = None) -> Any:
    """The executor named by the config: local (a pool, even of one: stages run in workers set up alike), or ray."""
    if kind == "ray":
        return RayExecutor(spec, workers, address)
    return LocalExecutor(spec, workers)
