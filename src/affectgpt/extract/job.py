"""Resumable extraction over files and folders: generated text -> `-openset` -> `-openset-sentiment` files.

A folder in the original naming is processed file by file: `checkpoint_<E>[_loss_<x>].npz` (generated text,
key `name2reason`, or `predict`'s output) gives `checkpoint_<E>[_loss_<x>]-openset.npz`, and that gives
`...-openset-sentiment.npz`,
the files the scorer (`bench score`) reads. Each output is written atomically once all its items are answered,
with a provenance sidecar (`<output>.extract.json`: backend, model, prompt, sampling, counts, malformed
answers). An output that already holds every input name is skipped (unless forced); items answered before a
crash come from the LLM cache, so a rerun resends nothing that finished. Items that still fail are
reported and their file is not written.

One rule for every backend: an item without a usable answer is either "malformed" (an LLM answer that is not a
bracketed list, kept verbatim as published) or "unreadable" (a text the lexicon extractor cannot read: another
script or language). They are counted per file, and a file where more than MAX_UNUSABLE_SHARE (half) of the
items are malformed or unreadable is a failure: it is not written, so junk never becomes a file of labels.
Below that share the file is written, and `FileReport.warning` says how many texts could not be read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from affectgpt.errors import InputError
from affectgpt.extract.base import Extractor, LabelResult, SentimentResult
from affectgpt.formats.checkpoints import (
    CHECKPOINT_FILE,
    EXTRACTION_STEPS,
    FILE_EXTENSIONS,
    checkpoint_files,
    checkpoint_name,
)
from affectgpt.io.atomic import write_text
from affectgpt.io.names import check_name
from affectgpt.io.tables import NameTable, read_table

Step = Literal["labels", "sentiment"]
FORMATS = FILE_EXTENSIONS
INPUT_KEYS = {"labels": ("text", "description", "reason", "name2reason"),
              "sentiment": ("openset", "labels", "label")}
OUTPUT_COLUMN = {"labels": "openset", "sentiment": "sentiment"}
# The sentiment step reads emotion words: a file without one of its INPUT_KEYS (a name,text file, generated text)
# is refused, never guessed from another column. The labels step takes a file's only value column.
MISSING_INPUT_FIX = {"labels": None,
                     "sentiment": "run `affectgpt extract labels` first, or give an openset column"}
MAX_LISTED = 50
MAX_UNUSABLE_SHARE = 0.5
"""A file with more than this share of malformed or unreadable items is a failure and is not written."""


@dataclass(frozen=True)
class FileTask:
    """One input file and the output file it becomes."""

    source: Path
    target: Path


@dataclass
class FileReport:
    """What happened to one file.

    Attributes:
        items, ok, malformed, unreadable, failed: counts of items (see extract.base.Status).
        unreadable_reasons: reason ("not in Latin script", "no English word") -> count.
        skipped: the output already held every name.
        written: the output (and its sidecar) were written.
        warning: one line when some texts could not be read ("" otherwise).
        refused: why the file was not written although no item failed ("" otherwise): more than
            MAX_UNUSABLE_SHARE of its items malformed or unreadable.
        problems: the first MAX_LISTED items that are not ok (name, status, answer, detail).
    """

    source: str
    target: str
    items: int = 0
    ok: int = 0
    malformed: int = 0
    unreadable: int = 0
    failed: int = 0
    skipped: bool = False
    written: bool = False
    unreadable_reasons: dict[str, int] = field(default_factory=dict)
    warning: str = ""
    refused: str = ""
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def incomplete(self) -> bool:
        """Not written because of failed items or too many unusable ones."""
        return bool(self.failed or self.refused)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def plan(step: Step, source: str | Path, target: str | Path, fmt: str = "npz") -> list[FileTask]:
    """The files to process: one task for a file, one per matching per-epoch file for a folder.

    The one rule for `target`: a single input file gives a single output file, so `target` names a file (an
    existing folder is refused); an input folder gives one output per file, so `target` names a folder (an
    existing file is refused; it may be the input folder).

    Raises:
        InputError: a missing input, a file input with an existing folder as output, a folder input with an
            existing file as output, an output in a place that cannot be written, no input files in a folder.
    """
    from affectgpt.io.outputs import output_file, output_folder

    source, target = Path(source), Path(target)
    if fmt not in FORMATS:
        raise InputError(f"unknown output format {fmt!r}", field="--format", fix=f"use one of {FORMATS}")
    if source.exists() and not source.is_dir():  # a file, or a pipe read once (`--input <(...)`)
        if target.is_dir():
            raise InputError("is a folder, but the input is a single file, so the output is a single file",
                             path=target, field="--output",
                             fix=f"name the output file, such as {target / _target_name(step, source, fmt)}")
        return [FileTask(source, output_file(target))]
    if not source.is_dir():
        raise InputError("input not found", path=source, field="--input", fix="pass a file or a folder")
    if target.exists() and not target.is_dir():
        raise InputError("the output must be a folder when the input is one", path=target, field="--output",
                         fix="pass a folder (it may be the input folder itself)")
    output_folder(target, create=False)
    reads = EXTRACTION_STEPS[step][0]
    tasks = [FileTask(p, target / _target_name(step, p, fmt)) for p, _match in checkpoint_files(source, reads)]
    if not tasks:
        wanted = checkpoint_name("<E>", "<x>", reads, "npz") + " (or .csv/.jsonl)"
        raise InputError(f"no input files named {wanted}", path=source, field="--input",
                         fix="name per-epoch files like the original release, or pass one file")
    return tasks


def _target_name(step: Step, source: Path, fmt: str) -> str:
    reads, writes = EXTRACTION_STEPS[step]
    match = CHECKPOINT_FILE.match(source.name)
    if match and match["kind"] == reads:
        return check_name(checkpoint_name(match["epoch"], match["loss"], writes, fmt), path=source)
    return check_name(f"{source.stem}{writes}.{fmt}", path=source)


def run_file(step: Step, task: FileTask, extractor: Extractor, *, force: bool = False,
             column: str | None = None, on_start: Callable[[int], None] | None = None,
             on_item: Callable[[int], None] | None = None) -> FileReport:
    """Extract one file; write its output and sidecar unless some item failed or more than
    MAX_UNUSABLE_SHARE of the items are malformed or unreadable (the module docstring's rule).

    Args:
        column: the input column to read (CSV/JSONL), e.g. `english` of a name,chinese,english table;
            default: the step's usual columns (read_input).
        on_start: called once with the number of items about to be extracted (not for a skipped file).
        on_item: called with 1 as each item is answered (for a progress bar).
    """
    table = read_input(step, task.source, column)
    report = FileReport(str(task.source), str(task.target), items=len(table.names))
    if not force and _complete(task.target, table):
        report.skipped = True
        return report
    values = [str(v) for v in table.values]
    if on_start is not None:
        on_start(len(values))
    call = extractor.labels if step == "labels" else extractor.sentiment
    results = call(values, on_result=None if on_item is None else lambda _i, _r: on_item(1))
    _tally(report, table.names, results)
    _judge(report, step)
    if not report.incomplete:
        report.written = True
        _write_output(task.target, OUTPUT_COLUMN[step], table.names, [r.answer for r in results])
        _write_sidecar(task.target, step, extractor, report)
    return report


def read_input(step: Step, source: Path, column: str | None = None) -> NameTable:
    """The name -> input table of one file for `step` (InputError for a file the step cannot use).

    `column`, when given, is the one column read (a file without it is refused, naming its columns).
    """
    if column:
        return read_table(source, (column,), missing_fix="name one of the file's columns (--text-column)")
    try:
        return read_table(source, INPUT_KEYS[step], missing_fix=MISSING_INPUT_FIX[step])
    except InputError as exc:
        if step != "labels" or not exc.what.startswith("cannot tell the value column"):
            raise
        raise InputError(exc.what, path=exc.path, field=exc.field,
                         fix="choose the column with --text-column NAME (e.g. --text-column english for a "
                             "name,chinese,english table)") from None


def run_job(step: Step, source: str | Path, target: str | Path, extractor: Extractor, *, fmt: str = "npz",
            force: bool = False, column: str | None = None, on_start: Callable[[int], None] | None = None,
            on_item: Callable[[int], None] | None = None) -> list[FileReport]:
    """Every file of `plan(step, source, target, fmt)`, one after the other (options as in run_file)."""
    return [run_file(step, task, extractor, force=force, column=column, on_start=on_start, on_item=on_item)
            for task in plan(step, source, target, fmt)]


def _complete(target: Path, table: NameTable) -> bool:
    if not target.is_file():
        return False
    try:
        done = set(read_table(target).names)
    except InputError:
        return False
    return done.issuperset(table.names)


def _tally(report: FileReport, names: Sequence[str], results: Sequence[LabelResult | SentimentResult]) -> None:
    for name, result in zip(names, results, strict=True):
        if result.status == "ok":
            report.ok += 1
            continue
        if result.status == "malformed":
            report.malformed += 1
        elif result.status == "unreadable":
            report.unreadable += 1
            reason = result.detail.split(":", 1)[0] or "unreadable"
            report.unreadable_reasons[reason] = report.unreadable_reasons.get(reason, 0) + 1
        else:
            report.failed += 1
        if len(report.problems) < MAX_LISTED:
            report.problems.append({"name": name, "status": result.status, "answer": result.answer,
                                    "detail": result.detail})


def _judge(report: FileReport, step: Step) -> None:
    """The warning and the refusal of the module docstring's rule, from the counts."""
    if report.unreadable:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(report.unreadable_reasons.items()))
        if step == "labels":
            report.warning = (f"{report.unreadable} of {report.items} texts cannot be read by the extractor "
                              f"({reasons}): they give no emotion words. For a bilingual file choose the English "
                              "column with --text-column; for text in another language use an LLM backend")
        else:
            report.warning = (f"{report.unreadable} of {report.items} answers hold emotion words the extractor "
                              f"cannot read ({reasons}): their sentiment is not known. Extract English emotion "
                              "words first")
    unusable = report.malformed + report.unreadable
    if not report.failed and report.items and unusable > MAX_UNUSABLE_SHARE * report.items:
        report.refused = (f"{unusable} of {report.items} items are malformed or unreadable (more than "
                          f"{MAX_UNUSABLE_SHARE:.0%}): such a file would hold no usable labels")


def _write_output(target: Path, column: str, names: Sequence[str], answers: Sequence[str]) -> None:
    suffix = target.suffix.lower()
    if suffix == ".npz":
        from affectgpt.io.npy import write_npz

        write_npz(target, {"filenames": list(names), "fileitems": list(answers)})
    elif suffix == ".jsonl":
        write_text(target, "".join(json.dumps({"name": n, column: a}, ensure_ascii=False) + "\n"
                                   for n, a in zip(names, answers, strict=True)))
    else:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["name", column])
        writer.writerows(zip(names, answers, strict=True))
        write_text(target, buffer.getvalue())


def _write_sidecar(target: Path, step: Step, extractor: Extractor, report: FileReport) -> None:
    describe = getattr(extractor, "describe", None)
    meta = {"step": step, "extractor": describe() if describe else {"backend": extractor.name},
            **report.to_json()}
    write_text(target.with_name(target.name + ".extract.json"), json.dumps(meta, indent=2, ensure_ascii=False))

