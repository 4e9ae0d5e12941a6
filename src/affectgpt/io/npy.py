"""Read .npz/.npy files without numpy: plain arrays and the original release's pickled object arrays.

Scoring must start fast and must never run code from a data file. This reader parses the documented .npy
format (magic, a header that is a Python literal, raw little/big-endian data) for the dtypes the original
release uses: unicode `U`, bytes `S`, bool, integers, floats and pickled objects `O`. Object arrays go
through an allow-list unpickler (io/safe_pickle.py) whose numpy globals are inert stand-ins, so numpy
itself is neither needed nor ever invoked by a pickle. Raw array bytes are decoded by io/arrays.py.

Hostile archives are refused before anything is inflated (io/limits.py): every member's declared size and the
archive's total must stay under AFFECTGPT_MAX_INFLATE_BYTES (default 2 GiB), a member stops being read once more
bytes come out than it declared, and an array header may not describe far more items than its bytes hold.
"""

from __future__ import annotations

import ast
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.io.arrays import Dtype, nest
from affectgpt.io.limits import check_zip, read_member

_MAGIC = b"\x93NUMPY"
# numpy writes headers as {'descr': '<U15', 'fortran_order': False, 'shape': (411,), }: read that form
# with a regex (fast), anything else with ast.literal_eval (safe).
_HEADER = re.compile(r"^\{'descr': '([^']+)', 'fortran_order': (True|False), 'shape': \(([\d, ]*)\), \}\s*$")
_SLACK_CELLS = 1 << 16  # objects an array may describe beyond one per stored byte (empty strings, 0-length axes)


def read_npy(data: bytes, source: str) -> Any:
    """One .npy payload -> nested Python lists (or the single item of a 0-d array)."""
    if not data.startswith(_MAGIC) or len(data) < 10:
        raise InputError("not a .npy array (bad magic)", path=source, fix="re-create the file with numpy.save")
    major = data[6]
    if major == 1:
        header_len, start = struct.unpack("<H", data[8:10])[0], 10
    elif major in (2, 3):
        header_len, start = struct.unpack("<I", data[8:12])[0], 12
    else:
        raise InputError(f"unsupported .npy format version {major}", path=source, fix="save with numpy >= 1.x")
    try:
        shape, fortran, descr = _parse_header(
            data[start:start + header_len].decode("utf-8" if major == 3 else "latin1"))
        dtype = Dtype.parse(descr, source)
    except (ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable .npy header ({exc})", path=source, fix="re-create the file") from exc
    body = data[start + header_len:]
    if dtype.kind == "O":
        from affectgpt.io.pickled_arrays import materialize
        from affectgpt.io.safe_pickle import loads

        try:
            return materialize(loads(body, source=source))
        except ValueError as exc:  # a structure too large or too deep once expanded
            raise InputError(str(exc), path=source, fix="do not trust this file, or convert it to CSV/JSONL "
                             "yourself") from exc
    count = cells = 1
    for dim in shape:
        count *= dim
        cells *= max(dim, 1)
    if cells > len(body) + _SLACK_CELLS:
        # Zero-byte items (`<U0`) or a zero dimension would let a tiny header build billions of Python objects.
        raise InputError(f"the header describes {cells} items but the array holds {len(body)} bytes",
                         path=source, field="shape", fix="re-create the file")
    try:
        flat = dtype.decode(body, count)
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        raise InputError(f"truncated or corrupt array data ({exc})", path=source, fix="re-create the file") from exc
    return nest(flat, shape, fortran)


def _parse_header(text: str) -> tuple[tuple[int, ...], bool, Any]:
    match = _HEADER.match(text)
    if match:
        shape = tuple(int(d) for d in match[3].replace(" ", "").split(",") if d)
        return shape, match[2] == "True", match[1]
    header = ast.literal_eval(text)
    return tuple(int(d) for d in header["shape"]), bool(header["fortran_order"]), header["descr"]


def read_npz(path: str | Path, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The arrays of an .npz archive, by key (member name without `.npy`), as Python values.

    Args:
        path: the archive.
        keys: read only these members (the others are not even decompressed); default all.

    Raises:
        InputError: not a zip, a damaged member, an archive over the inflate limit (io/limits.py), an array
            that is not a readable .npy.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable .npz file ({exc})", path=path,
                         fix="check that the file is complete and really an .npz archive") from exc
    with archive:
        check_zip(archive, path)  # declared sizes against AFFECTGPT_MAX_INFLATE_BYTES, before inflating
        out = {}
        wanted = None if keys is None else set(keys)
        for info in archive.infolist():
            member = info.filename
            key = member[:-4] if member.endswith(".npy") else member
            if wanted is not None and key not in wanted:
                out[key] = None  # present but not read
                continue
            try:
                data = read_member(archive, info, path)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise InputError(f"member {member!r} is corrupt ({exc})", path=path, field=member,
                                 fix="re-download or re-create the file") from exc
            out[key] = read_npy(data, f"{path}:{key}")
        return out


def npy_unicode(values: list[str]) -> bytes:
    """A .npy payload holding `values` as a 1-D unicode array (`<U<width>`), as numpy.save writes it."""
    width = max((len(v) for v in values), default=1) or 1
    header = f"{{'descr': '<U{width}', 'fortran_order': False, 'shape': ({len(values)},), }}"
    # numpy pads the header with spaces so that the data starts on a 64-byte boundary, ending with "\n".
    total = len(_MAGIC) + 2 + 2 + len(header) + 1
    header += " " * (-total % 64) + "\n"
    body = b"".join(v.ljust(width, "\x00").encode("utf-32-le") for v in values)
    return _MAGIC + b"\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + body


FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | Path, arrays: dict[str, list[str]]) -> None:
    """Write unicode arrays as an uncompressed .npz (numpy.savez layout), atomically. The same arrays give the
    same bytes: the zip entries carry a fixed timestamp (1980-01-01), not the time of writing."""
    from affectgpt.io.atomic import atomic_write

    with atomic_write(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        for key, values in arrays.items():
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=FIXED_ZIP_TIME), npy_unicode(values))
