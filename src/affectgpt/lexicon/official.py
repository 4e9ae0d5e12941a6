"""Read the official emotion-wheel files (format.csv, synonym.xlsx, wheel1..5.xlsx) into WheelMaps.

The rules are the published MER-UniBench normalisation (shared/spec/mer-unibench.md, "Label
normalisation"); every quirk that changes published numbers is kept and marked. Reading the spreadsheets
takes about a second, so the compiled table is cached as JSON under the user's cache folder, keyed by the
SHA-256 of the seven files: later runs load it in milliseconds.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from affectgpt.errors import InputError
from affectgpt.io.cache import read_entry, write_entry
from affectgpt.io.limits import check_zip_file, not_utf8
from affectgpt.lexicon.wheelmaps import WheelMaps

WHEEL_FILES = ("format.csv", "synonym.xlsx", "wheel1.xlsx", "wheel2.xlsx", "wheel3.xlsx", "wheel4.xlsx",
               "wheel5.xlsx")
N_WHEELS = 5
N_SYNONYM_RUNS = 8

_SHARED_SUMS = {
    "synonym.xlsx": "23f81f9ab1d2418aaf96775304fb5dc52c62bb5d5ef652a97471d045fc9d2e29",
    "wheel1.xlsx": "e70485d354b82a7491ff24648273182a5f4f13f92c76e6b3e4f9033f5e6afcc1",
    "wheel2.xlsx": "acc001e076a8e60440361f58dd8c05ed900c4890c84bb7d8d1df93708a7d9c87",
    "wheel3.xlsx": "d62f30bf88c17c55876634cd088eacaef98278fc25457474364439872f9dbf83",
    "wheel4.xlsx": "660260561b7fe15550f3679a01e7c783608ce3403d4c28db0a88520f68d83aea",
    "wheel5.xlsx": "2dd4595b2cf8e7628ca06a416a8e38ac831614b244f23d1ae613dc34007649f1",
}
PUBLISHED_SUMS: dict[str, dict[str, str]] = {
    "official-2025": {"format.csv": "ba6de7d61db8e129d1d7ef8a2aae22a9e93a2c2e3e683e6f2735d04455f016f2",
                      **_SHARED_SUMS},
    "official-2026": {"format.csv": "82234299875465ecf6c196ace42ffbe745baaeea72b5e39de955af36929982a4",
                      **_SHARED_SUMS},
}
"""Protocol id -> SHA-256 of each of the seven files: the published versions, recognised byte for byte."""
_CACHE_FORMAT = 2


def check_wheel_dir(wheel_dir: str | Path) -> dict[str, Path]:
    """The seven files of a wheel folder, or an InputError naming the first one missing."""
    wheel_dir = Path(wheel_dir)
    if not wheel_dir.is_dir():
        raise InputError("emotion-wheel folder not found", path=wheel_dir,
                         fix="pass --wheel-dir with the folder holding format.csv, synonym.xlsx and "
                             "wheel1..5.xlsx, or run `affectgpt bench fetch-wheels`")
    files = {name: wheel_dir / name for name in WHEEL_FILES}
    for name, path in files.items():
        if not path.is_file():
            raise InputError(f"the emotion-wheel file {name} is missing", path=wheel_dir, field=name,
                             fix="an official wheel folder holds " + ", ".join(WHEEL_FILES)
                                 + "; re-run `affectgpt bench fetch-wheels`")
    return files


def protocol_id(sums: dict[str, str]) -> str:
    """The protocol id of wheel files with these SHA-256 sums: a published version, else official-custom-<sha>."""
    return next((pid for pid, known in PUBLISHED_SUMS.items() if known == sums),
                f"official-custom-{_sums_key(sums)[:12]}")


def _sums_key(sums: dict[str, str]) -> str:
    """One SHA-256 over the files' sums: the compiled cache's key and the custom protocol's id."""
    return hashlib.sha256(json.dumps(sums, sort_keys=True).encode()).hexdigest()


def differing_files(sums: dict[str, str], protocol: str) -> list[str]:
    """The files whose SHA-256 is not the one published for `protocol` (a key of PUBLISHED_SUMS)."""
    return [name for name in WHEEL_FILES if sums.get(name) != PUBLISHED_SUMS[protocol][name]]


def load_official(wheel_dir: str | Path, *, use_cache: bool = True) -> WheelMaps:
    """WheelMaps of the official protocol from a wheel folder (compiled once, then cached)."""
    files = check_wheel_dir(wheel_dir)
    sums = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}
    key = _sums_key(sums)
    protocol = protocol_id(sums)
    wheels = tuple(f"wheel{k}" for k in range(1, N_WHEELS + 1))
    cached = read_entry("wheels", key, _CACHE_FORMAT) if use_cache else None
    if cached is not None:
        return WheelMaps(protocol, wheels, _decode(cached), sums)
    maps = WheelMaps(protocol, wheels, compile_clusters(files), sums)
    if use_cache:
        write_entry("wheels", key, _CACHE_FORMAT, _encode(maps))
    return maps


def compile_clusters(files: dict[str, Path]) -> dict[str, tuple[str | None, ...]]:
    """word -> cluster per wheel, for every word the form map knows."""
    form_map = read_form_map(files["format.csv"])
    synonyms = read_synonym_map(files["synonym.xlsx"])
    wheels = [read_wheel(files[f"wheel{k}.xlsx"]) for k in range(1, N_WHEELS + 1)]
    table: dict[str, tuple[str | None, ...]] = {}
    for word, names in form_map.items():
        # Gather the synonym targets of every name the word is a form of, then choose alphabetically:
        # the published rule (it is why `fear` lands in a happy-like cluster in wheels 2-5).
        candidates = sorted(t for name in names for t in synonyms.get(name, ()))
        table[word] = tuple(_first_known(candidates, wheel) for wheel in wheels)
    return table


def _first_known(candidates: list[str], wheel: dict[str, str]) -> str | None:
    for candidate in candidates:
        if candidate in wheel:
            return wheel[candidate]
    return None


def read_form_map(path: Path) -> dict[str, list[str]]:
    """format.csv: every listed surface form, and the name itself, maps to the name (possibly several)."""
    form_map: dict[str, list[str]] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"name", "format"} <= set(reader.fieldnames):
                raise InputError(f"expected columns name,format (found {reader.fieldnames})", path=path,
                                 field="header", fix="use the official format.csv")
            for row in reader:
                name = row["name"]
                # An empty `format` cell (one row, "no words") lists no forms; the name still maps to itself.
                forms = [f for f in (row["format"] or "").split(",") if f] + [name]
                for form in forms:
                    targets = form_map.setdefault(form, [])
                    if name not in targets:
                        targets.append(name)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except csv.Error as exc:
        raise InputError(f"not a readable CSV ({exc})", path=path, fix="use the official format.csv") from exc
    return form_map


def _xlsx_rows(path: Path) -> tuple[list[str], list[tuple]]:
    import openpyxl

    check_zip_file(path)  # an .xlsx is a zip: declared sizes against AFFECTGPT_MAX_INFLATE_BYTES first
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a broken file
        raise InputError(f"cannot read the spreadsheet ({type(exc).__name__}: {exc})", path=path,
                         fix="re-download the official file") from exc
    try:
        rows = list(book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()
    if not rows:
        raise InputError("the spreadsheet is empty", path=path, fix="re-download the official file")
    header = [str(c).strip() if c is not None else "" for c in rows[0]]
    return header, rows[1:]


def _cell(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    return text or None


def read_synonym_map(path: Path) -> dict[str, list[str]]:
    """synonym.xlsx: per run, the word maps to itself and each synonym maps to the word; runs are unioned."""
    header, rows = _xlsx_rows(path)
    synonyms: dict[str, list[str]] = {}
    for run in range(1, N_SYNONYM_RUNS + 1):
        try:
            w_col, s_col = header.index(f"word_run{run}"), header.index(f"synonym_run{run}")
        except ValueError:
            raise InputError(f"missing columns word_run{run}/synonym_run{run}", path=path,
                             field=f"word_run{run}", fix="use the official synonym.xlsx") from None
        for row in rows:
            word = _cell(row[w_col] if w_col < len(row) else None)
            if word is None:
                continue
            raw = row[s_col] if s_col < len(row) else None
            entries = [word] + [s.strip().lower() for s in str(raw).split(",")] if raw is not None else [word]
            for entry in entries:
                if not entry:
                    continue
                targets = synonyms.setdefault(entry, [])
                if word not in targets:
                    targets.append(word)
    return synonyms


def read_wheel(path: Path) -> dict[str, str]:
    """wheelK.xlsx at level 1: every level1/2/3 word -> its level1 word; blanks repeat the cell above.

    Rows are read in order and a later row overwrites an earlier mapping of the same word (wheel 2 has
    duplicates, and published numbers depend on last-wins).
    """
    header, rows = _xlsx_rows(path)
    try:
        cols = [header.index(f"level{i}") for i in (1, 2, 3)]
    except ValueError:
        raise InputError(f"expected columns level1, level2, level3 (found {header})", path=path,
                         field="header", fix="use the official wheel file") from None
    mapping: dict[str, str] = {}
    last: list[str | None] = [None, None, None]
    for row in rows:
        values = [_cell(row[c] if c < len(row) else None) for c in cols]
        if all(v is None for v in values):
            continue
        last = [v if v is not None else prev for v, prev in zip(values, last, strict=True)]
        level1 = last[0]
        if level1 is None:
            continue
        for word in last:
            if word is not None:
                mapping[word] = level1
    return mapping


def _encode(maps: WheelMaps) -> dict:
    names = sorted({c for row in maps.clusters.values() for c in row if c is not None})
    index = {c: i for i, c in enumerate(names)}
    return {"cluster_names": names,
            "words": {w: [-1 if c is None else index[c] for c in row] for w, row in maps.clusters.items()}}


def _decode(payload: dict) -> dict[str, tuple[str | None, ...]]:
    names = payload["cluster_names"]
    return {w: tuple(None if i < 0 else names[i] for i in row) for w, row in payload["words"].items()}
