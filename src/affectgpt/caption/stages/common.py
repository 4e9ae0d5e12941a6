"""What the caption stages share: config checks, per-worker resources, the clip's name and its files under OUT.

Stage configs are small mappings; `check_config` refuses a key a stage does not know (a typo would otherwise be
silently ignored, and still change the stage key) with the closest known key. `resource` builds an object once
per worker (a backend, a model) and keeps it in StageContext.resources under the stage's name and its config.
Per-clip files are stored relative to OUT (`relative`, `absolute`), so an output folder can be moved.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.caption.base import StageContext
from affectgpt.errors import InputError

BACKEND_ERROR = "backend_error: "
"""The prefix of a drop reason that says a backend failed on this clip (a server error after its retries, a
model that raised). It is the backend's fault, not the clip's: an engine may try such records again on resume."""


def where(path: str, key: str) -> str:
    """The field an error names: `key` inside the nested section `path` ("" for the stage's own section), so the
    engine can put "stages.<stage>." in front (config.py)."""
    return f"{path}.{key}" if path else key


def check_config(path: str, config: Mapping[str, Any], known: Iterable[str]) -> None:
    """InputError for a key of `config` (the section at `path`) that is not among `known`, with the closest
    known key as a hint."""
    allowed = sorted(known)
    for key in config:
        if key not in allowed:
            from affectgpt.registry import unknown_name

            error = unknown_name("option", str(key), allowed)
            raise InputError(error.what, field=where(path, str(key)), fix=error.fix)


def check_whole_numbers(config: Mapping[str, Any], defaults: Mapping[str, Any],
                        ranges: Iterable[tuple[str, int, int]]) -> None:
    """InputError for a key of `ranges` ((key, low, high)) whose value (or default) is not a whole number in range."""
    for key, low, high in ranges:
        value = config.get(key, defaults[key])
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InputError(f"must be a whole number in [{low}, {high}], got {value!r}", field=key)


def section(config: Mapping[str, Any], key: str, path: str = "") -> dict[str, Any]:
    """A nested mapping of the config ({} when absent); InputError when it is not a mapping."""
    value = config.get(key) or {}
    if not isinstance(value, Mapping):
        raise InputError(f"must be a mapping, got {type(value).__name__}", field=where(path, key),
                         fix=f"write {key}: {{...}} or leave it out")
    return dict(value)


def flag(config: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    """A yes/no option; InputError for anything but true or false."""
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise InputError(f"must be true or false, got {value!r}", field=where(path, key))
    return value


def resource(context: StageContext, stage: str, config: Mapping[str, Any], build: Callable[[], Any]) -> Any:
    """The object `build` makes for this stage and config, built once per worker (kept in context.resources)."""
    key = f"caption.{stage}:" + json.dumps(dict(config), sort_keys=True, default=str)
    if key not in context.resources:
        context.resources[key] = build()
    return context.resources[key]


def clip_name(fields: Mapping[str, Any]) -> str:
    """The clip's name: the `name` field when the engine gives one, else the source video's file stem."""
    name = fields.get("name")
    if isinstance(name, str) and name:
        return name
    video = fields.get("video")
    if not isinstance(video, str) or not video:
        raise InputError("the record has no video path", field="video", fix="the engine starts each record with "
                         "{'video': <path of the clip>}")
    return Path(video).stem


def relative(path: Path, output: Path) -> str:
    """`path` as stored in a record: relative to OUT, with forward slashes."""
    return path.relative_to(output).as_posix()


def absolute(stored: str, output: Path) -> Path:
    """A stored (OUT-relative) path back to a path on this machine."""
    return Path(output) / stored


def subtitle_text(fields: Mapping[str, Any]) -> str:
    """What the character says, as the clue and merge prompts read it: the subtitle's `text` ("" when none)."""
    subtitle = fields.get("subtitle") or {}
    return str(subtitle.get("text") or "").strip() if isinstance(subtitle, Mapping) else ""


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit PCM mono WAV (as probe writes it) -> float32 samples in [-1, 1]."""
    import wave

    with wave.open(str(path), "rb") as track:
        if track.getsampwidth() != 2 or track.getnchannels() != 1:
            raise InputError("not a 16-bit mono WAV", path=path, fix="run the probe stage again")
        data = track.readframes(track.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def read_faces(path: Path) -> np.ndarray:
    """The face crops probe wrote: [T, H, W, 3] uint8."""
    array = np.load(path, allow_pickle=False)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise InputError(f"face crops of shape {list(array.shape)} ({array.dtype})", path=path,
                         fix="run the probe stage again")
    return array
