"""OpenAIChat: complete chat requests against an OpenAI-compatible HTTP server, with bounded concurrency and retries.

Works with vLLM, Ollama, llama.cpp's server and hosted APIs: `POST {base_url}/chat/completions`. A message
made of parts (llm/base.py) goes as OpenAI content parts, as vLLM's server takes them: `text`, `image_url`
and `video_url` (base64 data URLs) and `input_audio` (base64 with its format). Which ones a server accepts
depends on its model; a refusal comes back as that item's HTTP 400 error, with the server's message.

Why a synchronous httpx client and a thread pool rather than asyncio: the work is I/O-bound and the
concurrency is small (8-64), so threads cost nothing noticeable; they work from any caller, including one
that already runs an event loop (a notebook, the web demo), where `asyncio.run` would fail; and the calling
thread stays free to collect results, so `on_result` runs there, in the thread that called `complete`,
never concurrently with itself. That makes it safe to write to sqlite (or anything else single-threaded)
from the callback.
"""

from __future__ import annotations

import base64
import email.utils
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.llm.base import AudioPart, ChatRequest, Completion, ImagePart, Message, OnResult, Part, TextPart

MAX_WAIT = 120.0
"""The longest single wait between tries, in seconds, whatever the backoff or a Retry-After header says."""

RETRY_STATUSES = frozenset({408, 409, 425, 429})
"""4xx answers that mean "try again later"; every 5xx is retried too. Other 4xx are the request's fault."""

_jitter = random.Random()  # jitter only spreads retries in time; it never touches results


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why one try failed, and whether another try may help."""

    error: str
    retry: bool
    retry_after: float | None = None


class OpenAIChat:
    """A ChatBackend for an OpenAI-compatible chat-completions server.

    Args:
        base_url: the API root, e.g. "http://127.0.0.1:8000/v1" (the path "/chat/completions" is appended).
        model: the model id to ask for. Completions record the model the server reports answering.
        api_key: sent as a bearer token; default $OPENAI_API_KEY, else no Authorization header.
        concurrency: at most this many requests in flight at once.
        timeout: seconds for each try (connect, read and write each).
        max_retries: further tries after the first, for timeouts, connection errors (including a server
            that drops the connection mid-answer), 429/408/409/425, 5xx, and 200 answers that are not a
            well-formed completion. Other 4xx are reported at once with the server's message.
        backoff: the first wait in seconds; it doubles each retry, with jitter (x0.5 to x1), up to MAX_WAIT.
            A Retry-After header on 429/503 replaces it (also capped at MAX_WAIT).
        extra_body: more JSON fields for every request body (e.g. {"top_k": 20}); they override ours.
        send_repetition_penalty: send `repetition_penalty` (vLLM accepts it; the OpenAI API rejects unknown
            fields, so turn it off there).

    `complete` calls `on_result` from the calling thread, one result at a time. If `on_result` raises (or
    the caller is interrupted), requests not yet started are cancelled, those in flight finish (their
    results are dropped) and the exception propagates.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, concurrency: int = 8,
                 timeout: float = 60.0, max_retries: int = 5, backoff: float = 0.5,
                 extra_body: Mapping[str, Any] | None = None, send_repetition_penalty: bool = True) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"not an http(s) URL: {base_url!r}", field="base_url",
                             fix="give the API root, e.g. http://127.0.0.1:8000/v1")
        for option, value, lowest in (("concurrency", concurrency, 1), ("max_retries", max_retries, 0)):
            if value < lowest:
                raise InputError(f"must be >= {lowest}, got {value}", field=option)
        for option, number in (("timeout", timeout), ("backoff", backoff)):
            if number < 0 or (option == "timeout" and number == 0):
                raise InputError(f"must be positive, got {number}", field=option)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY") or None
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.extra_body = dict(extra_body or {})
        self.send_repetition_penalty = send_repetition_penalty

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChat({self.base_url!r}, {self.model!r}, concurrency={self.concurrency})"

    def complete(self, requests: Sequence[ChatRequest], on_result: OnResult | None = None) -> list[Completion]:
        """Complete every request; results are in request order, one Completion (text or error) each."""
        if not requests:
            return []
        httpx = require("httpx", extra="llm")
        results: list[Completion | None] = [None] * len(requests)
        stop = threading.Event()
        workers = min(self.concurrency, len(requests))
        with self._client(httpx) as client, ThreadPoolExecutor(workers, thread_name_prefix="openai-chat") as pool:
            futures = {pool.submit(self._complete_one, httpx, client, r, stop): i for i, r in enumerate(requests)}
            try:
                for future in as_completed(futures):
                    index = futures[future]
                    results[index] = completion = future.result()
                    if on_result is not None:
                        on_result(index, completion)
            except BaseException:
                stop.set()  # in-flight workers skip their remaining retries
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return [r for r in results if r is not None]

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body sent for `request`."""
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [message_json(m) for m in request.messages],
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if self.send_repetition_penalty:
            body["repetition_penalty"] = sampling.repetition_penalty
        body.update(self.extra_body)
        return body

    def _client(self, httpx: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=httpx.Timeout(self.timeout),
                            limits=limits)

    def _complete_one(self, httpx: Any, client: Any, request: ChatRequest, stop: threading.Event) -> Completion:
        """Try until success, a final failure, or `stop`; never raises."""
        seed = request.sampling.seed
        try:
            body = self.request_body(request)
            failure = _Failure("cancelled before the first try", retry=False)
            attempt = 0
            while attempt <= self.max_retries and not stop.is_set():
                attempt += 1
                outcome = self._try_once(httpx, client, body)
                if not isinstance(outcome, _Failure):
                    text, model = outcome
                    return Completion(text, model=model, seed=seed, attempts=attempt)
                failure = outcome
                if not failure.retry or attempt > self.max_retries or stop.wait(self._wait(attempt, failure)):
                    break
            return Completion(None, error=failure.error, model=self.model, seed=seed, attempts=attempt)
        except Exception as exc:  # a bug or an odd library error must not sink the batch
            return Completion(None, error=f"unexpected error: {type(exc).__name__}: {exc}", model=self.model,
                              seed=seed)

    def _try_once(self, httpx: Any, client: Any, body: dict[str, Any]) -> tuple[str, str] | _Failure:
        try:
            response = client.post("/chat/completions", json=body)
        except httpx.TimeoutException as exc:
            return _Failure(f"timeout after {self.timeout:g} s ({type(exc).__name__})", retry=True)
        except httpx.TransportError as exc:  # refused, reset, or dropped mid-answer
            return _Failure(f"connection error: {type(exc).__name__}: {exc}", retry=True)
        status = response.status_code
        if status != 200:
            retry = status >= 500 or status in RETRY_STATUSES
            after = retry_after_seconds(response.headers.get("Retry-After")) if retry else None
            return _Failure(f"HTTP {status}: {server_message(response)}", retry=retry, retry_after=after)
        try:
            return parse_completion(response.json(), default_model=self.model)
        except ValueError as exc:  # includes json.JSONDecodeError
            return _Failure(f"malformed response: {exc}", retry=True)

    def _wait(self, attempt: int, failure: _Failure) -> float:
        if failure.retry_after is not None:
            return min(failure.retry_after, MAX_WAIT)
        return min(self.backoff * 2 ** (attempt - 1), MAX_WAIT) * _jitter.uniform(0.5, 1.0)


def message_json(message: Message) -> dict[str, Any]:
    """One message as the chat-completions API takes it: text-only content as a plain string, parts as a list
    of OpenAI content parts in the forms vLLM's server accepts (media as base64, inside data URLs for images
    and video)."""
    if isinstance(message.content, str):
        return {"role": message.role, "content": message.content}
    return {"role": message.role, "content": [part_json(part) for part in message.content]}


def part_json(part: Part) -> dict[str, Any]:
    """One content part: text, image_url, input_audio or video_url."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    data = base64.b64encode(part.data).decode("ascii")
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": f"data:{part.mime};base64,{data}"}}
    if isinstance(part, AudioPart):
        return {"type": "input_audio", "input_audio": {"data": data, "format": part.format}}
    return {"type": "video_url", "video_url": {"url": f"data:{part.mime};base64,{data}"}}


def parse_completion(payload: Any, *, default_model: str) -> tuple[str, str]:
    """(answer text, model) from a chat-completions JSON payload; ValueError saying what is missing."""
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("no choices in the answer")
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ValueError("choices[0].message.content is missing or not a string")
    model = payload.get("model")
    return content, model if isinstance(model, str) and model else default_model


def server_message(response: Any) -> str:
    """The error message a server put in its answer (OpenAI, vLLM and FastAPI shapes), else its text."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "message", "detail"):
            if isinstance(payload.get(key), str):
                return payload[key]
    text = " ".join(response.text.split())
    return (text[:300] + "...") if len(text) > 300 else (text or response.reason_phrase or "no message")


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds: a number of seconds (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
