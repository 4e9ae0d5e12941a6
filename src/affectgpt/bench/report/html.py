"""write_report(): one self-contained HTML page comparing result sets, with its PNG figures beside it.

Each input is the JSON of `affectgpt bench score` or `bench suite` (--format json); one file is one result
set (one column of the tables). The figures are written to `<output stem>_figures/` and embedded in the
page as data URIs, so the HTML file alone is the whole report.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectgpt import __version__
from affectgpt.bench.datasets import DATASETS, all_datasets
from affectgpt.bench.report.text import HIT_P_NOTE, METRIC_TITLES, pct
from affectgpt.bench.results import ORACLE_NOTE, SCHEMA_VERSION
from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.io.atomic import write_text
from affectgpt.io.limits import not_utf8

DATASET_KEYS = ("dataset", "protocol", "primary_metric", "epochs", "best")
SUITE_KEYS = ("protocol", "selection", "results", "row", "mean", "mean_present")
FIX_JSON = "pass the JSON written by `affectgpt bench score` or `bench suite` with --format json"
CSS = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}th{background:#f3f3f3}small{color:#555}
.warn{background:#fff3cd;border:1px solid #e0b000;padding:6px 10px;margin:6px 0}.na{color:#999}
.oracle{background:#eef4ff;border:1px solid #99b;padding:6px 10px}.num{text-align:right}
img{max-width:48%;margin:4px;border:1px solid #ddd}"""
esc = html.escape


@dataclass(frozen=True)
class ResultSet:
    """One result file: per-dataset results in published order, and the suite JSON when it is one."""

    name: str
    path: Path
    results: dict[str, dict[str, Any]]
    suite: dict[str, Any] | None = None

    @property
    def protocols(self) -> list[str]:
        found = [self.suite["protocol"]] if self.suite else []
        return list(dict.fromkeys([*found, *(r["protocol"] for r in self.results.values())]))

    def reason(self, key: str) -> str | None:
        """The suite's note on a dataset cell (why it is n/a, or that its ground truth is partial)."""
        cells = self.suite["row"] if self.suite else []
        return next((c.get("reason") for c in cells if isinstance(c, dict) and c.get("dataset") == key), None)


def write_report(paths: Sequence[str | Path], output: str | Path, names: Sequence[str] = ()) -> None:
    """Write the HTML report to `output` and its figures to `<output stem>_figures/`, all or nothing.

    Raises:
        InputError: a missing or unreadable result file, JSON that is not a result of this schema, a
            --name count that differs from the number of files, or an output path that is a folder.
        MissingExtra: matplotlib is not installed (`affectgpt[report]`).
    """
    output = Path(output)
    if not paths:
        raise InputError("no result files given", field="RESULT.json", fix=FIX_JSON)
    if names and len(names) != len(paths):
        raise InputError(f"{len(names)} --name labels for {len(paths)} result files", field="--name",
                         fix="give one --name per result file, in the same order, or none")
    labels = list(names) or _default_names(paths)
    if len(set(labels)) != len(labels):
        raise InputError(f"the labels {labels} are not all different", field="--name",
                         fix="give each result file its own --name")
    figures = output.with_name(f"{output.stem}_figures")
    for target, kind in ((output, "a folder"), (figures, "a file")):
        if target.exists() and target.is_dir() == (kind == "a folder"):
            raise InputError(f"is {kind}", path=target, field="--output", fix="choose another --output")
    sets = [one for p, n in zip(paths, labels, strict=True) for one in load_result_sets(p, n)]
    require("matplotlib", extra="report")  # before anything is written
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{figures.name}.", dir=output.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the figures are meant to be looked at
    try:
        images = render_figures(sets, tmp)
        page = render_page(sets, {k: [(f, (tmp / f).read_bytes()) for f in v] for k, v in images.items()},
                           figures.name)
        _publish(tmp, figures, output, page)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # already renamed away on success


def _default_names(paths: Sequence[str | Path]) -> list[str]:
    stems = [Path(p).stem for p in paths]
    return stems if len(set(stems)) == len(stems) else [f"#{i} {p}" for i, p in enumerate(paths, 1)]


def _publish(tmp: Path, figures: Path, output: Path, page: str) -> None:
    """Rename the figure folder into place, then write the page; on failure put the old state back."""
    old = figures.with_name(f".{figures.name}.old-{os.getpid()}") if figures.exists() else None
    if old is not None:
        os.rename(figures, old)
    try:
        os.rename(tmp, figures)
        write_text(output, page)
    except BaseException:
        shutil.rmtree(figures, ignore_errors=True)
        if old is not None:
            os.rename(old, figures)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_result_sets(path: str | Path, name: str) -> list[ResultSet]:
    """The result sets of one file: itself, or for a `bench baselines` file one reference set per baseline
    (named `<name>: <baseline>`), so each baseline is its own column beside the models."""
    from affectgpt.bench.baselines import expand

    path = Path(path)
    data = _read_result(path)
    first = _result_set(data, path, name)
    rows = expand(data)
    if not rows:
        return [first]
    return [ResultSet(f"{name}: {label.removeprefix('baseline: ')}", path,
                      {result["dataset"]: _check_dataset(result, path, f"baselines[{i}].")})
            for i, (label, result) in enumerate(rows)]


def load_result_set(path: str | Path, name: str) -> ResultSet:
    """Read and check one result file (`bench score` or `bench suite` JSON)."""
    return _result_set(_read_result(Path(path)), Path(path), name)


def _read_result(path: Path) -> dict[str, Any]:
    """The JSON of a result file, checked to be a result of this schema version."""
    if not path.is_file():
        raise InputError("result file not found", path=path, fix=FIX_JSON)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc})", path=path, fix=FIX_JSON) from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise InputError("not a MER-UniBench result (no schema_version)", path=path, field="schema_version",
                         fix=FIX_JSON)
    if data["schema_version"] != SCHEMA_VERSION:
        raise InputError(f"schema_version {data['schema_version']!r}; this report reads {SCHEMA_VERSION}",
                         path=path, field="schema_version", fix="score again with this version of affectgpt")
    return data


def _result_set(data: dict[str, Any], path: Path, name: str) -> ResultSet:
    """One checked ResultSet of a result's JSON (a single dataset's, or a suite's)."""
    if "results" not in data:
        return ResultSet(name, path, {data.get("dataset"): _check_dataset(data, path, "")})
    _check_keys(data, SUITE_KEYS, path, "")
    if not isinstance(data["results"], dict) or not isinstance(data["row"], list):
        raise InputError("`results` must be an object and `row` a list", path=path, field="results",
                         fix=FIX_JSON)
    results = {k: _check_dataset(r, path, f"results.{k}.") for k, r in data["results"].items()}
    return ResultSet(name, path, {k: results[k] for k in all_datasets() if k in results}, data)


def _check_keys(data: Any, keys: Sequence[str], path: Path, where: str) -> None:
    if not isinstance(data, dict):
        raise InputError("not a JSON object", path=path, field=where.rstrip(".") or None, fix=FIX_JSON)
    missing = [k for k in keys if k not in data]
    if missing:
        raise InputError(f"missing {', '.join(missing)}", path=path, field=f"{where}{missing[0]}",
                         fix=FIX_JSON)


def _check_dataset(data: Any, path: Path, where: str) -> dict[str, Any]:
    """Check the fields of one per-dataset result that the report reads; returns it."""
    _check_keys(data, DATASET_KEYS, path, where)
    if data["dataset"] not in all_datasets():
        raise InputError(f"unknown dataset {data['dataset']!r}", path=path, field=f"{where}dataset",
                         fix=f"use a result for one of {', '.join(DATASETS)}, or give the dataset's "
                             "--dataset-spec")
    primary = data["primary_metric"]
    epochs = data["epochs"]
    if not isinstance(epochs, list) or not epochs:
        raise InputError("no scored epochs", path=path, field=f"{where}epochs", fix=FIX_JSON)
    summaries = [(f"epochs[{i}]", e) for i, e in enumerate(epochs)] + [("best", data["best"])]
    if "fixed" in data:
        summaries.append(("fixed", data["fixed"]))
    for label, summary in summaries:
        metrics = summary.get("metrics") if isinstance(summary, dict) else None
        value = metrics.get(primary) if isinstance(metrics, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InputError(f"no number for the primary metric {primary!r}", path=path,
                             field=f"{where}{label}.metrics.{primary}", fix=FIX_JSON)
    return data


def _headline(result: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The summary a table cell shows, and its kind: the fixed epoch when one was chosen, else the oracle."""
    return (result["fixed"], "fixed") if result.get("fixed") else (result["best"], "oracle")


def _title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric.upper())


def _epoch_text(epoch: Any) -> str:
    return "-" if epoch is None else str(epoch)


def render_figures(sets: Sequence[ResultSet], folder: Path) -> dict[str, list[str]]:
    """Per dataset, a bar chart of the headline primary metric and per-epoch curves; returns file names."""
    figure = require("matplotlib.figure", extra="report")
    agg = require("matplotlib.backends.backend_agg", extra="report")  # explicit Agg canvas: no display
    files: dict[str, list[str]] = {}
    for key, spec in all_datasets().items():
        present = [(i, s) for i, s in enumerate(sets) if key in s.results]
        if not present:
            continue
        files[key] = []
        for suffix, draw in (("bar", _draw_bars), ("epochs", _draw_epochs)):
            fig = figure.Figure(figsize=(6.4, 3.6 if suffix == "epochs" else 1.4 + 0.45 * len(present)),
                                dpi=110, layout="constrained")
            agg.FigureCanvasAgg(fig)
            draw(fig.add_subplot(), spec, present)
            fig.savefig(folder / f"{key}_{suffix}.png", format="png")
            files[key].append(f"{key}_{suffix}.png")
    return files


def _short(name: str, width: int = 32) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _draw_bars(ax: Any, spec: Any, present: list[tuple[int, ResultSet]]) -> None:
    values = [100 * _headline(s.results[spec.key])[0]["metrics"][spec.primary] for _, s in present]
    rows = list(range(len(present)))
    bars = ax.barh(rows, values, color=[f"C{i % 10}" for i, _ in present], height=0.6)
    ax.set_yticks(rows, labels=[_short(s.name) for _, s in present])
    ax.invert_yaxis()
    ax.bar_label(bars, fmt="%.2f", padding=3)
    ax.set_xlim(0, 112)
    ax.set_xlabel(f"{_title(spec.primary)} x100 (epoch shown in the table)")
    ax.set_title(f"{spec.title}: {_title(spec.primary)}")
    ax.grid(axis="x", alpha=0.3)


def _draw_epochs(ax: Any, spec: Any, present: list[tuple[int, ResultSet]]) -> None:
    numbered, ticks = True, set()
    for i, s in present:
        result = s.results[spec.key]
        epochs = result["epochs"]
        numbered = numbered and all(isinstance(e.get("epoch"), int) for e in epochs)
        xs = [e["epoch"] if isinstance(e.get("epoch"), int) else n for n, e in enumerate(epochs, 1)]
        ys = [100 * e["metrics"][spec.primary] for e in epochs]
        ticks.update(xs)
        ax.plot(xs, ys, color=f"C{i % 10}", label=_short(s.name), linestyle=("-", "--", ":", "-.")[i % 4],
                marker="os^D"[i % 4], markersize=7 - i % 4, linewidth=2.2 - 0.4 * (i % 4))
        head = _headline(result)[0]
        at = next((n for n, e in enumerate(epochs) if e.get("source") == head.get("source")), None)
        if at is not None:
            ax.plot([xs[at]], [ys[at]], marker="*", markersize=16, color=f"C{i % 10}", linestyle="none",
                    markeredgecolor="black", zorder=3)
    if len(ticks) <= 12:
        ax.set_xticks(sorted(ticks))
    else:
        ax.xaxis.set_major_locator(require("matplotlib.ticker", extra="report").MaxNLocator(integer=True))
    ax.set_xlabel("epoch" if numbered else "epoch (or file number)")
    ax.set_ylabel(f"{_title(spec.primary)} x100")
    ax.set_title(f"{spec.title}: {_title(spec.primary)} per epoch (★ = epoch in the table)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")


def render_page(sets: Sequence[ResultSet], images: dict[str, list[tuple[str, bytes]]], folder: str) -> str:
    """The whole HTML page; `images` maps a dataset to its (file name, PNG bytes)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>MER-UniBench report"
             f"</title><style>{CSS}</style></head><body>", "<h1>MER-UniBench report</h1>",
             f"<p><small>generated by affectgpt {esc(__version__)} on {now}</small></p>",
             *_warnings(sets), f"<p class='oracle'>{esc(ORACLE_NOTE)}. Cells marked <i>fixed</i> show the "
             "epoch chosen by the user instead.</p>", "<h2>Result sets</h2>", _sets_table(sets),
             "<h2>Scores (x100)</h2>", _score_table(sets), "<h2>Figures</h2>",
             f"<p><small>also saved as PNG files in {esc(folder)}/</small></p>"]
    for key, files in images.items():
        parts.append(f"<h3>{esc(all_datasets()[key].title)}</h3><div>")
        parts += [f"<img alt='{esc(name)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
                  for name, data in files]
        parts.append("</div>")
    parts += ["<h2>Diagnostics (epoch in the table)</h2>", _diagnostics(sets),
              "<h2>Precision and label budget (epoch in the table)</h2>",
              f"<p><small>{esc(HIT_P_NOTE)}. Candidate coverage: the mean share of the dataset's candidate "
              "classes a prediction covers; a constant prediction of every candidate scores HIT 100.</small></p>",
              _budget(sets), "</body></html>\n"]
    return "\n".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table: `header` is plain text (escaped here), `rows` hold finished <td>/<th> cells."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return "\n".join([f"<table><tr>{head}</tr>", *(f"<tr>{''.join(r)}</tr>" for r in rows), "</table>"])


def _td(text: str, cls: str = "", small: str = "") -> str:
    """One cell: `text` and `small` are HTML already."""
    opening = f"<td class='{cls}'>" if cls else "<td>"
    return opening + text + (f"<br><small>{small}</small>" if small else "") + "</td>"


def _warnings(sets: Sequence[ResultSet]) -> list[str]:
    protocols = list(dict.fromkeys(p for s in sets for p in s.protocols))
    out = [f"different protocols ({', '.join(protocols)}): scores under different protocols are not "
           "comparable"] if len(protocols) > 1 else []
    out += [f"{s.name} uses the BUILT-IN protocol: its scores approximate the official protocol and are not "
            "comparable with published numbers"
            for s in sets if any(p.startswith("builtin") for p in s.protocols)]
    for s in sets:
        for key, result in s.results.items():
            for w in result.get("warnings") or []:
                if isinstance(w, dict):
                    out.append(f"{s.name}, {all_datasets()[key].title}: {w.get('code')}: {w.get('message')}")
    return [f"<p class='warn'>⚠ {esc(w)}</p>" for w in out]


def _sets_table(sets: Sequence[ResultSet]) -> str:
    rows = []
    for s in sets:
        notes = [s.suite.get("protocol_note", "")] if s.suite else []
        notes += [r.get("protocol_note", "") for r in s.results.values()]
        contents = (f"suite, {s.suite['selection']}: {len(s.results)} of {len(DATASETS)} datasets scored"
                    if s.suite else f"one dataset ({next(iter(s.results))})")
        rows.append([_td(esc(str(c))) for c in (s.name, s.path, contents, ", ".join(s.protocols),
                                                 "; ".join(n for n in dict.fromkeys(notes) if n))])
    return _table(["name", "file", "contents", "protocol", "protocol note"], rows)


def _score_table(sets: Sequence[ResultSet]) -> str:
    rows = [[f"<th>{esc(spec.title)} <small>({_title(spec.primary)})</small></th>",
             *(_score_cell(s, key) for s in sets)]
            for key, spec in all_datasets().items()
            if any(key in s.results or (s.suite and key in DATASETS) for s in sets)]
    if any(s.suite for s in sets):
        rows.append([f"<th>Mean ({len(DATASETS)} datasets)</th>", *(_mean_cell(s) for s in sets)])
    return _table(["dataset", *(s.name for s in sets)], rows)


def _score_cell(s: ResultSet, key: str) -> str:
    reason, result = s.reason(key), s.results.get(key)
    if result is None:
        return _td("n/a", "na", esc(reason or "not in this result set"))
    head, kind = _headline(result)
    primary = result["primary_metric"]
    secondary = " · ".join(f"{esc(_title(k))} {pct(v)}" for k, v in head["metrics"].items()
                           if k not in (primary, "hit_precision") and isinstance(v, int | float))
    epoch = esc(_epoch_text(head.get("epoch")))
    return _td(f"<b>{pct(head['metrics'][primary])}</b> <small>epoch {epoch} ({kind})</small>", "num",
               secondary + _mean_text(result, primary) + (f"<br>note: {esc(reason)}" if reason else ""))


def _mean_text(result: dict[str, Any], primary: str) -> str:
    """`mean A-B: <primary>` under a cell when the result carries the --epochs mean, else ''."""
    mean = result.get("mean")
    value = mean.get("metrics", {}).get(primary) if isinstance(mean, dict) else None
    if not isinstance(value, int | float):
        return ""
    return f"<br>mean {esc(str(mean.get('range', '')))} (no selection): <b>{pct(value)}</b>"


def _mean_cell(s: ResultSet) -> str:
    if not s.suite:
        return _td("-", "na", "not a suite")
    ranged = s.suite.get("epochs_mean")
    extra = ""
    if isinstance(ranged, dict):
        present = ranged.get("mean_present") if isinstance(ranged.get("mean_present"), dict) else {}
        value = ranged.get("value", present.get("value"))
        extra = (f"mean {esc(str(ranged.get('range', '')))} (no selection): "
                 f"<b>{pct(value) if isinstance(value, int | float) else 'n/a'}</b>")
    if isinstance(s.suite["mean"], int | float):
        return _td(f"<b>{pct(s.suite['mean'])}</b>", "num", extra)
    present = s.suite["mean_present"] if isinstance(s.suite["mean_present"], dict) else {}
    value, count = present.get("value"), present.get("datasets", 0)
    partial = pct(value) if isinstance(value, int | float) else "n/a"
    return _td("n/a", "num", f"partial mean of the {esc(str(count))} of {len(DATASETS)} datasets present: "
               f"<b>{partial}</b>" + (f"<br>{extra}" if extra else ""))


def _diagnostics(sets: Sequence[ResultSet]) -> str:
    rows = [[_td(esc(spec.title)), _td(esc(s.name)), *_diagnostic_cells(s.results[key])]
            for key, spec in all_datasets().items() for s in sets if key in s.results]
    return _table(["dataset", "result set", "epoch", "samples", "extra names", "missing names",
                   "coverage / parsing", "most frequent unknown words or unparseable answers"], rows)


def _diagnostic_cells(result: dict[str, Any]) -> list[str]:
    head, epochs = _headline(result)[0], result["epochs"]
    shown = next((e for e in epochs if e.get("source") == head.get("source")), epochs[0])
    d = shown.get("diagnostics") if isinstance(shown.get("diagnostics"), dict) else {}
    get = lambda key, default="?": esc(str(d.get(key, default)))  # noqa: E731
    if "unparseable_answers" in d:
        known = (f"{get('unparseable_answers')} unparseable (scored as negative); "
                 f"{get('skipped_zero_ground_truth', 0)} with ground truth 0 skipped")
        problems = d.get("top_unparseable")
    else:
        coverage = d.get("coverage")
        known = (f"{get('unknown_words')} of {get('predicted_words')} words unknown"
                 + (f" (coverage {pct(coverage)}%)" if isinstance(coverage, int | float) else "")
                 + f"; {get('empty_predictions', 0)} empty answers")
        problems = d.get("top_unknown")
    listed = ", ".join(esc(f"{p[0]} ({p[1]})" if isinstance(p, list) and len(p) == 2 else str(p))
                       for p in (problems if isinstance(problems, list) else []))
    counts = [_td(get(k, 0), "num warn" if d.get(k) else "num") for k in ("extra_predictions",
                                                                       "missing_predictions")]
    return [_td(esc(_epoch_text(shown.get("epoch")))), _td(get("samples"), "num"), *counts, _td(known),
            _td(f"<small>{listed}</small>")]


def _budget(sets: Sequence[ResultSet]) -> str:
    """Per dataset and result set: HIT beside hit_precision, labels per sample, coverage, warnings."""
    rows = []
    for key, spec in all_datasets().items():
        for s in sets:
            if key not in s.results:
                continue
            result = s.results[key]
            head, epochs = _headline(result)[0], result["epochs"]
            shown = next((e for e in epochs if e.get("source") == head.get("source")), epochs[0])
            metrics = shown.get("metrics") if isinstance(shown.get("metrics"), dict) else {}
            d = shown.get("diagnostics") if isinstance(shown.get("diagnostics"), dict) else {}

            def num(value: Any, scale: str = "pct") -> str:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    return _td("-", "num na")
                return _td(pct(value) if scale == "pct" else f"{value:.2f}", "num")

            warnings = [w for w in shown.get("warnings") or [] if isinstance(w, dict)]
            text = "; ".join(f"{w.get('code')}: {w.get('message')}" for w in warnings)
            rows.append([_td(esc(spec.title)), _td(esc(s.name)), _td(esc(_epoch_text(shown.get("epoch")))),
                         num(metrics.get("hit")), num(metrics.get("hit_precision")),
                         num(d.get("labels_per_sample"), "plain"), num(d.get("candidate_coverage")),
                         num(d.get("neutral_share")), num(d.get("unparseable_share")),
                         _td(esc(text), "warn" if warnings else "")])
    return _table(["dataset", "result set", "epoch", "HIT", "hit_precision", "labels per sample",
                   "candidate coverage %", "neutral answers %", "unparseable answers %", "warnings"], rows)
