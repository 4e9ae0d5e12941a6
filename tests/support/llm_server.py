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

Content parts: a message whose content is a list of OpenAI content parts is matched (rules, `contains=`) by
its text parts joined by newlines. `decode_parts` decodes the parts as a vLLM server would (base64 data URLs,
JPEG/PNG through OpenCV, WAV through `wave`, MP4 frames through OpenCV) and says what they hold; set
`server.check` to a function of the request body that raises ValueError or AssertionError to refuse a request:
it is answered HTTP 400 with the reason (kept in `server.rejected`), as vLLM refuses a part it cannot decode.

Usage (the `llm_server` fixture below starts one per test and stops it afterwards):

    server.add_rule("angry", "[anger]")
    server.add_fault("status", status=500, first=2)
    backend = OpenAIChat(server.base_url, "m")
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterator
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
    check: Callable[[Any], None] | None = None  # raises ValueError / AssertionError to refuse a body (HTTP 400)
    rejected: list[str] = field(default_factory=list)  # why each refused request was refused
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
    """The last user message's text (content parts: the text parts joined by newlines, as vLLM joins them)."""
    if not isinstance(body, dict):
        return ""
    users = [m.get("content", "") for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return ""
    if isinstance(users[-1], list):
        return "\n".join(p.get("text", "") for p in users[-1] if isinstance(p, dict) and p.get("type") == "text")
    return users[-1]


def decode_parts(content: Any) -> list[dict[str, Any]]:
    """What a list of OpenAI content parts holds, decoded as a server would; ValueError saying what is wrong.

    text -> {"type": "text", "text"}; image_url -> {"type": "image", "mime", "width", "height"};
    input_audio -> {"type": "audio", "format", "rate", "channels", "sample_width", "frames"};
    video_url -> {"type": "video", "mime", "frames", "width", "height"}.
    A JPEG must start with SOI and end with EOI; every image and video must decode with OpenCV.
    """
    if not isinstance(content, list) or not content:
        raise ValueError(f"content is not a non-empty list of parts: {type(content).__name__}")
    return [_decode_part(index, part) for index, part in enumerate(content)]


def _decode_part(index: int, part: Any) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    where = f"part {index} ({kind})"
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise ValueError(f"{where}: no text")
        return {"type": "text", "text": part["text"]}
    if kind in ("image_url", "video_url"):
        url = (part.get(kind) or {}).get("url", "")
        head, comma, payload = url.partition(",")
        if not (head.startswith("data:") and head.endswith(";base64") and comma):
            raise ValueError(f"{where}: not a base64 data URL: {url[:40]!r}")
        mime, data = head[len("data:"):-len(";base64")], _b64(where, payload)
        return _image(where, mime, data) if kind == "image_url" else _video(where, mime, data)
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        if audio.get("format") != "wav":
            raise ValueError(f"{where}: format {audio.get('format')!r}, this server reads wav")
        try:
            with wave.open(io.BytesIO(_b64(where, audio.get("data", "")))) as track:
                return {"type": "audio", "format": "wav", "rate": track.getframerate(),
                        "channels": track.getnchannels(), "sample_width": track.getsampwidth(),
                        "frames": track.getnframes()}
        except (wave.Error, EOFError) as exc:
            raise ValueError(f"{where}: not a WAV file: {exc}") from exc
    raise ValueError(f"part {index}: unknown type {kind!r}")


def _b64(where: str, text: Any) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: bad base64: {exc}") from exc
    if not data:
        raise ValueError(f"{where}: empty data")
    return data


def _image(where: str, mime: str, data: bytes) -> dict[str, Any]:
    import cv2
    import numpy as np

    if mime == "image/jpeg" and not (data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"):
        raise ValueError(f"{where}: not a whole JPEG (no SOI at the start or no EOI at the end)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{where}: OpenCV cannot decode the {mime} image")
    return {"type": "image", "mime": mime, "width": image.shape[1], "height": image.shape[0]}


def _video(where: str, mime: str, data: bytes) -> dict[str, Any]:
    import cv2

    if mime == "video/mp4" and data[4:8] != b"ftyp":
        raise ValueError(f"{where}: not an MP4 file (no ftyp box)")
    handle, name = tempfile.mkstemp(suffix=".mp4")  # OpenCV reads video from files only
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        capture = cv2.VideoCapture(name)
        frames, size = 0, (0, 0)
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames, size = frames + 1, (frame.shape[1], frame.shape[0])
        capture.release()
    finally:
        os.unlink(name)
    if not frames:
        raise ValueError(f"{where}: OpenCV decodes no frame from the {mime} video")
    return {"type": "video", "mime": mime, "frames": frames, "width": size[0], "height": size[1]}


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
        if self.state.check is not None:
            try:
                self.state.check(body)
            except (ValueError, AssertionError) as exc:
                with self.state.lock:
                    self.state.rejected.append(str(exc))
                return self._send(400, {"error": {"message": f"bad request: {exc}", "type": "BadRequestError"}})
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
