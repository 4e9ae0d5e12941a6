"""Allow-list unpickler for the original release's pickled .npz members: plain containers only.

The original label files (`label*.npz`) and generation files (`checkpoint_*.npz`, key `name2reason`) hold
pickled Python objects. `np.load(allow_pickle=True)` would run any code such a file names; this reader admits
only numpy's array/scalar reconstructors, dtypes and a few builtin containers, and refuses everything else
with an InputError before anything runs.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError

# (module, name) pairs a pickle may name. Everything a pickle can build without naming a global
# (dict, list, tuple, str, bytes, int, float, bool, None) is allowed anyway.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_BUILTIN_GLOBALS = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how protocol-2 pickles store bytes
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose find_class admits only the allow-listed globals."""

    def __init__(self, file: io.BufferedIOBase, *, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _NUMPY_GLOBALS:
            import numpy  # noqa: F401  (the reconstructors live in numpy)

            module = module.replace("numpy.core.", "numpy._core.") if _has_new_core() else module
            return super().find_class(module, name)
        if key in _BUILTIN_GLOBALS:
            return super().find_class(module, name)
        raise InputError(
            f"refusing to unpickle {module}.{name}: only plain containers, strings, numbers and numpy "
            "arrays are allowed",
            path=self._source,
            fix="this file is not a plain data file of the original release; do not trust it, or convert "
                "it to CSV/JSONL yourself",
        )


def _has_new_core() -> bool:
    import numpy

    return int(numpy.__version__.split(".")[0]) >= 2


def loads(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle `data` with the allow-list. Raises InputError on a forbidden global or a broken pickle."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source).load()
    except InputError:
        raise
    except Exception as exc:  # a truncated or corrupt pickle: report it, never half-load
        raise InputError(f"cannot read the pickled data ({type(exc).__name__}: {exc})", path=source,
                         fix="re-download or regenerate the file") from exc


def load_npz(path: str | Path) -> dict[str, Any]:
    """Read every array of an .npz file; object arrays go through the restricted unpickler.

    Returns:
        member name (without ".npy") -> numpy array (object arrays of shape () are unwrapped to the
        object they hold, as `np.load(...)[key].tolist()` would give).
    """
    import numpy as np
    from numpy.lib import format as npy_format

    path = Path(path)
    out: dict[str, Any] = {}
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable .npz file ({exc})", path=path,
                         fix="check that the file is complete and really an .npz archive") from exc
    with archive:
        for member in archive.namelist():
            key = member[:-4] if member.endswith(".npy") else member
            with archive.open(member) as handle:
                try:
                    version = npy_format.read_magic(handle)
                    reader = (npy_format.read_array_header_1_0 if version == (1, 0)
                              else npy_format.read_array_header_2_0)
                    shape, fortran, dtype = reader(handle)
                except ValueError as exc:
                    raise InputError(f"member {member!r} is not a .npy array ({exc})", path=path,
                                     field=key, fix="re-create the file with numpy.savez") from exc
                if dtype.hasobject:
                    value = loads(handle.read(), source=f"{path}:{key}")
                    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.hasobject:
                        value = value.item()
                else:
                    count = int(np.prod(shape)) if shape else 1
                    value = np.frombuffer(handle.read(count * dtype.itemsize), dtype=dtype, count=count)
                    value = value.reshape(shape, order="F" if fortran else "C")
                out[key] = value
    return out
