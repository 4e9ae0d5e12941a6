"""Resumable, overlapped generation of one dataset: clips decoded in a producer thread while the backend answers.

The producer decodes the clips still to answer (`load`, on `workers` threads) into a bounded queue; the consumer
takes what is ready (at least one job, at most `batch_size`) and hands it to `backend.answer`, so preprocessing and
the network overlap and the total is close to the slower of the two. A backend that answers concurrently (it has a
`concurrency` attribute above 1: the OpenAI-compatible one) is kept busy job by job: up to `concurrency` calls of
one job each are in flight (at most LANES), and a freed slot takes the next decoded clip at once, so no answer
waits for a slower one of its batch (benchmarks/bench_run.py: with 16 in flight, batches of 16 ran at 1.5-2.4x
the slower stage, job by job at 1.06x). Other backends (local models) get one batch at a time.

Each answer is appended to `generation.partial.jsonl` (flushed and synced per answer); a rerun reads it (and
`generation.jsonl` of a finished run) and sends only the clips without an answer; a line cut by a kill is dropped
and redone. A clip that cannot be decoded, or that the backend answers with an error, is a failure: listed, not
logged, retried on a rerun.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.errors import failure_reason
from affectgpt.harness.base import ClipInputs, Job, MultimodalBackend, Output, Prompt
from affectgpt.harness.layout import Clip

PARTIAL = "generation.partial.jsonl"
LANES = 64  # calls in flight at once, at most, for a backend that answers concurrently
RECORDS = "generation.jsonl"
_END = object()


@dataclass
class GenerationReport:
    """What one generation pass did (seconds: `preprocess` busy time summed over workers, `answer` time inside
    backend.answer, `wall` from start to end)."""

    answered: int = 0
    resumed: int = 0
    cached: int = 0
    batches: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    preprocess_seconds: float = 0.0
    answer_seconds: float = 0.0
    wall_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "failures"} | {"failed": len(self.failures)}


def read_records(folder: Path) -> dict[str, dict[str, Any]]:
    """name -> answer record of a folder's finished and partial logs (a damaged partial tail is cut off)."""
    done = _read(folder / RECORDS, repair=False)
    done.update(_read(folder / PARTIAL, repair=True))
    return done


def _read(path: Path, *, repair: bool) -> dict[str, dict[str, Any]]:
    """Records with text of a JSONL log; with `repair`, the file is truncated after its last good line."""
    done: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return done
    data = path.read_bytes()
    good = 0
    for line in data.splitlines(keepends=True):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("cut line")
            record = json.loads(line)
            if isinstance(record.get("text"), str):
                done[record["name"]] = record
        except (ValueError, KeyError, TypeError, AttributeError):
            break
        good += len(line)
    if repair and good < len(data):
        with open(path, "r+b") as handle:  # a kill cut the last line: appending after it would spoil the next
            handle.truncate(good)
    return done


def generate(backend: MultimodalBackend, clips: Sequence[Clip], prompt: Prompt, task: str, folder: Path, *,
             load: Callable[[Clip], ClipInputs], batch_size: int = 16, queue_size: int = 64, workers: int = 1,
             on_loaded: Callable[[int], None] | None = None,
             on_answered: Callable[[int], None] | None = None) -> tuple[dict[str, dict[str, Any]], GenerationReport]:
    """Answer every clip of `clips` without an answer in `folder`'s logs; return every record and the report.

    Raises:
        whatever `backend.answer` or a callback raises (answers so far stay in the partial log).
    """
    folder.mkdir(parents=True, exist_ok=True)
    done = read_records(folder)
    report = GenerationReport(resumed=sum(1 for c in clips if c.name in done))
    todo = [c for c in clips if c.name not in done]
    began = time.perf_counter()
    if todo:
        with open(folder / PARTIAL, "a", encoding="utf-8") as log:
            _Run(backend, prompt, task, load, report, done, log, on_loaded, on_answered).run(
                todo, batch_size, queue_size, workers)
    report.wall_seconds = time.perf_counter() - began
    return done, report


class _Run:
    """One pass of producer and consumer over the clips to answer."""

    def __init__(self, backend: MultimodalBackend, prompt: Prompt, task: str, load: Callable[[Clip], ClipInputs],
                 report: GenerationReport, done: dict[str, dict[str, Any]], log: Any,
                 on_loaded: Callable[[int], None] | None, on_answered: Callable[[int], None] | None) -> None:
        self.backend, self.prompt, self.task, self.load = backend, prompt, task, load
        self.report, self.done, self.log = report, done, log
        self.on_loaded, self.on_answered = on_loaded, on_answered
        self.lock = threading.RLock()  # _keep (holding it) may call _fail
        self.stop = threading.Event()

    def run(self, todo: list[Clip], batch_size: int, queue_size: int, workers: int) -> None:
        concurrency = int(getattr(self.backend, "concurrency", 1) or 1)
        lanes = min(LANES, concurrency) if concurrency > 1 else 1
        if lanes > 1:
            batch_size = max(1, min(batch_size, concurrency // lanes))
        ready: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        producer = threading.Thread(target=self._produce, args=(todo, ready, max(1, workers)), daemon=True,
                                    name="bench-run-preprocess")
        producer.start()
        slots = threading.BoundedSemaphore(lanes)
        in_flight: list[Future] = []
        pool = ThreadPoolExecutor(lanes, thread_name_prefix="bench-run-answer") if lanes > 1 else None

        def send(batch: list[tuple[Clip, ClipInputs]]) -> None:
            if pool is None:
                self._answer(batch)
                return
            slots.acquire()
            for future in [f for f in in_flight if f.done()]:
                in_flight.remove(future)
                future.result()  # a batch that raised stops the run here
            future = pool.submit(self._answer, batch)
            future.add_done_callback(lambda _: slots.release())
            in_flight.append(future)

        try:
            finished = False
            while not finished:
                batch: list[tuple[Clip, ClipInputs]] = []
                item = ready.get()
                while True:
                    if item is _END:
                        finished = True
                        break
                    clip, inputs = item
                    if isinstance(inputs, BaseException):
                        self._fail(clip, "preprocess", failure_reason(inputs))
                    else:
                        batch.append((clip, inputs))
                    if len(batch) >= batch_size:
                        break
                    try:
                        item = ready.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    send(batch)
            for future in in_flight:
                future.result()
        finally:
            self.stop.set()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            producer.join()

    def _produce(self, todo: list[Clip], ready: queue.Queue, workers: int) -> None:
        def timed(clip: Clip) -> ClipInputs | BaseException:
            began = time.perf_counter()
            try:
                return self.load(clip)
            except Exception as exc:  # one unreadable clip must not stop the run
                return exc
            finally:
                with self.lock:
                    self.report.preprocess_seconds += time.perf_counter() - began

        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="bench-run-decode") as pool:
                window: deque[tuple[Clip, Future]] = deque()
                for clip in todo:
                    window.append((clip, pool.submit(timed, clip)))
                    if len(window) >= 2 * workers and not self._put(ready, window.popleft()):
                        break
                while window and self._put(ready, window.popleft()):
                    pass
                for _, future in window:
                    future.cancel()
        finally:
            self._put(ready, _END)

    def _put(self, ready: queue.Queue, item: Any) -> bool:
        """Put an item (waiting for room) unless the consumer stopped; a decoded clip is counted as loaded."""
        if item is not _END:
            clip, future = item
            item = (clip, future.result())
            if self.on_loaded is not None and not self.stop.is_set():
                self.on_loaded(1)
        while not self.stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _answer(self, batch: list[tuple[Clip, ClipInputs]]) -> None:
        jobs = [Job(inputs, self.prompt, self.task) for _, inputs in batch]
        seen: set[int] = set()

        def on_result(index: int, output: Output) -> None:
            with self.lock:
                if index in seen:
                    return
                seen.add(index)
                self._keep(batch[index][0], output)
            if self.on_answered is not None:
                self.on_answered(1)

        began = time.perf_counter()
        try:
            outputs = self.backend.answer(jobs, on_result)
        finally:
            with self.lock:
                self.report.answer_seconds += time.perf_counter() - began
                self.report.batches += 1
        for index, output in enumerate(outputs):  # a backend that reported nothing (or not everything)
            if index not in seen:
                on_result(index, output)

    def _keep(self, clip: Clip, output: Output) -> None:
        """Log an answer (synced), or list the failure."""
        if output.text is None:
            self._fail(clip, "generation", output.error or "no answer")
            return
        record = {**output.to_json(), "name": clip.name, "prompt": self.prompt.id, "task": self.task}
        self.log.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.log.flush()
        os.fsync(self.log.fileno())
        self.done[clip.name] = record
        self.report.answered += 1
        self.report.cached += bool(output.cached)

    def _fail(self, clip: Clip, stage: str, reason: str) -> None:
        with self.lock:
            self.report.failures.append({"name": clip.name, "file": str(clip.video), "stage": stage, "reason": reason})
