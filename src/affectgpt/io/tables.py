"""Read name -> value tables: CSV, JSONL and the original release's .npz layouts.

Layouts understood:
- CSV with a header: a `name` column and one value column (named, or the only other column unless that one is
  named for another role: `text` is never read as emotion words, nor `openset` as text);
- JSONL: one object per line with `name` and a value key;
- the original `-openset.npz` / `-openset-sentiment.npz`: unicode arrays `filenames` and `fileitems`;
- the original `checkpoint_*.npz`: key `name2reason`, a pickled dict (read with the allow-list unpickler).

Every CSV reader here (`read_table`, `read_csv_grid`, `csv_records`) reads UTF-8 (a byte-order mark allowed) with
strict quoting: text that is not UTF-8, a quote never closed, or a row with more fields than the header is an
InputError naming the file and line, never a silently shifted or swallowed value.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.io.limits import not_utf8

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


def read_table(path: str | Path, value_keys: Sequence[str] = (), *, missing_fix: str | None = None) -> NameTable:
    """Read a name -> value table, choosing the reader by suffix.

    Args:
        path: a .csv, .jsonl or .npz file (a .csv or .jsonl may also be a pipe, read once).
        value_keys: preferred names of the value column/key, tried in order; for CSV and JSONL, when none
            is present and the file has exactly one column besides `name`, that column is used.
        missing_fix: when given, one of `value_keys` must be present (no other column is taken in its place;
            an .npz must hold `filenames`/`fileitems` or a listed key): a file without one is refused, and the
            error's fix is this text.

    Raises:
        InputError: unreadable or empty file, missing column, conflicting duplicate names; text that is not
            UTF-8; a CSV row with more fields than the header, or with broken quoting.
    """
    path = Path(path)
    if not path.exists() or path.is_dir():  # a pipe is fine for CSV and JSONL: they are read once, in order
        raise InputError("file not found", path=path, fix="check the path")
    suffix = path.suffix.lower()
    if suffix == ".npz" and not path.is_file():
        raise InputError("an .npz file cannot be read from a pipe (it is a zip archive, read by seeking)",
                         path=path, fix="save it to a file and pass that")
    if suffix == ".npz":
        names, values = _read_npz(path, value_keys, missing_fix)
    elif suffix == ".csv":
        names, values = _read_csv(path, value_keys, missing_fix)
    elif suffix == ".jsonl":
        names, values = _read_jsonl(path, value_keys, missing_fix)
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
        InputError: text that is not UTF-8, bad quoting (an unterminated quote included), no header line
            (`header_fix` says what to start with), a row whose number of cells is not the header's.
    """
    with closing(csv_records(path)) as records:
        header = next(records, (1, []))[1]
        if not any(cell.strip() for cell in header):
            raise InputError("the file is empty: no header line", path=path, fix=header_fix)
        rows = []
        for line, cells in records:
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            if len(cells) != len(header):
                raise _field_count(path, line, len(cells), len(header))
            rows.append((line, cells))
    return [cell.strip() for cell in header], rows


def csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of every record of a UTF-8 CSV (a byte-order mark allowed), blank lines as [].

    Quoting is strict: a quote that is never closed (it would swallow the rest of the file) or text after a
    closing quote is an InputError naming the line, as is text that is not UTF-8.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            end = 0
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    line = end + 1
                    if "unexpected end of data" in str(exc):
                        raise InputError(f"unterminated quote: the quoted field on line {line} runs to the end "
                                         "of the file", path=path, field=f"line {line}",
                                         fix='close the quote; a quote inside a quoted field is written twice ("")'
                                         ) from None
                    raise InputError(f"line {line} is not valid CSV ({exc})", path=path, field=f"line {line}",
                                     fix='check the quoting: a field with a comma, quote or line break is quoted, '
                                         'and a quote inside it is written twice ("")') from None
                yield end + 1, cells
                end = reader.line_num
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def _field_count(path: Path, line: int, count: int, expected: int) -> InputError:
    return InputError(f"line {line} has {count} fields but the header has {expected}", path=path,
                      field=f"line {line}", fix="quote fields that contain commas")


def _dedupe(path: Path, names: list[str], values: list[Any]) -> NameTable:
    seen: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        if name in seen and seen[name] != value:
            raise InputError(f"name {name!r} appears twice with different values", path=path, field="name",
                             fix="keep one row per name")
        seen[name] = value
    return NameTable(str(path), tuple(seen), tuple(seen.values()))


def _read_npz(path: Path, value_keys: Sequence[str], missing_fix: str | None) -> tuple[list[str], list[Any]]:
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
        if missing_fix is not None and "name2reason" not in value_keys:
            raise _missing(path, value_keys, "keys", sorted(arrays), missing_fix)
        mapping = arrays["name2reason"]
        if not isinstance(mapping, dict):
            raise InputError("'name2reason' is not a name -> text dict", path=path, field="name2reason",
                             fix="re-create the file")
        return [str(k) for k in mapping], [str(v) for v in mapping.values()]
    raise InputError(f"unknown .npz layout (keys: {sorted(arrays)})", path=path,
                     field="filenames/fileitems",
                     fix="use an original -openset/-openset-sentiment .npz, or CSV/JSONL with name,value")


def _missing(path: Path, value_keys: Sequence[str], kind: str, present: list[str], fix: str) -> InputError:
    wanted = " or ".join(repr(k) for k in value_keys)
    return InputError(f"no {wanted} column ({kind}: {', '.join(present)})", path=path,
                      field=value_keys[0] if value_keys else "columns", fix=fix)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# Column names that say what a column holds (generated text, emotion words, a sentiment, a label): such a column is
# never taken in place of another one, so generated text is not scored as emotion words, nor the reverse.
ROLE_COLUMNS = frozenset({"text", "reason", "description", "openset", "sentiment", "label", "labels", "prediction"})


def _pick_column(path: Path, columns: list[str], value_keys: Sequence[str], missing_fix: str | None = None) -> str:
    for key in value_keys:
        if key in columns:
            return key
    if missing_fix is not None:
        raise _missing(path, value_keys, "columns", columns, missing_fix)
    others = [c for c in columns if c != "name"]
    if len(others) == 1 and others[0].lower() in ROLE_COLUMNS and value_keys:
        wanted = " or ".join(repr(k) for k in value_keys)
        raise InputError(f"the only value column is {others[0]!r}, which holds something else than the {wanted} "
                         "asked for here", path=path, field=others[0],
                         fix="give the file the column this command reads (generated text goes through "
                             "`affectgpt extract` first)")
    if len(others) == 1:
        return others[0]
    wanted = " or ".join(repr(k) for k in value_keys) or "one value column"
    raise InputError(f"cannot tell the value column among {others}", path=path, field="columns",
                     fix=f"name the column {wanted}, or keep only 'name' and one value column")


def _read_csv(path: Path, value_keys: Sequence[str], missing_fix: str | None) -> tuple[list[str], list[Any]]:
    with closing(csv_records(path)) as records:
        columns = [c.strip() for c in next(records, (1, []))[1]]
        if not columns:
            return [], []
        if "name" not in columns:
            raise InputError(f"no 'name' column (columns: {columns})", path=path, field="name",
                             fix="add a header line starting with 'name,'")
        name_at = columns.index("name")
        value_at = columns.index(_pick_column(path, columns, value_keys, missing_fix))
        names, values = [], []
        for line, cells in records:
            if not cells:
                continue  # blank line
            if len(cells) > len(columns):
                raise _field_count(path, line, len(cells), len(columns))
            name = cells[name_at].strip() if name_at < len(cells) else ""
            if not name:
                raise InputError(f"empty name on line {line}", path=path, field="name",
                                 fix="give every row a name")
            names.append(name)
            values.append(cells[value_at] if value_at < len(cells) else "")  # a short row: the value is empty
    return names, values


def _read_jsonl(path: Path, value_keys: Sequence[str], missing_fix: str | None) -> tuple[list[str], list[Any]]:
    try:
        return _jsonl_rows(path, value_keys, missing_fix)
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def _jsonl_rows(path: Path, value_keys: Sequence[str], missing_fix: str | None) -> tuple[list[str], list[Any]]:
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
            column = _pick_column(path, list(row), value_keys, missing_fix)
            names.append(str(row["name"]))
            value = row[column]
            values.append(value if isinstance(value, (int, float)) else _as_text(value))
    return names, values


def _as_text(value: Any) -> str:
    """Lists in JSON become the bracketed string the original files hold."""
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "" if value is None else str(value)
