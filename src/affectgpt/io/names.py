"""The one safe-name rule: a clip or sample name that becomes a file name must be a plain file name.

Names read from manifests, label files, subtitle tables and folders become file names in several places (the
feature cache, the clip cache, face tracks, prediction and extraction outputs). `check_name` is the single rule
they all apply, both where names are read (naming the file and row) and in every function that turns a name
into a path (the last defence): a plain file name

- is text, not empty, at most MAX_NAME_BYTES (200) bytes in UTF-8 (file systems allow 255 per name, and the
  suffix and the atomic writer's temp name `.<name>.<pid>.<n>.tmp` need the rest; a fixed limit, not a setting);
- holds no `/`, `\\`, NUL or other control character;
- is not `.` or `..` and does not start with `.` (hidden files, and the atomic writer's temp files).

So `../../x`, `/abs/x` and `a/b` can never put a file outside the folder it was meant for.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from affectgpt.errors import InputError

MAX_NAME_BYTES = 200
NAME_FIX = "use a plain file name: letters, digits, - _ ."


def name_problem(name: object) -> str | None:
    """Why `name` is not a plain file name, or None when it is one."""
    if not isinstance(name, str):
        return f"a {type(name).__name__}, not text"
    if not name:
        return "empty"
    if "/" in name or "\\" in name:
        return "it holds a path separator (/ or \\)"
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        return "it holds a control character"
    if name in (".", ".."):
        return "it names a folder (. or ..)"
    if name.startswith("."):
        return "it starts with '.' (a hidden file)"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    return None


def check_name(name: object, *, path: str | Path | None = None, field: str | None = "name") -> str:
    """Return `name` when it is a plain file name (see the module docstring), else raise InputError.

    Args:
        name: the name to check (a clip or sample name).
        path: the file it was read from, named in the error.
        field: where in that file ("line 3 name"), named in the error.

    Raises:
        InputError: `name` is not a plain file name.
    """
    problem = name_problem(name)
    if problem is not None:
        shown = repr(name) if isinstance(name, str) and len(name) <= 80 else repr(name)[:80] + "..."
        raise InputError(f"name {shown} is not a plain file name ({problem})", path=path, field=field,
                         fix=NAME_FIX)
    return name  # type: ignore[return-value]  # name_problem returned None: it is a str


def is_plain_name(name: object) -> bool:
    """True when `name` passes check_name."""
    return name_problem(name) is None
