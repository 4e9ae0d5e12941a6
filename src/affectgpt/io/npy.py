"""Read .npz/.npy files without numpy: plain arrays and the original release's pickled object arrays.

Scoring must start fast and must never run code from a data file. This reader parses the documented .npy
format (magic, a header that is a Python literal, raw little/big-endian data) for the dtypes the original
release uses: unicode `U`, bytes `S`, bool, integers, floats and pickled objects `O`. Object arrays go
through an allow-list unpickler (io/safe_pickle.py) whose numpy globals are stand-ins built here, so
numpy itself is neither needed nor ever invoked by a pickle.
"""

from __future__ import annotations

import ast
import re
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError

_MAGIC = b"\x93NUMPY"
# numpy writes headers as {'descr': '<U15', 'fortran_order': False, 'shape': (411,), }: read that form
# with a regex (fast), anything else with ast.literal_eval (safe).
_HEADER = re.compile(r"^\{'descr': '([^']+)', 'fortran_order': (True|False), 'shape': \(([\d, ]*)\), \}\s*$")
_STRUCT_CODES = {("b", 1): "?", ("i", 1): "b", ("i", 2): "h", ("i", 4): "i", ("i", 8): "q",
                 ("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q",
                 ("f", 2): "e", ("f", 4): "f", ("f", 8): "d"}


@dataclass(frozen=True)
class Dtype:
    """The parts of a numpy dtype this reader understands: byte order, kind and item size."""

    byteorder: str  # "<", ">" or "|"
    kind: str  # "U", "S", "b", "i", "u", "f" or "O"
    itemsize: int

    @classmethod
    def parse(cls, descr: Any, source: str) -> Dtype:
        if not isinstance(descr, str) or len(descr) < 2:
            raise InputError(f"unsupported array dtype {descr!r} (structured arrays are not read)", path=source,
                             field="descr", fix="store plain string, number or object arrays")
        order, kind, size = descr[0], descr[1], descr[2:]
        if order == "=":
            order = "<"
        if order not in "<>|" or kind not in "USbiufO":
            raise InputError(f"unsupported array dtype {descr!r}", path=source, field="descr",
                             fix="store plain string, number or object arrays")
        itemsize = int(size) * (4 if kind == "U" else 1) if size else (8 if kind == "O" else 1)
        return cls(order, kind, itemsize)

    def decode(self, data: bytes, count: int) -> list[Any]:
        """`count` items from raw bytes, as Python values."""
        if len(data) < count * self.itemsize:
            raise ValueError(f"{len(data)} bytes for {count} items of {self.itemsize} bytes")
        if self.kind == "U":
            chars = self.itemsize // 4
            text = data[: count * self.itemsize].decode("utf-32-be" if self.byteorder == ">" else "utf-32-le")
            return [text[i * chars:(i + 1) * chars].rstrip("\x00") for i in range(count)]
        if self.kind == "S":
            size = self.itemsize
            return [data[i * size:(i + 1) * size].rstrip(b"\x00") for i in range(count)]
        code = _STRUCT_CODES.get((self.kind, self.itemsize))
        if code is None:
            raise ValueError(f"unsupported item size {self.itemsize} for kind {self.kind!r}")
        order = ">" if self.byteorder == ">" else "<"
        return list(struct.unpack(f"{order}{count}{code}", data[: count * self.itemsize]))


def nest(flat: list[Any], shape: tuple[int, ...], fortran: bool = False) -> Any:
    """Reshape a flat list into nested lists; shape () gives the single item (as `.tolist()` would)."""
    if not shape:
        return flat[0]
    if fortran and len(shape) > 1:
        # Fortran order: the first index varies fastest. Transpose into C order first.
        strides = [1]
        for dim in shape[:-1]:
            strides.append(strides[-1] * dim)
        flat = [flat[_fortran_index(i, shape, strides)] for i in range(len(flat))]
    return _nest_c(flat, shape)


def _fortran_index(c_index: int, shape: tuple[int, ...], strides: list[int]) -> int:
    index = 0
    for dim, stride in zip(reversed(shape), reversed(strides), strict=True):
        c_index, position = divmod(c_index, dim)
        index += position * stride
    return index


def _nest_c(flat: list[Any], shape: tuple[int, ...]) -> list[Any]:
    if len(shape) == 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest_c(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


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
        from affectgpt.io.safe_pickle import loads

        return materialize(loads(body, source=source))
    count = 1
    for dim in shape:
        count *= dim
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
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable .npz file ({exc})", path=path,
                         fix="check that the file is complete and really an .npz archive") from exc
    with archive:
        out = {}
        wanted = None if keys is None else set(keys)
        for member in archive.namelist():
            key = member[:-4] if member.endswith(".npy") else member
            if wanted is not None and key not in wanted:
                out[key] = None  # present but not read
                continue
            try:
                data = archive.read(member)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InputError(f"member {member!r} is corrupt ({exc})", path=path, field=key,
                                 fix="re-download or re-create the file") from exc
            out[key] = read_npy(data, f"{path}:{key}")
        return out


class ArrayStub:
    """What the allow-listed `numpy...._reconstruct` builds: filled by the pickle's BUILD step."""

    def __init__(self) -> None:
        self.value: Any = None

    def __setstate__(self, state: tuple) -> None:
        _version, shape, dtype, fortran, raw = state
        shape = tuple(int(d) for d in shape)
        if not isinstance(dtype, DtypeStub):
            raise ValueError("array state without a dtype")
        if dtype.dtype.kind == "O":
            flat = list(raw)
        else:
            count = 1
            for dim in shape:
                count *= dim
            flat = dtype.dtype.decode(bytes(raw), count)
        self.value = nest(flat, shape, bool(fortran))


class DtypeStub:
    """What the allow-listed `numpy.dtype` builds; its BUILD step carries the byte order."""

    def __init__(self, spec: str, align: bool = False, copy: bool = False) -> None:
        self.spec = str(spec)
        self.dtype = Dtype.parse("|" + self.spec if self.spec[0] not in "<>|=" else self.spec, "<pickle>")

    def __setstate__(self, state: tuple) -> None:
        byteorder = state[1]
        elsize = state[5]
        kind = self.dtype.kind
        itemsize = elsize if kind in "US" and elsize > 0 else self.dtype.itemsize
        self.dtype = Dtype("<" if byteorder == "=" else byteorder, kind, itemsize)


def reconstruct_array(subtype: Any, shape: Any, dtype_code: Any) -> ArrayStub:
    if subtype is not NDARRAY:
        raise ValueError("only plain numpy arrays are allowed")
    return ArrayStub()


def reconstruct_scalar(dtype: DtypeStub, data: Any = None) -> Any:
    if not isinstance(dtype, DtypeStub):
        raise ValueError("scalar without a dtype")
    if dtype.dtype.kind == "O":
        return data
    return dtype.dtype.decode(data if isinstance(data, bytes) else data.encode("latin1"), 1)[0]


NDARRAY = type("ndarray", (), {})  # a marker: the only subtype `_reconstruct` accepts


def materialize(value: Any) -> Any:
    """Replace every ArrayStub inside `value` (dicts, lists, tuples, sets) by its Python value."""
    if isinstance(value, ArrayStub):
        return materialize(value.value)
    if isinstance(value, dict):
        return {materialize(k): materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    if isinstance(value, tuple):
        return tuple(materialize(v) for v in value)
    return value


def npy_unicode(values: list[str]) -> bytes:
    """A .npy payload holding `values` as a 1-D unicode array (`<U<width>`), as numpy.save writes it."""
    width = max((len(v) for v in values), default=1) or 1
    header = f"{{'descr': '<U{width}', 'fortran_order': False, 'shape': ({len(values)},), }}"
    # numpy pads the header with spaces so that the data starts on a 64-byte boundary, ending with "\n".
    total = len(_MAGIC) + 2 + 2 + len(header) + 1
    header += " " * (-total % 64) + "\n"
    body = b"".join(v.ljust(width, "\x00").encode("utf-32-le") for v in values)
    return _MAGIC + b"\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + body


def write_npz(path: str | Path, arrays: dict[str, list[str]]) -> None:
    """Write unicode arrays as an uncompressed .npz (numpy.savez layout), atomically."""
    from affectgpt.io.atomic import atomic_write

    with atomic_write(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        for key, values in arrays.items():
            archive.writestr(f"{key}.npy", npy_unicode(values))
