"""The chat-backend interface: requests, sampling settings, completions. Backends know nothing of emotions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. role: "system", "user" or "assistant"."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Sampling:
    """Decoding settings. Defaults are the published extraction settings (Qwen2.5-7B-Instruct, sampled).

    Attributes:
        temperature: 0 means greedy where the backend supports it.
        top_p: nucleus sampling mass.
        repetition_penalty: multiplicative penalty (vLLM / transformers semantics).
        max_tokens: maximum new tokens.
        seed: a seed sent to the backend (recorded; honoured where the server supports it).
    """

    temperature: float = 0.7
    top_p: float = 0.8
    repetition_penalty: float = 1.05
    max_tokens: int = 512
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"sampling.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"sampling.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"sampling.max_tokens must be >= 1, got {self.max_tokens}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One conversation to complete.

    Attributes:
        messages: the conversation so far.
        sampling: decoding settings.
        tag: what produced the request (prompt id and version, e.g. "ov-labels/v1"); part of the cache key.
    """

    messages: tuple[Message, ...]
    sampling: Sampling = field(default_factory=Sampling)
    tag: str = ""


@dataclass(frozen=True, slots=True)
class Completion:
    """The outcome of one request: the answer text, or an error saying why there is none.

    Attributes:
        text: the assistant's answer (None when the request failed).
        error: why it failed after retries ("HTTP 500", "timeout", "malformed response: ..."); None if ok.
        model: the model that answered, as the backend reports it.
        seed: the seed used, when known.
        attempts: how many tries it took (0 when served from the cache).
        cached: True when it came from the cache and nothing was sent.
    """

    text: str | None
    error: str | None = None
    model: str = ""
    seed: int | None = None
    attempts: int = 1
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


OnResult = Callable[[int, Completion], None]
"""Called with (request index, completion) as soon as each request finishes, in any order."""


class ChatBackend(Protocol):
    """Anything that completes chat requests.

    `complete` never raises for a single failed request: each failure is returned as a Completion with
    `error` set, so one bad item never sinks a batch. It may raise AffectGPTError for problems that concern
    every request (no such model folder, unreachable configuration).
    """

    name: str  # the backend's registry name, e.g. "openai"
    model: str  # the model id or path

    def complete(self, requests: Sequence[ChatRequest], on_result: OnResult | None = None) -> list[Completion]:
        """Complete every request; results are in request order. `on_result` sees each as it finishes."""
        ...
