"""Machine-readable and paper-ready renderings: JSON, CSV, Markdown, LaTeX."""

from __future__ import annotations

import csv
import io
import json

from affectgpt.bench.report.text import (
    METRIC_TITLES,
    dataset_caveats,
    has_oracle,
    metric_keys,
    pct,
    render_dataset,
    render_suite,
    suite_caveats,
)
from affectgpt.bench.results import DatasetResult, SuiteResult

FORMATS = ("table", "json", "csv", "markdown", "latex")


def render(result: DatasetResult | SuiteResult, fmt: str) -> str:
    """`result` in one of FORMATS.

    Every format keeps the caveats the table shows (oracle selection, partial ground truth, built-in protocol):
    JSON in its fields, CSV in a `note` column, Markdown as notes under the table, LaTeX as a footnote-size
    paragraph under the tabular. Markdown and LaTeX carry no file paths (CSV and JSON keep the `source`).
    """
    is_suite = isinstance(result, SuiteResult)
    if fmt == "json":
        return json.dumps(result.to_json(), indent=2, ensure_ascii=False)
    if fmt == "table":
        return render_suite(result) if is_suite else render_dataset(result)
    notes = suite_caveats(result) if is_suite else dataset_caveats(result)
    header, rows = _suite_rows(result) if is_suite else _dataset_rows(result)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*header, "note"])
        if is_suite:
            writer.writerows([*r, "; ".join(notes)] for r in rows)
        else:
            writer.writerows([*r, "; ".join(_row_notes(r, header, notes))] for r in rows)
        return buffer.getvalue()
    if not is_suite:  # no file paths in a table for a paper
        at = header.index("source")
        header = header[:at] + header[at + 1:]
        rows = [r[:at] + r[at + 1:] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        text = "\n".join(lines) + f"\n\nProtocol: {result.protocol}.\n"
        if notes:
            text += "\n" + "".join(f"- {n}\n" for n in notes)
        return text
    if fmt == "latex":
        return _latex(header, rows, result.protocol, notes)
    raise ValueError(f"unknown format {fmt!r}")


def _row_notes(row: list[str], header: list[str], notes: list[str]) -> list[str]:
    """The notes of one CSV row: the oracle note only on the oracle row, the others on every row."""
    oracle = row[header.index("selection")] == "oracle"
    return [n for n in notes if oracle or not n.startswith("ORACLE")]


def _dataset_rows(result: DatasetResult) -> tuple[list[str], list[list[str]]]:
    keys = metric_keys(result)
    header = ["dataset", "protocol", "epoch", "selection", *(METRIC_TITLES.get(k, k) for k in keys), "source"]
    rows = [[result.dataset, result.protocol, "" if e.epoch is None else str(e.epoch), "",
             *(pct(e.metrics[k]) for k in keys), e.source] for e in result.epochs]
    # with one prediction file nothing was selected: no oracle row repeating the only one
    for summary in (result.best if has_oracle(result) else None, result.fixed):
        if summary is not None:
            rows.append([result.dataset, result.protocol, "" if summary.epoch is None else str(summary.epoch),
                         summary.kind, *(pct(summary.metrics[k]) for k in keys), summary.source])
    if result.mean is not None:  # the honest summary: no epoch chosen
        rows.append([result.dataset, result.protocol, result.mean.range, "mean",
                     *(pct(result.mean.metrics[k]) for k in keys), ""])
    return header, rows


def _suite_rows(suite: SuiteResult) -> tuple[list[str], list[list[str]]]:
    header = [f"{c.title} ({METRIC_TITLES[c.metric]})" for c in suite.row] + ["Mean"]
    row = [pct(c.value) for c in suite.row] + [pct(suite.mean)]
    if not suite.epochs_range:
        return header, [row]
    means = [pct(c.mean.metrics[c.metric] if c.mean else None) for c in suite.row]
    return [*header, "selection"], [[*row, suite.selection],
                                    [*means, pct(suite.range_means[0]), f"mean {suite.epochs_range}"]]


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(c, c) for c in text)


def _latex(header: list[str], rows: list[list[str]], protocol: str, notes: list[str]) -> str:
    lines = [r"\begin{tabular}{" + "l" * len(header) + "}", r"\toprule",
             " & ".join(_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(_escape(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", f"% protocol: {_escape(protocol)}"]
    if notes:  # under the table, in the float: the caveats travel with the numbers
        lines.append(r"\par{\footnotesize " + r" \\ ".join(_escape(n) for n in notes) + r"\par}")
    return "\n".join(lines)
