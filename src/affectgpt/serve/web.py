"""The web pages of `affectgpt serve`: the demo page (/), the report page (/report) and their small JSON helpers.

Everything the pages need is served by the app itself (plain HTML, CSS and JS: no CDN, no network). The only
files read are the package's own static assets, chosen from a fixed table: no path from the client ever
reaches the filesystem.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from affectgpt.errors import InputError, MissingExtra

STATIC = {  # URL name -> media type; only these files are ever served
    "app.js": "text/javascript; charset=utf-8",
    "report.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
PAGES = {"/": "index.html", "/report": "report.html"}
DEFAULT_WHEEL = "plutchik"
MAX_WORDS = 64
MAX_REPORT_BYTES = 20 * 1024 * 1024
_WORD = re.compile(r"[^\s,;]+(?: [^\s,;]+)*")


def _asset(name: str) -> bytes:
    return resources.files("affectgpt.serve").joinpath("static", name).read_bytes()


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def wheel_chart(words: list[str], wheel: str = DEFAULT_WHEEL) -> dict[str, Any]:
    """The level-1 clusters of a built-in grouping and where each word sits on it (builtin protocol, offline).

    A word's level is 1 when it (or its lemma) is the cluster's own name and 2 for a finer word of that cluster;
    words the lexicon does not know, or that this grouping does not place, get cluster and level None.

    Raises:
        InputError: an unknown grouping name, or more than MAX_WORDS words.
    """
    from affectgpt.lexicon.builtin import BUILTIN_PROTOCOL, builtin_lexicon

    lexicon = builtin_lexicon()
    if wheel not in lexicon.groupings:
        raise InputError(f"unknown wheel {wheel!r}", field="wheel", fix=f"use one of {list(lexicon.groupings)}")
    if len(words) > MAX_WORDS:
        raise InputError(f"{len(words)} words", field="words", fix=f"ask for at most {MAX_WORDS} words")
    k = lexicon.groupings.index(wheel)
    clusters = sorted({e.families[k] for e in lexicon.entries.values() if e.families[k]})
    placed = []
    for word in words:
        lemma = lexicon.lemma(word.strip().lower())
        cluster = None if lemma is None else lexicon.entries[lemma].families[k]
        level = None if cluster is None else (1 if cluster in (lemma, word.strip().lower()) else 2)
        placed.append({"word": word, "lemma": lemma, "cluster": cluster, "level": level})
    return {"protocol": BUILTIN_PROTOCOL, "wheel": wheel, "wheels": list(lexicon.groupings),
            "clusters": clusters, "words": placed}


def render_report(data: bytes, name: str = "result") -> str:
    """The HTML report (affectgpt.bench.report.html) of one uploaded bench result JSON, as a string.

    The upload is written under a private temp dir with a fixed name, which is deleted afterwards.

    Raises:
        InputError: not a bench result JSON of this schema.
        MissingExtra: matplotlib is not installed.
    """
    from affectgpt.bench.report.html import write_report

    tmp = Path(tempfile.mkdtemp(prefix="affectgpt-report-"))
    try:
        source = tmp / "result.json"
        source.write_bytes(data)
        output = tmp / "report.html"
        write_report([source], output, names=[name])
        return output.read_text(encoding="utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _display_name(filename: str | None) -> str:
    stem = Path(filename or "result").name.rsplit(".", 1)[0]
    return re.sub(r"[^\w.+-]", "_", stem)[:64] or "result"


def _page(name: str) -> Any:
    def show() -> HTMLResponse:
        return HTMLResponse(_asset(name).decode("utf-8"), headers={"Cache-Control": "no-cache"})
    return show


def router() -> APIRouter:
    """The pages (/ and /report), their static assets, GET /v1/wheel and POST /v1/report."""
    api = APIRouter()

    for url, page in PAGES.items():
        api.add_api_route(url, _page(page), methods=["GET"], response_class=HTMLResponse,
                          include_in_schema=False)

    @api.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC:
            return _error(404, "not_found", f"no static file {name[:80]!r}")
        return Response(_asset(name), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    @api.get("/v1/wheel")
    def wheel(words: str = Query("", max_length=4096), wheel: str = DEFAULT_WHEEL) -> JSONResponse:
        """Where emotion words sit on a built-in emotion wheel: {clusters, words: [{word, cluster, level}]}."""
        try:
            return JSONResponse(wheel_chart(_WORD.findall(words), wheel))
        except InputError as exc:
            return _error(422, "bad_input", exc.message())

    @api.post("/v1/report")
    async def report(request: Request) -> Response:
        """A bench result JSON (multipart field `result`) -> the HTML report page."""
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_REPORT_BYTES:
            return _error(413, "too_large", f"the upload is over {MAX_REPORT_BYTES} bytes")
        try:
            form = await request.form()
        except Exception:  # a malformed multipart body
            return _error(422, "bad_form", "send the result JSON as multipart form field `result`")
        upload = form.get("result")
        if upload is None or isinstance(upload, str):
            return _error(422, "missing_field", "no file in form field `result`")
        data = await upload.read(MAX_REPORT_BYTES + 1)
        if len(data) > MAX_REPORT_BYTES:
            return _error(413, "too_large", f"the upload is over {MAX_REPORT_BYTES} bytes")
        try:
            page = render_report(data, _display_name(upload.filename))
        except InputError as exc:  # the message names the field and the fix, never our temp path
            text = ": ".join(p for p in (exc.field, exc.what) if p) + (f". Fix: {exc.fix}" if exc.fix else "")
            return _error(422, "bad_result", text)
        except MissingExtra as exc:
            return _error(501, "missing_extra", str(exc))
        return HTMLResponse(page)

    return api
