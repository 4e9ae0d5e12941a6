"""The API of `affectgpt serve` over HTTP on 127.0.0.1 (perception backend, in-process uvicorn): uploads good and
bad, the NDJSON stream, 20 concurrent requests without cross-talk, no leftover temp files, 503 and 504."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from media_clips import tone, write_video  # noqa: E402

LIMIT = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(settings):
    """Run create_app(settings) with uvicorn in a thread on 127.0.0.1; returns (base URL, server)."""
    import uvicorn

    from affectgpt.serve.app import create_app

    settings.port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    return f"http://127.0.0.1:{settings.port}", server


@pytest.fixture(scope="session")
def temp_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve-temp")


@pytest.fixture(scope="session")
def server(temp_root):
    from affectgpt.serve.settings import Settings

    url, running = start_server(Settings(max_upload_bytes=LIMIT, workers=2, queue_size=64, request_timeout=60,
                                         temp_root=temp_root))
    yield url
    running.should_exit = True


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serve-clips")
    return write_video(folder / "clip.mp4", n_frames=12, fps=6, audio=tone([220.0], 2.0, 16000),
                       video_options={"crf": "28", "preset": "ultrafast"})


def _post(url, path, *, data=None, files=None, timeout=60):
    return httpx.post(url + path, data=data, files=files, timeout=timeout)


def _assert_error(response, status, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    assert "Traceback" not in response.text
    if code:
        assert body["error"]["code"] == code


def test_health_and_models(server):
    health = httpx.get(server + "/v1/health").json()
    assert health["status"] == "ok" and health["backend"] == "perception"
    models = httpx.get(server + "/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "affectgpt-perception"
    _assert_error(httpx.get(server + "/v1/nothing"), 404, "not_found")


def test_good_upload(server, clip, temp_root):
    with open(clip, "rb") as handle:
        response = _post(server, "/v1/describe", data={"subtitle": "I am so happy today!"},
                         files={"video": ("../../etc/passwd", handle, "video/mp4")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "perception" and body["description"] and body["labels"]
    assert body["transcript"] == "I am so happy today!" and body["sentiment"]
    assert set(body["clues"]) >= {"text"} and body["timings"]["total"] > 0
    assert body["frames"] and all(f.startswith("data:image/jpeg;base64,") for f in body["frames"])
    assert list(temp_root.iterdir()) == []


def test_real_sample(server, reference_dir):
    sample = reference_dir / "media" / "sample_00000000.mp4"
    with open(sample, "rb") as handle:
        response = _post(server, "/v1/describe", files={"video": ("sample.mp4", handle, "video/mp4")})
    assert response.status_code == 200, response.text
    assert response.json()["description"] and response.json()["labels"]


def test_stream_events(server, clip):
    with open(clip, "rb") as handle:
        response = _post(server, "/v1/describe?stream=1", data={"subtitle": "This is terrible."},
                         files={"video": ("a.mp4", handle, "video/mp4")})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in response.text.splitlines()]
    names = [e["event"] for e in events]
    assert names[:2] == ["frames", "faces"] and "transcript" in names and names[-1] == "done"
    assert names.index("clues") < names.index("description") < names.index("labels")
    assert events[-1]["result"]["transcript"] == "This is terrible."


def test_oversized_upload(server):
    blob = b"\0" * (LIMIT + 4096)
    _assert_error(_post(server, "/v1/describe", files={"video": ("big.mp4", blob, "video/mp4")}), 413, "too_large")


def test_text_named_mp4(server):
    _assert_error(_post(server, "/v1/describe", files={"video": ("x.mp4", b"just some text\n" * 50, "video/mp4")}),
                  415, "not_a_video")


def test_truncated_mp4(server, clip):
    data = clip.read_bytes()
    _assert_error(_post(server, "/v1/describe", files={"video": ("t.mp4", data[:len(data) // 2], "video/mp4")}),
                  422, "unreadable_video")


def test_missing_field(server):
    _assert_error(_post(server, "/v1/describe", data={"subtitle": "hello"}, files={"other": ("a", b"x")}), 422,
                  "missing_field")
    _assert_error(httpx.post(server + "/v1/describe", json={"video": "x"}), 415, "not_multipart")


def test_twenty_concurrent_without_crosstalk(server, clip, temp_root):
    data = clip.read_bytes()
    subtitles = [f"Request number {i} says the word {w}." for i, w in enumerate(
        ["apple", "river", "stone", "cloud", "piano", "tiger", "candle", "forest", "mirror", "rocket",
         "garden", "violin", "desert", "lemon", "bridge", "comet", "harbor", "maple", "saddle", "tunnel"])]

    def one(subtitle):
        response = _post(server, "/v1/describe", data={"subtitle": subtitle},
                         files={"video": ("c.mp4", data, "video/mp4")}, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()["transcript"]

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, subtitles))
    assert answers == subtitles
    assert list(temp_root.iterdir()) == []


class SlowEngine:
    """A fake engine that takes `seconds` per request (injected through Settings.engine)."""

    name = "slow"
    model_id = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def describe(self, video, subtitle="", task="description", emit=lambda _: None, *, audio=None):
        time.sleep(self.seconds)
        return {"backend": "slow", "description": subtitle, "transcript": subtitle}


@pytest.mark.slow
def test_queue_full_then_timeout(clip, tmp_path):
    from affectgpt.serve.settings import Settings

    url, running = start_server(Settings(engine=SlowEngine(1.0), workers=1, queue_size=1, request_timeout=0.5,
                                         retry_after=3, temp_root=tmp_path))
    try:
        data = clip.read_bytes()

        def one(_):
            return _post(url, "/v1/describe", files={"video": ("c.mp4", data, "video/mp4")})

        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(one, range(4)))
        statuses = sorted(r.status_code for r in responses)
        busy = [r for r in responses if r.status_code == 503]
        assert busy and all(r.headers["retry-after"] == "3" for r in busy), statuses
        for r in busy:
            _assert_error(r, 503, "busy")
        timed_out = [r for r in responses if r.status_code == 504]
        assert timed_out, statuses
        _assert_error(timed_out[0], 504, "timeout")
        time.sleep(2.2)  # the slow jobs end and clean up after themselves
        assert list(tmp_path.iterdir()) == []
    finally:
        running.should_exit = True
