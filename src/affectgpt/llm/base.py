"""The chat-backend interface: requests (text, or content parts with media), sampling settings, completions.
Backends know nothing of emotions.

Media parts carry files that are already encoded (JPEG frames, a WAV track, an MP4): this layer never imports
numpy, PIL or av, so the caller encodes. Parts check only what is cheap: bytes, not empty, a known type, and
magic bytes that match it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, TypeAlias

IMAGE_MIMES = ("image/jpeg", "image/png", "image/webp")
"""Image types a part may carry (what vLLM's and OpenAI's servers decode)."""

AUDIO_FORMATS = ("wav", "mp3")
"""`input_audio` formats (OpenAI's two; vLLM accepts them too)."""

VIDEO_MIMES = ("video/mp4", "video/webm")
"""Video types a part may carry."""


def _looks_like(data: bytes, kind: str) -> bool:
    """Whether `data` starts as a file of `kind` (a mime type or an audio format) does: a cheap magic-bytes check."""
    if kind == "image/jpeg":
        return data[:3] == b"\xff\xd8\xff"
    if kind == "image/png":
        return data[:8] == b"\x89PNG\r\n\x1a\n"
    if kind == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if kind == "wav":
        return data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    if kind == "mp3":  # an ID3 tag, or straight into an MPEG audio frame (11 sync bits)
        return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    if kind == "video/mp4":
        return data[4:8] == b"ftyp"
    return data[:4] == b"\x1a\x45\xdf\xa3"  # video/webm: an EBML header


def _check_media(part: Any, what: str, kind: str, known: tuple[str, ...], option: str) -> None:
    """Shared checks of a media part: bytes (a bytearray or memoryview is copied), non-empty, known type whose
    magic bytes match. Raises TypeError / ValueError naming the part and what to do."""
    name = type(part).__name__
    if isinstance(part.data, (bytearray, memoryview)):
        object.__setattr__(part, "data", bytes(part.data))
    if not isinstance(part.data, bytes):
        raise TypeError(f"{name}.data must be the encoded {what} as bytes, got {type(part.data).__name__}")
    if kind not in known:
        raise ValueError(f"{name}.{option} must be one of {', '.join(known)}, got {kind!r}")
    if not part.data:
        raise ValueError(f"{name}.data is empty: give the encoded {what} file's bytes")
    if not _looks_like(part.data, kind):
        raise ValueError(f"{name}.data does not start like a {kind} file (first bytes {part.data[:12]!r}): give "
                         f"the encoded file's bytes (not raw pixels or samples), or the matching {option}")


def _media_repr(part: Any, kind: str) -> str:
    digest = hashlib.sha256(part.data).hexdigest()[:12]
    return f"{type(part).__name__}({kind}, {len(part.data)} bytes, sha256 {digest}...)"


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text inside a message made of parts."""

    kind: ClassVar[str] = "text"
    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"TextPart.text must be a str, got {type(self.text).__name__}")


@dataclass(frozen=True, slots=True, repr=False)
class ImagePart:
    """One encoded image (a frame or a face crop): `data` is the file's bytes, `mime` its type."""

    kind: ClassVar[str] = "image"
    data: bytes
    mime: str = "image/jpeg"

    def __post_init__(self) -> None:
        _check_media(self, "image", self.mime, IMAGE_MIMES, "mime")

    def __repr__(self) -> str:
        return _media_repr(self, self.mime)


@dataclass(frozen=True, slots=True, repr=False)
class AudioPart:
    """One encoded audio track: `data` is the file's bytes, `format` "wav" or "mp3"."""

    kind: ClassVar[str] = "audio"
    data: bytes
    format: str = "wav"

    def __post_init__(self) -> None:
        _check_media(self, "audio", self.format, AUDIO_FORMATS, "format")

    def __repr__(self) -> str:
        return _media_repr(self, self.format)


@dataclass(frozen=True, slots=True, repr=False)
class VideoPart:
    """One encoded video file (frames sent as one video): `data` is the file's bytes, `mime` its type."""

    kind: ClassVar[str] = "video"
    data: bytes
    mime: str = "video/mp4"

    def __post_init__(self) -> None:
        _check_media(self, "video", self.mime, VIDEO_MIMES, "mime")

    def __repr__(self) -> str:
        return _media_repr(self, self.mime)


Part: TypeAlias = TextPart | ImagePart | AudioPart | VideoPart
PARTS = (TextPart, ImagePart, AudioPart, VideoPart)


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. role: "system", "user" or "assistant".

    content: a str for a text-only message (sent as a plain string), or a non-empty tuple of parts (a list is
    turned into a tuple), sent as content parts in their order.
    """

    role: str
    content: str | tuple[Part, ...]

    def __post_init__(self) -> None:
        if isinstance(self.content, str):
            return
        if isinstance(self.content, list):
            object.__setattr__(self, "content", tuple(self.content))
        if not isinstance(self.content, tuple):
            raise TypeError(f"Message.content must be a str or a tuple of parts, got {type(self.content).__name__}")
        if not self.content:
            raise ValueError("Message.content has no parts: give a str or at least one part")
        for index, part in enumerate(self.content):
            if not isinstance(part, PARTS):
                raise TypeError(f"Message.content[{index}] is a {type(part).__name__}, not a part: wrap text in "
                                f"TextPart, media in ImagePart, AudioPart or VideoPart")

    @property
    def parts(self) -> tuple[Part, ...]:
        """The content as parts: a str content is one TextPart."""
        return (TextPart(self.content),) if isinstance(self.content, str) else self.content

    @property
    def text(self) -> str:
        """The message's text: the str content, or its text parts joined by newlines (as vLLM joins them)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def media(self) -> tuple[ImagePart | AudioPart | VideoPart, ...]:
        """The parts that are not text, in order (empty for a text-only message)."""
        return tuple(part for part in self.parts if not isinstance(part, TextPart))


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
