"""Messages made of content parts (JPEG frames, a WAV track, an MP4) through OpenAIChat and the cache, against the
fake server, which decodes every part as vLLM would and answers from a table keyed by the clip named in the text."""

from __future__ import annotations

import base64
import io
import re
import wave
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from llm_server import decode_parts

from affectgpt.llm.base import AudioPart, ChatRequest, ImagePart, Message, Sampling, TextPart, VideoPart
from affectgpt.llm.cache import CachedBackend, request_key
from affectgpt.llm.openai_http import OpenAIChat

FAST = {"backoff": 0.001, "timeout": 5.0}
RATE = 16000


def jpeg(width: int, height: int, shade: int = 0) -> bytes:
    """A real JPEG: a horizontal gradient with a `shade` green channel."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    image[:, :, 1] = shade
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return encoded.tobytes()


def wav(frames: int, channels: int = 1, rate: int = RATE) -> bytes:
    """A real 16-bit PCM WAV of a 440 Hz sine."""
    tone = (np.sin(2 * np.pi * 440 * np.arange(frames) / rate) * 8000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as track:
        track.setnchannels(channels)
        track.setsampwidth(2)
        track.setframerate(rate)
        track.writeframes(np.repeat(tone[:, None], channels, axis=1).tobytes())
    return buffer.getvalue()


def mp4(path: Path, frames: int, width: int, height: int) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 8, (width, height))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((height, width, 3), 30 * i % 256, np.uint8))
    writer.release()
    return path.read_bytes()


# clip -> (frames, width, height, audio frames or None, the server's answer)
CLIPS = {
    "c01": (3, 64, 48, RATE // 2, "[happy, relieved]"),
    "c02": (1, 32, 32, None, "[angry]"),
    "c03": (4, 80, 40, RATE, "[sad, tired]"),
    "c04": (2, 48, 64, 1234, "[neutral]"),
}


def clip_request(clip: str, *, shade: int = 0, sampling: Sampling | None = None) -> ChatRequest:
    frames, width, height, audio, _ = CLIPS[clip]
    parts: list = [TextPart(f"clip={clip}: what does the speaker feel?")]
    parts += [ImagePart(jpeg(width, height, shade + i)) for i in range(frames)]
    if audio is not None:
        parts.append(AudioPart(wav(audio)))
    return ChatRequest((Message("system", "You are an emotion analyst."), Message("user", parts)),
                       sampling or Sampling(seed=1), "mer/v1")


def expected_parts(clip: str) -> list[dict]:
    frames, width, height, audio, _ = CLIPS[clip]
    layout = [{"type": "text", "text": f"clip={clip}: what does the speaker feel?"}]
    layout += [{"type": "image", "mime": "image/jpeg", "width": width, "height": height}] * frames
    if audio is not None:
        layout.append({"type": "audio", "format": "wav", "rate": RATE, "channels": 1, "sample_width": 2,
                       "frames": audio})
    return layout


def check_clip(body: dict) -> None:
    """The server's check: the system message is a plain string; the user's parts decode to what the clip holds."""
    system, user = body["messages"]
    assert system == {"role": "system", "content": "You are an emotion analyst."}, system
    found = re.search(r"clip=(c\d+)", user["content"][0].get("text", ""))
    assert found, "no clip named in the first part"
    assert decode_parts(user["content"]) == expected_parts(found[1]), f"parts of {found[1]} differ"


@pytest.fixture
def table_server(llm_server):
    for clip, (*_, answer) in CLIPS.items():
        llm_server.add_rule(f"clip={clip}", answer)
    llm_server.check = check_clip
    return llm_server


def backend(server, **options) -> OpenAIChat:
    return OpenAIChat(server.base_url, "omni", **{**FAST, **options})


# -- parts --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: ImagePart(b""), ValueError, "ImagePart.data is empty"),
    (lambda: ImagePart(jpeg(8, 8), mime="image/bmp"), ValueError, "mime must be one of image/jpeg"),
    (lambda: ImagePart(np.zeros((8, 8, 3), np.uint8).tobytes()), ValueError, "does not start like a image/jpeg"),
    (lambda: ImagePart(jpeg(8, 8), mime="image/png"), ValueError, "does not start like a image/png"),
    (lambda: ImagePart("/tmp/frame.jpg"), TypeError, "must be the encoded image as bytes"),
    (lambda: AudioPart(wav(10), format="flac"), ValueError, "format must be one of wav, mp3"),
    (lambda: AudioPart(np.zeros(100, "<i2").tobytes()), ValueError, "does not start like a wav"),
    (lambda: VideoPart(jpeg(8, 8)), ValueError, "does not start like a video/mp4"),
    (lambda: TextPart(b"hi"), TypeError, "TextPart.text must be a str"),
    (lambda: Message("user", ()), ValueError, "has no parts"),
    (lambda: Message("user", ("hi", ImagePart(jpeg(8, 8)))), TypeError, r"content\[0\] is a str, not a part"),
    (lambda: Message("user", None), TypeError, "must be a str or a tuple of parts"),
])
def test_parts_refuse_what_is_not_an_encoded_file_of_their_type(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_parts_are_frozen_hashable_and_their_repr_is_short():
    data = jpeg(64, 48)
    message = Message("user", [TextPart("hi"), ImagePart(bytearray(data))])  # a list and a bytearray
    assert isinstance(message.content, tuple) and type(message.content[1].data) is bytes
    assert message == Message("user", (TextPart("hi"), ImagePart(data)))
    assert len({message, Message("user", (TextPart("hi"), ImagePart(data)))}) == 1
    assert message.text == "hi" and message.media == (ImagePart(data),)
    assert Message("user", "plain").parts == (TextPart("plain"),) and Message("user", "plain").media == ()
    assert Message("user", (TextPart("a"), ImagePart(data), TextPart("b"))).text == "a\nb"
    assert len(repr(message)) < 200 and f"{len(data)} bytes" in repr(message)
    with pytest.raises(AttributeError):
        message.content[1].data = b""


# -- the request body ---------------------------------------------------------------------------------------------

def test_body_sends_text_as_a_string_and_parts_in_order(tmp_path):
    image, audio, video = jpeg(16, 16), wav(100), mp4(tmp_path / "v.mp4", 2, 32, 32)
    request = ChatRequest((Message("system", "sys"),
                           Message("user", (TextPart("look"), ImagePart(image), AudioPart(audio),
                                            VideoPart(video), ImagePart(image), TextPart("and say")))))
    messages = OpenAIChat("http://127.0.0.1:1/v1", "m").request_body(request)["messages"]

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    assert messages == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + b64(image)}},
            {"type": "input_audio", "input_audio": {"data": b64(audio), "format": "wav"}},
            {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + b64(video)}},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + b64(image)}},
            {"type": "text", "text": "and say"},
        ]},
    ]


# -- against the server -------------------------------------------------------------------------------------------

def test_the_server_decodes_every_part_and_answers_from_the_table(table_server):
    clips = ["c01", "c02", "c03", "c04", "c01"]
    results = backend(table_server, concurrency=4).complete([clip_request(c) for c in clips])
    assert table_server.rejected == []
    assert [r.text for r in results] == [CLIPS[c][-1] for c in clips]
    assert all(r.ok and r.attempts == 1 and r.model == "fake/served-model" for r in results)
    # what arrived, decoded independently of the check: the number of images and the audio of each request
    arrived = {re.search(r"clip=(c\d+)", s.body["messages"][1]["content"][0]["text"])[1]:
               decode_parts(s.body["messages"][1]["content"]) for s in table_server.requests}
    assert {c: sum(p["type"] == "image" for p in parts) for c, parts in arrived.items()} == \
        {"c01": 3, "c02": 1, "c03": 4, "c04": 2}
    assert [p["frames"] for p in arrived["c03"] if p["type"] == "audio"] == [RATE]
    assert not any(p["type"] == "audio" for p in arrived["c02"])


def test_a_video_goes_as_one_video_url(llm_server, tmp_path):
    llm_server.add_rule("clip=v1", "[surprised]")
    seen: list[list[dict]] = []
    llm_server.check = lambda body: seen.append(decode_parts(body["messages"][0]["content"]))
    video = VideoPart(mp4(tmp_path / "v.mp4", 5, 64, 48))
    [result] = backend(llm_server).complete([ChatRequest((Message("user", (VideoPart(video.data),
                                                                           TextPart("clip=v1"))),))])
    assert result.text == "[surprised]"
    assert seen == [[{"type": "video", "mime": "video/mp4", "frames": 5, "width": 64, "height": 48},
                     {"type": "text", "text": "clip=v1"}]]


@pytest.mark.parametrize("damage", ["truncated", "wrong size"])
def test_a_part_the_server_refuses_is_reported_once_not_retried(table_server, damage):
    request = clip_request("c02")
    parts = list(request.messages[1].content)
    image = parts[1].data
    parts[1] = ImagePart(image[: len(image) // 2] if damage == "truncated" else jpeg(33, 32))
    bad = replace(request, messages=(request.messages[0], Message("user", tuple(parts))))
    results = backend(table_server).complete([bad, clip_request("c01")])
    assert results[0].error.startswith("HTTP 400: bad request: ")
    assert results[0].attempts == 1
    assert ("no SOI at the start or no EOI at the end" in results[0].error) == (damage == "truncated")
    assert results[1].text == "[happy, relieved]"
    assert table_server.count == 2 and len(table_server.rejected) == 1


def test_a_malformed_answer_is_kept_verbatim(table_server):
    table_server.rules.insert(0, ("clip=c04", "  [neutral, calm  ... I think"))
    [result] = backend(table_server).complete([clip_request("c04")])
    assert result.ok and result.text == "  [neutral, calm  ... I think"


# -- faults: the same outcome as for a text request ---------------------------------------------------------------

TRANSIENT = [
    ("status", {"status": 500}),
    ("status", {"status": 429, "retry_after": "0.2"}),
    ("cut", {}),
    ("truncate", {}),
    ("malformed", {}),
    ("no_choices", {}),
    ("slow", {"delay": 1.0}),  # longer than the client's timeout
]


def run_with_fault(server, requests, kind, options, **backend_options):
    """Results (text, error, attempts) and the number of requests sent, with a fresh fault installed. The
    server checks the parts of multimodal requests (and nothing in text ones)."""
    server.clear_faults()
    server.add_fault(kind, **options)
    server.check = check_clip if isinstance(requests[0].messages[1].content, tuple) else None
    before = server.count
    results = backend(server, **backend_options).complete(requests)
    return [(r.text, r.error, r.attempts) for r in results], server.count - before


def text_twin(request: ChatRequest) -> ChatRequest:
    """The same request with its media left out and its text as a plain string."""
    return replace(request, messages=tuple(Message(m.role, m.text) for m in request.messages))


@pytest.mark.parametrize(("kind", "options"), TRANSIENT, ids=[f"{k}-{o.get('status', '')}" for k, o in TRANSIENT])
def test_transient_faults_are_survived_as_for_text(table_server, kind, options):
    requests = [clip_request("c01"), clip_request("c02")]
    timeout = 0.3 if kind == "slow" else 5.0
    fault = {**options, "first": 2}
    as_text = run_with_fault(table_server, [text_twin(r) for r in requests], kind, fault, concurrency=1,
                             timeout=timeout)
    start = table_server.count
    multimodal = run_with_fault(table_server, requests, kind, fault, concurrency=1, timeout=timeout)
    assert multimodal == as_text == ([("[happy, relieved]", None, 3), ("[angry]", None, 1)], 4)
    assert table_server.rejected == []  # every try of the multimodal requests carried all its parts
    if "retry_after" in options:
        times = [s.at for s in table_server.requests[start:]]
        assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.2


@pytest.mark.parametrize(("kind", "options", "error"), [
    ("status", {"status": 503, "message": "engine died"}, "HTTP 503: engine died"),
    ("cut", {}, "connection error: RemoteProtocolError"),
    ("malformed", {}, "malformed response: "),
    ("slow", {"delay": 1.0}, "timeout after 0.3 s"),
])
def test_persistent_faults_are_reported_as_for_text(table_server, kind, options, error):
    requests = [clip_request("c01"), clip_request("c03")]
    timeout = 0.3 if kind == "slow" else 5.0
    fault = {**options, "contains": "clip=c03"}
    as_text = run_with_fault(table_server, [text_twin(r) for r in requests], kind, fault, max_retries=2,
                             timeout=timeout)
    multimodal = run_with_fault(table_server, requests, kind, fault, max_retries=2, timeout=timeout)
    assert multimodal == as_text
    (good, bad), sent = multimodal
    assert good == ("[happy, relieved]", None, 1) and sent == 4
    assert bad[0] is None and bad[1].startswith(error) and bad[2] == 3, bad


# -- the cache ----------------------------------------------------------------------------------------------------

def test_text_only_keys_are_what_they_were():
    """A key computed by the cache module as it was before content parts (commit b2cc42e), for this request."""
    request = ChatRequest((Message("system", "list emotions"), Message("user", "she smiled, “finally”")),
                          Sampling(seed=3), "ov-labels/v1")
    assert request_key("openai", "Qwen/Qwen2.5-7B-Instruct", request) == \
        "92616396d95e30d9656dd806c11b3b200d0e9ce7ccae70935a09780f99c5da29"


def with_user_parts(request: ChatRequest, change) -> ChatRequest:
    return replace(request, messages=(request.messages[0], Message("user", tuple(change(
        list(request.messages[1].content))))))


def flip_one_byte(data: bytes, at: int) -> bytes:
    """`data` with the low bit of one byte flipped, at `at` or the first byte after it that makes no JPEG marker."""
    while data[at] >= 0xFE or data[at - 1] == 0xFF:
        at += 1
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


@pytest.mark.parametrize("change", [
    "image byte", "audio byte", "image order", "text", "one image fewer", "png instead of jpeg"])
def test_the_key_changes_with_any_part(change):
    request = clip_request("c01")

    def edit(parts: list) -> list:
        if change == "image byte":
            parts[2] = ImagePart(flip_one_byte(parts[2].data, len(parts[2].data) // 2))
        elif change == "audio byte":
            parts[-1] = AudioPart(flip_one_byte(parts[-1].data, len(parts[-1].data) - 1))
        elif change == "image order":
            parts[1], parts[2] = parts[2], parts[1]
        elif change == "text":
            parts[0] = TextPart(parts[0].text + " ")
        elif change == "one image fewer":
            del parts[3]
        else:
            _, png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(parts[1].data, np.uint8), cv2.IMREAD_COLOR))
            parts[1] = ImagePart(png.tobytes(), mime="image/png")
        return parts

    key = request_key("openai", "omni", request)
    assert key == request_key("openai", "omni", clip_request("c01"))  # equal bytes, equal key
    assert key != request_key("openai", "omni", with_user_parts(request, edit))
    assert len(key) == 64


def test_one_text_part_is_not_the_same_request_as_a_plain_string():
    plain = ChatRequest((Message("user", "hi"),))
    parts = ChatRequest((Message("user", (TextPart("hi"),)),))
    assert request_key("openai", "m", plain) != request_key("openai", "m", parts)  # they are sent differently


def test_an_identical_multimodal_request_is_sent_once_and_a_changed_byte_is_a_miss(table_server, tmp_path):
    def cached() -> CachedBackend:
        return CachedBackend(backend(table_server), tmp_path / "llm.sqlite")

    first = cached().complete([clip_request("c01"), clip_request("c03")])
    assert [r.text for r in first] == ["[happy, relieved]", "[sad, tired]"] and table_server.count == 2
    again = cached().complete([clip_request("c01"), clip_request("c03")])
    assert [(r.text, r.cached, r.attempts) for r in again] == [("[happy, relieved]", True, 0),
                                                                ("[sad, tired]", True, 0)]
    assert table_server.count == 2  # nothing sent
    changed = with_user_parts(clip_request("c01"), lambda parts: [
        *parts[:2], ImagePart(flip_one_byte(parts[2].data, len(parts[2].data) // 2)), *parts[3:]])
    [result] = cached().complete([changed])
    assert (result.text, result.cached) == ("[happy, relieved]", False)
    assert table_server.count == 3 and table_server.rejected == []


def test_parts_need_neither_numpy_nor_an_image_library():
    """The core install has no numpy, OpenCV, PIL or PyAV: building and sending parts must not import them."""
    import subprocess
    import sys

    code = ("import sys\n"
            "for name in ('numpy', 'cv2', 'PIL', 'av'):\n"
            "    sys.modules[name] = None\n"
            "from affectgpt.llm.base import ChatRequest, ImagePart, Message, TextPart\n"
            "from affectgpt.llm.cache import request_key\n"
            "from affectgpt.llm.openai_http import OpenAIChat\n"
            "request = ChatRequest((Message('user', (TextPart('t'), ImagePart(bytes.fromhex('ffd8ff00ffd9')))),))\n"
            "body = OpenAIChat('http://127.0.0.1:1/v1', 'm').request_body(request)\n"
            "print(body['messages'][0]['content'][1]['image_url']['url'], len(request_key('openai', 'm', request)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["data:image/jpeg;base64,/9j/AP/Z", "64"]
