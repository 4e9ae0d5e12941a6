"""Inert stand-ins for numpy's pickled array, dtype and scalar reconstructors, and their Python values.

The allow-list unpickler (io/safe_pickle.py) maps numpy's globals to these, so a pickled array becomes an
ArrayStub holding nested Python lists and numpy is never called; `materialize` then swaps each stub for
its value.

A pickle can refer to one object many times, so a few kilobytes can describe a structure of billions of values
once expanded (lists of references to lists of references...), and anything that later walks it (`str`, JSON)
would expand it. `materialize` therefore counts the values of the expanded structure and refuses more than
MAX_VALUES (environment variable AFFECTGPT_MAX_PICKLE_VALUES, default 50 million) or nesting deeper than
MAX_DEPTH; an array whose shape describes more items than its bytes hold is refused as well.
"""

from __future__ import annotations

import os
from typing import Any

from affectgpt.io.arrays import Dtype, nest

MAX_DEPTH = 100
SLACK_CELLS = 1 << 16  # as io/npy.py: items an array may describe beyond one per stored byte
DEFAULT_MAX_VALUES = 50_000_000


class ArrayStub:
    """What the allow-listed `numpy...._reconstruct` builds: filled by the pickle's BUILD step."""

    def __init__(self) -> None:
        self.value: Any = None

    def __setstate__(self, state: tuple) -> None:
        _version, shape, dtype, fortran, raw = state
        shape = tuple(int(d) for d in shape)
        if not isinstance(dtype, DtypeStub):
            raise ValueError("array state without a dtype")
        count = cells = 1
        for dim in shape:
            count *= dim
            cells *= max(dim, 1)
        if cells > len(raw) + SLACK_CELLS:  # zero-byte items or axes would build billions of objects from nothing
            raise ValueError(f"an array shape of {cells} items for {len(raw)} stored values or bytes")
        flat = list(raw) if dtype.dtype.kind == "O" else dtype.dtype.decode(bytes(raw), count)
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




def max_values() -> int:
    """The most values a pickled structure may expand to (AFFECTGPT_MAX_PICKLE_VALUES, default 50 million)."""
    raw = os.environ.get("AFFECTGPT_MAX_PICKLE_VALUES", "")
    try:
        value = int(raw) if raw.strip() else DEFAULT_MAX_VALUES
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"AFFECTGPT_MAX_PICKLE_VALUES={raw!r} is not a positive whole number")
    return value


def materialize(value: Any) -> Any:
    """Replace every ArrayStub inside `value` (dicts, lists, tuples) by its Python value.

    Shared objects stay shared in the result. Raises ValueError when the structure, expanded, holds more than
    max_values() values or nests deeper than MAX_DEPTH.
    """
    limit = max_values()
    done: dict[int, tuple[Any, int]] = {}  # id -> (converted value, its expanded size)

    def walk(item: Any, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise ValueError(f"the pickled data nests deeper than {MAX_DEPTH} levels")
        key = id(item)
        if key in done:
            return done[key]
        if isinstance(item, ArrayStub):
            result = walk(item.value, depth + 1)
        elif isinstance(item, dict):
            pairs = [(walk(k, depth + 1), walk(v, depth + 1)) for k, v in item.items()]
            result = ({k[0]: v[0] for k, v in pairs}, 1 + sum(k[1] + v[1] for k, v in pairs))
        elif isinstance(item, (list, tuple)):
            parts = [walk(v, depth + 1) for v in item]
            converted = [p[0] for p in parts]
            result = (converted if isinstance(item, list) else tuple(converted), 1 + sum(p[1] for p in parts))
        else:
            return item, 1
        if result[1] > limit:
            raise ValueError(f"the pickled data expands to more than {limit} values (shared references "
                             "repeated); raise AFFECTGPT_MAX_PICKLE_VALUES if the file is genuine")
        done[key] = result
        return result

    return walk(value, 0)[0]
