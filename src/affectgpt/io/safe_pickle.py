"""Allow-list unpickler for the original release's pickled data: plain containers only, no code runs.

The original label files (`label*.npz`) and generation files (`checkpoint_*.npz`, key `name2reason`) hold
pickled Python objects. `np.load(allow_pickle=True)` would run any code such a file names. This unpickler
admits only numpy's array/scalar/dtype reconstructors (mapped to inert stand-ins from io/pickled_arrays.py,
so numpy is never called) and a few builtin containers; any other global is refused with an InputError before
anything runs.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from affectgpt.errors import InputError
from affectgpt.io import pickled_arrays


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): pickled_arrays.NDARRAY,
                                         ("numpy", "dtype"): pickled_arrays.DtypeStub}
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(core, "_reconstruct")] = pickled_arrays.reconstruct_array
        table[(core, "scalar")] = pickled_arrays.reconstruct_scalar
    for builtins in ("builtins", "__builtin__"):  # protocol-2 pickles name the Python 2 module
        table.update({(builtins, "set"): set, (builtins, "frozenset"): frozenset,
                      (builtins, "complex"): complex})
    table.update({("collections", "OrderedDict"): dict, ("_codecs", "encode"): _codecs_encode})
    return table


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    """How protocol-2 pickles store bytes; only the latin1 form is ever needed."""
    return text.encode(encoding)


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose find_class admits only the allow-listed globals."""

    def __init__(self, file: io.BufferedIOBase, *, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source
        self._table = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._table[(module, name)]
        except KeyError:
            raise InputError(
                f"refusing to unpickle {module}.{name}: only plain containers, strings, numbers and numpy "
                "arrays are allowed",
                path=self._source,
                fix="this is not a plain data file of the original release; do not trust it, or convert "
                    "it to CSV/JSONL yourself",
            ) from None


def loads(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle `data` with the allow-list. Raises InputError on a forbidden global or a broken pickle."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source).load()
    except InputError:
        raise
    except Exception as exc:  # truncated or corrupt: report it, never half-load
        raise InputError(f"cannot read the pickled data ({type(exc).__name__}: {exc})", path=source,
                         fix="re-download or regenerate the file") from exc
