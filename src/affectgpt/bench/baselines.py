"""Reference baselines of one dataset (constant, majority, seeded random labels), scored by the scorer itself.

Each baseline is a prediction table written to a temporary file and scored with score.score_dataset, so it
gets every metric, diagnostic and warning a model's predictions get, under the same protocol.

- basic sets: `all candidates` (every class the protocol maps to a cluster, for every sample: the classes a
  --dataset-spec declares, else those of the ground truth; `neutral` maps to none and is left out),
  `majority` (the most frequent such class of the ground truth), `random-k` (k = 1, 2, 3 candidates drawn per
  sample with fixed seeds; the metrics are the mean over the seeds, each seed's kept beside it).
- ov sets: `frequent-N` (the N most frequent ground-truth words, N the rounded mean number of ground-truth
  words per sample: listing the whole vocabulary is not a useful constant), `majority` (the most frequent
  word) and `random-k` drawn from the ground-truth vocabulary.
- sentiment sets: `all positive` and `majority` (the majority polarity of the scored samples; ties say positive).

The JSON is a valid per-dataset result (`bench report` reads it as one more result set, whose table cell
shows the strongest baseline): `epochs` holds one entry per baseline with `source` = `baseline: <name>`, and
`baselines` the full result of each, which `expand()` turns into one result set per baseline.
"""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from affectgpt.bench.datasets import DatasetSpec
from affectgpt.bench.inputs import find_label_file, load_ground_truth
from affectgpt.bench.protocol import ResolvedProtocol
from affectgpt.bench.report.text import BUILTIN_CAVEAT, METRIC_TITLES, pct
from affectgpt.bench.results import DatasetResult, EpochResult
from affectgpt.bench.score import score_dataset
from affectgpt.errors import InputError
from affectgpt.formats.label_lists import parse_label_list
from affectgpt.io.atomic import write_text

SEEDS = (0, 1, 2, 3, 4)
RANDOM_KS = (1, 2, 3)
PREFIX = "baseline: "
STRONGEST_NOTE = ("strongest baseline: the baseline with the best primary metric on this test set; a "
                  "reference point, not a model")


@dataclass(frozen=True)
class Baseline:
    """One baseline scored on the dataset.

    Attributes:
        name: short name (`all candidates`, `majority`, `random-2`...); shown as `baseline: <name>`.
        description: what it predicts, in words.
        words: the constant answer's words (empty for random baselines).
        result: the scorer's result (for random baselines: seed SEEDS[0]'s, with the metrics averaged).
        seeds: the seeds averaged over (random baselines only).
        per_seed: each seed's metrics, in `seeds` order.
    """

    name: str
    description: str
    words: tuple[str, ...]
    result: DatasetResult
    seeds: tuple[int, ...] = ()
    per_seed: tuple[dict[str, float], ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return PREFIX + self.name

    @property
    def epoch(self) -> EpochResult:
        return self.result.epochs[0]

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description, "words": list(self.words)}
        if self.seeds:
            out["seeds"] = list(self.seeds)
            out["per_seed"] = [dict(m) for m in self.per_seed]
        return out


@dataclass(frozen=True)
class BaselineSet:
    """Every baseline of one dataset under one protocol."""

    spec: DatasetSpec
    labels: str
    baselines: tuple[Baseline, ...]

    @property
    def first(self) -> DatasetResult:
        return self.baselines[0].result

    @property
    def strongest(self) -> int:
        """The index of the baseline with the best primary metric (the first one on a tie)."""
        primary = self.spec.primary
        return max(range(len(self.baselines)), key=lambda i: (self.baselines[i].epoch.metrics[primary], -i))

    def to_json(self) -> dict[str, Any]:
        """A valid per-dataset result: one `epochs` entry per baseline, the strongest one as `best`."""
        out = self.first.to_json()
        for key in ("fixed", "mean"):  # one baseline's epoch summaries say nothing about the others
            out.pop(key, None)
        entries = []
        for b in self.baselines:
            entry = b.epoch.to_json()
            entry["baseline"] = b.info()
            entries.append(entry)
        full = []
        for b, entry in zip(self.baselines, entries, strict=True):
            one = b.result.to_json()
            for key in ("fixed", "mean"):
                one.pop(key, None)
            if "warnings" in one:  # a random baseline's dataset warnings: those of any of its seeds
                one["warnings"] = _merge([*one["warnings"], *entry.get("warnings", [])])
            one["epochs"] = [entry]
            one["best"] = _summary(entry)
            one["name"] = b.label
            full.append(one)
        warnings = _merge(w for one in full for w in one.get("warnings", []))
        out.update({"kind": "baselines", "predictions": "baselines", "labels": self.labels, "epochs": entries,
                    "best": {**_summary(entries[self.strongest]),
                             "selection": "strongest baseline", "note": STRONGEST_NOTE},
                    "baselines": full})
        if "warnings" in out or warnings:
            out["warnings"] = warnings
        return out


def _summary(entry: dict[str, Any]) -> dict[str, Any]:
    return {"epoch": None, "source": entry["source"], "metrics": dict(entry["metrics"]), "selection": "baseline"}


def _merge(warnings) -> list[Any]:
    """Warnings of several results, each code once, in first-seen order."""
    seen: dict[Any, Any] = {}
    for w in warnings:
        key = w.get("code") if isinstance(w, dict) else json.dumps(w, sort_keys=True)
        seen.setdefault(key, w)
    return list(seen.values())


def expand(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(`baseline: <name>`, its per-dataset result JSON) for each baseline of a `bench baselines` JSON."""
    if data.get("kind") != "baselines" or not isinstance(data.get("baselines"), list):
        return []
    return [(b.get("name", ""), b) for b in data["baselines"] if isinstance(b, dict)]


def compute_baselines(spec: DatasetSpec, labels: str | Path, protocol: ResolvedProtocol,
                      seeds: tuple[int, ...] = SEEDS) -> BaselineSet:
    """Build and score every baseline of `spec` on the ground truth at `labels`.

    Raises:
        InputError: the labels cannot be read, or they hold no class the protocol can score.
    """
    gt = load_ground_truth(labels, spec)
    names = list(gt)
    label_file = find_label_file(labels, spec)
    with tempfile.TemporaryDirectory(prefix="affectgpt-baselines-") as tmp:
        run = _Runner(spec, label_file, protocol, Path(tmp), names)
        if spec.task == "sentiment":
            baselines = _sentiment(run, list(gt.values()))
        else:
            baselines = _wordlists(run, spec, list(gt.values()), protocol, label_file, seeds)
    return BaselineSet(spec, str(labels), tuple(baselines))


class _Runner:
    """Writes one answer per name to a prediction file and scores it with score_dataset."""

    def __init__(self, spec: DatasetSpec, label_file: Path, protocol: ResolvedProtocol, tmp: Path,
                 names: list[str]) -> None:
        self.spec, self.label_file, self.protocol, self.tmp, self.names = spec, label_file, protocol, tmp, names
        self.count = 0

    def score(self, label: str, answers: list[str]) -> DatasetResult:
        self.count += 1
        path = self.tmp / f"baseline-{self.count}.jsonl"
        key = "sentiment" if self.spec.task == "sentiment" else "prediction"
        write_text(path, "".join(json.dumps({"name": n, key: a}) + "\n"
                                 for n, a in zip(self.names, answers, strict=True)))
        result = score_dataset(self.spec, path, self.label_file, self.protocol)
        epochs = tuple(replace(e, source=label) for e in result.epochs)
        return replace(result, predictions=label, epochs=epochs,
                       best=replace(result.best, source=label), fixed=None)

    def constant(self, name: str, description: str, words: list[str]) -> Baseline:
        answer = ", ".join(words)
        return Baseline(name, description, tuple(words), self.score(PREFIX + name, [answer] * len(self.names)))


def _sentiment(run: _Runner, values: list[float]) -> list[Baseline]:
    positive = sum(1 for v in values if v > 0)
    negative = sum(1 for v in values if v < 0)
    majority = "positive" if positive >= negative else "negative"
    return [
        run.constant("all positive", "answers positive for every sample", ["positive"]),
        run.constant("majority", f"answers the majority polarity, {majority} ({max(positive, negative)} of "
                                 f"{positive + negative} scored samples), for every sample", [majority]),
    ]


def _wordlists(run: _Runner, spec: DatasetSpec, values: list[Any], protocol: ResolvedProtocol, label_file: Path,
               seeds: tuple[int, ...]) -> list[Baseline]:
    bits = protocol.maps.bits
    parsed = [parse_label_list(v) for v in values]
    counts = Counter(w for words in parsed for w in dict.fromkeys(words))
    # most frequent first, then alphabetical: a deterministic order for the random draws too
    frequent = [w for w, _ in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if bits.mask([w])]
    if not frequent:
        raise InputError("no ground-truth label maps to an emotion cluster under this protocol", path=label_file,
                         field="label", fix="check the label file and the --protocol / --wheel-dir in use")
    # a user dataset that declares its classes (--dataset-spec label_space): those, else the ground truth's
    declared = [w for w in dict.fromkeys(c.strip().lower() for c in spec.candidates) if bits.mask([w])]
    candidates = declared or frequent
    out = []
    if spec.task == "basic":
        out.append(run.constant("all candidates", f"lists all {len(candidates)} scorable classes of the "
                                                  "ground truth for every sample", candidates))
    else:
        n = max(1, round(statistics.fmean(len(set(words)) for words in parsed)))
        out.append(run.constant(f"frequent-{n}", f"lists the {n} most frequent ground-truth words (the mean "
                                                  "label count) for every sample", frequent[:n]))
    out.append(run.constant("majority", f"answers the most frequent ground-truth "
                                        f"{'class' if spec.task == 'basic' else 'word'} for every sample",
                            frequent[:1]))
    for k in RANDOM_KS:
        k_eff = min(k, len(candidates))
        results = []
        for seed in seeds:
            rng = random.Random(seed * 1000 + k)
            answers = [", ".join(rng.sample(candidates, k_eff)) for _ in run.names]
            results.append(run.score(f"{PREFIX}random-{k}", answers))
        out.append(_mean_over_seeds(f"random-{k}", f"{k_eff} of the {len(candidates)} candidate "
                                    f"{'classes' if spec.task == 'basic' else 'words'} drawn per sample, "
                                    f"mean over seeds {', '.join(map(str, seeds))}", results, seeds))
    return out


def _mean_over_seeds(name: str, description: str, results: list[DatasetResult],
                     seeds: tuple[int, ...]) -> Baseline:
    """One row for a random baseline: every numeric metric, per-wheel value and diagnostic averaged."""
    epochs = [r.epochs[0] for r in results]
    first = epochs[0]
    mean_epoch = replace(first, metrics=_mean_dicts([e.metrics for e in epochs]),
                         per_wheel=[_mean_dicts(list(ws)) for ws in zip(*(e.per_wheel for e in epochs),
                                                                        strict=True)],
                         diagnostics=_mean_dicts([e.diagnostics for e in epochs]))
    if hasattr(first, "warnings"):  # a warning any seed raises, each code once (its first message)
        mean_epoch = replace(mean_epoch, warnings=_merge(w for e in epochs for w in e.warnings))
    result = replace(results[0], epochs=(mean_epoch,), best=replace(results[0].best, metrics=mean_epoch.metrics))
    return Baseline(name, description, (), result, tuple(seeds), tuple(dict(e.metrics) for e in epochs))


def _mean_dicts(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers averaged over the dicts; anything else kept from the first (integers stay integers if equal)."""
    out = dict(dicts[0])
    for key, value in dicts[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        values = [d.get(key, value) for d in dicts]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = value if all(v == value for v in values) else statistics.fmean(values)
    return out


# ----------------------------------------------------------------------------------------------- rendering

def render(bs: BaselineSet, fmt: str) -> str:
    """The baselines in one of the `bench score` formats, one row per baseline."""
    if fmt == "json":
        return json.dumps(bs.to_json(), indent=2, ensure_ascii=False)
    header, rows = _rows(bs)
    notes = _notes(bs)
    if fmt == "table":
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        line = lambda cells: "  ".join(c.ljust(w) if i in (0, len(cells) - 1) else c.rjust(w)  # noqa: E731
                                       for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()
        text = [f"MER-UniBench {bs.spec.title} ({bs.spec.key}: {bs.spec.task}, {bs.first.n_labels} labelled "
                "samples): reference baselines", f"protocol: {bs.first.protocol_note}", "",
                line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows), ""]
        text += [f"{b.label}: {b.description}" for b in bs.baselines] + notes
        return "\n".join(text)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["dataset", "protocol", *header, "description", "note"])
        writer.writerows([bs.spec.key, bs.first.protocol, *r, b.description, "; ".join(notes)]
                         for r, b in zip(rows, bs.baselines, strict=True))
        return buffer.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        text = "\n".join(lines) + f"\n\nDataset: {bs.spec.title}. Protocol: {bs.first.protocol}.\n\n"
        return text + "".join(f"- {n}\n" for n in [*(f"{b.label}: {b.description}" for b in bs.baselines),
                                                    *notes])
    if fmt == "latex":
        esc = _latex_escape
        lines = [r"\begin{tabular}{" + "l" + "r" * (len(header) - 2) + "l}", r"\toprule",
                 " & ".join(esc(h) for h in header) + r" \\", r"\midrule",
                 *(" & ".join(esc(c) for c in r) + r" \\" for r in rows), r"\bottomrule", r"\end{tabular}",
                 f"% dataset: {esc(bs.spec.key)}; protocol: {esc(bs.first.protocol)}"]
        if notes:
            lines.append(r"\par{\footnotesize " + r" \\ ".join(esc(n) for n in notes) + r"\par}")
        return "\n".join(lines)
    raise ValueError(f"unknown format {fmt!r}")


def _rows(bs: BaselineSet) -> tuple[list[str], list[list[str]]]:
    """Columns: baseline, every metric the scorer gave (primary first), labels per sample, warnings."""
    keys = list(dict.fromkeys([*bs.spec.metrics, *bs.baselines[0].epoch.metrics]))
    per_sample = any("labels_per_sample" in b.epoch.diagnostics for b in bs.baselines)
    header = ["baseline", *(METRIC_TITLES.get(k, k) for k in keys)]
    header += ["labels/sample"] if per_sample else []
    header.append("warnings")
    rows = []
    for b in bs.baselines:
        m, d = b.epoch.metrics, b.epoch.diagnostics
        cells = [b.label, *(pct(m[k]) if isinstance(m.get(k), int | float) else "-" for k in keys)]
        if per_sample:
            lps = d.get("labels_per_sample")
            cells.append(f"{lps:.2f}" if isinstance(lps, int | float) else "-")
        codes = [w.get("code", "") if isinstance(w, dict) else str(w)
                 for w in getattr(b.epoch, "warnings", None) or d.get("warnings", []) or []]
        cells.append(", ".join(dict.fromkeys(codes)) or "-")
        rows.append(cells)
    return header, rows


def _notes(bs: BaselineSet) -> list[str]:
    notes = []
    seeds = next((b.seeds for b in bs.baselines if b.seeds), ())
    if seeds:
        notes.append(f"random-k: k labels drawn per sample; mean over seeds {', '.join(map(str, seeds))}")
    if bs.first.n_labels != bs.spec.size:
        notes.append(f"partial ground truth: labels cover {bs.first.n_labels} of the {bs.spec.size} samples of "
                     "the full test set, so scores are not comparable with published ones")
    if bs.first.protocol.startswith("builtin"):
        notes.append(BUILTIN_CAVEAT)
    return notes


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(c, c) for c in text)
