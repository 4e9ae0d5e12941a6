"""Machine-readable and paper-ready renderings: JSON, CSV, Markdown, LaTeX."""

from __future__ import annotations

import csv
import io
import json

from affectgpt.bench.datasets import DATASETS
from affectgpt.bench.report.text import METRIC_TITLES, pct, render_dataset, render_suite
from affectgpt.bench.results import DatasetResult, SuiteResult

FORMATS = ("table", "json", "csv", "markdown", "latex")


def render(result: DatasetResult | SuiteResult, fmt: str) -> str:
    """`result` in one of FORMATS."""
    is_suite = isinstance(result, SuiteResult)
    if fmt == "json":
        return json.dumps(result.to_json(), indent=2, ensure_ascii=False)
    if fmt == "table":
        return render_suite(result) if is_suite else render_dataset(result)
    header, rows = _suite_rows(result) if is_suite else _dataset_rows(result)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + f"\n\nProtocol: {result.protocol}.\n"
    if fmt == "latex":
        return _latex(header, rows, result.protocol)
    raise ValueError(f"unknown format {fmt!r}")


def _dataset_rows(result: DatasetResult) -> tuple[list[str], list[list[str]]]:
    keys = list(DATASETS[result.dataset].metrics)
    header = ["dataset", "protocol", "epoch", "selection", *(METRIC_TITLES[k] for k in keys), "source"]
    rows = [[result.dataset, result.protocol, "" if e.epoch is None else str(e.epoch), "",
             *(pct(e.metrics[k]) for k in keys), e.source] for e in result.epochs]
    for summary in (result.best, result.fixed):
        if summary is not None:
            rows.append([result.dataset, result.protocol, "" if summary.epoch is None else str(summary.epoch),
                         summary.kind, *(pct(summary.metrics[k]) for k in keys), summary.source])
    return header, rows


def _suite_rows(suite: SuiteResult) -> tuple[list[str], list[list[str]]]:
    header = [f"{c.title} ({METRIC_TITLES[c.metric]})" for c in suite.row] + ["Mean"]
    row = [pct(c.value) for c in suite.row] + [pct(suite.mean)]
    return header, [row]


def _latex(header: list[str], rows: list[list[str]], protocol: str) -> str:
    escape = lambda s: s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%")  # noqa: E731
    lines = [r"\begin{tabular}{" + "l" * len(header) + "}", r"\toprule",
             " & ".join(escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(escape(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", f"% protocol: {escape(protocol)}"]
    return "\n".join(lines)
