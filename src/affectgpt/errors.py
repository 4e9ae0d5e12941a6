"""The package's errors: one base class, and InputError for bad input that the user can fix (exit 2)."""

from __future__ import annotations

from pathlib import Path


class AffectGPTError(Exception):
    """Base class of every error this package raises on purpose. The CLI turns it into exit code 2."""


class InputError(AffectGPTError):
    """Bad input: says which file, which field, what is wrong and how to fix it.

    Args:
        what: what is wrong, as a sentence fragment ("3 names have no prediction").
        path: the file or folder concerned, if any.
        field: the key, column, option or item concerned, if any.
        fix: what the user should do about it.
    """

    def __init__(self, what: str, *, path: str | Path | None = None, field: str | None = None,
                 fix: str | None = None) -> None:
        self.what = what
        self.path = None if path is None else str(path)
        self.field = field
        self.fix = fix
        super().__init__(self.message())

    def message(self) -> str:
        parts = [p for p in (self.path, self.field) if p]
        text = ": ".join([*parts, self.what])
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


class MissingExtra(AffectGPTError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"this needs the optional package {package!r}: "
                         f"pip install 'affectgpt[{extra}]'")


def failure_reason(exc: BaseException) -> str:
    """The reason a batch lists for one item that failed: an InputError's what and fix (its file is the item's
    own), anything else as `Type: message` (a decoder crash on one odd file)."""
    if isinstance(exc, InputError):
        return exc.what + (f". Fix: {exc.fix}" if exc.fix else "")
    return f"{type(exc).__name__}: {exc}"
