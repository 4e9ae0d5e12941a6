"""Bounds on what reading an input file may cost: zip containers (.npz, .xlsx) and undecodable text.

Zip containers: a small archive can declare (or, with a lying header, produce) gigabytes once inflated. Before
anything is inflated, `check_zip` compares every member's declared size (`ZipInfo.file_size`) and the
archive's total with a limit, and refuses compression methods whose reads are not bounded (only stored and
deflated members are read: what numpy and spreadsheet programs write); `read_member` then stops a member as
soon as more bytes come out than its header declared.

The limit is 2 GiB per archive by default (`DEFAULT_MAX_INFLATE_BYTES`); a user with a genuine larger file
raises it with the environment variable AFFECTGPT_MAX_INFLATE_BYTES (a whole number of bytes).

Text: `not_utf8(path)` is the one InputError for a file that is not UTF-8, naming the first bad byte and its
offset in the file.
"""

from __future__ import annotations

import codecs
import os
import zipfile
from pathlib import Path

from affectgpt.errors import InputError

MAX_INFLATE_ENV = "AFFECTGPT_MAX_INFLATE_BYTES"
DEFAULT_MAX_INFLATE_BYTES = 2 * 1024 ** 3
_BOUNDED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_CHUNK = 1 << 20


def max_inflate_bytes() -> int:
    """The most bytes one archive may inflate to: AFFECTGPT_MAX_INFLATE_BYTES, else 2 GiB."""
    raw = os.environ.get(MAX_INFLATE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_INFLATE_BYTES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise InputError(f"{raw!r} is not a positive whole number of bytes", field=MAX_INFLATE_ENV,
                         fix=f"set it to a number of bytes such as {DEFAULT_MAX_INFLATE_BYTES}, or unset it")
    return value


def _too_big(what: str, path: str | Path, member: str, limit: int) -> InputError:
    return InputError(f"{what}, over the limit of {limit} bytes (a zip bomb?)", path=path, field=member,
                      fix=f"if the file is genuine, raise the environment variable {MAX_INFLATE_ENV} "
                          f"(bytes) above {limit}")


def check_zip(archive: zipfile.ZipFile, path: str | Path) -> None:
    """Refuse an archive whose declared sizes (one member, or all together) exceed the limit, or that holds a
    member compressed with a method whose reads are unbounded. Nothing is inflated."""
    limit = max_inflate_bytes()
    total = 0
    for info in archive.infolist():
        if info.compress_type not in _BOUNDED_METHODS:
            raise InputError(f"unsupported compression method {info.compress_type} (only stored or deflated "
                             "members are read)", path=path, field=info.filename,
                             fix="re-create the file with numpy.savez / savez_compressed or a spreadsheet program")
        if info.file_size > limit:
            raise _too_big(f"declares {info.file_size} bytes once inflated", path, info.filename, limit)
        total += info.file_size
        if total > limit:
            raise _too_big(f"the members declare {total} bytes in all once inflated", path, info.filename, limit)


def check_zip_file(path: str | Path) -> None:
    """`check_zip` on the file at `path` (for containers that another library opens, such as .xlsx); a file
    that is not a zip at all is left for that library to report."""
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip(archive, path)
    except (zipfile.BadZipFile, OSError):
        return


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str | Path) -> bytes:
    """One member's bytes (after `check_zip`), read in chunks and refused as soon as more come out than its
    header declared."""
    declared = info.file_size
    chunks, size = [], 0
    with archive.open(info) as handle:
        while chunk := handle.read(min(_CHUNK, declared + 1 - size)):
            size += len(chunk)
            if size > declared:
                raise InputError(f"inflates to more than the {declared} bytes its header declares", path=path,
                                 field=info.filename, fix="the file is damaged or hostile: re-create it")
            chunks.append(chunk)
    return b"".join(chunks)


def not_utf8(path: str | Path) -> InputError:
    """The InputError for a text file that does not decode as UTF-8: the first bad byte and its file offset."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    where = "somewhere"
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    # exc.start counts from the bytes the decoder held back from the previous chunk.
                    held = len(exc.object) - len(chunk)
                    where = f"byte 0x{exc.object[exc.start]:02x} at offset {offset - held + exc.start}"
                    break
                offset += len(chunk)
            else:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError as exc:
                    held = len(exc.object)
                    where = f"byte 0x{exc.object[exc.start]:02x} at offset {offset - held + exc.start}"
    except OSError:
        pass
    return InputError(f"not UTF-8 text ({where})", path=path, fix="save it as UTF-8")
