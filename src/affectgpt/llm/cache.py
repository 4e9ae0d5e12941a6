"""CachedBackend: wrap any chat backend with a persistent sqlite cache, so reruns send only what is missing.

The key is the SHA-256 of a canonical JSON of (backend name, model, request tag, sampling, messages); a media
part enters it as its kind, type and the SHA-256 of its bytes (a text-only message as its string). A hit
is answered from the file and sends nothing. All misses go to the wrapped backend in one call (so its
concurrency applies), and each successful completion is committed as soon as it arrives, before the
caller's `on_result` sees it: a job killed midway loses nothing that finished and repeats nothing on rerun.
Errors are never stored, so a rerun retries them.

Identical requests within one call are sent once and share the answer, as they would on any rerun.

Concurrency: the file is opened in WAL mode and every write holds a lock, so one process, any threads, is
safe. Several processes sharing one file will not corrupt it (sqlite locks it), but they may send the
same request twice; give concurrent jobs their own cache files. Jobs started together on a new file may
meet each other's locks while one of them creates it: every connection waits for a lock up to
AFFECTGPT_LLM_CACHE_TIMEOUT seconds (default 30; sqlite's busy timeout), and opening the file (WAL mode,
the table) is retried as a whole until then, since sqlite answers some of those collisions at once
without waiting. Only a real permission problem is reported as one; a lock held past the timeout, or a
file that is not a sqlite database, says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.io.cache import cache_root
from affectgpt.llm.base import AudioPart, ChatBackend, ChatRequest, Completion, OnResult, Part, TextPart

KEY_VERSION = 1
"""Part of every key: bump it when the key's recipe changes, so old entries are simply never hit."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key      TEXT PRIMARY KEY,
    text     TEXT NOT NULL,
    model    TEXT NOT NULL,
    seed     INTEGER,
    attempts INTEGER NOT NULL,
    backend  TEXT NOT NULL,
    tag      TEXT NOT NULL,
    created  REAL NOT NULL
)
"""


TIMEOUT_ENV = "AFFECTGPT_LLM_CACHE_TIMEOUT"
DEFAULT_TIMEOUT_S = 30.0


def lock_timeout() -> float:
    """Seconds to wait for another process's lock on the cache file: AFFECTGPT_LLM_CACHE_TIMEOUT, default 30."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e6:  # also NaN
        raise InputError(f"{raw!r} is not a number of seconds", field=TIMEOUT_ENV,
                         fix=f"set {TIMEOUT_ENV} to e.g. 30, or unset it")
    return value


def default_cache_path() -> Path:
    """cache_root()/llm-cache.sqlite (AFFECTGPT_CACHE_DIR moves it)."""
    return cache_root() / "llm-cache.sqlite"


def request_key(backend_name: str, model: str, request: ChatRequest) -> str:
    """The cache key of `request` sent to `model` through the backend called `backend_name`."""
    canonical = {
        "v": KEY_VERSION,
        "backend": backend_name,
        "model": model,
        "tag": request.tag,
        "sampling": request.sampling.to_json(),
        "messages": [[m.role, m.content if isinstance(m.content, str) else [_part_key(p) for p in m.content]]
                     for m in request.messages],
    }
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _part_key(part: Part) -> list[str]:
    """A content part in the key: its kind, then its text, or its type and the SHA-256 of its bytes (so the key
    stays small, and any changed byte changes it)."""
    if isinstance(part, TextPart):
        return [part.kind, part.text]
    media_type = part.format if isinstance(part, AudioPart) else part.mime
    return [part.kind, media_type, hashlib.sha256(part.data).hexdigest()]


class CachedBackend:
    """A ChatBackend that answers from a sqlite file when it can and asks `backend` otherwise.

    Args:
        backend: the backend to wrap; its `name` and `model` are part of every key.
        path: the sqlite file (created with its folder); default cache_root()/llm-cache.sqlite.

    Raises:
        InputError: (from `complete`) the cache file cannot be opened or created.

    A hit comes back with cached=True and attempts=0 (nothing was sent), and the model and seed stored with
    it. `on_result` sees hits first, in order, then misses as the wrapped backend reports them, each after
    it is committed; it runs in whatever thread the wrapped backend calls it from (the calling thread, for
    OpenAIChat and TransformersChat).
    """

    def __init__(self, backend: ChatBackend, path: str | Path | None = None) -> None:
        self.backend = backend
        self.path = Path(path) if path is not None else default_cache_path()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def model(self) -> str:
        return self.backend.model

    def __repr__(self) -> str:
        return f"CachedBackend({self.backend!r}, path={str(self.path)!r})"

    def complete(self, requests: Sequence[ChatRequest], on_result: OnResult | None = None) -> list[Completion]:
        """Complete every request, from the cache where possible; results are in request order."""
        keys = [request_key(self.name, self.model, r) for r in requests]
        results: list[Completion | None] = [None] * len(requests)
        db = self._connect()
        try:
            hits = self._lookup(db, set(keys))
            waiting: dict[str, list[int]] = {}  # key -> every index that asks it
            for index, key in enumerate(keys):
                if key in hits:
                    results[index] = hits[key]
                    if on_result is not None:
                        on_result(index, hits[key])
                else:
                    waiting.setdefault(key, []).append(index)
            misses = list(waiting)
            if misses:
                first = [waiting[key][0] for key in misses]

                def store(position: int, completion: Completion) -> None:
                    key = misses[position]
                    if completion.ok:
                        self._store(db, key, requests[first[position]], completion)
                    for index in waiting[key]:
                        results[index] = completion
                        if on_result is not None:
                            on_result(index, completion)

                self.backend.complete([requests[i] for i in first], store)
        finally:
            db.close()
        return [r for r in results if r is not None]

    def _connect(self) -> sqlite3.Connection:
        timeout = lock_timeout()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._open_error(exc, timeout) from exc
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            db = None
            try:
                # check_same_thread=False: a backend may call on_result from a worker thread; _lock serialises
                db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
                db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a killed process
                db.execute(_SCHEMA)
                db.commit()
                return db
            except (OSError, sqlite3.Error) as exc:
                if db is not None:
                    db.close()
                # Two processes creating the file at once: sqlite answers some collisions (switching a new
                # file to WAL, a lock it would deadlock on) with "locked" at once, without its busy wait.
                if _is_locked(exc) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.25)
                    continue
                raise self._open_error(exc, timeout) from exc

    def _open_error(self, exc: BaseException, timeout: float) -> InputError:
        """Why the cache file cannot be used, with the fix that fits: only a permission problem asks for a
        writable folder."""
        what = f"cannot open the LLM cache: {exc}"
        if _is_locked(exc):
            return InputError(f"{what} (another process held it for over {timeout:g} s)", path=self.path,
                              fix=f"wait for the other job, give each job its own --cache file, or raise "
                                  f"{TIMEOUT_ENV}")
        code = getattr(exc, "sqlite_errorcode", None)
        code = None if code is None else code & 0xFF  # the primary code of an extended one
        text = str(exc).lower()
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "not a database" in text or "malformed" in text:
            return InputError(f"{what} (the file is not a sqlite database, or it is damaged)", path=self.path,
                              fix="delete the file (only cached answers are lost), or pass another --cache file")
        if isinstance(exc, PermissionError) or code in (_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_CANTOPEN) \
                or "readonly" in text or "unable to open" in text:
            return InputError(what, path=self.path,
                              fix="make the folder writable, or set AFFECTGPT_CACHE_DIR to another folder")
        if isinstance(exc, OSError):  # a file where a folder is needed, a full disk...
            reason = exc.strerror or str(exc)
            return InputError(f"cannot open the LLM cache: {reason}", path=exc.filename or self.path,
                              fix="pass another --cache file, or set AFFECTGPT_CACHE_DIR to another folder")
        return InputError(what, path=self.path, fix="pass another --cache file")

    def _lookup(self, db: sqlite3.Connection, keys: set[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        ordered = sorted(keys)
        with self._lock:
            for start in range(0, len(ordered), 500):  # stay under sqlite's bound-parameter limit
                chunk = ordered[start:start + 500]
                rows = db.execute(f"SELECT key, text, model, seed FROM completions WHERE key IN "
                                  f"({','.join('?' * len(chunk))})", chunk)
                for key, text, model, seed in rows:
                    found[key] = Completion(text, model=model, seed=seed, attempts=0, cached=True)
        return found

    def _store(self, db: sqlite3.Connection, key: str, request: ChatRequest, completion: Completion) -> None:
        row: tuple[Any, ...] = (key, completion.text, completion.model, completion.seed, completion.attempts,
                                self.name, request.tag, time.time())
        with self._lock, db:  # one transaction per item: committed before anyone sees the result
            db.execute("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)


# sqlite result codes (primary, low byte), as sqlite3.OperationalError.sqlite_errorcode gives them.
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_CORRUPT, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 14, 26


def _is_locked(exc: BaseException) -> bool:
    """sqlite's "database is locked" / "database table is locked" / busy, by code or (older Pythons) text."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)
