"""One clip file -> the ClipInputs a backend reads, decoded once (media.load_clip), optionally through a clip cache.

Only what the backend `needs` is filled in: "frames" and "faces" are the uniformly sampled frames and the main
face's crops (faces are tracked only when asked for), "audio" the 16 kHz mono waveform (None when the clip has no
audio stream; a clip shorter than 2 s comes zero-padded to 2 s, as media gives it), "subtitle" the given text. A
backend that reads only "video" and "subtitle" gets no decoding at all.

With `cache_dir`, the decoded clip is kept as media's clip cache file (media/cache.py, safetensors, written
atomically) under `<cache_dir>/<n_frames>x<size>/<name>.<fingerprint>.safetensors`; the fingerprint hashes the
video's path, size and modification time, so a replaced file is decoded again, and the folder keeps clips of other
frame counts and sizes apart. A rerun then decodes nothing ("preprocessing (cached)"). A cached clip without faces
is decoded again (and rewritten) when faces are asked for.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.harness.base import INPUTS, ClipInputs

DECODED = frozenset({"frames", "faces", "audio"})
"""The inputs that need the video decoded."""


def cache_path(video: str | Path, cache_dir: str | Path, *, n_frames: int = 8, size: int = 336,
               audio: str | Path | None = None) -> Path:
    """Where `load_clip_inputs` keeps (or finds) the decoded clip of `video` (with `audio`) for these options."""
    video = Path(video)
    try:
        stat = video.stat()
    except OSError as exc:
        raise InputError(f"cannot read the video ({exc.strerror or exc})", path=video,
                         fix="check the clip folder") from exc
    stamp = f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if audio is not None:  # a separate audio file is part of what was decoded
        sound = Path(audio)
        sound_stat = sound.stat()
        stamp += f"|{sound.resolve()}|{sound_stat.st_size}|{sound_stat.st_mtime_ns}"
    digest = hashlib.sha256(stamp.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    from affectgpt.media.cache import cache_file

    return cache_file(Path(cache_dir) / f"{n_frames}x{size}", f"{video.stem}.{digest}")


def load_clip_inputs(video: str | Path, *, needs: frozenset[str], n_frames: int = 8, size: int = 336,
                     subtitle: str = "", cache_dir: str | Path | None = None,
                     audio: str | Path | None = None) -> ClipInputs:
    """The clip's inputs for a backend that reads `needs` (see the module docstring).

    Args:
        video: the clip file; its stem is the clip's name.
        needs: a subset of harness.base.INPUTS.
        n_frames: frames (and face crops) to sample uniformly in time.
        size: side of the square frames and crops (frames are stretched to it, as media does).
        subtitle: what is said ("" when unknown); passed through when "subtitle" is needed.
        cache_dir: a folder for the decoded clips; None decodes every time.
        audio: a separate audio file used instead of the video's audio stream (kept in ClipInputs.audio_file).

    Raises:
        InputError: an unknown input in `needs`, a missing or unreadable video (the message names the file), or
            a cache file that cannot be read.
    """
    unknown = sorted(set(needs) - set(INPUTS))
    if unknown:
        raise InputError(f"unknown input {unknown[0]!r}", field="needs", fix=f"choose among {', '.join(INPUTS)}")
    video = Path(video)
    if not video.is_file():
        raise InputError("video not found", path=video, fix="check the clip folder")
    text = subtitle if "subtitle" in needs else ""
    sound = Path(audio) if audio is not None else None
    if sound is not None and not sound.is_file():
        raise InputError("audio file not found", path=sound, fix="check the clip folder's audio/ files")
    if not needs & DECODED:
        return ClipInputs(name=video.stem, video=video, subtitle=text, audio_file=sound)
    clip = _decoded(video, faces="faces" in needs, n_frames=n_frames, size=size, cache_dir=cache_dir, audio=sound)
    audio = None if "no_audio" in clip.flags else clip.audio
    return ClipInputs(name=video.stem, video=video, frames=clip.frames if "frames" in needs else None,
                      faces=clip.faces if "faces" in needs else None,
                      audio=audio if "audio" in needs else None, subtitle=text, audio_file=sound)


def _decoded(video: Path, *, faces: bool, n_frames: int, size: int, cache_dir: str | Path | None,
             audio: Path | None = None) -> Any:
    """The media Clip of `video`: from the cache when it is there (with faces when asked), else decoded (and kept)."""
    from affectgpt.media.cache import load_cached_clip, save_clip

    file = cache_path(video, cache_dir, n_frames=n_frames, size=size, audio=audio) if cache_dir is not None else None
    if file is not None and file.is_file():
        clip = load_cached_clip(file)
        if not (faces and "faces_skipped" in clip.flags):
            return clip
    clip = _decode(video, faces=faces, n_frames=n_frames, size=size, audio=audio)
    if file is not None:
        save_clip(clip, file)
    return clip


def _decode(video: Path, *, faces: bool, n_frames: int, size: int, audio: Path | None = None) -> Any:
    from affectgpt.media.clip import load_clip

    try:
        return load_clip(video, audio=audio, n_frames=n_frames, size=size, faces=faces)
    except InputError as exc:
        if exc.path is not None:
            raise
        raise InputError(exc.what, path=video, field=exc.field, fix=exc.fix) from exc
    except Exception as exc:  # a decoder crash on a damaged file: still the file's fault
        raise InputError(f"cannot decode the video ({type(exc).__name__}: {exc})", path=video,
                         fix="check that the file plays, or remove it from the clip folder") from exc
