"""The web pages of `affectgpt serve` in Debian's chromium, driven headless by playwright (nothing downloaded)."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.slow
pytest.importorskip("fastapi", reason="fastapi is not installed (pip install 'affectgpt[serve]')")
pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'affectgpt[serve]')")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is not installed (pip install playwright; no browser "
                                      "download is needed: the test uses Debian's chromium)")
if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found (`make browser` installs Debian's chromium)", allow_module_level=True)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _fake_app(max_upload_bytes: int) -> Any:
    """The page router plus a /v1/describe that follows the serve contract (used until serve.app exists)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse

    from affectgpt.serve import web

    app = FastAPI()
    app.include_router(web.router())
    pixel = "data:image/png;base64," + base64.b64encode(_png()).decode()

    @app.post("/v1/describe")
    async def describe(request: Request, stream: int = 0) -> Any:
        if int(request.headers.get("content-length") or 0) > max_upload_bytes:
            return JSONResponse({"error": {"code": "too_large", "message": "upload over the limit"}}, 413)
        form = await request.form()
        if "video" not in form:
            return JSONResponse({"error": {"code": "missing_field", "message": "no video"}}, 422)
        events = [{"event": "frames", "frames": [pixel] * 4}, {"event": "faces", "faces": [pixel]},
                  {"event": "transcript", "transcript": str(form.get("subtitle") or "")},
                  {"event": "clues", "clues": {"visual": [{"text": "frowning", "confidence": 0.8}]}},
                  {"event": "description", "description": "The person looks worried and a little angry."},
                  {"event": "labels", "labels": ["worried", "angry"], "sentiment": "negative"},
                  {"event": "done", "timings": {"total": 0.1}}]

        async def lines() -> Any:
            for event in events:
                yield json.dumps(event) + "\n"
                await asyncio.sleep(0.05)
        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _make_app(max_upload_bytes: int) -> Any:
    if importlib.util.find_spec("affectgpt.serve.app") is None:
        return _fake_app(max_upload_bytes)
    from affectgpt.serve.app import create_app
    from affectgpt.serve.settings import Settings

    return create_app(Settings(backend="perception", max_upload_bytes=max_upload_bytes, request_timeout=300))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(app: Any) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    yield from _serve(_make_app(64 * 1024 * 1024))


@pytest.fixture(scope="module")
def small_url() -> Iterator[str]:
    yield from _serve(_make_app(1024))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(120_000)
    yield page
    context.close()


def _screenshot(page: Any, tmp_path: Path, name: str, publish: bool = False) -> Path:
    """Save a full-page PNG under tmp_path; with publish, also to $AFFECTGPT_SCREENSHOT_DIR (the README's)."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    folder = os.environ.get("AFFECTGPT_SCREENSHOT_DIR")
    if folder and publish:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(folder) / name)
    return shot


def test_upload_the_sample_streams_description_labels_frames_and_wheel(
        base_url: str, page: Any, reference_dir: Path, tmp_path: Path) -> None:
    clip = reference_dir / "media" / "sample_00000000.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} not found")
    page.goto(base_url + "/")
    page.set_input_files("#video", str(clip))
    page.click("#submit")
    page.wait_for_selector("#labels .label")
    page.wait_for_function("document.getElementById('status').textContent === 'done'")
    assert page.locator("#error").is_hidden()
    description = page.inner_text("#description")
    assert description.strip() not in ("", "—")
    labels = [t.strip() for t in page.locator("#labels .label").all_inner_texts()]
    assert labels and all(labels)
    frames = page.locator("#frames img")
    assert frames.count() >= 1
    assert page.evaluate("[...document.querySelectorAll('#frames img')].every(i => i.complete && i.naturalWidth > 0)")
    page.wait_for_selector("#wheel svg")
    words = page.evaluate("[...document.querySelectorAll('#wheel svg text.label-word')].map(t => t.textContent)")
    placed = [w for w in labels if w in words]
    assert placed, f"none of the labels {labels} is on the wheel chart ({words})"
    assert page.locator("#wheel svg path.cluster").count() >= 6
    _screenshot(page, tmp_path, "serve.png", publish=True)


def test_oversized_upload_shows_the_error(small_url: str, page: Any, tmp_path: Path) -> None:
    clip = tmp_path / "big.mp4"
    clip.write_bytes(b"\0" * 4096)
    page.goto(small_url + "/")
    page.set_input_files("#video", str(clip))
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "413" in page.inner_text("#error")
    assert page.inner_text("#status") == "failed"


def test_wheel_endpoint_places_words_on_their_cluster(base_url: str, page: Any) -> None:
    page.goto(base_url + "/v1/wheel?words=joy,worried,table")
    chart = json.loads(page.inner_text("body"))
    by_word = {w["word"]: w for w in chart["words"]}
    assert (by_word["joy"]["cluster"], by_word["joy"]["level"]) == ("joy", 1)
    assert (by_word["worried"]["cluster"], by_word["worried"]["level"]) == ("fear", 2)
    assert by_word["table"]["cluster"] is None and chart["wheel"] == "plutchik"


def test_report_page_renders_an_uploaded_result(base_url: str, page: Any, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the HTML report needs matplotlib (affectgpt[report])")
    result = tmp_path / "ovmerdplus.json"
    subprocess.run([sys.executable, "-m", "affectgpt", "bench", "score", "--dataset", "ovmerdplus",
                    "--predictions", str(EXAMPLES / "predictions" / "ovmerdplus"),
                    "--labels", str(EXAMPLES / "labels" / "ovmerdplus"), "--format", "json",
                    "--output", str(result)], check=True, capture_output=True, timeout=120)
    page.goto(base_url + "/report")
    page.set_input_files("#result", str(result))
    page.click("#submit")
    page.wait_for_function("document.getElementById('status').textContent === 'done'")
    frame = page.frame_locator("#report")
    assert frame.locator("h1").inner_text() == "MER-UniBench report"
    assert "ovmerdplus" in frame.locator("body").inner_text()
    assert frame.locator("img").count() >= 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    page.set_input_files("#result", str(bad))
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "422" in page.inner_text("#error") and "schema_version" in page.inner_text("#error")
    _screenshot(page, tmp_path, "report.png")
