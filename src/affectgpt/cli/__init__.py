"""The `affectgpt` command: builds the parser from the command modules; AffectGPTError -> exit 2."""

from __future__ import annotations

import argparse
import sys

from affectgpt import __version__
from affectgpt.errors import AffectGPTError

# The command groups; each module has register(subparsers). Imported on use to keep start-up fast.
GROUPS = ("affectgpt.cli.bench", "affectgpt.cli.extract", "affectgpt.cli.media", "affectgpt.cli.model",
          "affectgpt.cli.infer", "affectgpt.cli.train",
          "affectgpt.cli.features")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="affectgpt",
        description="AffectGPT toolkit: score emotion predictions on MER-UniBench (more commands to come).",
        epilog="Run `affectgpt <command> --help` for each command's options and examples.")
    parser.add_argument("--version", action="version", version=f"affectgpt {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    subparsers.required = True
    for group in GROUPS:
        importlib.import_module(group).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input, 1 a bug with its traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except AffectGPTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `affectgpt ... | head`
        return 0
