"""write_report(): a caption run's records -> run_report.json and a self-contained run_report.html.

What is counted (`build_report`, the JSON; the HTML shows the same numbers):
- `counts`: records, kept, dropped; `stages`: per stage of STAGE_ORDER how many records ran it (have its key),
  how many it dropped, and the drop reasons grouped by their prefix (the text before the first ":");
- `dropped`: every dropped clip with its stage and reason (sorted by name);
- `description_length`: the histogram of description lengths in words (whitespace-separated) over every record
  that has a description (dropped ones included: the low-level filter cuts the tails of this distribution), with
  the low-level thresholds: `summary["params"]["lowlevel"]` when the engine passes the dataset parameters, else
  the lowlevel stage's `params` recorded on a record (nested keys flattened: `length_tails.low`);
- `labels`: the OV label and sentiment distribution of the kept clips;
- `checks`: the high-level filter's variants (none, E, S, E+S, as the paper's Table 4): over the records whose
  highlevel stage recorded check outcomes (`info.checks`), how many each variant keeps and drops (`check_counts`;
  kept + dropped = evaluated for every variant), the outcome counts per check, and the variant applied;
- `throughput`: per stage, the clips run (not served from a previous run), the stage seconds summed over them,
  seconds per clip and clips per worker-second; `summary["wall_seconds"]` per stage, when given, adds clips/s.

Per-stage provenance is read from `record["stages"][stage]`: {"key", "seconds", "info", "params", "reused"}
(the engine's records.jsonl). The HTML draws its two charts as inline SVG: no script, no network, no extra.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from affectgpt.caption.base import STAGE_ORDER
from affectgpt.caption.layout import drop_of, record_fields
from affectgpt.io.atomic import write_text

BINS = 20
TOP_LABELS = 30
REPORT_JSON = "run_report.json"
REPORT_HTML = "run_report.html"
THRESHOLD_KEYS = ("low", "high", "min_words", "max_words", "min", "max", "lower", "upper", "mean", "std")


def write_report(records: Sequence[Mapping[str, Any]], output: str | Path, summary: Mapping[str, Any]) -> None:
    """Write run_report.json and run_report.html under `output` (atomically, each)."""
    output = Path(output)
    report = build_report(records, summary)
    write_text(output / REPORT_JSON, json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False) + "\n")
    write_text(output / REPORT_HTML, render_html(report))


def build_report(records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> dict[str, Any]:
    """The report as a JSON-able dict (see the module docstring)."""
    drops = [(r, drop_of(r)) for r in records]
    kept = [r for r, d in drops if d is None]
    dropped = sorted(({"name": str(r.get("name")), "stage": d[0], "reason": d[1]} for r, d in drops if d),
                     key=lambda item: item["name"])
    stages = {}
    for stage in STAGE_ORDER:
        ran = sum(1 for r in records if stage in (r.get("stages") or {}))
        reasons = Counter(d["reason"].split(":", 1)[0].strip() for d in dropped if d["stage"] == stage)
        stages[stage] = {"ran": ran, "dropped": sum(reasons.values()), "reasons": dict(reasons.most_common())}
    extra = Counter(d["stage"] for d in dropped if d["stage"] not in STAGE_ORDER)
    for stage, n in extra.items():
        stages[stage] = {"ran": 0, "dropped": n, "reasons": dict(Counter(
            d["reason"].split(":", 1)[0].strip() for d in dropped if d["stage"] == stage))}
    return {
        "summary": {k: v for k, v in summary.items() if k != "params"},
        "counts": {"records": len(records), "kept": len(kept), "dropped": len(dropped)},
        "stages": stages,
        "dropped": dropped,
        "description_length": length_histogram(records, thresholds(records, summary)),
        "labels": label_distribution(kept),
        "checks": check_counts(records),
        "throughput": throughput(records, summary.get("wall_seconds") or {}),
    }


def thresholds(records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> dict[str, Any]:
    """The low-level filter's parameters, flattened ({"length_tails": {"low": 5}} -> {"length_tails.low": 5}; see
    the module docstring); {} when none were recorded."""
    given = (summary.get("params") or {}).get("lowlevel")
    if given:
        return _flat(given)
    for record in records:
        entry = (record.get("stages") or {}).get("lowlevel") or {}
        found = _flat(entry.get("params") or {})
        if found:
            return found
    return {}


def _flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            out[f"{prefix}{key}"] = value
    return out


def length_histogram(records: Sequence[Mapping[str, Any]], limits: Mapping[str, Any], bins: int = BINS
                     ) -> dict[str, Any]:
    """Equal-width histogram of description lengths in words (`bins` bins from the shortest to the longest)."""
    lengths = sorted(len(str(d).split()) for r in records if (d := record_fields(r).get("description")))
    out: dict[str, Any] = {"unit": "words", "n": len(lengths), "thresholds": dict(limits), "edges": [],
                           "counts": []}
    if not lengths:
        return out
    mean = sum(lengths) / len(lengths)
    out.update(min=lengths[0], max=lengths[-1], mean=mean,
               std=math.sqrt(sum((x - mean) ** 2 for x in lengths) / len(lengths)),
               median=lengths[len(lengths) // 2])
    low, high = lengths[0], lengths[-1]
    width = max(1.0, (high - low) / bins) if high > low else 1.0
    n_bins = max(1, math.ceil((high - low) / width)) if high > low else 1
    edges = [low + i * width for i in range(n_bins + 1)]
    counts = [0] * n_bins
    for x in lengths:
        counts[min(n_bins - 1, int((x - low) / width))] += 1
    out["edges"], out["counts"] = [round(e, 3) for e in edges], counts
    return out


def label_distribution(kept: Sequence[Mapping[str, Any]], top: int = TOP_LABELS) -> dict[str, Any]:
    """Label words (each counted once per clip) and sentiments of the kept clips."""
    words: Counter[str] = Counter()
    sentiments: Counter[str] = Counter()
    with_labels = 0
    for record in kept:
        fields = record_fields(record)
        openset = fields.get("openset")
        if openset is not None:
            with_labels += 1
            words.update({str(w) for w in openset})
        if fields.get("sentiment"):
            sentiments[str(fields["sentiment"])] += 1
    return {"clips": with_labels, "distinct": len(words), "top": [[w, c] for w, c in words.most_common(top)],
            "sentiment": dict(sentiments.most_common())}


def check_counts(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Kept and dropped per check variant, from the outcomes the highlevel stage recorded (module docstring)."""
    from affectgpt.caption.vote import CHECKS, kept

    infos = [info for r in records
             if isinstance(info := ((r.get("stages") or {}).get("highlevel") or {}).get("info"), Mapping)
             and isinstance(info.get("checks"), Mapping)]
    outcomes = {name: dict(Counter(str(i["checks"].get(name)) for i in infos)) for name in ("E", "S")}
    variants = {}
    for variant in CHECKS:
        n = sum(1 for i in infos if kept(i["checks"], variant, str(i.get("undecided", "keep"))))
        variants[variant] = {"kept": n, "dropped": len(infos) - n}
    applied = sorted({str(i.get("applied")) for i in infos})
    return {"evaluated": len(infos), "applied": applied, "variants": variants, "outcomes": outcomes}


def throughput(records: Sequence[Mapping[str, Any]], wall: Mapping[str, float]) -> dict[str, Any]:
    """Per stage: clips run this time, summed stage seconds, seconds per clip, clips per worker-second."""
    out = {}
    order = [*STAGE_ORDER, *sorted({s for r in records for s in (r.get("stages") or {})} - set(STAGE_ORDER))]
    for stage in order:
        seconds = [float(e.get("seconds") or 0.0) for r in records
                   if (e := (r.get("stages") or {}).get(stage)) is not None and not e.get("reused")]
        if not seconds:
            continue
        total = sum(seconds)
        row = {"clips": len(seconds), "seconds": round(total, 6), "seconds_per_clip": total / len(seconds),
               "clips_per_worker_second": len(seconds) / total if total > 0 else None}
        if wall.get(stage):
            row["wall_seconds"] = float(wall[stage])
            row["clips_per_second"] = len(seconds) / float(wall[stage])
        out[stage] = row
    return out


# -- HTML ---------------------------------------------------------------------------------------------------------
CSS = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}th{background:#f3f3f3}.num{text-align:right}
svg{border:1px solid #ddd;margin:4px 0}small{color:#555}"""
esc = html.escape


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained page (inline CSS and SVG; no link, script or external reference)."""
    counts = report["counts"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Caption run report</title>"
             f"<style>{CSS}</style></head><body><h1>Caption run report</h1>",
             f"<p>{counts['records']} clips: <b>{counts['kept']} kept</b>, {counts['dropped']} dropped.</p>"]
    if report.get("summary"):
        parts.append(_table(["key", "value"], [[k, json.dumps(v, ensure_ascii=False)]
                                               for k, v in report["summary"].items()]))
    parts.append("<h2>Stages</h2>" + _table(["stage", "ran", "dropped", "reasons"], [
        [s, v["ran"], v["dropped"], ", ".join(f"{k} ({n})" for k, n in v["reasons"].items())]
        for s, v in report["stages"].items()]))
    hist = report["description_length"]
    parts.append(f"<h2>Description length ({hist['unit']})</h2>")
    if hist["counts"]:
        parts.append(f"<p><small>n={hist['n']}, mean {hist['mean']:.1f}, std {hist['std']:.1f}, "
                     f"min {hist['min']}, max {hist['max']}; thresholds: "
                     f"{esc(json.dumps(hist['thresholds'])) or 'none'}</small></p>")
        parts.append(_histogram_svg(hist))
    else:
        parts.append("<p>No descriptions.</p>")
    labels = report["labels"]
    parts.append(f"<h2>Labels of the kept clips</h2><p>{labels['clips']} clips with labels, "
                 f"{labels['distinct']} distinct words; sentiment: "
                 f"{esc(', '.join(f'{k} {v}' for k, v in labels['sentiment'].items())) or 'none'}.</p>")
    if labels["top"]:
        parts.append(_bars_svg(labels["top"]))
    checks = report.get("checks") or {}
    if checks.get("evaluated"):
        parts.append(f"<h2>High-level checks</h2><p>{checks['evaluated']} clips evaluated; applied: "
                     f"{esc(', '.join(checks['applied']))}.</p>" + _table(
                         ["variant", "kept", "dropped"],
                         [[v, c["kept"], c["dropped"]] for v, c in checks["variants"].items()]))
    parts.append("<h2>Throughput</h2>" + _table(
        ["stage", "clips run", "stage seconds", "s/clip", "clips per worker-s", "clips/s (wall)"],
        [[s, v["clips"], f"{v['seconds']:.3f}", f"{v['seconds_per_clip']:.4f}",
          _num(v["clips_per_worker_second"]), _num(v.get("clips_per_second"))]
         for s, v in report["throughput"].items()]))
    parts.append("<h2>Dropped clips</h2>" + (_table(["name", "stage", "reason"], [
        [d["name"], d["stage"], d["reason"]] for d in report["dropped"]]) if report["dropped"] else "<p>None.</p>"))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='num'>{c}</td>" if isinstance(c, (int, float))
                                    else f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _histogram_svg(hist: Mapping[str, Any], width: int = 640, height: int = 220) -> str:
    """Bars of the length histogram, thresholds as red vertical lines."""
    counts, edges = hist["counts"], hist["edges"]
    top, pad = max(counts) or 1, 30
    low, high = edges[0], edges[-1]
    span = (high - low) or 1
    x_of = lambda v: pad + (v - low) / span * (width - 2 * pad)  # noqa: E731
    bar = (width - 2 * pad) / len(counts)
    shapes = []
    for i, c in enumerate(counts):
        h = c / top * (height - 2 * pad)
        shapes.append(f"<rect x='{pad + i * bar:.1f}' y='{height - pad - h:.1f}' width='{max(bar - 1, 1):.1f}' "
                      f"height='{h:.1f}' fill='#4a78b5'><title>{edges[i]:g}-{edges[i + 1]:g}: {c}</title></rect>")
    for key, value in hist["thresholds"].items():
        if key.rsplit(".", 1)[-1] in THRESHOLD_KEYS[:8] and isinstance(value, (int, float)) \
                and not isinstance(value, bool) and low <= value <= high:
            x = x_of(value)
            shapes.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{pad / 2}' y2='{height - pad}' stroke='#c00'/>"
                          f"<text x='{x + 2:.1f}' y='{pad / 2 + 10}' font-size='10' fill='#c00'>{esc(key)}</text>")
    shapes.append(f"<text x='{pad}' y='{height - 8}' font-size='10'>{low:g}</text>"
                  f"<text x='{width - pad}' y='{height - 8}' font-size='10' text-anchor='end'>{high:g}</text>")
    return f"<svg width='{width}' height='{height}' role='img'>{''.join(shapes)}</svg>"


def _bars_svg(top: Sequence[Sequence[Any]], width: int = 640) -> str:
    """Horizontal bars of the most frequent label words."""
    row, left = 16, 140
    most = max(c for _, c in top) or 1
    shapes = []
    for i, (word, c) in enumerate(top):
        w = c / most * (width - left - 50)
        y = 4 + i * row
        shapes.append(f"<text x='{left - 4}' y='{y + 11}' font-size='11' text-anchor='end'>{esc(str(word))}</text>"
                      f"<rect x='{left}' y='{y}' width='{w:.1f}' height='{row - 3}' fill='#5a9e6f'/>"
                      f"<text x='{left + w + 3:.1f}' y='{y + 11}' font-size='11'>{c}</text>")
    return f"<svg width='{width}' height='{8 + len(top) * row}' role='img'>{''.join(shapes)}</svg>"
