"""Decode numpy's raw array bytes in pure Python: the dtypes the original release uses, and reshaping.

Shared by the .npy reader (io/npy.py) and the unpickler's array stand-ins (io/safe_pickle.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from affectgpt.errors import InputError

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
