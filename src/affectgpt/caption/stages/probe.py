"""Stage 1, probe and preprocess: decode a clip once and write its released-layout files under OUT.

The engine starts a clip's record with `source_fields(path)`: the video's path and `video_sha`, a content
fingerprint (sha256 of the size and the bytes: all of them up to FULL_HASH_BYTES, else the first, middle and last
MiB), which the probe reads, so a replaced clip is probed again (and everything after it whose inputs change),
while a touched or copied one is not.

The probe decodes the clip with media.load_clip (frames sampled uniformly in time, the main face tracked, the
audio as 16 kHz mono) and writes, each atomically (io/atomic.py):
- OUT/video/<name><ext>: a byte copy of the source clip;
- OUT/audio/<name>.wav: the 16 kHz mono waveform as 16-bit PCM (stdlib wave), when the clip has an audio stream
  (media pads a clip shorter than 2 s with silence to 2 s, flag `audio_padded`);
- OUT/openface_face/<name>/<name>.npy: the face crops [T, H, W, 3] uint8 RGB (np.save, no pickle), when a face
  was found in some frame (media's centre-square fallback is not a face, so none is written for `no_face`).
`media_sha` (a field beside the contract's) hashes what was written (the clip's fingerprint, the WAV and the
crops): the later stages read it, so they run again exactly when the media they read changed (a stored path
alone stays the same when its file changes). Defaults (config `n_frames: 8`, `face_size: 224`): exactly what the
face-input model reads (media.inputs reads 8 crops at 224 px), 1.2 MB a clip. A clip that cannot be decoded, or
whose name cannot be a file name, is dropped with "unreadable: <reason>".
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.common import check_config, check_whole_numbers, clip_name, relative

FULL_HASH_BYTES = 64 * 1024 * 1024
SAMPLE_BYTES = 1024 * 1024
DEFAULTS = {"n_frames": 8, "face_size": 224}


def fingerprint(path: str | Path) -> str:
    """The clip's content fingerprint (see the module docstring): 16 hex digits."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        if size <= FULL_HASH_BYTES:
            for block in iter(lambda: handle.read(SAMPLE_BYTES), b""):
                digest.update(block)
        else:
            for start in (0, size // 2, size - SAMPLE_BYTES):
                handle.seek(start)
                digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()[:16]


def source_fields(video: str | Path) -> dict[str, Any]:
    """A clip's first fields, before any stage: its path and content fingerprint (what the probe reads)."""
    return {"video": str(video), "video_sha": fingerprint(video)}


class Probe:
    """Stage 1 (see the module docstring)."""

    name = "probe"
    version = "1"
    scope = "clip"
    reads = ("video", "video_sha")
    writes = ("video_file", "audio_file", "face_file", "duration", "has_audio", "has_face", "probe_flags", "media_sha")
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        """InputError for an unknown key or a frame count or size out of media's range."""
        check_config("", config, DEFAULTS)
        check_whole_numbers(config, DEFAULTS, (("n_frames", 1, 256), ("face_size", 16, 4096)))

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        from affectgpt.errors import InputError, failure_reason
        from affectgpt.io.names import check_name

        config = {**DEFAULTS, **context.config}
        self.check(config)
        n_frames, face_size = int(config.get("n_frames", 8)), int(config.get("face_size", 224))
        source = Path(str(fields.get("video") or ""))
        try:
            name = check_name(clip_name(fields), path=source, field="clip name")
            if not source.is_file():
                raise InputError("the clip file is not there", path=source, fix="check the clip folder")
            clip = _decode(source, n_frames, face_size)
        except Exception as exc:  # a bad file is this clip's problem: drop it with the reason, the run goes on
            return StageResult(dropped=f"unreadable: {failure_reason(exc)}")
        stamp = str(fields.get("video_sha") or fingerprint(source))
        return StageResult(fields=_write(clip, name, source, Path(context.output), stamp),
                           info={"n_frames": n_frames, "face_size": face_size,
                                 "decode_seconds": round(float(clip.timings.get("total", 0.0)), 4)})


def _decode(source: Path, n_frames: int, face_size: int) -> Any:
    from affectgpt.errors import InputError
    from affectgpt.media.clip import load_clip

    try:
        return load_clip(source, n_frames=n_frames, size=face_size, faces=True, n_audio_clips=1)
    except InputError:
        raise
    except Exception as exc:  # a decoder crash on a damaged file is still the file's fault
        raise InputError(f"cannot decode the clip ({type(exc).__name__}: {exc})", path=source,
                         fix="check that the file plays") from exc


def _write(clip: Any, name: str, source: Path, output: Path, stamp: str) -> dict[str, Any]:
    """Write the clip's files (see the module docstring) and return the probe's fields."""
    from affectgpt.harness.encode import wav_bytes
    from affectgpt.io.atomic import atomic_write, write_bytes

    flags = set(clip.flags)
    has_audio = "no_audio" not in flags
    has_face = "no_face" not in flags and "faces_skipped" not in flags
    video_file = output / "video" / f"{name}{source.suffix.lower()}"
    with open(source, "rb") as reader, atomic_write(video_file, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1024 * 1024)
    audio_file = output / "audio" / f"{name}.wav"
    face_file = output / "openface_face" / name / f"{name}.npy"
    digest = hashlib.sha256(stamp.encode())
    if has_audio:
        data = wav_bytes(clip.audio)
        digest.update(data)
        write_bytes(audio_file, data)
    else:
        audio_file.unlink(missing_ok=True)  # a file left by an earlier probe of a clip that changed
    if has_face:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(clip.faces, dtype=np.uint8), allow_pickle=False)
        digest.update(buffer.getvalue())
        write_bytes(face_file, buffer.getvalue())
    else:
        face_file.unlink(missing_ok=True)
    return {"video_file": relative(video_file, output),
            "audio_file": relative(audio_file, output) if has_audio else None,
            "face_file": relative(face_file, output) if has_face else None,
            "duration": round(float(clip.duration), 3), "has_audio": has_audio, "has_face": has_face,
            "probe_flags": sorted(flags), "media_sha": digest.hexdigest()[:16]}
