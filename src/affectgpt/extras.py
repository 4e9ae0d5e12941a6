"""The one gate for optional packages: import them by name, or say which extra installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from affectgpt.errors import MissingExtra


def require(module: str, *, extra: str) -> ModuleType:
    """Import `module` or raise MissingExtra naming `affectgpt[extra]`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(module.split(".")[0], extra) from exc
