"""Registry: a table of name -> "module:attr", resolved on first use, with did-you-mean on typos."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from affectgpt.errors import InputError


def unknown_name(kind: str, name: str, choices: list[str]) -> InputError:
    """The error for a name that is not in a table, with the closest match as a hint."""
    import difflib  # only on the error path: keeps start-up light

    hint = difflib.get_close_matches(name, choices, n=1)
    fix = f"choose one of {', '.join(choices)}"
    if hint:
        fix += f" (did you mean {hint[0]!r}?)"
    return InputError(f"unknown {kind} {name!r}", field=kind, fix=fix)


@dataclass(frozen=True)
class Registry:
    """A lazily resolved table of named components.

    Attributes:
        kind: what the entries are, for error messages ("llm backend").
        entries: name -> "package.module:attribute".
    """

    kind: str
    entries: Mapping[str, str]

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> Any:
        if name not in self.entries:
            raise unknown_name(self.kind, name, self.names())
        module, _, attr = self.entries[name].partition(":")
        return getattr(importlib.import_module(module), attr)
