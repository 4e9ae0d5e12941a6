"""A fake multimodal OpenAI-compatible server: llm_server's FakeChatServer that checks content parts and answers
by which clip it was shown.

Identifying the clip: the instruction is the same for every clip (and must not carry its name), so the server
looks at the pictures, as a real model would. Test clips are drawn with `clip_frames(k)`: clip k's frames carry
the numbers 32k, 32k+1, ... in media_clips' binary blocks, which survive scaling and JPEG (black and white blocks
read at their centres). The server decodes the first image (or the first frame of the video), reads the number,
and answers `answers[number // 32]`. This holds whatever frames the client samples, in any request order, and
with any concurrency; a request for a clip not in the table is refused (HTTP 400), so a wrong clip cannot pass.

`expect(...)` sets what each request must hold: the part types in order (n images or one video, then audio, then
text), the frames' size, the number of frames, and WAV at 16 kHz mono 16-bit. A request that breaks it is
answered HTTP 400 with the reason (kept in `rejected`), like vLLM refusing a part it cannot read.
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from llm_server import FakeChatServer, _Handler, decode_parts
from media_clips import frame_image, read_frame_number

PER_CLIP = 32
"""Frame numbers per clip: clip k's frames are numbered PER_CLIP * k + i (a clip has fewer frames than this)."""


def clip_frames(k: int, n: int = 20) -> list[np.ndarray]:
    """The frames of test clip k (128 x 96, numbered PER_CLIP * k + i)."""
    assert n <= PER_CLIP
    return [frame_image(PER_CLIP * k + i) for i in range(n)]


@dataclass
class MultimodalServer(FakeChatServer):
    """FakeChatServer that checks parts (`expect`) and answers from `answers` by the clip shown (see the module)."""

    answers: dict[int, str] = field(default_factory=dict)
    parts: list[tuple[str, ...]] = field(default_factory=list)  # the part types of every accepted request
    spec: dict[str, Any] = field(default_factory=dict)

    def expect(self, *, images: int = 0, video_frames: int = 0, audio: bool = False, size: int = 336) -> None:
        """Each request must be: `images` JPEG images of size x size (or one MP4 of `video_frames` frames), then a
        16 kHz mono 16-bit WAV if `audio`, then one text part (the instruction)."""
        self.spec = {"images": images, "video_frames": video_frames, "audio": audio, "size": size}
        self.check = self._check

    def _check(self, body: Any) -> None:
        [message] = body["messages"]
        decoded = decode_parts(message["content"])
        spec = self.spec
        types = ["image"] * spec["images"] + (["video"] if spec["video_frames"] else []) + \
            (["audio"] if spec["audio"] else []) + ["text"]
        got = [part["type"] for part in decoded]
        assert got == types, f"part types {got}, expected {types}"
        for part in decoded:
            if part["type"] in ("image", "video"):
                assert (part["width"], part["height"]) == (spec["size"], spec["size"]), \
                    f"{part['type']} of {part['width']}x{part['height']}, expected {spec['size']}x{spec['size']}"
            if part["type"] == "image":
                assert part["mime"] == "image/jpeg", part["mime"]
            if part["type"] == "video":
                assert part["frames"] == spec["video_frames"], f"{part['frames']} video frames"
            if part["type"] == "audio":
                assert (part["rate"], part["channels"], part["sample_width"]) == (16000, 1, 2), part
        assert self.clip_of(body) in self.answers, f"clip {self.clip_of(body)} is not in the answer table"
        with self.lock:
            self.parts.append(tuple(got))

    def clip_of(self, body: Any) -> int:
        """Which test clip the request shows (its first picture's number // PER_CLIP)."""
        return read_frame_number(first_picture(body["messages"][-1]["content"])) // PER_CLIP

    def start(self) -> MultimodalServer:
        super().start()
        assert self._httpd is not None
        self._httpd.RequestHandlerClass = type("Handler", (_TableHandler,), {"state": self})
        return self

    @property
    def audio_frames(self) -> list[int]:
        """The WAV length (samples) of every request received that had one, in arrival order."""
        found = []
        for seen in self.requests:
            for part in seen.body["messages"][-1]["content"]:
                if part.get("type") == "input_audio":
                    found.append(decode_parts([part])[0]["frames"])
        return found


class _TableHandler(_Handler):
    state: MultimodalServer

    def _completion(self, body: Any, answer: str) -> dict[str, Any]:
        return super()._completion(body, self.state.answers[self.state.clip_of(body)])


def first_picture(content: list[dict[str, Any]]) -> np.ndarray:
    """The first image of the parts (or the video's first frame), decoded to RGB."""
    import cv2

    for part in content:
        kind = part.get("type")
        if kind not in ("image_url", "video_url"):
            continue
        data = base64.b64decode(part[kind]["url"].partition(",")[2])
        if kind == "image_url":
            return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        handle, name = tempfile.mkstemp(suffix=".mp4")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            capture = cv2.VideoCapture(name)
            ok, frame = capture.read()
            capture.release()
        finally:
            os.unlink(name)
        assert ok, "the video has no frame"
        return frame[..., ::-1]
    raise AssertionError("the request shows no picture")
