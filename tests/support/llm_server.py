"""A fake OpenAI-compatible chat server on 127.0.0.1 with faults that each test injects.

The answer is a deterministic function of the last user message: the first rule (substring -> answer) that
matches, else the message echoed as a bracketed list ("[<message>]"). Every request body is recorded, with
the time it arrived, and the server tracks how many requests it was handling at once.

Faults (`add_fault`) apply to the requests they select: the first N (`first=`), every k-th (`every=`), or
those whose last user message contains a string (`contains=`); the selectors combine ("the first 2 of those
containing X"). Kinds:

    slow        sleep `delay` seconds, then answer normally (combines with any other fault)
    status      answer HTTP `status` with an OpenAI-style error body; `retry_after` adds that header
    cut         read the request, then close the connection without answering
    truncate    send the headers and half of a valid body, then close the connection
    malformed   answer 200 with a body that is not JSON
    no_choices  answer 200 with valid JSON whose "choices" list is empty

Usage (the `llm_server` fixture below starts one per test and stops it afterwards):

    server.add_rule("angry", "[anger]")
    server.add_fault("status", status=500, first=2)
    backend = OpenAIChat(server.base_url, "m")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

FAULT_KINDS = ("slow", "status", "cut", "truncate", "malformed", "no_choices")


@dataclass
class Fault:
    """One injected fault and the requests it selects (see the module docstring)."""

    kind: str
    first: int | None = None
    every: int | None = None
    contains: str | None = None
    status: int = 500
    delay: float = 0.0
    retry_after: str | None = None
    message: str = "injected fault"
    seen: int = 0  # matching requests so far

    def select(self, text: str) -> bool:
        """Whether this request (its last user message) gets the fault; counts the requests that match."""
        if self.contains is not None and self.contains not in text:
            return False
        self.seen += 1
        if self.first is not None and self.seen > self.first:
            return False
        return self.every is None or self.seen % self.every == 0


@dataclass
class Seen:
    """One request as the server received it."""

    body: Any  # the parsed JSON body, or the raw text when it was not JSON
    headers: dict[str, str]
    path: str
    at: float  # time.monotonic() on arrival


@dataclass
class FakeChatServer:
    """The server's state; `start()` binds 127.0.0.1 on a free port and serves from a thread."""

    served_model: str = "fake/served-model"
    rules: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    # -- configuration -------------------------------------------------------------------------------

    def add_rule(self, contains: str, answer: str) -> None:
        """Answer `answer` to any last user message containing `contains` (first added rule wins)."""
        self.rules.append((contains, answer))

    def add_fault(self, kind: str, **options: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose one of {FAULT_KINDS}")
        fault = Fault(kind, **options)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    # -- what tests read -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def count(self) -> int:
        return len(self.requests)

    def user_texts(self) -> list[str]:
        """The last user message of every request received, in arrival order."""
        return [last_user_message(seen.body) for seen in self.requests]

    def answer(self, text: str) -> str:
        """The answer the server gives to a last user message `text` when no fault applies."""
        for contains, answer in self.rules:
            if contains in text:
                return answer
        return f"[{text}]"

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> FakeChatServer:
        handler = type("Handler", (_Handler,), {"state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True  # a handler still sleeping never blocks shutdown
        self._httpd.handle_error = lambda request, address: None  # clients that hang up are expected
        serve = self._httpd.serve_forever
        # a short poll interval: shutdown() waits up to one interval, once per test
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, name="fake-llm-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def pick_faults(self, text: str) -> tuple[float, Fault | None]:
        """(seconds to sleep, the fault that decides the answer) for one request."""
        delay, chosen = 0.0, None
        with self.lock:
            for fault in self.faults:
                if not fault.select(text):
                    continue
                if fault.kind == "slow":
                    delay += fault.delay
                elif chosen is None:
                    chosen = fault
        return delay, chosen


def last_user_message(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    users = [m.get("content", "") for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    return users[-1] if users else ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections as they would with vLLM
    state: FakeChatServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        state = self.state
        with state.lock:
            state.requests.append(Seen(body, dict(self.headers), self.path, time.monotonic()))
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._respond(body)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _respond(self, body: Any) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        text = last_user_message(body)
        delay, fault = self.state.pick_faults(text)
        if delay:
            time.sleep(delay)
        if fault is None:
            return self._send(200, self._completion(body, self.state.answer(text)))
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return self._send(fault.status, {"error": {"message": fault.message, "code": fault.status}}, headers)
        if fault.kind == "cut":
            self.close_connection = True
            return None
        if fault.kind == "truncate":
            data = json.dumps(self._completion(body, self.state.answer(text))).encode()
            self._head(200, len(data))
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return None
        if fault.kind == "malformed":
            return self._send_bytes(200, b'{"id": "x", "choices": [{"message": {"content": "[ha')
        return self._send(200, {"id": "chatcmpl-empty", "object": "chat.completion", "choices": []})

    def _completion(self, body: Any, answer: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{self.state.count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.state.served_model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), headers)

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self._head(status, len(data), headers)
        self.wfile.write(data)

    def _head(self, status: int, length: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()


@pytest.fixture
def llm_server() -> Iterator[FakeChatServer]:
    """A started FakeChatServer with no rules and no faults; stopped after the test."""
    server = FakeChatServer().start()
    try:
        yield server
    finally:
        server.stop()
