"""Inert stand-ins for numpy's pickled array, dtype and scalar reconstructors, and their Python values.

The allow-list unpickler (io/safe_pickle.py) maps numpy's globals to these, so a pickled array becomes an
ArrayStub holding nested Python lists and numpy is never called; `materialize` then swaps each stub for
its value.
"""

from __future__ import annotations

from typing import Any

from affectgpt.io.arrays import Dtype, nest


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
