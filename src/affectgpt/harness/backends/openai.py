"""OpenAIMultimodal: jobs -> content parts (harness/encode.py) -> any OpenAI-compatible server, through the llm cache.

Each job becomes one ChatRequest: a single user message whose parts are the clip's frames (JPEG images, or one
MP4), its audio (WAV) and the instruction (the prompt rendered with the clip's subtitle when "text" is among the
modalities). The request's tag is the
prompt id and the encode options, so the cache key changes with either (and with every byte of every part).
Requests go through llm.openai_http.OpenAIChat (bounded concurrency, retries with backoff, 429 with Retry-After,
5xx, cut connections and malformed JSON retried) wrapped in llm.cache.CachedBackend, so a rerun sends only what
has no stored answer. An answer is kept verbatim (an empty one too: extraction then finds no word); a request
that failed after its retries is an Output with `error` set, and is not cached, so a rerun tries it again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from affectgpt.harness.base import Job, OnResult, Output
from affectgpt.harness.encode import MODALITIES, check_options, content_parts, options_tag
from affectgpt.harness.prompts import render
from affectgpt.llm.base import ChatRequest, Completion, Message, Sampling

GREEDY = Sampling(temperature=0.0, top_p=1.0, repetition_penalty=1.0, max_tokens=512, seed=0)
"""The default decoding: greedy (reproducible, so a cached answer is the answer), up to 512 new tokens."""


class OpenAIMultimodal:
    """A MultimodalBackend for an OpenAI-compatible server that takes vLLM's content parts.

    Args:
        base_url: the API root, e.g. "http://127.0.0.1:8000/v1".
        model: the model id to ask for (the served model the server names is recorded per answer).
        api_key: bearer token; default $OPENAI_API_KEY. Never recorded.
        modalities, n_frames, size, video_as, quality, fps, visual: what to send (harness/encode.py): servers
            differ (Qwen2.5-Omni: image, audio, text; Qwen2-Audio: audio, text; Qwen2-VL: image, text).
            The instruction is always sent; "text" puts the clip's subtitle in it. `visual="faces"` sends the
            face crops instead of the frames.
        concurrency, timeout, max_retries, backoff, extra_body, send_repetition_penalty: OpenAIChat's.
        sampling: decoding settings (default GREEDY).
        cache: the sqlite file of answers; None: the default (llm.cache.default_cache_path()); False: no cache.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 modalities: Sequence[str] = MODALITIES, n_frames: int = 8, size: int = 336,
                 video_as: str = "images", quality: int = 90, fps: float = 2.0, visual: str = "frames",
                 concurrency: int = 4, timeout: float = 120.0, max_retries: int = 5, backoff: float = 0.5,
                 extra_body: Mapping[str, Any] | None = None, send_repetition_penalty: bool = True,
                 sampling: Sampling = GREEDY, cache: str | Path | bool | None = None) -> None:
        from affectgpt.errors import InputError
        from affectgpt.llm.cache import CachedBackend
        from affectgpt.llm.openai_http import OpenAIChat

        if visual not in ("frames", "faces"):
            raise InputError(f"{visual!r} is not frames or faces", field="visual", fix="choose frames or faces")
        self.modalities = check_options(modalities, n_frames, size, video_as, quality, fps)
        self.encode = {"modalities": list(self.modalities), "n_frames": n_frames, "size": size, "video_as": video_as,
                       "quality": quality, "fps": fps, "visual": visual}
        self.tag = options_tag(self.modalities, n_frames, size, video_as, quality, fps) + \
            ("/faces" if visual == "faces" else "")
        self.model = model
        self.sampling = sampling
        self.chat = OpenAIChat(base_url, model, api_key=api_key, concurrency=concurrency, timeout=timeout,
                               max_retries=max_retries, backoff=backoff, extra_body=extra_body,
                               send_repetition_penalty=send_repetition_penalty)
        self.cache_path: Path | None = None
        self.backend: Any = self.chat
        if cache is not False:
            self.backend = CachedBackend(self.chat, None if cache is True else cache)
            self.cache_path = self.backend.path
        needs = {"subtitle"} if "text" in self.modalities else set()
        if "image" in self.modalities:
            needs.add(visual)
        if "audio" in self.modalities:
            needs.add("audio")
        self.needs = frozenset(needs)

    def __repr__(self) -> str:
        return f"OpenAIMultimodal({self.chat.base_url!r}, {self.model!r}, {self.tag!r})"

    def request(self, job: Job) -> ChatRequest:
        """The request one job sends."""
        options = {k: v for k, v in self.encode.items() if k != "modalities"}
        subtitle = job.clip.subtitle if "text" in self.modalities else ""
        parts = content_parts(job.clip, render(job.prompt, subtitle), modalities=self.modalities, **options)
        return ChatRequest((Message("user", parts),), self.sampling, tag=f"{job.prompt.id} {self.tag}")

    def answer(self, jobs: Sequence[Job], on_result: OnResult | None = None) -> list[Output]:
        """Each job's Output, in job order; `on_result` sees each as it comes (a job whose clip cannot be encoded
        first, as an error, then the answers as the server gives them). An Output's `seconds` is its encoding time
        plus the wait from the start of sending to its answer (queueing behind `concurrency` included; 0 wait for
        a cached answer)."""
        outputs: list[Output | None] = [None] * len(jobs)
        requests: list[ChatRequest] = []
        sent: list[int] = []  # request position -> job index
        spent: list[float] = []  # encoding seconds per request
        for index, job in enumerate(jobs):
            began = time.perf_counter()
            try:
                requests.append(self.request(job))
            except Exception as exc:  # one clip that cannot be encoded must not sink the batch
                from affectgpt.errors import failure_reason

                outputs[index] = self._output(job, None, error=f"cannot encode the clip: {failure_reason(exc)}")
                if on_result is not None:
                    on_result(index, outputs[index])
                continue
            sent.append(index)
            spent.append(time.perf_counter() - began)
        start = time.perf_counter()

        def done(position: int, completion: Completion) -> None:
            index = sent[position]
            waited = 0.0 if completion.cached else time.perf_counter() - start
            outputs[index] = self._output(jobs[index], completion, seconds=spent[position] + waited)
            if on_result is not None:
                on_result(index, outputs[index])

        if requests:
            self.backend.complete(requests, done)
        return [o for o in outputs if o is not None]

    def _output(self, job: Job, completion: Completion | None, *, error: str | None = None,
                seconds: float = 0.0) -> Output:
        if completion is not None:
            error = completion.error if not completion.ok else None
        return Output(name=job.clip.name, text=None if error else completion.text if completion else None,
                      error=error, backend=self.name, model=completion.model if completion else self.model,
                      sampling=self.sampling.to_json(), seconds=seconds,
                      cached=bool(completion and completion.cached))

    def provenance(self) -> dict[str, Any]:
        """Backend, server, model, sampling, encode options, cache file and versions (never the API key)."""
        from affectgpt.harness.backends import package_versions

        return {"backend": self.name, "base_url": self.chat.base_url, "model": self.model,
                "sampling": self.sampling.to_json(), "encode": dict(self.encode), "tag": self.tag,
                "concurrency": self.chat.concurrency, "max_retries": self.chat.max_retries,
                "timeout": self.chat.timeout, "extra_body": dict(self.chat.extra_body),
                "cache": None if self.cache_path is None else str(self.cache_path),
                "versions": package_versions("httpx", "numpy", "opencv-python-headless", "av")}
