"""PerceptionBackend: the offline perception pipeline (perception/pipeline.py) as a `bench run` backend.

It reads the clip file itself (and its subtitle, which wins over speech recognition) and ignores the instruction:
the pipeline answers one fixed question. For the task "description" the answer is its MER-Caption-style
description; for "labels" it is the sentence "The character's emotional state is <labels>." built from its label
words, so extraction reads exactly those words. Clips are answered one after another (the models are loaded once,
on the first job; a clip asked for both tasks in one batch is perceived once); a clip that cannot be read is that
job's error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from affectgpt.harness.base import Job, OnResult, Output

MODEL = "perception-pipeline"


def labels_sentence(labels: Sequence[str]) -> str:
    """"The character's emotional state is happy, excited." ("neutral" when the pipeline names no word)."""
    return f"The character's emotional state is {', '.join(labels) if labels else 'neutral'}."


class PerceptionBackend:
    """A MultimodalBackend that answers with the perception pipeline.

    Args:
        asr_model: a faster-whisper model folder (None: the shipped Whisper base).
        threads: CPU threads for speech recognition.
        modalities: the perceivers to run (default all; see perception.pipeline.ORDER).
    """

    name = "perception"
    model = MODEL
    needs = frozenset({"video", "subtitle"})

    def __init__(self, asr_model: str | Path | None = None, threads: int = 1,
                 modalities: Sequence[str] | None = None) -> None:
        from affectgpt.perception.pipeline import ORDER

        self.asr_model = None if asr_model is None else str(asr_model)
        self.threads = threads
        self.modalities = tuple(modalities) if modalities is not None else ORDER
        self._pipeline: Any = None

    def pipeline(self) -> Any:
        """The Pipeline, built (its models loaded) on first use."""
        if self._pipeline is None:
            from affectgpt.perception.pipeline import Pipeline

            self._pipeline = Pipeline(self.modalities, asr_model=self.asr_model, threads=self.threads)
        return self._pipeline

    def answer(self, jobs: Sequence[Job], on_result: OnResult | None = None) -> list[Output]:
        """Each job's Output in order (the pipeline's description, or its labels as a sentence)."""
        outputs = []
        pipeline = self.pipeline() if jobs else None  # a model that cannot load concerns every job: it raises
        seen: dict[tuple[str, str], Any] = {}  # both tasks of one clip: it is perceived once
        for index, job in enumerate(jobs):
            began = time.perf_counter()
            key = (str(job.clip.video), job.clip.subtitle)
            try:
                found = seen[key] if key in seen else pipeline.describe(job.clip.video, job.clip.subtitle or None,
                                                                          audio=job.clip.audio_file)
                seen[key] = found
                text, error = (labels_sentence(found.labels) if job.task == "labels" else found.description), None
            except Exception as exc:  # one unreadable clip (or a decoder crash on it) is that job's error
                from affectgpt.errors import failure_reason

                text, error = None, failure_reason(exc)
            output = Output(name=job.clip.name, text=text, error=error, backend=self.name, model=self.model,
                            seconds=time.perf_counter() - began)
            outputs.append(output)
            if on_result is not None:
                on_result(index, output)
        return outputs

    def provenance(self) -> dict[str, Any]:
        from affectgpt.harness.backends import package_versions

        return {"backend": self.name, "model": self.model, "modalities": list(self.modalities),
                "asr_model": self.asr_model, "threads": self.threads,
                "versions": package_versions("faster-whisper", "onnxruntime", "numpy", "av")}
