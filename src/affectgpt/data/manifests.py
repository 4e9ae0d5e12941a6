"""Read training samples: a manifest (CSV/JSONL), the released MER-Caption+ layout, or a MER-UniBench training split.

Every reader returns `list[Sample]` (data/sample.py) in a stable order and checks names are unique and plain file
names (io/names.py: a name becomes `<name>.safetensors` in the caches, so `../x` or `/abs/x` are refused with the
file and line that hold them); none of them opens a media file. `check_media(samples)` then says which samples
have usable media and why the others do not: a sample with missing or broken media is reported, never silently
replaced by another one.

**Manifest** (`read_manifest`): CSV with a header, or JSONL (one object per line). Columns/keys:
`name` (required); media `video`, `audio`, `faces` (a face-track `.npy`, [T, H, W, 3] uint8), at least one of
`video` or `faces` as a column; `subtitle` (optional, "" when absent); targets `description` and/or `labels`
(at least one of the two columns). `labels` is a JSON list, or a string "a, b" / "['a', 'b']"; an empty list
or "[]" means neutral, an empty cell means "no labels target for this sample". Relative media paths are
resolved against the manifest's folder. Header names match case-insensitively.

**MER-Caption+** (`read_mercaptionplus`), the released MER2025 layout under one root folder:

    track2_train_*.csv   name, openset   (OV labels, a list-like string)
    track3_train_*.csv   name, reason    (the description)
    subtitle_chieng.csv  name, chinese, english
    video/<name>.mp4 (any video suffix)   audio/<name>.wav (any audio suffix)
    openface_face/<name>.npy or openface_face/<name>/<name>.npy

The CSVs are found by these patterns anywhere up to two levels below the root (exactly one file per pattern,
or an error listing them). Any of them may be absent, but at least one target file must exist. Samples are the
union of the names of the target files, in sorted order, merged by name: a name only in track2 has only labels,
only in track3 only a description. A name without a subtitle row gets "". Media paths are set where the file
exists; a name with no video and no faces gets the expected `video/<name>.mp4` path so that `check_media`
reports it.

**MER-UniBench training splits** (`read_bench_train`): the `train_corpus` key of the original label file of
mer2023/mer2024/meld, and IEMOCAP's `whole_corpus` without Session 5 (its test session). The basic-emotion
label becomes `labels=(label,)`, so the OV question's answer is "The character's emotional state is sad.";
there is no description. Sentiment sets (CMU-MOSI/MOSEI, CH-SIMS, v2) give a score, not an emotion word, and
OV-MERD+ has no training split: both are refused with an InputError.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from affectgpt.data.sample import Sample
from affectgpt.errors import InputError
from affectgpt.io.names import check_name
from affectgpt.io.tables import read_csv_grid
from affectgpt.media.cache import cache_file
from affectgpt.media.files import AUDIO_SUFFIXES, VIDEO_SUFFIXES
from affectgpt.media.files import find_by_name as _find_file

MEDIA_COLUMNS = ("video", "audio", "faces")
TARGET_COLUMNS = ("description", "labels")

Problem = tuple[str, str]
"""(sample name, reason) for a sample whose media cannot be used."""


# -- manifests ---------------------------------------------------------------------------------------------------
def read_manifest(path: str | Path) -> list[Sample]:
    """Samples of a CSV or JSONL manifest (see the module docstring for the columns).

    Raises:
        InputError: missing/unreadable/empty file, no name column, no media or target column, an empty or
            duplicate name, a sample with no target at all, a bad labels value.
    """
    path = Path(path)
    if not path.exists() or path.is_dir():  # a file, or a pipe read once
        raise InputError("manifest not found" if not path.exists() else "is a folder, not a manifest file",
                         path=path, fix="check the path")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        columns, rows = _read_csv_rows(path)
    elif suffix in (".jsonl", ".json"):
        columns, rows = _read_jsonl_rows(path)
    else:
        raise InputError(f"unknown manifest type {suffix!r}", path=path, fix="use a .csv or .jsonl manifest")
    if not rows:
        raise InputError("the manifest holds no samples", path=path, fix="add one row per training clip")
    _require_columns(path, columns)
    base = path.parent
    samples = []
    for line, row in rows:
        name = _text(row.get("name"))
        where = f"line {line}"
        if not name:
            raise InputError("empty name", path=path, field=where, fix="give every row a name")
        check_name(name, path=path, field=f"{where} name")
        labels = parse_labels(row.get("labels"), path=path, field=f"{where} ({name}).labels")
        description = _text(row.get("description")) or None
        if description is None and labels is None:
            raise InputError(f"sample {name!r} has neither a description nor labels", path=path, field=where,
                             fix="fill the description or labels column, or drop the row")
        samples.append(Sample(name=name, video=_media(base, row.get("video")), audio=_media(base, row.get("audio")),
                              faces=_media(base, row.get("faces")), subtitle=_text(row.get("subtitle")),
                              description=description, labels=labels))
    check_unique(samples, source=path)
    return samples


def _read_csv_rows(path: Path) -> tuple[set[str], list[tuple[int, dict[str, Any]]]]:
    header, rows = read_csv_grid(path, header_fix="start it with a header such as "
                                                  "name,video,subtitle,description,labels")
    keys = [cell.lower() for cell in header]
    return set(keys), [(line, dict(zip(keys, cells, strict=True))) for line, cells in rows]


def _read_jsonl_rows(path: Path) -> tuple[set[str], list[tuple[int, dict[str, Any]]]]:
    columns: set[str] = set()
    rows = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", path=path, fix="save the file as UTF-8") from exc
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not a JSON object ({exc.msg})", path=path, field=f"line {line}",
                             fix="write one JSON object per line") from exc
        if not isinstance(item, dict):
            raise InputError(f"a JSON {type(item).__name__}, not an object", path=path, field=f"line {line}",
                             fix="write one JSON object per line")
        item = {str(k).lower(): v for k, v in item.items()}
        columns |= set(item)
        rows.append((line, item))
    return columns, rows


def _require_columns(path: Path, columns: set[str]) -> None:
    shown = ", ".join(sorted(columns)) or "none"
    if "name" not in columns:
        raise InputError(f"no name column (columns: {shown})", path=path, field="name",
                         fix="add a name column with one unique clip name per row")
    if not {"video", "faces"} & columns:
        raise InputError(f"no video or faces column (columns: {shown})", path=path, field="video",
                         fix="add a video column (paths to the clips), or faces (face-track .npy files)")
    if not set(TARGET_COLUMNS) & columns:
        raise InputError(f"no description or labels column (columns: {shown})", path=path, field="description",
                         fix="add a description column, a labels column, or both")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    return str(value).strip()


def _media(base: Path, value: Any) -> Path | None:
    text = _text(value)
    if not text:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def parse_labels(value: Any, *, path: str | Path | None = None, field: str | None = None) -> tuple[str, ...] | None:
    """A labels cell -> a tuple of labels, () for an explicit empty list ("[]", []), None for no value.

    Accepts a list, "a, b", "[a, b]" and the released list-like "['a', 'b']" (read as a Python literal). A missing
    value written out as "nan" or "None" (pandas) is no value, never the label "nan" (formats/labels.py).
    """
    from affectgpt.formats.labels import is_missing_label

    if is_missing_label(value):
        return None
    if isinstance(value, (list, tuple)):
        items = [_text(v) for v in value]
    else:
        text = _text(value)
        if not text:
            return None
        items = None
        if text.startswith("["):
            try:
                literal = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                literal = None
            if isinstance(literal, (list, tuple)):
                items = [_text(v) for v in literal]
            else:
                text = text[1:-1] if text.endswith("]") else text[1:]
        if items is None:
            items = [piece.strip().strip("'\"").strip() for piece in text.split(",")]
    if any(not isinstance(v, str) for v in items):
        raise InputError("labels must be text", path=path, field=field, fix='write labels as ["a", "b"] or "a, b"')
    return tuple(v for v in items if v)


def check_unique(samples: Sequence[Sample], *, source: str | Path | None = None) -> None:
    """InputError naming the first duplicated sample names."""
    seen: set[str] = set()
    duplicates: list[str] = []
    for sample in samples:
        if sample.name in seen and sample.name not in duplicates:
            duplicates.append(sample.name)
        seen.add(sample.name)
    if duplicates:
        shown = ", ".join(duplicates[:5]) + (", ..." if len(duplicates) > 5 else "")
        raise InputError(f"{len(duplicates)} duplicate sample names ({shown})", path=source, field="name",
                         fix="give every clip a unique name (merge or drop the repeated rows)")


# -- MER-Caption+ --------------------------------------------------------------------------------------------------
def read_mercaptionplus(root: str | Path, *, language: str = "english",
                        tasks: Iterable[str] = ("description", "labels")) -> list[Sample]:
    """Samples of the released MER2025 MER-Caption+ layout under `root` (see the module docstring).

    Args:
        root: the folder holding the CSVs and the video/, audio/, openface_face/ folders.
        language: the subtitle column ("english" or "chinese").
        tasks: which targets to read: "description" (track3 `reason`), "labels" (track2 `openset`).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError("MER-Caption+ folder not found", path=root, fix="pass the folder of the released data")
    tasks = tuple(tasks)
    unknown = set(tasks) - set(TARGET_COLUMNS)
    if unknown or not tasks:
        raise InputError(f"tasks {sorted(unknown) or '[]'} not allowed", field="tasks",
                         fix="use description, labels or both")
    descriptions: dict[str, str] = {}
    labels: dict[str, tuple[str, ...]] = {}
    found_any = False
    if "description" in tasks and (file := _find_one(root, "track3_train_*.csv")):
        found_any = True
        descriptions = {n: v for n, v in _csv_column(file, "reason").items() if v}
    if "labels" in tasks and (file := _find_one(root, "track2_train_*.csv")):
        found_any = True
        for name, value in _csv_column(file, "openset").items():
            parsed = parse_labels(value, path=file, field=f"{name}.openset")
            if parsed is not None:
                labels[name] = parsed
    if not found_any:
        wanted = " or ".join(p for t, p in (("description", "track3_train_*.csv"), ("labels", "track2_train_*.csv"))
                             if t in tasks)
        raise InputError(f"no target file ({wanted}) under the folder", path=root,
                         fix="pass the folder of the released MER-Caption+ files")
    subtitles: dict[str, str] = {}
    if subtitle_file := _find_one(root, "subtitle_chieng.csv"):
        from affectgpt.media.subtitles import read_subtitle_table

        subtitles = read_subtitle_table(subtitle_file, column=language)
    samples = []
    for name in sorted(set(descriptions) | set(labels)):
        video = _find_file(root / "video", name, VIDEO_SUFFIXES)
        faces = _find_faces(root / "openface_face", name)
        if video is None and faces is None:
            video = root / "video" / f"{name}.mp4"  # missing: check_media reports it
        samples.append(Sample(name=name, video=video, audio=_find_file(root / "audio", name, AUDIO_SUFFIXES),
                              faces=faces, subtitle=subtitles.get(name, ""), description=descriptions.get(name),
                              labels=labels.get(name)))
    if not samples:
        raise InputError("the target files hold no samples", path=root, fix="check the released CSV files")
    return samples


def _find_one(root: Path, pattern: str) -> Path | None:
    found = sorted({*root.glob(pattern), *root.glob(f"*/{pattern}"), *root.glob(f"*/*/{pattern}")})
    if len(found) > 1:
        raise InputError(f"{len(found)} files match {pattern} ({', '.join(map(str, found[:4]))})", path=root,
                         fix="keep one file per pattern in the folder")
    return found[0] if found else None


def _csv_column(path: Path, column: str) -> dict[str, str]:
    """name -> the `column` cell of a released CSV (strict quoting and cell counts: io/tables.read_csv_grid)."""
    header, rows = read_csv_grid(path, header_fix=f"use the released file (columns name,{column})")
    header = [cell.lower() for cell in header]
    for wanted in ("name", column):
        if wanted not in header:
            raise InputError(f"no {wanted} column (columns: {', '.join(header)})", path=path, field=wanted,
                             fix=f"use a CSV with columns name,{column}")
    at_name, at_value = header.index("name"), header.index(column)
    out: dict[str, str] = {}
    for line, row in rows:
        name = check_name(row[at_name].strip(), path=path, field=f"line {line} name")
        if name in out:
            raise InputError(f"duplicate name {name!r}", path=path, field=f"line {line}",
                             fix="give every clip one row")
        out[name] = row[at_value].strip()
    return out


def _find_faces(folder: Path, name: str) -> Path | None:
    check_name(name, field="sample name")  # the last defence: the readers above have checked it already
    for candidate in (folder / f"{name}.npy", folder / name / f"{name}.npy"):
        if candidate.is_file():
            return candidate
    return None


# -- MER-UniBench training splits ------------------------------------------------------------------------------
TRAIN_SPLITS = {"mer2023": "train_corpus", "mer2024": "train_corpus", "meld": "train_corpus",
                "iemocapfour": "whole_corpus"}
"""The training split key of each basic-emotion set's label file (IEMOCAP: Sessions 1-4 of whole_corpus)."""


def read_bench_train(dataset: str, labels: str | Path, media_root: str | Path, *, split: str | None = None,
                     subtitles: str | Path | None = None, language: str = "english") -> list[Sample]:
    """The training split of a MER-UniBench basic-emotion set, one Sample per clip with `labels=(emotion,)`.

    Args:
        dataset: mer2023, mer2024, meld or iemocapfour.
        labels: the original label .npz, or its folder.
        media_root: where the clips are: `<root>/<name>.<ext>` or `<root>/video/<name>.<ext>`; a separate audio
            file is looked for in `<root>/audio/`, a face track in `<root>/openface_face/`.
        split: another key of the label file (e.g. "val_corpus"); default TRAIN_SPLITS[dataset].
        subtitles: a subtitle CSV (name, chinese, english) to take each clip's text from.
        language: its column.

    Raises:
        InputError: an unknown dataset, a sentiment set or OV-MERD+ (no emotion-word target), a label file
            without the split.
    """
    from affectgpt.formats.labels import find_label_file, label_source, read_label_npz

    source = label_source(dataset)
    if source.holds_scores:
        raise InputError(f"{dataset} gives a sentiment score, not an emotion word, so there is no OV-label or "
                         "description target to train on", field="dataset",
                         fix="train on mer2023, mer2024, meld, iemocapfour or MER-Caption+")
    if dataset not in TRAIN_SPLITS:
        raise InputError(f"{dataset} has no training split in its label files", field="dataset",
                         fix="train on mer2023, mer2024, meld, iemocapfour or MER-Caption+")
    label_file = find_label_file(labels, source, dataset)
    if label_file.suffix.lower() != ".npz":
        raise InputError("training splits are read from the original label .npz", path=label_file,
                         fix=f"pass the original {', '.join(source.npz_names)}")
    key = split or TRAIN_SPLITS[dataset]
    table = read_label_npz(label_file, replace(source, split=key, session=None), dataset)
    if source.session is not None and split is None:  # IEMOCAP: drop the test session
        table = {n: v for n, v in table.items() if not (len(n) > 4 and n[4] == source.session)}
    subtitle_table: dict[str, str] = {}
    if subtitles is not None:
        from affectgpt.media.subtitles import read_subtitle_table

        subtitle_table = read_subtitle_table(subtitles, column=language)
    root = Path(media_root)
    samples = []
    for name, value in table.items():
        check_name(name, path=label_file, field=f"{key} name")
        label = _text(value)
        if not label:
            raise InputError(f"label of {name!r} is empty", path=label_file, field=f"{key}.{name}",
                             fix="use the original label file")
        video = _find_file(root, name, VIDEO_SUFFIXES) or _find_file(root / "video", name, VIDEO_SUFFIXES)
        faces = _find_faces(root / "openface_face", name)
        if video is None and faces is None:
            video = root / f"{name}.mp4"  # missing: check_media reports it
        samples.append(Sample(name=name, video=video, audio=_find_file(root / "audio", name, AUDIO_SUFFIXES),
                              faces=faces, subtitle=subtitle_table.get(name, ""), labels=(label,)))
    if not samples:
        raise InputError(f"split {key!r} holds no samples", path=label_file, field=key,
                         fix="use the original label file")
    return samples


# -- media existence ----------------------------------------------------------------------------------------------
def check_media(samples: Sequence[Sample], *, media_cache: str | Path | None = None,
                visual_input: str = "face", deep: bool = False) -> tuple[list[Sample], list[Problem]]:
    """Split samples into those whose media can be read and (name, reason) for the others.

    A sample is usable when a preprocess cache file `<media_cache>/<name>.safetensors` exists, or its video file
    does (the audio then comes from the given audio file or the video's own stream), or, for face input, its
    faces .npy and audio file both do. A media path that is given but missing or empty is a problem even when
    another source could stand in (the manifest is wrong). `deep=True` also opens each video/audio file with
    PyAV and reads each .npy header (slower; catches corrupt files). Nothing is ever replaced by another sample.
    """
    usable: list[Sample] = []
    problems: list[Problem] = []
    cache = Path(media_cache) if media_cache is not None else None
    for sample in samples:
        if cache is not None and cache_file(cache, sample.name).is_file():
            usable.append(sample)
            continue
        reason = _media_problem(sample, visual_input, deep)
        if reason:
            problems.append((sample.name, reason))
        else:
            usable.append(sample)
    return usable, problems


def _media_problem(sample: Sample, visual_input: str, deep: bool) -> str | None:
    for role in MEDIA_COLUMNS:
        path = getattr(sample, role)
        if path is None:
            continue
        if not Path(path).is_file():
            return f"{role} file not found: {path}"
        if Path(path).stat().st_size == 0:
            return f"{role} file is empty: {path}"
    has_faces = sample.faces is not None and visual_input == "face"
    if sample.video is None and not (has_faces and sample.audio is not None):
        return "no video, and not both a faces .npy and an audio file"
    if deep:
        return _deep_problem(sample)
    return None


def _deep_problem(sample: Sample) -> str | None:
    try:
        if sample.video is not None:
            from affectgpt.media import decode

            with decode.open_media(sample.video, sample.audio):
                pass
        if sample.faces is not None:
            _npy_shape(Path(sample.faces))
    except InputError as exc:
        return exc.message()
    except Exception as exc:  # a decoder crash on one odd file is a reason, not a stop
        return f"{type(exc).__name__}: {exc}"
    return None


def _npy_shape(path: Path) -> tuple[int, ...]:
    import numpy as np

    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise InputError(f"not a readable .npy face track ({exc})", path=path, fix="extract the faces again") from exc
    if array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] < 1:
        raise InputError(f"face track has shape {list(array.shape)}", path=path, fix="store [T, H, W, 3] uint8")
    return tuple(array.shape)
