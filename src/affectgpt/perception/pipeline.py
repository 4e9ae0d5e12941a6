"""The perception pipeline: a clip (or a transcript) -> its Scene -> each perceiver of PERCEIVERS -> fuse -> answer.

`describe_clip(path, subtitle=None)` is the one-call entry point (it keeps one Pipeline per option set, so the
models load once per process). `Pipeline` is the reusable form: build it once, call `describe` per clip, or
`describe_texts` for a batch of transcripts with no media (the text-only mode). Every answer says
`backend="perception"`: it comes from these small models, not from AffectGPT.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.perception.base import Perception, Reading, Scene
from affectgpt.perception.fuse import fuse
from affectgpt.registry import Registry

PERCEIVERS = Registry("perceiver", {
    "speech": "affectgpt.perception.speech:SpeechPerceiver",
    "voice": "affectgpt.perception.voice:VoicePerceiver",
    "face": "affectgpt.perception.face:FacePerceiver",
    "text": "affectgpt.perception.text:TextPerceiver",
})
"""Every perceiver by modality. The pipeline runs them in ORDER: speech sets the transcript and the speech
segments that voice and text read."""

ORDER: tuple[str, ...] = ("speech", "voice", "face", "text")

N_FRAMES = 16
"""Frames sampled (uniformly in time) for the face track: enough to tell an expression that changes."""

FACE_SIZE = 96
"""Side of the face crops handed to the face perceiver (it reads their centre at 64 x 64 grey)."""


class Pipeline:
    """The perceivers, built once (their models loaded), run on one clip at a time.

    Args:
        modalities: which perceivers to run (a subset of ORDER; "text" without "speech" reads only subtitles).
        asr_model: a faster-whisper model folder for speech recognition (None: the default shipped model).
        threads: CPU threads for the speech recogniser.
        perceivers: ready-built perceivers by modality, used instead of building those (e.g. a TextPerceiver with
            other heads: benchmarks/bench_perception.py scores cross-corpus heads through this same pipeline).
    """

    def __init__(self, modalities: Sequence[str] = ORDER, *, asr_model: str | Path | None = None,
                 threads: int = 1, perceivers: dict[str, Any] | None = None) -> None:
        unknown = [m for m in modalities if m not in ORDER]
        if unknown:
            PERCEIVERS.get(unknown[0])  # raises the did-you-mean error
        options: dict[str, dict[str, Any]] = {"speech": {"asr_model": asr_model, "threads": threads}}
        given = dict(perceivers or {})
        self.modalities = tuple(m for m in ORDER if m in modalities)
        self.perceivers = {m: given[m] if m in given else PERCEIVERS.get(m)(**options.get(m, {}))
                           for m in self.modalities}

    def fingerprint(self) -> str:
        """A short hash of what decides the answers: the package version, the perceivers run (and their shipped
        weights' bytes), the label rule and the fusion constants. Answers kept for resume must carry the same."""
        import hashlib
        import json

        from affectgpt import __version__
        from affectgpt.perception import fuse, labels

        weights = sorted((Path(__file__).with_name("data")).glob("*.safetensors"))
        parts = {"version": __version__, "modalities": list(self.modalities),
                 "perceivers": {m: type(p).__module__ + "." + type(p).__qualname__ for m, p in self.perceivers.items()},
                 "text_heads": getattr(getattr(self.perceivers.get("text"), "heads", None), "metadata", {}).get(
                     "data_sha256", ""),
                 "weights": {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in weights},
                 "rule": [labels.RATIO, labels.FLOOR, labels.MAX_LABELS, labels.USE_NAMED_WORDS],
                 "fusion": [fuse.TEXT_SENTIMENT_SHARE, fuse.CONFLICT_MIN_WEIGHT, fuse.CONFLICT_MIN_PROBABILITY]}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def describe(self, video: str | Path, subtitle: str | None = None, *,
                 audio: str | Path | None = None) -> Perception:
        """One clip -> its Perception (timings: media, each perceiver, fusion, total)."""
        start = time.perf_counter()
        scene = scene_of(video, subtitle=subtitle, audio=audio, faces="face" in self.modalities)
        media_seconds = time.perf_counter() - start
        return self.run(scene, timings={"media": media_seconds}, start=start)

    def run(self, scene: Scene, *, timings: dict[str, float] | None = None, start: float | None = None) -> Perception:
        """Run every perceiver on `scene`, then fuse."""
        start = time.perf_counter() if start is None else start
        timings = dict(timings or {})
        for modality, perceiver in self.perceivers.items():
            began = time.perf_counter()
            reading = perceiver(scene)
            reading.seconds = time.perf_counter() - began
            scene.readings[modality] = reading
            timings[modality] = reading.seconds
        began = time.perf_counter()
        answer = fuse(scene, scene.readings)
        timings["fusion"] = time.perf_counter() - began
        timings["total"] = time.perf_counter() - start
        answer.timings = timings
        return answer

    def describe_texts(self, rows: Sequence[tuple[str, str, str]]) -> list[Perception]:
        """Text-only mode: (name, text, english) rows -> one Perception each, the encoder batched over all rows.

        `text` is the transcript as spoken (any language), `english` its English translation or "" (both are read
        when both are given)."""
        from affectgpt.perception.text import TextPerceiver

        text = self.perceivers.get("text")
        if not isinstance(text, TextPerceiver):
            raise InputError("the text-only mode needs the text perceiver", field="modalities",
                             fix="build the Pipeline with 'text' among its modalities")
        began = time.perf_counter()
        readings: list[Reading] = text.read_texts([(spoken, "", english) for _, spoken, english in rows])
        each = (time.perf_counter() - began) / max(1, len(rows))
        answers = []
        for (name, spoken, english), reading in zip(rows, readings, strict=True):
            reading.seconds = each
            scene = Scene(name=name, transcript=spoken or english, transcript_source="subtitle" if spoken or english
                          else "", readings={"text": reading})
            answer = fuse(scene, scene.readings)
            answer.timings = {"text": each, "total": each}
            answers.append(answer)
        return answers


def scene_of(video: str | Path, *, subtitle: str | None = None, audio: str | Path | None = None,
             faces: bool = True) -> Scene:
    """Read one clip through media.load_clip into the Scene the perceivers read; an audio-only file (.wav, .mp3...)
    gives a scene without faces, flagged `no_video`."""
    from affectgpt.media.clip import load_clip
    from affectgpt.media.files import AUDIO_SUFFIXES

    if Path(video).suffix.lower() in AUDIO_SUFFIXES and audio is None:
        from affectgpt.media.inputs import decode_audio_file

        sound = decode_audio_file(video, n_clips=1)
        return Scene(name=Path(video).stem, audio=sound.audio, duration=len(sound.audio) / 16000,
                     subtitle=(subtitle or "").strip(), flags={"no_video"})

    clip = load_clip(video, audio=audio, subtitle=subtitle or "", n_frames=N_FRAMES, size=FACE_SIZE, faces=faces,
                     n_audio_clips=1)
    flags = set(clip.flags)
    has_audio = "no_audio" not in flags
    has_face = faces and not flags & {"no_face", "faces_skipped"}
    return Scene(name=clip.name, audio=clip.audio if has_audio else None, faces=clip.faces if has_face else None,
                 frame_times=tuple(clip.frame_times), face_detected=clip.face_detected if has_face else (),
                 duration=float(clip.duration), subtitle=(subtitle or "").strip(),
                 flags=flags - {"faces_skipped"})


@functools.lru_cache(maxsize=2)
def default_pipeline(asr_model: str | None = None, threads: int = 1) -> Pipeline:
    """The process-wide pipeline for these options (models load on the first call)."""
    return Pipeline(asr_model=asr_model, threads=threads)


def describe_clip(path: str | Path, subtitle: str | None = None, *, audio: str | Path | None = None,
                  asr_model: str | Path | None = None, threads: int = 1) -> Perception:
    """One clip -> what the perception pipeline reads in it (the embedded default of `affectgpt describe`).

    Args:
        path: a video file (or an audio file: the face perceiver then flags no_face).
        subtitle: what is said, when known; it wins over speech recognition.
        audio: a separate audio file for the clip.
        asr_model: a faster-whisper model folder instead of the shipped Whisper base.
        threads: CPU threads for speech recognition.
    """
    pipeline = default_pipeline(None if asr_model is None else str(asr_model), threads)
    return pipeline.describe(path, subtitle, audio=audio)
