"""Readable terminal tables for one dataset's result and for a suite row."""

from __future__ import annotations

from affectgpt.bench.datasets import DATASETS, get_dataset
from affectgpt.bench.results import ORACLE_NOTE, DatasetResult, SuiteResult

METRIC_TITLES = {"hit": "HIT", "hit_precision": "HIT-P", "waf": "WAF", "acc": "ACC", "f": "F", "p": "P",
                 "r": "R"}
HIT_P_NOTE = ("HIT-P = hit_precision: per sample, the hit divided by the number of distinct candidate classes "
              "predicted (HIT does not penalise extra labels; HIT-P does)")


def metric_keys(result: DatasetResult) -> list[str]:
    """The task's metrics, then any companion the results carry (hit_precision), in a stable order."""
    keys = list(get_dataset(result.dataset).metrics)
    return keys + [k for k in result.epochs[0].metrics if k not in keys]


def warning_lines(warnings: list[dict] | tuple[dict, ...]) -> list[str]:
    """`WARNING <code>: <message>` per warning."""
    return [f"WARNING {w['code']}: {w['message']}" for w in warnings]


def share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def pct(value: float | None) -> str:
    """A fraction as the published x100, 2-decimal figure; n/a for None."""
    return "n/a" if value is None else f"{100 * value:.2f}"


def _grid(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """A plain-text table; the first `left` columns and the last text column are left-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def render_dataset(result: DatasetResult) -> str:
    spec = get_dataset(result.dataset)
    lines = [f"MER-UniBench {spec.title} ({result.dataset}: {spec.task}, {result.n_labels} labelled samples)",
             f"protocol: {result.protocol_note}", ""]
    keys = metric_keys(result)
    extra = ["unparseable", "neutral %", "unparseable %"] if spec.task == "sentiment" else \
        ["unknown words", "empty", "labels/sample"] + (["cand. cover"] if spec.task == "basic" else [])
    header = ["epoch", *(METRIC_TITLES.get(k, k) for k in keys), "samples", *extra, "warn"]
    rows = []
    for e in result.epochs:
        d = e.diagnostics
        cells = ["-" if e.epoch is None else str(e.epoch), *(pct(e.metrics[k]) for k in keys),
                 str(d["samples"])]
        if spec.task == "sentiment":
            cells += [str(d["unparseable_answers"]), share(d.get("neutral_share")),
                      share(d.get("unparseable_share"))]
        else:
            lps = d.get("labels_per_sample")
            cells += [f"{d['unknown_words']}/{d['predicted_words']}", str(d["empty_predictions"]),
                      "-" if lps is None else f"{lps:.2f}"]
            if spec.task == "basic":
                cells.append(share(d.get("candidate_coverage")))
        cells.append("!" if e.warnings else "")
        rows.append(cells)
    lines += _grid(header, rows)
    lines.append("")
    lines += warning_lines(result.warnings)
    lines += _notes(result)
    return "\n".join(lines)


ORACLE_CAVEAT = "ORACLE: " + ORACLE_NOTE.split(": ", 1)[1]
BUILTIN_CAVEAT = "built-in protocol: scores approximate the official protocol and are not comparable with " \
                 "published numbers"


def has_oracle(result: DatasetResult) -> bool:
    """Whether the best epoch was chosen among several files (one file: nothing was chosen)."""
    return len(result.epochs) > 1


def partial_caveat(result: DatasetResult) -> str | None:
    """The partial-ground-truth note of a result whose labels do not cover the whole test set, else None."""
    size = get_dataset(result.dataset).size
    if result.n_labels == size:
        return None
    return (f"partial ground truth: labels cover {result.n_labels} of the {size} samples of the full test set, "
            "so scores are not comparable with published ones")


def dataset_caveats(result: DatasetResult) -> list[str]:
    """The notes every rendering of a dataset result carries: oracle selection, partial ground truth, built-in."""
    notes = [ORACLE_CAVEAT] if has_oracle(result) else []
    partial = partial_caveat(result)
    if partial:
        notes.append(partial)
    if result.protocol.startswith("builtin"):
        notes.append(BUILTIN_CAVEAT)
    if "hit_precision" in result.epochs[0].metrics:
        notes.append(HIT_P_NOTE)
    if result.mean is not None:
        notes.append(mean_caveat(result.mean))
    return notes + warning_lines(result.warnings)


def mean_caveat(mean) -> str:
    """What the mean row is: which epochs of the range were found."""
    return (f"mean {mean.range}: each metric averaged over the epochs {mean.range} present "
            f"({', '.join(str(e) for e in mean.epochs)}); no epoch chosen on the test set")


def suite_caveats(suite: SuiteResult) -> list[str]:
    """The notes every rendering of a suite row carries (oracle, partial and missing datasets, built-in)."""
    notes = [ORACLE_CAVEAT.replace("ORACLE:", "ORACLE (best epoch per dataset):", 1)] \
        if suite.selection == "oracle" else []
    notes += [f"{c.title}: {c.reason}" for c in suite.row if c.value is not None and c.reason]
    missing = [f"{c.title} ({c.reason})" for c in suite.row if c.value is None]
    if missing:
        partial, count = suite.mean_present
        notes.append(f"Mean n/a: {len(missing)} of {len(suite.row)} datasets missing: {', '.join(missing)}; "
                     f"mean of the {count} present: {pct(partial)}")
    if suite.protocol.startswith("builtin"):
        notes.append(BUILTIN_CAVEAT)
    if suite.epochs_range:
        full, partial_range, count = suite.range_means
        notes.append(f"mean {suite.epochs_range}: per dataset, the primary metric averaged over the epochs "
                     f"{suite.epochs_range} present; no epoch chosen on the test set"
                     + ("" if full is not None else f"; mean of the {count} present: {pct(partial_range)}"))
    return notes + warning_lines(suite.warnings)


def _notes(result: DatasetResult) -> list[str]:
    primary = METRIC_TITLES[result.primary]
    best = result.best
    if has_oracle(result):
        lines = [f"best epoch (ORACLE, {ORACLE_NOTE.split(': ', 1)[1]}): {best.epoch}  "
                 f"{primary} {pct(best.metrics[result.primary])}"]
    else:  # one prediction file: no epoch was chosen
        which = "single file" if best.epoch is None else f"single file (epoch {best.epoch})"
        lines = [f"{which}: {primary} {pct(best.metrics[result.primary])}"]
    if result.fixed is not None:
        lines.append(f"fixed epoch {result.fixed.epoch}: {primary} {pct(result.fixed.metrics[result.primary])}")
    if result.mean is not None:
        values = "  ".join(f"{METRIC_TITLES.get(k, k)} {pct(v)}" for k, v in result.mean.metrics.items())
        lines.append(f"mean over epochs {result.mean.range} "
                     f"({', '.join(str(e) for e in result.mean.epochs)}; no selection): {values}")
    if "hit_precision" in result.epochs[0].metrics:
        lines.append(HIT_P_NOTE)
    if "neutral_share" in result.epochs[0].diagnostics:
        lines.append("neutral % and unparseable %: shares of the answers; both count as negative under the "
                     "protocol")
    partial = partial_caveat(result)
    if partial:
        lines.append(partial)
    first = result.epochs[0]
    if first.per_wheel:
        scored = ", ".join(f"{w['wheel']} {w['scored']}/{w['skipped']}" for w in first.per_wheel)
        lines.append(f"samples scored/skipped per wheel (ground truth that maps to nothing is skipped): {scored}")
    shown = result.headline.source  # diagnostics of the epoch the summary shows
    d = next(e for e in result.epochs if e.source == shown).diagnostics
    if d.get("top_unknown"):
        words = ", ".join(f"{w} ({c})" for w, c in d["top_unknown"])
        lines.append(f"most frequent predicted words unknown to the protocol (dropped): {words}")
    if d.get("top_unparseable"):
        answers = ", ".join(f"{a!r} ({c})" for a, c in d["top_unparseable"])
        lines.append(f"unparseable sentiment answers (scored as 0, i.e. negative): {answers}")
    if d.get("skipped_zero_ground_truth"):
        lines.append(f"samples with ground truth exactly 0 (dropped): {d['skipped_zero_ground_truth']}")
    if d.get("extra_predictions"):
        lines.append(f"prediction names not in the ground truth (ignored): {d['extra_predictions']}")
    if d.get("missing_predictions"):
        lines.append(f"ground-truth names without a prediction (scored as empty): {d['missing_predictions']}")
    return lines


def render_suite(suite: SuiteResult) -> str:
    label = "best epoch per dataset (ORACLE)" if suite.selection == "oracle" else "fixed epoch"
    lines = [f"MER-UniBench, {label}", f"protocol: {suite.protocol_note}", ""]
    ranged = bool(suite.epochs_range)
    header = ["dataset", "metric", "score", "epoch", *([f"mean {suite.epochs_range}"] if ranged else [])]
    rows = [[c.title, METRIC_TITLES[c.metric], pct(c.value), "" if c.epoch is None else str(c.epoch),
             *([pct(c.mean.metrics[c.metric] if c.mean else None)] if ranged else [])]
            for c in suite.row]
    full, partial_range, _ = suite.range_means
    rows.append(["Mean (9 datasets)", "", pct(suite.mean), "", *([pct(full)] if ranged else [])])
    notes = [("! " if c.warnings else "") + (c.reason or "") for c in suite.row]
    partial, count = suite.mean_present
    notes.append("" if suite.mean is not None else
                 f"{len(suite.row) - count} missing; mean of the {count} present: {pct(partial)}"
                 + (f" (mean {suite.epochs_range}: {pct(partial_range)})" if ranged else ""))
    for key, result in suite.results.items():  # user datasets (--dataset-spec): after the mean, never in it
        if key in DATASETS:
            continue
        head = result.headline
        rows.append([get_dataset(key).title, METRIC_TITLES[result.primary], pct(head.metrics[result.primary]),
                     "" if head.epoch is None else str(head.epoch),
                     *([pct(result.mean.metrics[result.primary] if result.mean else None)] if ranged else [])])
        notes.append("user dataset (--dataset-spec), not in the mean")
    grid = _grid(header, rows)
    lines += [grid[0], grid[1], *(f"{r}  {n}".rstrip() for r, n in zip(grid[2:], notes, strict=True))]
    extra = warning_lines(suite.warnings)
    if ranged:
        extra.insert(0, f"mean {suite.epochs_range}: per dataset, the primary metric averaged over the epochs "
                        f"{suite.epochs_range} present (no epoch chosen on the test set)")
    if extra:
        lines += ["", *extra]
    return "\n".join(lines)
