"""The FastAPI app of `affectgpt serve`: /v1/describe, /v1/health, /v1/models, /v1/chat/completions (and the web
pages of serve/web.py), over one engine loaded once, behind the bounded queue; every failure is JSON with a code."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from affectgpt.errors import AffectGPTError, InputError
from affectgpt.serve import chat as chat_api
from affectgpt.serve.engine import build_engine, check_task
from affectgpt.serve.queue import Gate, Ticket
from affectgpt.serve.settings import ServeError, Settings
from affectgpt.serve.uploads import check_video, private_dir, read_multipart, remove


def as_serve_error(exc: BaseException) -> ServeError:
    """Any exception as the ServeError answered for it (never a traceback)."""
    if isinstance(exc, ServeError):
        return exc
    if isinstance(exc, InputError):
        return ServeError(422, "bad_input", str(exc))
    if isinstance(exc, AffectGPTError):
        return ServeError(422, "bad_input", str(exc))
    return ServeError(500, "internal", f"internal error ({type(exc).__name__}); the server log has no more")


def _error(exc: ServeError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings`: the engine is built (its model loaded) here, once."""
    settings = settings or Settings()
    engine = settings.engine if settings.engine is not None else build_engine(settings.backend, settings.model)
    gate = Gate(settings.workers, settings.queue_size, settings.request_timeout, settings.retry_after)
    app = FastAPI(title="AffectGPT", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.engine, app.state.gate = settings, engine, gate
    model_id = getattr(engine, "model_id", settings.backend)

    @app.exception_handler(ServeError)
    async def _serve_error(_: Request, exc: ServeError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(".".join(str(x) for x in e.get("loc", ())) + ": " + str(e.get("msg")) for e in exc.errors())
        return _error(ServeError(422, "bad_request", where or "invalid request"))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(ServeError(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _any(_: Request, exc: Exception) -> JSONResponse:
        return _error(as_serve_error(exc))

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "backend": engine.name, "model": model_id, "queue": gate.stats(),
                "max_upload_bytes": settings.max_upload_bytes, "request_timeout": settings.request_timeout}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": 0,
                                            "owned_by": "affectgpt", "backend": engine.name}]}

    @app.post("/v1/describe")
    async def describe(request: Request, stream: int = 0) -> Response:
        ticket = gate.admit()
        folder = private_dir(settings.temp_root)
        handed_over = False
        try:
            upload = await read_multipart(request, folder, limit=settings.max_upload_bytes)
            if "video" not in upload.files or upload.sizes["video"] == 0:
                raise ServeError(422, "missing_field", "the multipart field `video` (a video file) is required")
            subtitle = upload.fields.get("subtitle", "").strip()
            task = check_task(upload.fields.get("task"))
            video = upload.files["video"]
            await asyncio.to_thread(check_video, video)

            def job(emit=lambda _: None) -> dict[str, Any]:
                try:
                    return engine.describe(video, subtitle, task, emit)
                finally:
                    remove(folder)

            if stream:
                handed_over = True
                return StreamingResponse(_events(ticket, job, folder, settings.request_timeout),
                                         media_type="application/x-ndjson")
            return JSONResponse(await ticket.run(job))
        finally:
            if not handed_over:
                ticket.close()
                remove(folder)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        ticket = gate.admit()
        folder = private_dir(settings.temp_root)
        try:
            body = await _read_body(request, settings.max_upload_bytes * 2)
            given = chat_api.parse_request(body)

            def job() -> str:
                try:
                    return chat_api.answer(engine, given, folder)
                finally:
                    remove(folder)

            text = await ticket.run(job)
            if given.stream:
                return StreamingResponse(iter(chat_api.sse_chunks(text, model_id)), media_type="text/event-stream")
            return JSONResponse(chat_api.completion(text, model_id, given.text))
        finally:
            ticket.close()
            remove(folder)

    try:
        from affectgpt.serve import web
    except ImportError:
        web = None
    if web is not None and hasattr(web, "router"):
        app.include_router(web.router())
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ServeError(413, "too_large", f"the request body is larger than the limit ({limit} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServeError(413, "too_large", f"the request body is larger than the limit ({limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


async def _events(ticket: Ticket, job: Any, folder: Path, timeout: float):
    """NDJSON lines: the engine's events as its stages end, then done (with the whole result) or error."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def emit(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(events.put_nowait, event)

    start = time.perf_counter()
    task = asyncio.ensure_future(ticket.run(lambda: job(emit), timeout=timeout))
    try:
        while True:
            getter = asyncio.ensure_future(events.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield json.dumps(getter.result(), ensure_ascii=False) + "\n"
                continue
            getter.cancel()
            while not events.empty():
                yield json.dumps(events.get_nowait(), ensure_ascii=False) + "\n"
            try:
                result = task.result()
            except BaseException as exc:
                error = as_serve_error(exc)
                yield json.dumps({"event": "error", "status": error.status, **error.body()}) + "\n"
                return
            result["seconds"] = round(time.perf_counter() - start, 4)
            yield json.dumps({"event": "done", "result": result}, ensure_ascii=False) + "\n"
            return
    finally:
        if not task.done():
            task.cancel()
        ticket.close()
        remove(folder)
