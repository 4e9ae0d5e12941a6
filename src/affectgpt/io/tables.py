"""Read name -> value tables: CSV, JSONL and the original release's .npz layouts.

Layouts understood:
- CSV with a header: a `name` column and one value column (named, or the only other column);
- JSONL: one object per line with `name` and a value key;
- the original `-openset.npz` / `-openset-sentiment.npz`: unicode arrays `filenames` and `fileitems`;
- the original `checkpoint_*.npz`: key `name2reason`, a pickled dict (read with the allow-list unpickler).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError

TABLE_SUFFIXES = (".npz", ".csv", ".jsonl")


@dataclass(frozen=True)
class NameTable:
    """An ordered name -> value table read from one file.

    Attributes:
        path: the file it came from.
        names: the names, in file order, without duplicates.
        values: one value per name (a string for labels and predictions, a float for scores).
    """

    path: str
    names: tuple[str, ...]
    values: tuple[Any, ...]

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self.names, self.values, strict=True))


def read_table(path: str | Path, value_keys: Sequence[str] = ()) -> NameTable:
    """Read a name -> value table, choosing the reader by suffix.

    Args:
        path: a .csv, .jsonl or .npz file.
        value_keys: preferred names of the value column/key, tried in order; for CSV and JSONL, when none
            is present and the file has exactly one column besides `name`, that column is used.

    Raises:
        InputError: unreadable or empty file, missing column, conflicting duplicate names.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path, fix="check the path")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        names, values = _read_npz(path)
    elif suffix == ".csv":
        names, values = _read_csv(path, value_keys)
    elif suffix == ".jsonl":
        names, values = _read_jsonl(path, value_keys)
    else:
        raise InputError(f"unsupported file type {suffix!r}", path=path,
                         fix=f"use one of {', '.join(TABLE_SUFFIXES)}")
    if not names:
        raise InputError("the file holds no rows", path=path, fix="check that the file is complete")
    return _dedupe(path, names, values)


def read_csv_grid(path: Path, *, header_fix: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header cells (stripped) and the non-blank rows (line number, cells) of a UTF-8 CSV (a byte-order mark
    allowed), for readers that give the columns their own meaning (training manifests, subtitle tables).

    Raises:
        InputError: text that is not UTF-8, bad quoting, no header line (`header_fix` says what to start with),
            a row whose number of cells is not the header's.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise InputError("the file is empty: no header line", path=path, fix=header_fix)
            rows = []
            for line, cells in enumerate(reader, start=2):
                if not any(cell.strip() for cell in cells):
                    continue  # blank line
                if len(cells) != len(header):
                    raise InputError(f"line {line} has {len(cells)} fields but the header has {len(header)}",
                                     path=path, field=f"line {line}", fix="quote fields that contain commas")
                rows.append((line, cells))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", path=path, fix="save the file as UTF-8") from exc
    except csv.Error as exc:
        raise InputError(f"not a readable CSV ({exc})", path=path, fix="check the quoting") from exc
    return [cell.strip() for cell in header], rows


def _dedupe(path: Path, names: list[str], values: list[Any]) -> NameTable:
    seen: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        if name in seen and seen[name] != value:
            raise InputError(f"name {name!r} appears twice with different values", path=path, field="name",
                             fix="keep one row per name")
        seen[name] = value
    return NameTable(str(path), tuple(seen), tuple(seen.values()))


def _read_npz(path: Path) -> tuple[list[str], list[Any]]:
    from affectgpt.io.npy import read_npz

    arrays = read_npz(path)
    if "filenames" in arrays and "fileitems" in arrays:
        names = [str(n) for n in _as_list(arrays["filenames"])]
        items = _as_list(arrays["fileitems"])
        if len(names) != len(items):
            raise InputError(f"'filenames' has {len(names)} entries but 'fileitems' has {len(items)}",
                             path=path, field="fileitems", fix="re-create the file")
        return names, [str(i) for i in items]
    if "name2reason" in arrays:
        mapping = arrays["name2reason"]
        if not isinstance(mapping, dict):
            raise InputError("'name2reason' is not a name -> text dict", path=path, field="name2reason",
                             fix="re-create the file")
        return [str(k) for k in mapping], [str(v) for v in mapping.values()]
    raise InputError(f"unknown .npz layout (keys: {sorted(arrays)})", path=path,
                     field="filenames/fileitems",
                     fix="use an original -openset/-openset-sentiment .npz, or CSV/JSONL with name,value")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _pick_column(path: Path, columns: list[str], value_keys: Sequence[str]) -> str:
    for key in value_keys:
        if key in columns:
            return key
    others = [c for c in columns if c != "name"]
    if len(others) == 1:
        return others[0]
    wanted = " or ".join(repr(k) for k in value_keys) or "one value column"
    raise InputError(f"cannot tell the value column among {others}", path=path, field="columns",
                     fix=f"name the column {wanted}, or keep only 'name' and one value column")


def _read_csv(path: Path, value_keys: Sequence[str]) -> tuple[list[str], list[Any]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            if not columns:
                return [], []
            reader.fieldnames = columns
            if "name" not in columns:
                raise InputError(f"no 'name' column (columns: {columns})", path=path, field="name",
                                 fix="add a header line starting with 'name,'")
            column = _pick_column(path, columns, value_keys)
            names, values = [], []
            for line, row in enumerate(reader, start=2):
                name = (row.get("name") or "").strip()
                if not name:
                    raise InputError(f"empty name on line {line}", path=path, field="name",
                                     fix="give every row a name")
                names.append(name)
                values.append(row.get(column) or "")
            return names, values
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc})", path=path, fix="save the file as UTF-8") from exc


def _read_jsonl(path: Path, value_keys: Sequence[str]) -> tuple[list[str], list[Any]]:
    names, values = [], []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"line {line_no} is not valid JSON ({exc.msg})", path=path,
                                 field=f"line {line_no}", fix="write one JSON object per line") from exc
            if not isinstance(row, dict) or "name" not in row:
                raise InputError(f"line {line_no} has no 'name' key", path=path, field="name",
                                 fix='write objects like {"name": "...", "openset": "..."}')
            column = _pick_column(path, list(row), value_keys)
            names.append(str(row["name"]))
            value = row[column]
            values.append(value if isinstance(value, (int, float)) else _as_text(value))
    return names, values


def _as_text(value: Any) -> str:
    """Lists in JSON become the bracketed string the original files hold."""
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "" if value is None else str(value)
