"""Shared CLI output handling: --format/--output options, atomic writes, notes and progress bars on stderr."""

from __future__ import annotations

import argparse
import sys

from affectgpt.io.atomic import write_text


def add_output_options(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    parser.add_argument("--format", choices=formats, default=formats[0],
                        help=f"output format (default {formats[0]})")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write the result to FILE (atomically) instead of standard output")


def emit(text: str, output: str | None) -> None:
    """Write `text` to --output atomically, or to standard output."""
    if not text.endswith("\n"):
        text += "\n"
    if output:
        write_text(output, text)
        note(f"wrote {output}")
    else:
        sys.stdout.write(text)


def note(message: str) -> None:
    """A line for the person at the terminal; never mixed into the result on stdout."""
    print(message, file=sys.stderr)


def progress_bar(total: int, *, unit: str, desc: str | None = None, enabled: bool = True, always: bool = False,
                 initial: int = 0):
    """A tqdm bar on stderr, shown only when `enabled` and stderr is a terminal, or also into a file or pipe with
    `always` (otherwise its update and close do nothing). `initial` is the count it starts from (a resumed run)."""
    from tqdm import tqdm

    shown = enabled and (always or sys.stderr.isatty())
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, file=sys.stderr, disable=not shown)
