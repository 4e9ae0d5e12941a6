"""The bounded request queue: `workers` jobs run at once in threads, `queue_size` more wait; beyond -> 503.

A request is admitted (or refused with 503 + Retry-After) before its upload is read, and holds its place until
its job is done: a job that outlives its request's time limit (504) keeps its worker until it ends, so a slow
model is never asked to run more than `workers` jobs at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from affectgpt.serve.settings import ServeError


class Gate:
    """Admission and execution of the model's jobs (one per app)."""

    def __init__(self, workers: int, queue_size: int, timeout: float, retry_after: int = 2) -> None:
        self.workers = workers
        self.limit = workers + queue_size
        self.timeout = timeout
        self.retry_after = retry_after
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="affectgpt-serve")
        self._lock = threading.Lock()
        self.admitted = 0

    def admit(self) -> Ticket:
        """A place in the queue, or ServeError 503 (with Retry-After) when all are taken."""
        with self._lock:
            if self.admitted >= self.limit:
                raise ServeError(503, "busy", f"the server is busy ({self.workers} running, "
                                 f"{self.limit - self.workers} waiting); try again shortly",
                                 {"Retry-After": str(self.retry_after)})
            self.admitted += 1
        return Ticket(self)

    def _release(self) -> None:
        with self._lock:
            self.admitted -= 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"workers": self.workers, "admitted": self.admitted, "capacity": self.limit}

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """One admitted request's place: `run` its job (once), or `close` it unused; either releases the place once."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self._released = False
        self._submitted = False

    def close(self) -> None:
        """Give the place back if no job took it over (a request that failed before its job)."""
        if not self._submitted:
            self._release()

    def _release(self, *_: Any) -> None:
        if not self._released:
            self._released = True
            self.gate._release()

    async def run(self, job: Callable[[], Any], *, timeout: float | None = None) -> Any:
        """Run `job` in a worker thread; ServeError 504 when it has not ended within the time limit."""
        self._submitted = True
        future = self.gate.executor.submit(job)
        future.add_done_callback(self._release)  # when the job ends (or is cancelled before it starts)
        limit = self.gate.timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), max(0.001, limit))
        except TimeoutError:
            future.cancel()  # still waiting for a worker: never starts; already running: ends on its own
            raise ServeError(504, "timeout", f"the request took longer than its time limit ({limit:g} s)") \
                from None
