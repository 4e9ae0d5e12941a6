"""`predict --backend perception`: a clip folder or a transcript table -> the files `bench score` reads, resumable.

Into the output folder go, per run:
- `perception.jsonl`: one full answer per clip (description, labels, sentiment, clues, flags, timings);
- `perception.fingerprint`: what made the answers (Pipeline.fingerprint); a rerun by another pipeline version,
  weights or label rule is refused instead of mixing old answers with new ones;
- `checkpoint_000000.npz`: the descriptions (`filenames`/`fileitems`, as `affectgpt predict` writes);
- `checkpoint_000000-openset.npz`: the labels ("happy, worried"): what basic and OV sets are scored on;
- `checkpoint_000000-openset-sentiment.npz`: the sentiment word: what sentiment sets are scored on.
So `affectgpt bench score --dataset D --predictions OUT --labels L` scores them directly (epoch 0).

Answers are appended to `perception.partial.jsonl` as they come (flushed and synced per batch), so a killed run
resumes where it stopped; the final files are written atomically and the partial file removed. A clip that cannot
be read is listed in `perception.failures.json` (the others are written; a rerun redoes only the missing ones).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError, failure_reason

EPOCH_STEM = "checkpoint_000000"
RECORDS = "perception.jsonl"
PARTIAL = "perception.partial.jsonl"
FINGERPRINT = "perception.fingerprint"
FAILURES = "perception.failures.json"
TEXT_COLUMNS = ("text", "chinese", "english")


@dataclass
class PerceiveReport:
    """What one run did: the folder, answers made now and kept from before, the clips that failed."""

    output: Path
    answered: int = 0
    resumed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def failures_file(self) -> Path:
        return self.output / FAILURES


def output_files(output: str | Path) -> dict[str, Path]:
    """The files a finished run leaves in `output`, by role."""
    from affectgpt.formats.checkpoints import OPENSET_SUFFIX, SENTIMENT_SUFFIX

    output = Path(output)
    return {"records": output / RECORDS, "text": output / f"{EPOCH_STEM}.npz",
            "labels": output / f"{EPOCH_STEM}{OPENSET_SUFFIX}.npz",
            "sentiment": output / f"{EPOCH_STEM}{SENTIMENT_SUFFIX}.npz"}


def read_transcripts(path: str | Path) -> list[tuple[str, str, str]]:
    """(name, spoken text, English text) rows of a CSV `name,text` or `name,chinese,english` (header required).

    With `text`, the English column is empty unless the file also has `english`; with `chinese,english`, the
    Chinese text is the spoken one. An empty text cell is kept (the answer flags it)."""
    path = Path(path)
    header, lowered, rows = _named_table(path, "--transcripts", "a header: name,text or name,chinese,english")
    if not any(c in lowered for c in TEXT_COLUMNS):
        raise InputError(f"no text column (columns: {', '.join(header)})", path=path, field="text",
                         fix="name the text column 'text', or give 'chinese' and 'english' columns")
    at = {c: lowered.index(c) for c in ("name", *TEXT_COLUMNS) if c in lowered}
    spoken_at = at.get("text", at.get("chinese", at.get("english")))
    english_at = at.get("english")
    out, seen = [], set()
    for line, row in rows:
        name = row[at["name"]].strip()
        if not name:
            raise InputError(f"empty name on line {line}", path=path, field="name", fix="give every row a name")
        if name in seen:
            raise InputError(f"name {name!r} appears twice (line {line})", path=path, field="name",
                             fix="keep one row per name")
        seen.add(name)
        spoken = row[spoken_at].strip()
        english = row[english_at].strip() if english_at is not None and english_at != spoken_at else ""
        out.append((name, spoken, english))
    if not out:
        raise InputError("the transcript file has no rows", path=path, field="--transcripts",
                         fix="give one row per clip under the header")
    return out


def keep_named(rows: list[tuple[str, str, str]], names_file: str | Path) -> list[tuple[str, str, str]]:
    """The rows whose name is in the name column of the CSV `names_file` (any other columns are ignored)."""
    path = Path(names_file)
    _, lowered, grid = _named_table(path, "--names", "a header with a name column")
    at = lowered.index("name")
    wanted = {row[at].strip() for _, row in grid}
    kept = [row for row in rows if row[0] in wanted]
    if not kept:
        raise InputError("none of its names is in the transcript file", path=path, field="--names",
                         fix="pass the names of the transcripts' clips")
    return kept


def _named_table(path: Path, option: str, header: str) -> tuple[list[str], list[str], list[tuple[int, list[str]]]]:
    """A CSV with a header that has a `name` column: (header, lower-cased header, (line, row) pairs)."""
    from affectgpt.io.tables import read_csv_grid

    if not path.exists() or path.is_dir():
        raise InputError("file not found", path=path, field=option, fix="check the path")
    names, rows = read_csv_grid(path, header_fix=f"start the file with {header}")
    lowered = [h.strip().lower() for h in names]
    if "name" not in lowered:
        raise InputError(f"no name column (columns: {', '.join(names)})", path=path, field="name",
                         fix=f"give the file {header}")
    return names, lowered, rows


def perceive_clips(pipeline: Any, clips: str | Path, output: str | Path, *, subtitles: dict[str, str] | None = None,
                   on_item: Callable[[int], None] | None = None) -> PerceiveReport:
    """Run `pipeline` (perception.Pipeline) on every video file of `clips`; write the files of `output`."""
    from affectgpt.media.files import find_videos

    folder = Path(clips)
    if not folder.is_dir():
        raise InputError("clip folder not found", path=folder, field="--clips", fix="pass a folder of video files")
    videos = [(p.stem, p) for p in find_videos([folder])]
    if not videos:
        raise InputError("no video files in the clip folder", path=folder, field="--clips",
                         fix="the perception backend reads video files (mp4, mkv, avi, webm, mov...)")

    def answer(group: list[tuple[str, Path]], report: PerceiveReport) -> list[Any]:
        answers = []
        for name, path in group:
            try:
                answers.append(pipeline.describe(path, (subtitles or {}).get(name)))
            except Exception as exc:  # one unreadable clip must not stop the run
                report.failures.append({"file": str(path), "reason": failure_reason(exc)})
        return answers

    return _run(videos, answer, output, batch_size=1, on_item=on_item, source=folder,
                fingerprint=_fingerprint(pipeline))


def perceive_transcripts(pipeline: Any, rows: Sequence[tuple[str, str, str]], output: str | Path, *,
                         batch_size: int = 256, on_item: Callable[[int], None] | None = None,
                         source: str | Path = "--transcripts") -> PerceiveReport:
    """The text-only mode: (name, text, english) rows -> the files of `output` (pipeline.describe_texts)."""
    return _run(list(rows), lambda group, report: pipeline.describe_texts(group), output, batch_size=batch_size,
                on_item=on_item, source=source, fingerprint=_fingerprint(pipeline))


def _fingerprint(pipeline: Any) -> str:
    fingerprint = getattr(pipeline, "fingerprint", None)
    return fingerprint() if callable(fingerprint) else ""


def _stamp(output: Path, fingerprint: str) -> None:
    if fingerprint and not (output / FINGERPRINT).is_file():
        from affectgpt.io.atomic import write_text

        write_text(output / FINGERPRINT, fingerprint + "\n")


def _check_fingerprint(output: Path, fingerprint: str) -> None:
    """Answers in `output` made by another pipeline (another version, weights or rule) are not resumed."""
    stamp = output / FINGERPRINT
    if not fingerprint or not stamp.is_file():
        return
    found = stamp.read_text(encoding="utf-8").strip()
    if found != fingerprint:
        raise InputError(f"the folder holds answers of another perception pipeline (fingerprint {found}, this one "
                         f"{fingerprint}: another version, weights or label rule)", path=output, field="--output",
                         fix="write to a new --output folder, or delete this one to answer everything again")


def _run(items: list[tuple], answer: Callable[[list[tuple], PerceiveReport], list[Any]], output: str | Path, *,
         batch_size: int, on_item: Callable[[int], None] | None, source: str | Path,
         fingerprint: str = "") -> PerceiveReport:
    output = Path(output)
    files = output_files(output)
    _check_fingerprint(output, fingerprint)
    done = _read_records(files["records"]) if files["records"].is_file() else {}
    done.update(_read_records(output / PARTIAL, tolerant=True))
    wanted = [item[0] for item in items]
    report = PerceiveReport(output, resumed=sum(1 for n in wanted if n in done))
    todo = [item for item in items if item[0] not in done]
    if not todo and files["labels"].is_file() and not report.failures_file.is_file():
        return report  # already complete
    output.mkdir(parents=True, exist_ok=True)
    log = None
    try:
        for group in _batches(todo, batch_size):
            answers = answer(group, report)
            if answers:
                if log is None:  # with the first answer: a run that answers nothing leaves no file
                    _stamp(output, fingerprint)
                log = log or open(output / PARTIAL, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
                for a in answers:
                    record = a.to_dict()
                    log.write(json.dumps(record, ensure_ascii=False) + "\n")
                    done[a.name] = record
                log.flush()
                os.fsync(log.fileno())
                report.answered += len(answers)
            if on_item:
                on_item(len(group))
    finally:
        if log is not None:
            log.close()
    if report.failures and not any(n in done for n in wanted):
        first = report.failures[0]
        raise InputError(f"no clip could be read ({len(report.failures)} failed; first: {first['file']}: "
                         f"{first['reason']})", path=source, fix="pass readable video files")
    _write(files, [done[n] for n in wanted if n in done], report)
    return report


def _write(files: dict[str, Path], records: list[dict[str, Any]], report: PerceiveReport) -> None:
    from affectgpt.io.atomic import write_text
    from affectgpt.io.npy import write_npz

    names = [r["name"] for r in records]
    if report.failures:  # listed before the outputs: outputs without it read as complete
        report.failures.sort(key=lambda f: f["file"])
        write_text(report.failures_file, json.dumps({"failures": report.failures}, indent=2, ensure_ascii=False))
    write_npz(files["text"], {"filenames": names, "fileitems": [r["description"] for r in records]})
    write_npz(files["sentiment"], {"filenames": names, "fileitems": [r["sentiment"] for r in records]})
    write_text(files["records"], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    write_npz(files["labels"], {"filenames": names, "fileitems": [", ".join(r["labels"]) for r in records]})
    if not report.failures:
        report.failures_file.unlink(missing_ok=True)
    (files["records"].parent / PARTIAL).unlink(missing_ok=True)


def _read_records(path: Path, *, tolerant: bool = False) -> dict[str, dict[str, Any]]:
    """name -> answer record of a JSONL file; with `tolerant`, a line cut by a kill ends the read (it is redone)."""
    done: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return done
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
            done[record["name"]] = record
        except (ValueError, KeyError, TypeError) as exc:
            if tolerant:
                break
            raise InputError(f"line {number} is not an answer record", path=path,
                             fix="remove the output folder's perception files and run again") from exc
    return done


def _batches(items: list[tuple], size: int) -> Iterator[list[tuple]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]
