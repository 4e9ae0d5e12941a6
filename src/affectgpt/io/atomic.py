"""atomic_write(): write to a temp file beside the target, then os.replace, so no partial outputs.

The temp file is `.<target name>.<pid>.<n>.tmp` beside the target. A process killed outright (kill -9, out of
memory) cannot remove its temp file, so before writing a target the leftovers of that same target are removed:
`.<target name>.<pid>[.<n>].tmp` files whose process is no longer running (os.kill(pid, 0) finds none). A temp
file of a running process is never touched. Each folder is listed once per process (the leftovers found are
remembered), so writing many files into one big folder stays linear. Processes on other machines sharing the
folder (NFS) are not visible here: do not write one target from several machines at once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temp file next to `path`; on success rename it over `path`, on error remove it.

    The target is never seen half-written: readers see the old file or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    binary = "b" in mode
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding,
                       newline=None if binary else "") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_counter = itertools.count()


def _create_temp(path: Path) -> tuple[int, str]:
    """A new private file beside `path`, named uniquely per process and call (O_EXCL: never reused)."""
    while True:
        tmp = str(path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}.tmp"))
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileExistsError:  # left over from a killed run with the same pid: take the next name
            continue


_TEMP_TAIL = re.compile(r"(?P<pid>\d{1,10})(?:\.\d+)?\.tmp")
_leftovers: dict[str, set[str]] = {}
"""folder -> names of the `.*.tmp` files found when this process first wrote into it (and not yet removed)."""


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temp files that killed processes left for `path` (see the module docstring); return them."""
    path = Path(path)
    folder = str(path.parent.absolute())
    if folder not in _leftovers:
        _leftovers[folder] = _list_temps(path.parent)
    candidates = _leftovers[folder]
    prefix = f".{path.name}."
    removed = []
    for name in [n for n in candidates if n.startswith(prefix)]:
        match = _TEMP_TAIL.fullmatch(name[len(prefix):])
        if match is None or _running(int(match["pid"])):
            continue
        candidates.discard(name)
        with contextlib.suppress(OSError):  # gone already (another process cleaned it), or not ours to remove
            os.unlink(path.parent / name)
            removed.append(path.parent / name)
    return removed


def _list_temps(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if e.name.startswith(".") and e.name.endswith(".tmp")}
    except OSError:  # an unlistable folder: nothing to clean; the write itself reports any real problem
        return set()


def _running(pid: int) -> bool:
    """Whether process `pid` exists (this one included; True when unsure)."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):  # someone else's process, or not a pid at all
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    """Atomically write a whole text file."""
    with atomic_write(path) as handle:
        handle.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Atomically write a whole binary file."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)
