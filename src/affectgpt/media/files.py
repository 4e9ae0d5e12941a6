"""Which files are media: the video and audio suffixes, videos found in folders, a clip's companion file by name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from affectgpt.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".aac")


def is_video(path: Path) -> bool:
    """A file whose suffix is one of VIDEO_SUFFIXES (any case)."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def find_by_name(folder: str | Path, name: str, suffixes: Sequence[str]) -> Path | None:
    """`<folder>/<name><suffix>` for the first of `suffixes` that exists as a file, else None."""
    for suffix in suffixes:
        candidate = Path(folder) / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def find_videos(inputs: Sequence[str | Path]) -> list[Path]:
    """Video files among `inputs` (files, or folders searched one level deep), sorted, without duplicates.

    Raises:
        InputError: an input that does not exist, no video at all, or two videos with one name (file stem).
    """
    found: dict[Path, None] = {}
    for item in map(Path, inputs):
        if item.is_dir():
            for path in sorted(item.iterdir()):
                if is_video(path) and path.is_file():
                    found[path] = None
        elif item.is_file():
            found[item] = None
        else:
            raise InputError("input not found", path=item, fix="pass video files or folders holding them")
    if not found:
        raise InputError("no video files found", path=", ".join(map(str, inputs)),
                         fix=f"the suffixes looked for are {', '.join(VIDEO_SUFFIXES)}")
    names: dict[str, Path] = {}
    for path in found:
        if path.stem in names:
            raise InputError(f"two videos share the name {path.stem!r}: {names[path.stem]} and {path}",
                             field="name", fix="clip names (file stems) must be unique in one batch")
        names[path.stem] = path
    return list(found)
