"""The per-user cache folder and small JSON entries in it, keyed by content hashes.

Compiled data (the official wheel maps, ground truth unpickled from the original label files) is kept
here so later runs skip the slow parsing. Entries are written atomically; an unreadable or stale entry is
simply rebuilt, and a read-only cache folder only costs speed.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

CACHE_ENV = "AFFECTGPT_CACHE_DIR"


def cache_root() -> Path:
    """$AFFECTGPT_CACHE_DIR, else $XDG_CACHE_HOME/affectgpt, else ~/.cache/affectgpt."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "affectgpt"


def _entry(kind: str, key: str) -> Path:
    return cache_root() / "compiled" / f"{kind}-{key}.json"


def read_entry(kind: str, key: str, version: int) -> Any | None:
    """The cached payload, or None when absent, unreadable or written by another format version."""
    try:
        data = json.loads(_entry(kind, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != version:
        return None
    return data.get("payload")


def write_entry(kind: str, key: str, version: int, payload: Any) -> None:
    """Store `payload` (JSON-serialisable) atomically; failures to write are ignored."""
    from affectgpt.io.atomic import write_text

    with contextlib.suppress(OSError):
        write_text(_entry(kind, key), json.dumps({"format": version, "payload": payload},
                                                 separators=(",", ":"), ensure_ascii=False))
