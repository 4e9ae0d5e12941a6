"""The server's settings (one dataclass) and ServeError, the one error type every endpoint answers as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKENDS = ("perception", "affectgpt")


@dataclass
class Settings:
    """What `affectgpt serve` runs with.

    Attributes:
        backend: "perception" (the offline pipeline) or "affectgpt" (needs `model`).
        model: the AffectGPT checkpoint folder (backend "affectgpt").
        host, port: where uvicorn binds (loopback by default).
        max_upload_bytes: the largest upload (a video, or a chat request's JSON body) accepted; larger -> 413.
        workers: requests answered at once (the model runs in this many threads).
        queue_size: requests that may wait for a worker; beyond workers + queue_size -> 503 with Retry-After.
        request_timeout: seconds a request may wait and run; beyond -> 504.
        retry_after: the Retry-After seconds of a 503.
        temp_root: the folder under which each request's private temp dir is made (None: the system's).
        engine: a ready-built engine (tests inject a slow fake); None builds one from backend/model.
    """

    backend: str = "perception"
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 64 * 1024 * 1024
    workers: int = 1
    queue_size: int = 16
    request_timeout: float = 120.0
    retry_after: int = 2
    temp_root: Path | None = None
    engine: Any = field(default=None, repr=False)


class ServeError(Exception):
    """An HTTP error with a code: becomes {"error": {"code", "message"}} with `status` (and `headers`)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}
