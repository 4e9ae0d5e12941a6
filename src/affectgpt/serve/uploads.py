"""Uploads: a multipart body streamed into a private temp dir under a size limit, and the container/codec check.

The body is parsed as it arrives (python-multipart's streaming parser), so an upload over the limit is refused
(413) without being read in full; the file is written as `upload.bin` in a fresh mkdtemp dir (mode 0700): the
client's file name never reaches the filesystem. `check_video` then opens it with PyAV: no known container or no
video stream -> 415; a known container that cannot be decoded (a truncated mp4) -> 422.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from affectgpt.serve.settings import ServeError

FIELD_LIMIT = 64 * 1024
"""The largest text field (subtitle, task) in bytes."""

VIDEO_CODECS = frozenset({"h264", "hevc", "mpeg4", "vp8", "vp9", "av1", "mjpeg", "mpeg2video", "mpeg1video",
                          "h263", "theora", "prores", "png", "rawvideo", "msmpeg4v2", "msmpeg4v3", "wmv2", "wmv3",
                          "vc1", "flv1", "dnxhd", "ffv1", "libdav1d", "libvpx", "libvpx-vp9"})
"""Video codecs accepted (decoded by FFmpeg's own decoders)."""


def private_dir(root: Path | None) -> Path:
    """A fresh temp dir only this user can read (mkdtemp makes it 0700)."""
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="affectgpt-serve-", dir=None if root is None else str(root)))


def remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Upload:
    """What a multipart request held: the file (server-named) and the text fields."""

    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


def _too_large(limit: int) -> ServeError:
    return ServeError(413, "too_large", f"the upload is larger than the limit ({limit} bytes)")


async def read_multipart(request: Request, folder: Path, *, limit: int, file_fields: tuple[str, ...] = ("video",)) \
        -> Upload:
    """Stream the request's multipart body: files of `file_fields` into `folder`, other fields as text."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise ServeError(415, "not_multipart", "send the video as multipart/form-data (field `video`)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + FIELD_LIMIT * 4:
        raise _too_large(limit)
    upload = Upload(folder)
    state: dict = {"header": b"", "value": b"", "headers": {}, "name": None, "handle": None, "text": None}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["header"].lower()] = state["value"]
        state["header"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        state["name"], state["headers"] = name, {}
        if name in file_fields and name not in upload.files:
            path = folder / f"{name}.bin"  # server-chosen name, never the client's
            state["handle"] = open(path, "xb")  # noqa: SIM115 - closed on part end or in finally
            upload.files[name] = path
            upload.sizes[name] = 0
        else:
            state["text"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["handle"] is not None:
            upload.sizes[state["name"]] += end - start
            if upload.sizes[state["name"]] > limit:
                raise _too_large(limit)
            state["handle"].write(data[start:end])
        elif state["text"] is not None:
            state["text"] += data[start:end]
            if len(state["text"]) > FIELD_LIMIT:
                raise ServeError(413, "too_large", f"the field {state['name']!r} is over {FIELD_LIMIT} bytes")

    def on_part_end() -> None:
        if state["handle"] is not None:
            state["handle"].close()
            state["handle"] = None
        elif state["text"] is not None:
            upload.fields.setdefault(state["name"], state["text"].decode("utf-8", "replace"))
            state["text"] = None

    parser = MultipartParser(params[b"boundary"], {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except ServeError:
        raise
    except Exception as exc:  # a malformed body
        raise ServeError(400, "bad_multipart", f"the multipart body cannot be read: {exc}") from None
    finally:
        if state["handle"] is not None:
            state["handle"].close()
    return upload


def _magic(path: Path) -> str | None:
    """The container the first bytes announce, if any (ISO BMFF/mp4/mov, Matroska/WebM, AVI, MPEG-TS...)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:1] == b"\x47" or head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    if head[:3] == b"FLV" or head[:4] == b"OggS":
        return "other"
    return None


def check_video(path: Path) -> dict[str, str]:
    """Open `path` with PyAV and decode its first video frame; ServeError 415 (not a video: unknown container,
    no video stream, a codec not accepted) or 422 (a known container that cannot be read: truncated, corrupt)."""
    import av

    magic = _magic(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except Exception as exc:
        if magic is None:
            raise ServeError(415, "not_a_video", "the upload is not a video file (no known container)") from None
        raise ServeError(422, "unreadable_video", f"the {magic} file cannot be read (truncated or corrupt: "
                                                  f"{type(exc).__name__})") from None
    with container:
        if not container.streams.video:
            raise ServeError(415, "not_a_video", f"the {container.format.name} file has no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in VIDEO_CODECS:
            raise ServeError(415, "unsupported_codec", f"the video codec {codec!r} is not accepted")
        try:
            for _ in container.decode(stream):
                break
            else:
                raise ServeError(422, "unreadable_video", "the video stream holds no frame that decodes")
        except ServeError:
            raise
        except Exception as exc:
            raise ServeError(422, "unreadable_video", f"the video cannot be decoded ({type(exc).__name__})") \
                from None
        return {"container": container.format.name, "codec": codec}
