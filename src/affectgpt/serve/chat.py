"""OpenAI-compatible chat completions: content parts (harness/encode.py's: JPEG image_url, MP4 video_url, WAV
input_audio, text) -> a temporary clip in the request's private dir -> the engine -> the OpenAI response shape.

The text parts are the instruction; a "The subtitle of this video is: ..." sentence in them is the subtitle.
Frames become an MP4 (PyAV), the audio a WAV; only data URLs are read (a remote URL is refused: the server
fetches nothing).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.serve.settings import ServeError

SUBTITLE = re.compile(r"The subtitle of this video is:\s*(.*?)\s*(?:\n|$)", re.S)
LABEL_WORDS = ("all possible emotional states", "emotion labels", "output the labels")


def _bad(message: str) -> ServeError:
    return ServeError(422, "bad_request", message)


@dataclass
class ChatInput:
    """What one chat request carries."""

    model: str = ""
    stream: bool = False
    images: list[bytes] = field(default_factory=list)
    video: bytes | None = None
    audio: bytes | None = None
    text: str = ""

    @property
    def subtitle(self) -> str:
        found = SUBTITLE.search(self.text)
        return found.group(1).strip() if found else ""

    @property
    def task(self) -> str:
        lowered = self.text.lower()
        return "labels" if any(word in lowered for word in LABEL_WORDS) else "description"


def _data_url(url: Any, what: str) -> bytes:
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise _bad(f"{what} must be a base64 data URL (the server fetches no remote URL)")
    try:
        return base64.b64decode(url.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{what}: the data URL is not valid base64") from None


def parse_request(body: bytes) -> ChatInput:
    """The request body -> ChatInput (ServeError 422 for a body that is not a chat request)."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad("the body is not JSON") from None
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list) or not request["messages"]:
        raise _bad("`messages` (a non-empty list) is required")
    found = ChatInput(model=str(request.get("model") or ""), stream=bool(request.get("stream")))
    texts = []
    for message in request["messages"]:
        if not isinstance(message, dict) or message.get("role") not in ("user", "system"):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise _bad("a message's `content` must be text or a list of parts")
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                found.images.append(_data_url((part.get("image_url") or {}).get("url"), "image_url"))
            elif kind == "video_url":
                found.video = _data_url((part.get("video_url") or {}).get("url"), "video_url")
            elif kind == "input_audio":
                audio = part.get("input_audio") or {}
                if str(audio.get("format", "wav")).lower() != "wav":
                    raise ServeError(415, "unsupported_audio", "input_audio must be WAV")
                try:
                    found.audio = base64.b64decode(str(audio.get("data", "")), validate=True)
                except (binascii.Error, ValueError):
                    raise _bad("input_audio: `data` is not valid base64") from None
            else:
                raise _bad(f"unknown content part type {kind!r}")
    found.text = "\n".join(texts)
    return found


def _frames(images: list[bytes]) -> list[Any]:
    import cv2
    import numpy as np

    frames = []
    for data in images:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ServeError(415, "not_an_image", "an image_url part is not a JPEG/PNG image")
        image = image[..., ::-1]
        if frames and image.shape != frames[0].shape:
            image = cv2.resize(image, frames[0].shape[1::-1], interpolation=cv2.INTER_AREA)
        frames.append(image)
    return frames


def answer(engine: Any, chat: ChatInput, folder: Path) -> str:
    """Write the clip into `folder` (server-chosen names), run the engine, return the answer text."""
    from affectgpt.harness.encode import mp4_bytes
    from affectgpt.serve.uploads import check_video

    video = audio = None
    if chat.video is not None:
        video = folder / "video.mp4"
        video.write_bytes(chat.video)
    elif chat.images:
        video = folder / "frames.mp4"
        video.write_bytes(mp4_bytes(_frames(chat.images), fps=2.0))
    if chat.audio is not None:
        if chat.audio[:4] != b"RIFF" or chat.audio[8:12] != b"WAVE":
            raise ServeError(415, "unsupported_audio", "input_audio is not a WAV file")
        audio = folder / "audio.wav"
        audio.write_bytes(chat.audio)
    if video is not None:
        check_video(video)
        return engine.describe(video, chat.subtitle, chat.task, audio=audio)["description"]
    if audio is not None and hasattr(engine, "describe_audio"):
        return engine.describe_audio(audio, chat.subtitle, chat.task)["description"]
    if hasattr(engine, "describe_text") and (chat.subtitle or chat.text):
        return engine.describe_text(chat.subtitle or chat.text, chat.task)["description"]
    raise _bad("the request holds no video, frames or audio for this model")


def completion(text: str, model: str, prompt: str) -> dict[str, Any]:
    """The OpenAI chat.completion object (token counts are word counts: no tokenizer is involved)."""
    used = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
    used["total_tokens"] = used["prompt_tokens"] + used["completion_tokens"]
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": "stop"}], "usage": used}


def sse_chunks(text: str, model: str) -> list[str]:
    """The streamed form: `data: {chat.completion.chunk}` lines (role, the words, stop), then `data: [DONE]`."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    words = re.findall(r"\S+\s*", text)
    return [chunk({"role": "assistant", "content": ""}), *(chunk({"content": w}) for w in words),
            chunk({}, "stop"), "data: [DONE]\n\n"]
