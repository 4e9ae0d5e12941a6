"""/v1/chat/completions with the real `openai` client (image + audio + text parts, streaming) and with the
bench's OpenAIMultimodal backend, against the perception backend served on 127.0.0.1."""

from __future__ import annotations

import base64

import numpy as np
import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from test_api import start_server  # noqa: E402


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    from affectgpt.serve.settings import Settings

    url, running = start_server(Settings(temp_root=tmp_path_factory.mktemp("chat-temp")))
    yield url + "/v1"
    running.should_exit = True


def _parts(subtitle: str) -> list[dict]:
    from affectgpt.harness.encode import jpeg_bytes, wav_bytes

    frames = [np.full((64, 64, 3), 40 * i, np.uint8) for i in range(4)]
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    parts = [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,"
                                                         + base64.b64encode(jpeg_bytes(f)).decode()}}
             for f in frames]
    parts.append({"type": "input_audio", "input_audio": {"data": base64.b64encode(wav_bytes(audio)).decode(),
                                                         "format": "wav"}})
    parts.append({"type": "text", "text": f"The subtitle of this video is: {subtitle}\nWhat is the emotion?"})
    return parts


def test_chat_completion(base_url):
    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0)
    reply = client.chat.completions.create(model="affectgpt-perception",
                                           messages=[{"role": "user", "content": _parts("I am furious with you!")}])
    assert reply.object == "chat.completion" and reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content and reply.usage.total_tokens > 0 and reply.id.startswith("chatcmpl-")


def test_chat_completion_stream(base_url):
    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0)
    chunks = list(client.chat.completions.create(model="affectgpt-perception", stream=True,
                                                 messages=[{"role": "user", "content": _parts("What a lovely day.")}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text and chunks[-1].choices[0].finish_reason == "stop"
    again = [{"role": "user", "content": _parts("What a lovely day.")}]
    whole = client.chat.completions.create(model="x", messages=again)
    assert text == whole.choices[0].message.content


def test_bad_chat_requests(base_url):
    import httpx

    bad = httpx.post(base_url + "/chat/completions", json={"model": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_request"
    remote = httpx.post(base_url + "/chat/completions", json={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://example.com/a.jpg"}}]}]})
    assert remote.status_code == 422 and "data URL" in remote.json()["error"]["message"]


def test_bench_backend_against_server(base_url, square_clip, tmp_path):
    from affectgpt.harness.backends.openai import OpenAIMultimodal
    from affectgpt.harness.base import ClipInputs, Job
    from affectgpt.harness.prompts import get_prompt
    from affectgpt.media import load_clip

    loaded = load_clip(square_clip, n_frames=4, size=64, faces=False)
    clip = ClipInputs(name="clip", video=square_clip, frames=loaded.frames, audio=loaded.audio,
                      subtitle="I can't believe you did that!")
    backend = OpenAIMultimodal(base_url, "affectgpt-perception", api_key="none", size=64, n_frames=4,
                               cache=tmp_path / "cache.sqlite", max_retries=0)
    [output] = backend.answer([Job(clip=clip, prompt=get_prompt("emotion/v1"))])
    assert output.error is None and output.text and output.model == "affectgpt-perception"
