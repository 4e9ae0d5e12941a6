"""The served model, loaded once: the perception pipeline (stage by stage, so the page sees each as it ends) or
an AffectGPT checkpoint. `describe(video, subtitle, task, emit, audio=None)` returns the /v1/describe JSON;
`emit(event)` receives the streamed events (frames, faces, transcript, clues, description, labels)."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError

Emit = Callable[[dict[str, Any]], None]
TASKS = ("description", "labels")
N_SHOWN = 8
"""Frames and face crops returned as data URLs (picked uniformly from the sampled ones)."""


def _nothing(_: dict[str, Any]) -> None:
    return None


def data_urls(images: Any, n: int = N_SHOWN) -> list[str]:
    """Up to `n` RGB images (uniformly picked) as small JPEG data URLs."""
    from affectgpt.harness.encode import jpeg_bytes

    if images is None or len(images) == 0:
        return []
    step = max(1, len(images) // n)
    return ["data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image, quality=80)).decode("ascii")
            for image in list(images)[::step][:n]]


def check_task(task: str | None) -> str:
    task = (task or "description").strip()
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}", field="task", fix=f"choose one of {', '.join(TASKS)}")
    return task


class PerceptionEngine:
    """The offline perception pipeline (affectgpt.perception), its models loaded once."""

    name = "perception"

    def __init__(self, asr_model: str | None = None, threads: int = 1) -> None:
        from affectgpt.perception.pipeline import Pipeline

        self.pipeline = Pipeline(asr_model=asr_model, threads=threads)
        self.model_id = "affectgpt-perception"

    def describe(self, video: Path, subtitle: str = "", task: str = "description", emit: Emit = _nothing, *,
                 audio: Path | None = None) -> dict[str, Any]:
        from affectgpt.media.clip import load_clip
        from affectgpt.perception.base import Scene
        from affectgpt.perception.fuse import fuse
        from affectgpt.perception.pipeline import FACE_SIZE, N_FRAMES

        start = time.perf_counter()
        clip = load_clip(video, audio=audio, subtitle=subtitle, n_frames=N_FRAMES, size=FACE_SIZE, faces=True,
                         n_audio_clips=1)
        flags = set(clip.flags)
        has_face = not flags & {"no_face", "faces_skipped"}
        scene = Scene(name="upload", audio=None if "no_audio" in flags else clip.audio,
                      faces=clip.faces if has_face else None, frame_times=tuple(clip.frame_times),
                      face_detected=clip.face_detected if has_face else (), duration=float(clip.duration),
                      subtitle=subtitle.strip(), flags=flags - {"faces_skipped"})
        timings = {"media": time.perf_counter() - start}
        frames, faces = data_urls(clip.frames), data_urls(clip.faces) if has_face else []
        emit({"event": "frames", "frames": frames})
        emit({"event": "faces", "faces": faces})
        for modality, perceiver in self.pipeline.perceivers.items():
            began = time.perf_counter()
            reading = perceiver(scene)
            reading.seconds = timings[modality] = time.perf_counter() - began
            scene.readings[modality] = reading
            if modality == "speech":
                emit({"event": "transcript", "transcript": scene.transcript, "source": scene.transcript_source})
            emit({"event": "clues", "modality": modality, "clues": [c.to_dict() for c in reading.clues]})
        began = time.perf_counter()
        answer = fuse(scene, scene.readings)
        timings["fusion"] = time.perf_counter() - began
        timings["total"] = time.perf_counter() - start
        answer.timings = timings
        result = perception_json(answer, task)
        result.update(frames=frames, faces=faces)
        emit({"event": "description", "description": result["description"]})
        emit({"event": "labels", "labels": result["labels"], "sentiment": result["sentiment"]})
        return result

    def describe_audio(self, audio: Path, subtitle: str, task: str = "description") -> dict[str, Any]:
        """An audio-only clip (a chat request without frames)."""
        return perception_json(self.pipeline.describe(audio, subtitle or None), task)

    def describe_text(self, subtitle: str, task: str = "description") -> dict[str, Any]:
        """A text-only request: the subtitle alone."""
        return perception_json(self.pipeline.describe_texts([("text", subtitle, "")])[0], task)


def perception_json(answer: Any, task: str) -> dict[str, Any]:
    full = answer.to_dict()
    description = full["description"]
    if task == "labels":
        description = ", ".join(full["labels"])
    return {"backend": "perception", "task": task, "description": description, "labels": full["labels"],
            "sentiment": full["sentiment"], "clues": full["clues"], "transcript": full["transcript"]["text"],
            "transcript_source": full["transcript"]["source"], "flags": full["flags"], "timings": full["timings"],
            "frames": [], "faces": []}


class AffectGPTEngine:
    """An AffectGPT checkpoint (affectgpt.infer.describe), loaded once; one generation at a time."""

    name = "affectgpt"

    def __init__(self, model: str, *, allow_download: bool = False) -> None:
        from affectgpt.infer.describe import load_model
        from affectgpt.infer.sources import resolve_checkpoint

        folder = resolve_checkpoint(model)
        self.model, self.tokenizer = load_model(folder, allow_download=allow_download)
        self.model_id = Path(folder).name
        self._lock = threading.Lock()

    def describe(self, video: Path, subtitle: str = "", task: str = "description", emit: Emit = _nothing, *,
                 audio: Path | None = None) -> dict[str, Any]:
        from affectgpt.infer.describe import answer
        from affectgpt.media import load_clip

        start = time.perf_counter()
        clip = load_clip(video, audio=audio, subtitle=subtitle)
        media = time.perf_counter() - start
        frames = data_urls(clip.frames)
        emit({"event": "frames", "frames": frames})
        with self._lock:
            text = answer(self.model, self.tokenizer, [clip], task=task)[0]
        total = time.perf_counter() - start
        emit({"event": "description", "description": text})
        return {"backend": "affectgpt", "model": self.model_id, "task": task, "description": text, "labels": [],
                "sentiment": "", "clues": {}, "transcript": subtitle, "transcript_source": "subtitle" if subtitle
                else "", "flags": list(clip.flags), "timings": {"media": round(media, 4),
                                                                "generate": round(total - media, 4),
                                                                "total": round(total, 4)},
                "frames": frames, "faces": []}


def build_engine(backend: str, model: str | None) -> Any:
    """The engine for `backend` ("perception" or "affectgpt" with `model`)."""
    if backend == "perception":
        return PerceptionEngine()
    if backend == "affectgpt":
        if not model:
            raise InputError("the affectgpt backend needs a checkpoint", field="--model",
                             fix="pass --model CKPT, or --backend perception")
        return AffectGPTEngine(model)
    raise InputError(f"unknown backend {backend!r}", field="--backend", fix="choose perception or affectgpt")
