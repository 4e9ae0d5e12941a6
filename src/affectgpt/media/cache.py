"""The clip cache: one `<name>.safetensors` per clip (frames, faces, audio and their metadata), no pickle.

`affectgpt preprocess` writes it (media/batch.py); feature extraction, training and prediction read it through
media/inputs.py. Files are written atomically, so a reader never sees half a clip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.io.atomic import write_bytes
from affectgpt.io.names import check_name, is_plain_name

CACHE_FORMAT = "affectgpt-clip/1"
SUFFIX = ".safetensors"
ARRAYS = ("frames", "faces", "audio", "audio_clips")


def cache_file(folder: str | Path, name: str) -> Path:
    """Where clip `name` lives in the cache `folder` (whether or not it is there).

    Raises:
        InputError: `name` is not a plain file name (io/names.py), so it could point outside `folder`.
    """
    return Path(folder) / f"{check_name(name, field='clip name')}{SUFFIX}"


def cached_names(folder: str | Path) -> list[tuple[str, Path]]:
    """(name, file) of every clip cached in `folder`, sorted by file name (hidden files are not clips)."""
    return [(path.stem, path) for path in sorted(Path(folder).glob(f"*{SUFFIX}")) if is_plain_name(path.stem)]


def save_clip(clip: Any, path: str | Path) -> None:
    """Write a Clip as safetensors (no pickle anywhere), atomically."""
    from safetensors.numpy import save

    metadata = {"format": CACHE_FORMAT, "name": clip.name, "source": clip.source, "subtitle": clip.subtitle,
                "flags": json.dumps(sorted(clip.flags)), "timings": json.dumps(clip.timings),
                "frame_times": json.dumps(list(clip.frame_times)), "duration": repr(float(clip.duration))}
    write_bytes(path, save({k: getattr(clip, k) for k in ARRAYS}, metadata=metadata))


def load_cached_clip(path: str | Path) -> Any:
    """A Clip read back from its cache file.

    Raises:
        InputError: a truncated or corrupt file, or one of another cache format.
    """
    from safetensors import safe_open

    from affectgpt.media.clip import Clip

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            arrays = {k: handle.get_tensor(k) for k in ARRAYS}
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
        raise InputError(f"not a readable clip cache file ({exc})", path=path,
                         fix="delete it and preprocess again") from exc
    if meta.get("format") != CACHE_FORMAT:
        raise InputError(f"unknown cache format {meta.get('format')!r}", path=path, field="format",
                         fix="preprocess the clip again with this version")
    return Clip(name=meta["name"], source=meta["source"], subtitle=meta["subtitle"],
                flags=frozenset(json.loads(meta["flags"])), timings=json.loads(meta["timings"]),
                frame_times=tuple(json.loads(meta["frame_times"])), duration=float(meta["duration"]), **arrays)
