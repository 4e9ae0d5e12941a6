"""The `affectgpt` command: builds the parser from the command modules; every failure ends as one line on stderr.

Exit codes: 0 done (also when the reader of stdout went away: `affectgpt ... | head`), 2 the user can fix it
(AffectGPTError; an OSError that names a file; text that is not UTF-8; out of memory), 1 a bug (one line asking
for a report), 130 interrupted (the line says what was kept and how to resume: `interrupted_line`).
`affectgpt --debug <command> ...` (or the environment variable AFFECTGPT_DEBUG=1) lets every exception but
AffectGPTError through with its traceback, for a bug report.

A command declares the extras it needs in its register function: `set_defaults(needs=("train",))`, or, for an
extra that only some values of an option need, `needs=({"backend": {"openai": "llm"}},)` (option dest -> value
-> extra), or a function of the parsed arguments that returns extras. They are checked before the command runs,
without importing them (extras.check), so a core-only install gets one `pip install 'affectgpt[...]'` line;
a ModuleNotFoundError for a module of an extra, raised while a command runs, becomes the same line
(extras.extra_for).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import TracebackType

from affectgpt import __version__
from affectgpt.errors import AffectGPTError, MissingExtra

# The command groups; each module has register(subparsers). Imported on use to keep start-up fast.
GROUPS = ("affectgpt.cli.bench", "affectgpt.cli.extract", "affectgpt.cli.media", "affectgpt.cli.model",
          "affectgpt.cli.infer", "affectgpt.cli.train",
          "affectgpt.cli.features", "affectgpt.cli.classifiers", "affectgpt.cli.caption", "affectgpt.cli.serve")

DEBUG_ENV = "AFFECTGPT_DEBUG"
"""AFFECTGPT_DEBUG=1 (or true/yes/on) is the same as `--debug`."""


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="affectgpt",
        description="AffectGPT toolkit, in pipeline order: preprocess (videos -> model inputs), features "
                    "(frozen-encoder outputs for training), train (a YAML recipe -> checkpoints), model "
                    "(configurations, importing original checkpoints), describe and predict (a checkpoint "
                    "answers one clip or a folder of clips), extract (answers -> emotion words -> sentiment) "
                    "and bench (score on MER-UniBench, reports).",
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
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    debug = bool(getattr(args, "debug", False)) or _debug_env()
    try:
        needs = needed_extras(args)
        if needs:  # the scorer's commands need none: nothing extra on their start-up path
            from affectgpt import extras

            extras.check(needs)
        return int(args.run(args) or 0)
    except AffectGPTError as exc:
        return _fail(str(exc), 2)
    except BrokenPipeError:  # `affectgpt ... | head`
        return 0
    except KeyboardInterrupt:
        return _fail(interrupted_line(args), 130)
    except Exception as exc:  # the one place that turns any failure into a line
        missing = _missing_extra(exc, args)
        if missing is not None:
            return _fail(str(missing), 2)
        if debug:
            raise
        return _fail(*describe_failure(exc))


def needed_extras(args: argparse.Namespace) -> list[str]:
    """The extras the chosen command declared (`needs`, see the module docstring), for these arguments."""
    found = []
    for item in getattr(args, "needs", ()):
        if isinstance(item, str):
            found.append(item)
            continue
        if callable(item):  # extras that depend on several options at once
            found.extend(item(args))
            continue
        for dest, table in item.items():  # an extra only some values of an option need
            extra = table.get(getattr(args, dest, None))
            if extra:
                found.append(extra)
    return found


def _missing_extra(exc: Exception, args: argparse.Namespace) -> MissingExtra | None:
    """A ModuleNotFoundError for a package of an extra (the package itself, not a part of an installed one),
    as the MissingExtra naming that extra (the command's own extra when it declared one that brings it)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name or "." in exc.name:
        return None
    from affectgpt.extras import extra_for

    extra = extra_for(exc.name, prefer=needed_extras(args))
    return None if extra is None else MissingExtra(exc.name, extra)


def _count(folder: Path, pattern: str) -> int:
    return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0


def _interrupted_preprocess(args: argparse.Namespace) -> str:
    n = _count(Path(args.output), "*.safetensors")
    return (f"interrupted: {n} {'clip is' if n == 1 else 'clips are'} cached in {args.output}; run the same "
            "command again to resume")


def _interrupted_features(args: argparse.Namespace) -> str:
    n = _count(Path(args.output), "*.safetensors")
    return (f"interrupted: the features of {n} {'clip are' if n == 1 else 'clips are'} in {args.output}; run the "
            "same command again to resume")


def _interrupted_train(args: argparse.Namespace) -> str:
    import re

    out = Path(args.output)
    steps = sorted(p.name for p in out.iterdir() if re.fullmatch(r"checkpoint_\d{6,}", p.name)) \
        if out.is_dir() else []
    if not steps:
        return (f"interrupted before the first checkpoint: nothing to resume in {args.output}; run the same "
                "command again to start over")
    again = "run the same command again" if args.resume else "add --resume"
    return f"interrupted: checkpoints are in {args.output} (newest {steps[-1]}); {again} to continue"


def _interrupted_answers(args: argparse.Namespace, pattern: str, resume: str) -> str:
    """The Ctrl-C line of a command that keeps its answers in partial logs (`pattern` under --output)."""
    out = Path(args.output)
    partial = sorted(out.glob(pattern)) if out.is_dir() else []
    if not partial:
        return "interrupted before any answer was kept; run the same command again"
    return f"interrupted: answers so far are kept in {', '.join(str(p) for p in partial)}; {resume}"


def _interrupted_predict(args: argparse.Namespace) -> str:
    return _interrupted_answers(args, "*.partial.jsonl", "run the same command again to resume")


def _interrupted_bench_run(args: argparse.Namespace) -> str:
    return _interrupted_answers(args, "*/generation.partial.jsonl",
                                "run the same command again to resume (nothing answered is sent again)")


def _interrupted_extract(args: argparse.Namespace) -> str:
    if args.backend != "lexicon" and not args.no_cache:
        return ("interrupted: files already written are kept and the LLM's answers so far are cached; run the "
                "same command again to resume")
    return "interrupted: files already written are kept; run the same command again to do the rest"


def _interrupted_caption_run(args: argparse.Namespace) -> str:
    log = Path(args.output) / "stages.jsonl"
    if not log.is_file():
        return "interrupted before any stage finished; run the same command again"
    with open(log, "rb") as handle:
        n = sum(1 for _ in handle)
    return (f"interrupted: {n} finished clip stage{'' if n == 1 else 's'} kept in {log}; run the same command "
            "again to resume (nothing finished runs again)")


INTERRUPTED = {
    ("preprocess",): _interrupted_preprocess,
    ("features", "extract"): _interrupted_features,
    ("train",): _interrupted_train,
    ("predict",): _interrupted_predict,
    ("extract",): _interrupted_extract,
    ("bench", "run"): _interrupted_bench_run,
    ("caption", "run"): _interrupted_caption_run,
}
"""command (and sub-command) -> the line that says, after Ctrl-C, what was kept and how to resume."""


def interrupted_line(args: argparse.Namespace) -> str:
    """The one line (without `error: `) after Ctrl-C: what the command kept and how to resume, from its args."""
    command = (getattr(args, "command", None),
               getattr(args, "features_command", None) or getattr(args, "bench_command", None)
               or getattr(args, "caption_command", None))
    for key, line in INTERRUPTED.items():
        if tuple(command[:len(key)]) == key:
            try:
                return line(args)
            except Exception:  # an unreadable output folder: the plain line
                break
    return "interrupted"


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
