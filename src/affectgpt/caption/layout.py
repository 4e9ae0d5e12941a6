"""write_released(): a caption run's kept records -> the released MER-Caption+ layout that `affectgpt train` reads.

The files, under the run's output folder OUT (data/manifests.read_mercaptionplus reads exactly these):

    track3_train_mercaptionplus.csv   name, reason    (the description: fields["description"])
    track2_train_mercaptionplus.csv   name, openset   (OV labels as the released list-like string "['a', 'b']")
    subtitle_chieng.csv               name, chinese, english   (fields["subtitle"])
    video/<name><ext>, audio/<name>.wav, openface_face/<name>/<name>.npy   (written by the probe stage)

Only kept records are listed (`dropped` is None). The media files are the probe stage's own output, stored
relative to OUT in the record's fields; they are checked here (each must exist where the reader looks for it),
never copied. Files of dropped clips are kept on disk and simply not listed: they are what the probe stage made,
and a rerun with other filter settings may keep the clip again without re-probing it (its probe key is
unchanged); the reader only reads names listed in the CSVs, so unlisted files are inert. A kept record that never
got a description (an unfinished run) is left out of every file and counted as `incomplete`.

Each CSV is written atomically (io/atomic.py) with the csv module; every check runs before the first write, so
a bad record leaves no partial layout.

Record shape read here (the engine's records.jsonl): {"name": str, "fields": {...}, "dropped": None | str |
{"stage": str, "reason": str}, ...}; `record_fields` and `drop_of` are the accessors the report shares.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.io.atomic import atomic_write

TRACK3 = "track3_train_mercaptionplus.csv"
TRACK2 = "track2_train_mercaptionplus.csv"
SUBTITLES = "subtitle_chieng.csv"
MEDIA = (("video_file", "video"), ("audio_file", "audio"), ("face_file", "openface_face"))
"""(field, folder under OUT) of every media file the probe stage writes."""


def record_fields(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fields the stages produced for one record ({} when none)."""
    return record.get("fields") or {}


def drop_of(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(stage, reason) of a dropped record, None for a kept one. A reason given as a plain string names no stage
    unless the record says it (`dropped_stage`); the stage is then "unknown"."""
    dropped = record.get("dropped")
    if dropped is None or dropped is False:
        return None
    if isinstance(dropped, Mapping):
        return str(dropped.get("stage") or "unknown"), str(dropped.get("reason") or "")
    return str(record.get("dropped_stage") or "unknown"), str(dropped)


def openset_string(words: Sequence[str]) -> str:
    """The released list-like string of OV labels: "['happy', 'relaxed']" ("[]" for none)."""
    return repr([str(w) for w in words])


def write_released(records: Sequence[Mapping[str, Any]], output: str | Path) -> dict[str, Any]:
    """Write the released layout's CSVs under `output` from the kept records (see the module docstring).

    Returns:
        counts: {"records", "kept", "dropped", "incomplete", "track3", "track2", "subtitles", "video", "audio",
        "faces"} and "files" (the CSV names written).

    Raises:
        InputError: a duplicate name; a kept record whose media file is missing or not where the released
            layout puts it (the message names the record and the file). Nothing is written then.
    """
    output = Path(output)
    kept, incomplete, seen = [], [], set()
    dropped = 0
    for record in records:
        name = str(record.get("name") or "")
        if not name:
            raise InputError("a record without a name", path=output / "records.jsonl", field="name",
                             fix="rerun `affectgpt caption run` (the records are rebuilt from the clips)")
        if name in seen:
            raise InputError(f"record {name!r} appears twice", path=output / "records.jsonl", field="name",
                             fix="give every clip a unique file name")
        seen.add(name)
        if drop_of(record) is not None:
            dropped += 1
            continue
        fields = record_fields(record)
        if not str(fields.get("description") or "").strip():
            incomplete.append(name)
            continue
        _check_media(name, fields, output)
        kept.append((name, fields))
    kept.sort(key=lambda item: item[0])
    track3 = [(name, str(f["description"]).strip()) for name, f in kept]
    track2 = [(name, openset_string(f["openset"])) for name, f in kept if f.get("openset") is not None]
    subtitles = [(name, *_subtitle(f)) for name, f in kept]
    _write_csv(output / TRACK3, ("name", "reason"), track3)
    _write_csv(output / TRACK2, ("name", "openset"), track2)
    _write_csv(output / SUBTITLES, ("name", "chinese", "english"), subtitles)
    return {"records": len(seen), "kept": len(kept), "dropped": dropped, "incomplete": len(incomplete),
            "incomplete_names": incomplete[:20], "track3": len(track3), "track2": len(track2),
            "subtitles": len(subtitles), "video": sum(1 for _, f in kept if f.get("video_file")),
            "audio": sum(1 for _, f in kept if f.get("audio_file")),
            "faces": sum(1 for _, f in kept if f.get("face_file")), "files": [TRACK3, TRACK2, SUBTITLES]}


def _check_media(name: str, fields: Mapping[str, Any], output: Path) -> None:
    """Each media file a kept record names exists under OUT where the reader looks for it; a video is required."""
    if not fields.get("video_file") and not fields.get("face_file"):
        raise InputError(f"kept clip {name!r} has no video_file or face_file", path=output / "records.jsonl",
                         field=f"{name}.video_file", fix="rerun `affectgpt caption run` so the probe stage runs")
    for key, folder in MEDIA:
        value = fields.get(key)
        if not value:
            continue
        relative = Path(str(value))
        where = output / relative
        expected = (relative.parent == Path(folder) and relative.stem == name) if key != "face_file" else \
            relative == Path(folder) / name / f"{name}.npy"
        if relative.is_absolute() or not expected:
            raise InputError(f"{key} {str(value)!r} of clip {name!r} is not where the released layout puts it "
                             f"({folder}/{name}{'/' + name + '.npy' if key == 'face_file' else '.<ext>'})",
                             path=output / "records.jsonl", field=f"{name}.{key}",
                             fix="store media paths relative to OUT in the layout's folders")
        if not where.is_file():
            raise InputError(f"{key} of kept clip {name!r} is missing", path=where, field=f"{name}.{key}",
                             fix="rerun `affectgpt caption run` after removing the clip's probe key, or restore "
                                 "the file")


def _subtitle(fields: Mapping[str, Any]) -> tuple[str, str]:
    subtitle = fields.get("subtitle") or {}
    if isinstance(subtitle, str):
        return "", subtitle.strip()
    return str(subtitle.get("chinese") or "").strip(), str(subtitle.get("english") or "").strip()


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    with atomic_write(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
