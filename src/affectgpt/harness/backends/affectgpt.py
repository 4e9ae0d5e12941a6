"""AffectGPTBackend: our own model (a checkpoint folder, a training run, or installed known weights) as a backend.

The checkpoint is resolved as `describe --model` resolves it (infer/sources.py) and loaded once (in `dtype`, on
`device`: the first GPU when torch sees one, unless told otherwise). Each clip is read the way prediction reads
it (media.inputs.load_inputs: 8 frames or face crops at 224 px, 8 audio windows, as the model was trained), from
the clip file itself, so the backend needs only "video" and "subtitle". The instruction text is not sent:
AffectGPT was trained on two questions, and a job's task picks one ("description": infer the emotional state
with reasons; "labels": all possible emotional states). Jobs are answered in batches of `batch_size` (one task
per batch, left-padded: batched answers equal one-by-one answers); a clip that cannot be read is that job's
error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.harness.base import Job, OnResult, Output

TASKS = ("description", "labels")


class AffectGPTBackend:
    """A MultimodalBackend that answers with AffectGPT.

    Args:
        model: our checkpoint folder, a run folder of `affectgpt train` (its latest checkpoint), or known weights.
        dtype: torch dtype name for inference ("float32", "bfloat16", "float16").
        batch_size: clips per generate call.
        max_new_tokens, sample, temperature, top_p, seed: decoding (greedy by default; `sample` with a seed
            gives the published sampling when temperature 1.0, top_p 0.9).
        allow_download: fetch base models named by a hub id (off: nothing is downloaded).
        device: "auto" (the first GPU when torch sees one, else the CPU) or a torch device string ("cpu", "cuda:1").
    """

    name = "affectgpt"
    needs = frozenset({"video", "subtitle"})

    def __init__(self, model: str | Path, dtype: str = "float32", *, batch_size: int = 4, max_new_tokens: int = 512,
                 sample: bool = False, temperature: float = 1.0, top_p: float = 0.9, seed: int | None = None,
                 allow_download: bool = False, device: str = "auto") -> None:
        from affectgpt.infer.describe import Generation, load_model
        from affectgpt.infer.sources import resolve_checkpoint

        if batch_size < 1:
            raise InputError(f"must be >= 1, got {batch_size}", field="batch_size")
        self.checkpoint = resolve_checkpoint(model)
        self.model = str(model)
        self.dtype = dtype
        self.batch_size = batch_size
        self.generation = Generation(max_new_tokens=max_new_tokens, do_sample=sample, temperature=temperature,
                                     top_p=top_p, seed=seed)
        self._model, self._tokenizer = load_model(self.checkpoint, dtype=_torch_dtype(dtype),
                                                  allow_download=allow_download, device=device)
        self.device = str(next(self._model.parameters()).device)

    @property
    def visual_input(self) -> str:
        return str(self._model.cfg.visual_input)

    def answer(self, jobs: Sequence[Job], on_result: OnResult | None = None) -> list[Output]:
        """Each job's Output, in job order; `on_result` sees a batch's outputs as the batch finishes."""
        from dataclasses import asdict

        outputs: list[Output | None] = [None] * len(jobs)
        sampling = asdict(self.generation)

        def report(index: int, output: Output) -> None:
            outputs[index] = output
            if on_result is not None:
                on_result(index, output)

        for task in TASKS:
            todo = [i for i, job in enumerate(jobs) if _task(job) == task]
            for start in range(0, len(todo), self.batch_size):
                began = time.perf_counter()
                loaded = []
                for index in todo[start:start + self.batch_size]:
                    try:
                        loaded.append((index, self._inputs(jobs[index])))
                    except Exception as exc:  # an unreadable clip (or a decoder crash on it) is that job's error
                        from affectgpt.errors import failure_reason

                        report(index, Output(jobs[index].clip.name, None, error=failure_reason(exc),
                                             backend=self.name, model=self.model, sampling=sampling))
                if not loaded:
                    continue
                texts = self._generate([inputs for _, inputs in loaded], task)
                each = (time.perf_counter() - began) / len(loaded)
                for (index, _), text in zip(loaded, texts, strict=True):
                    report(index, Output(jobs[index].clip.name, text, backend=self.name, model=self.model,
                                         sampling=sampling, seconds=each))
        return [o for o in outputs if o is not None]

    def _inputs(self, job: Job) -> Any:
        from dataclasses import replace

        from affectgpt.media.inputs import load_inputs

        inputs = load_inputs(job.clip.name, video=job.clip.video, audio=job.clip.audio_file,
                             visual_input=self.visual_input)
        return replace(inputs, subtitle=job.clip.subtitle)

    def _generate(self, inputs: list[Any], task: str) -> list[str]:
        from affectgpt.infer.describe import answer

        return answer(self._model, self._tokenizer, inputs, task=task, generation=self.generation)

    def provenance(self) -> dict[str, Any]:
        from dataclasses import asdict

        from affectgpt.harness.backends import package_versions

        return {"backend": self.name, "model": self.model, "checkpoint": str(self.checkpoint), "dtype": self.dtype,
                "device": self.device,
                "visual_input": self.visual_input, "batch_size": self.batch_size,
                "sampling": asdict(self.generation), "versions": package_versions("torch", "transformers", "peft")}


def _task(job: Job) -> str:
    if job.task not in TASKS:
        raise InputError(f"unknown task {job.task!r}", field="task", fix=f"choose one of {', '.join(TASKS)}")
    return job.task


def _torch_dtype(name: str) -> Any:
    import torch

    value = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise InputError(f"{name!r} is not a floating-point torch dtype", field="dtype",
                         fix="choose float32, bfloat16 or float16")
    return value
