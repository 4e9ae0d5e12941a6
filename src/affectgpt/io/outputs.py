"""Output paths checked before any work starts: `output_file` and `output_folder`, one rule for every command.

Every command that writes something checks its output option up front, so a wrong one is one clear line (exit 2)
instead of a traceback after the work is done:

- `output_file(path)`: the path must not be an existing folder, and the folder it goes into (or, when that does
  not exist yet, its nearest existing parent, where it will be created) must be a writable folder.
- `output_folder(path)`: the path must not be an existing file (nor lie below one); it is created, and it must
  be writable.

Writability is asked with os.access, which also sees read-only file systems.
"""

from __future__ import annotations

import os
from pathlib import Path

from affectgpt.errors import InputError


def output_file(path: str | Path, option: str = "--output") -> Path:
    """`path` as a file to write (atomically); its folder is created when written.

    Raises:
        InputError: `path` is an existing folder, or lies below an existing file, or its folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, but a file is expected here", path=path, field=option,
                         fix=f"name a file, not a folder (for example {path / '<file name>'})")
    _check_parent(path, option)
    return path


def output_folder(path: str | Path, option: str = "--output", *, create: bool = True) -> Path:
    """`path` as a folder to write into: created (with its parents) when missing.

    With `create=False` nothing is created (the writer creates it, so a command that fails leaves no empty
    folder behind): a missing folder only needs a writable folder above it.

    Raises:
        InputError: `path` is an existing file (or lies below one), it cannot be created, or it is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("is a file, but a folder is expected here", path=path, field=option,
                         fix="name a folder (a new one is created), or move the file away")
    if not path.is_dir():
        _check_parent(path, option)
        if not create:
            return path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the folder ({exc.strerror or exc})", path=path, field=option,
                             fix="choose a folder you can write to") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError("the folder is not writable", path=path, field=option,
                         fix="choose a folder you can write to, or change its permissions")
    return path


def _check_parent(path: Path, option: str) -> None:
    """The nearest existing folder above `path` must be a writable folder (the rest is created there)."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{parent} is a file, not a folder", path=path, field=option,
                         fix="choose a path inside a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"the folder {parent} is not writable", path=path, field=option,
                         fix="choose a folder you can write to")
