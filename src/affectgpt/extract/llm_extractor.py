"""Extraction with any chat backend: the published prompts, sampling and answer parsing.

`openai_extractor(...)` and `transformers_extractor(...)` build an LLMExtractor around the matching backend
from llm/, wrapped in the persistent cache unless asked not to, so a rerun sends nothing and a killed job
resumes where it stopped. Answers are stored as the LLM gave them (surrounding whitespace removed);
malformed ones are marked, never replaced by a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from affectgpt.extract.base import LabelResult, OnLabel, OnSentiment, SentimentResult
from affectgpt.extract.parse import parse_label_answer, parse_sentiment_answer
from affectgpt.extract.prompts import OV_LABELS_V1, SENTIMENT_V1, PromptTemplate
from affectgpt.llm.base import ChatBackend, ChatRequest, Completion, Message, Sampling

R = TypeVar("R", LabelResult, SentimentResult)


class LLMExtractor:
    """Asks a chat backend with the published prompts.

    Args:
        backend: any ChatBackend (usually a CachedBackend around OpenAIChat or TransformersChat).
        sampling: decoding settings; default the published ones (temperature 0.7, top_p 0.8,
            repetition penalty 1.05, 512 new tokens).
        labels_prompt, sentiment_prompt: the templates (default: ov-labels/v1, sentiment/v1).
    """

    def __init__(self, backend: ChatBackend, *, sampling: Sampling | None = None,
                 labels_prompt: PromptTemplate = OV_LABELS_V1,
                 sentiment_prompt: PromptTemplate = SENTIMENT_V1) -> None:
        self.backend = backend
        self.sampling = sampling or Sampling()
        self.labels_prompt = labels_prompt
        self.sentiment_prompt = sentiment_prompt
        self.name = f"llm:{backend.name}"

    def describe(self) -> dict[str, Any]:
        """What produced the answers: recorded beside every output file."""
        return {"backend": self.backend.name, "model": self.backend.model, "sampling": self.sampling.to_json(),
                "labels_prompt": self.labels_prompt.id, "sentiment_prompt": self.sentiment_prompt.id}

    def labels(self, texts: Sequence[str], on_result: OnLabel | None = None) -> list[LabelResult]:
        return self._ask(self.labels_prompt, texts, parse_label_answer, _failed_label, on_result)

    def sentiment(self, openset_answers: Sequence[str],
                  on_result: OnSentiment | None = None) -> list[SentimentResult]:
        return self._ask(self.sentiment_prompt, openset_answers, parse_sentiment_answer, _failed_sentiment,
                         on_result)

    def _ask(self, prompt: PromptTemplate, values: Sequence[str], parse: Callable[[str], R],
             failed: Callable[[Completion], R], on_result: Callable[[int, R], None] | None) -> list[R]:
        requests = [ChatRequest((Message("user", prompt.render(v)),), self.sampling, prompt.id) for v in values]

        def convert(completion: Completion) -> R:
            return parse(completion.text.strip()) if completion.ok else failed(completion)

        def forward(index: int, completion: Completion) -> None:
            if on_result is not None:
                on_result(index, convert(completion))

        completions = self.backend.complete(requests, on_result=forward)
        return [convert(c) for c in completions]


def _failed_label(completion: Completion) -> LabelResult:
    return LabelResult(None, "", "failed", completion.error or "no answer")


def _failed_sentiment(completion: Completion) -> SentimentResult:
    return SentimentResult(None, "", "failed", completion.error or "no answer")


def _cached(backend: ChatBackend, cache: bool | str | Path) -> ChatBackend:
    if cache is False:
        return backend
    from affectgpt.llm.cache import CachedBackend

    return CachedBackend(backend, None if cache is True else Path(cache))


def openai_extractor(*, base_url: str, model: str, api_key: str | None = None, concurrency: int = 8,
                     timeout: float = 60.0, max_retries: int = 5, send_repetition_penalty: bool = True,
                     cache: bool | str | Path = True, **options: Any) -> LLMExtractor:
    """An extractor asking an OpenAI-compatible server (vLLM, Ollama, a hosted API)."""
    from affectgpt.llm import BACKENDS

    backend = BACKENDS.get("openai")(base_url, model, api_key=api_key, concurrency=concurrency, timeout=timeout,
                         max_retries=max_retries, send_repetition_penalty=send_repetition_penalty)
    return LLMExtractor(_cached(backend, cache), **options)


def transformers_extractor(*, model: str, device: str = "auto", batch_size: int = 8,
                           cache: bool | str | Path = True, **options: Any) -> LLMExtractor:
    """An extractor running a local chat model folder with transformers (CPU or GPU)."""
    from affectgpt.llm import BACKENDS

    backend = BACKENDS.get("transformers")(model, device=device, batch_size=batch_size)
    return LLMExtractor(_cached(backend, cache), **options)
