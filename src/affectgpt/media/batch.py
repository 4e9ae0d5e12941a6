"""Preprocess a folder of clips: parallel workers, one clip-cache file per clip, a failures report.

Each clip becomes `<output>/<name>.safetensors` in the clip cache (media/cache.py: arrays `frames`, `faces`,
`audio`, `audio_clips`; metadata: subtitle, flags, timings, frame times, duration, source), written
atomically, so a killed batch loses at most the clips in flight and a rerun skips every clip already cached. A
clip that cannot be read is listed in `<output>/failures.json` (file and reason) and the batch goes on; so is a
video whose name (file stem) is not a plain file name (io/names.py). `--faces-npy DIR` also writes each face
track as `DIR/<name>.npy` ([T, H, W, 3] uint8, RGB), the layout of the original `openface_face/` folder (which
was BGR).

What is shared by every clip is checked once, before the first clip (`check_options`): frames per clip within
FRAMES_RANGE (1..256) and the frame size within SIZE_RANGE (16..4096 pixels; fixed bounds, far beyond what any
encoder takes: FFmpeg's scaler fails on larger sizes), the subtitle table is read (a bad CSV is one InputError naming
it, not a failure of every clip), and the ASR model folder must hold a faster-whisper model (`model.bin`) with
faster-whisper installed.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError, failure_reason
from affectgpt.io.atomic import write_bytes, write_text
from affectgpt.io.names import check_name
from affectgpt.media.cache import cache_file, save_clip
from affectgpt.media.files import AUDIO_SUFFIXES, find_by_name, find_videos

FRAMES_RANGE = (1, 256)
SIZE_RANGE = (16, 4096)


@dataclass(frozen=True)
class ClipOptions:
    """How each clip is read (the arguments of media.load_clip, plus where subtitles and audio come from).

    Attributes:
        n_frames, size, resize, faces: as in load_clip.
        subtitles: a CSV (name, chinese, english) to take each clip's subtitle from.
        subtitle_column: which column of that CSV.
        audio_dir: a folder of separate audio files named like the videos (<name>.wav ...).
        asr_model: a local faster-whisper model folder: transcribe clips that have no subtitle.
        faces_npy: also write each face track as <faces_npy>/<name>.npy (original openface_face layout, RGB).
    """

    n_frames: int = 8
    size: int = 224
    resize: str = "stretch"
    faces: bool = True
    subtitles: str | None = None
    subtitle_column: str = "english"
    audio_dir: str | None = None
    asr_model: str | None = None
    faces_npy: str | None = None


@dataclass
class BatchReport:
    """What a batch did: clips written, skipped (already cached) and failed (with reasons)."""

    output: str
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)


def preprocess(inputs: Sequence[str | Path], output: str | Path, options: ClipOptions = ClipOptions(), *,
               workers: int = 1, force: bool = False,
               on_done: Callable[[str, str], None] | None = None) -> BatchReport:
    """Turn every video among `inputs` into a cache file in `output`; failures are reported, not raised.

    Args:
        inputs: video files or folders of them.
        output: the cache folder (created).
        options: how clips are read.
        workers: processes working in parallel (1: in this process).
        force: redo clips that are already cached.
        on_done: called with (clip name, "written" | "skipped" | "failed") as each clip finishes.
    """
    videos = find_videos(inputs)
    check_options(options)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    report = BatchReport(str(output))
    todo = []
    for video in videos:
        try:
            target = cache_file(output, video.stem)
        except InputError as exc:  # a file name that cannot be a cache name: this clip fails, the batch goes on
            report.failures.append({"file": str(video), "reason": failure_reason(exc)})
            if on_done:
                on_done(video.stem, "failed")
            continue
        if not force and target.is_file():
            report.skipped.append(video.stem)
            if on_done:
                on_done(video.stem, "skipped")
        else:
            todo.append(str(video))
    for name, outcome in _run(todo, str(output), options, workers):
        _record(report, name, outcome)
        if on_done:
            on_done(name, "failed" if "reason" in outcome else "written")
    report.failures.sort(key=lambda f: f["file"])
    write_text(output / "failures.json", json.dumps({"failures": report.failures}, indent=2, ensure_ascii=False))
    return report


def check_options(options: ClipOptions) -> None:
    """Check once, before any clip, what every clip would otherwise fail on (see the module docstring).

    Raises:
        InputError: an unreadable subtitle table (naming the CSV and the problem), an ASR model folder that is
            missing or holds no faster-whisper model.
        MissingExtra: an ASR model is given but faster-whisper is not installed.
    """
    for option, value, (low, high) in (("--frames", options.n_frames, FRAMES_RANGE),
                                       ("--size", options.size, SIZE_RANGE)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"{value!r} is out of range", field=option, fix=f"use {option} from {low} to {high}")
    if options.subtitles:
        _table(options.subtitles, options.subtitle_column)
    if options.audio_dir and not Path(options.audio_dir).is_dir():
        raise InputError("audio folder not found", path=options.audio_dir, field="--audio-dir",
                         fix="pass the folder holding <clip>.wav (or .flac ...) files, or leave the option out")
    if options.asr_model:
        folder = Path(options.asr_model)
        if not folder.is_dir():
            raise InputError("ASR model folder not found", path=folder, field="--asr-model",
                             fix="pass a local faster-whisper model folder (model.bin, config.json, tokenizer.json)")
        if not (folder / "model.bin").is_file():
            raise InputError("not a faster-whisper model folder: no model.bin", path=folder, field="--asr-model",
                             fix="convert the Whisper model with ct2-transformers-converter, or pass the right "
                                 "folder")
        from affectgpt.media.subtitles import load_asr_model

        load_asr_model(folder)  # up front: a model that cannot load fails here, not once per clip


def faces_npy_file(folder: str | Path, name: str) -> Path:
    """Where clip `name`'s face track goes under `--faces-npy` (the original `openface_face/<name>.npy`).

    Raises:
        InputError: `name` is not a plain file name (io/names.py).
    """
    return Path(folder) / f"{check_name(name, field='clip name')}.npy"


def _record(report: BatchReport, name: str, outcome: dict[str, Any]) -> None:
    if "reason" in outcome:
        report.failures.append({"file": outcome["file"], "reason": outcome["reason"]})
        return
    report.written.append(name)
    for flag in outcome["flags"]:
        report.flags[flag] = report.flags.get(flag, 0) + 1


def _run(videos: list[str], output: str, options: ClipOptions, workers: int) -> Iterable[tuple[str, dict]]:
    if workers <= 1 or len(videos) <= 1:
        _init_worker()
        for video in videos:
            yield Path(video).stem, process_one(video, output, options)
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_pool_worker)
    try:
        futures = {pool.submit(process_one, video, output, options): video for video in videos}
        for future in as_completed(futures):
            yield Path(futures[future]).stem, future.result()
    finally:  # Ctrl-C (or a caller that stops early): clips not started are dropped, those started are finished
        pool.shutdown(wait=True, cancel_futures=True)


def _init_pool_worker() -> None:
    """A worker process: as _init_worker, and Ctrl-C is the main process's to handle (a terminal sends it to the
    workers too): the worker finishes its clip (written whole) instead of printing a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker()


def _init_worker() -> None:
    """One thread per worker process for OpenCV and BLAS: the parallelism is across clips."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def process_one(video: str, output: str, options: ClipOptions) -> dict[str, Any]:
    """Read one clip and write its cache file; any failure becomes {"file", "reason"} (the batch goes on)."""
    try:
        clip = _load(Path(video), options)
        save_clip(clip, cache_file(output, clip.name))
        if options.faces_npy:
            _write_npy(faces_npy_file(options.faces_npy, clip.name), clip.faces)
        return {"flags": sorted(clip.flags), "timings": clip.timings}
    except Exception as exc:  # bad input, or a decoder crash on one odd file: the batch goes on
        return {"file": video, "reason": failure_reason(exc)}


def _load(video: Path, options: ClipOptions) -> Any:
    from dataclasses import replace

    from affectgpt.media.clip import load_clip

    subtitle = _subtitle(video.stem, options)
    clip = load_clip(video, audio=_audio_file(video.stem, options), subtitle=subtitle or "",
                     n_frames=options.n_frames, size=options.size, resize=options.resize, faces=options.faces)
    if subtitle is None and options.asr_model:
        from affectgpt.media.subtitles import transcribe

        text = transcribe(clip.audio, 16000, model_dir=options.asr_model)
        return replace(clip, subtitle=text, flags=clip.flags | {"subtitle_asr"})
    if subtitle is None and options.subtitles:
        return replace(clip, flags=clip.flags | {"no_subtitle"})
    return clip


def _subtitle(name: str, options: ClipOptions) -> str | None:
    if not options.subtitles:
        return None
    from affectgpt.media.subtitles import subtitle_for

    return subtitle_for(name, _table(options.subtitles, options.subtitle_column))


_TABLES: dict[tuple[str, str], dict[str, str]] = {}


def _table(path: str, column: str) -> dict[str, str]:
    """The subtitle CSV, read once per process."""
    from affectgpt.media.subtitles import read_subtitle_table

    key = (path, column)
    if key not in _TABLES:
        _TABLES[key] = read_subtitle_table(path, column=column)
    return _TABLES[key]


def _audio_file(name: str, options: ClipOptions) -> Path | None:
    return find_by_name(options.audio_dir, name, AUDIO_SUFFIXES) if options.audio_dir else None


def _write_npy(path: Path, array: Any) -> None:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_bytes(path, buffer.getvalue())
