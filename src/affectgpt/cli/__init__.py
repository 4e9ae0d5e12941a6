"""The `affectgpt` command: builds the parser from the command modules; every failure ends as one line on stderr.

Exit codes: 0 done (also when the reader of stdout went away: `affectgpt ... | head`), 2 the user can fix it
(AffectGPTError; an OSError that names a file; text that is not UTF-8; out of memory), 1 a bug (one line asking
for a report), 130 interrupted. `affectgpt --debug <command> ...` (or the environment variable
AFFECTGPT_DEBUG=1) lets every exception but AffectGPTError through with its traceback, for a bug report.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import TracebackType

from affectgpt import __version__
from affectgpt.errors import AffectGPTError

# The command groups; each module has register(subparsers). Imported on use to keep start-up fast.
GROUPS = ("affectgpt.cli.bench", "affectgpt.cli.extract", "affectgpt.cli.media", "affectgpt.cli.model",
          "affectgpt.cli.infer", "affectgpt.cli.train",
          "affectgpt.cli.features")

DEBUG_ENV = "AFFECTGPT_DEBUG"
"""AFFECTGPT_DEBUG=1 (or true/yes/on) is the same as `--debug`."""


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="affectgpt",
        description="AffectGPT toolkit: score emotion predictions on MER-UniBench (more commands to come).",
        epilog="Run `affectgpt <command> --help` for each command's options and examples.")
    parser.add_argument("--version", action="version", version=f"affectgpt {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an unexpected error (also: {DEBUG_ENV}=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    subparsers.required = True
    for group in GROUPS:
        importlib.import_module(group).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 the user can fix it, 1 a bug, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or _debug_env()
    try:
        return int(args.run(args) or 0)
    except AffectGPTError as exc:
        return _fail(str(exc), 2)
    except BrokenPipeError:  # `affectgpt ... | head`
        return 0
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # the one place that turns any failure into a line
        if debug:
            raise
        return _fail(*describe_failure(exc))


def describe_failure(exc: BaseException) -> tuple[str, int]:
    """The one line (without `error: `) and the exit code of an exception that is not an AffectGPTError."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        name = exc.filename
        name = os.fsdecode(name) if isinstance(name, bytes | os.PathLike) else str(name)
        return f"{name}: {exc.strerror}", 2
    if isinstance(exc, UnicodeDecodeError):
        where = _file_being_read(exc.__traceback__) or "the input"
        return (f"{where}: not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start}). "
                "Fix: save the file as UTF-8"), 2
    if isinstance(exc, MemoryError):
        return ("out of memory: an input file may be too large for this machine. Fix: split the input, or run "
                "on a machine with more memory"), 2
    message = " ".join(str(exc).split()) or "(no message)"
    return (f"internal error: {type(exc).__name__}: {message} "
            "(run again with --debug for the traceback, and report it)"), 1


def _fail(line: str, code: int) -> int:
    print(f"error: {line}", file=sys.stderr)
    return code


def _debug_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _file_being_read(tb: TracebackType | None) -> str | None:
    """The path a failed decode was reading: the innermost frame of the traceback that holds a path object as
    `self` (pathlib's read_text) or as `path` (our readers), if any."""
    from pathlib import PurePath

    found = None
    while tb is not None:
        local = tb.tb_frame.f_locals
        for name in ("self", "path"):
            if isinstance(local.get(name), PurePath):
                found = str(local[name])
                break
        tb = tb.tb_next
    return found
