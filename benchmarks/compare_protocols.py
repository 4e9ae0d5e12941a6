"""Compare the built-in protocol (package lexicon) with the official emotion-wheel protocol.

For every dataset with labels and released outputs in ../shared/reference, scores every epoch under both
protocols and prints the primary metric (x100), the difference, and the words that cause most of the
difference. Sentiment sets (cmumosi, sims) are scored from the LLM's sentiment word, which no wheel or
lexicon touches: their two columns must be identical, and the script checks that. For them it also checks
the lexicon's valences: how often the sign of the mean valence of a sample's extracted OV words agrees with
the LLM's own sentiment word.

Word attribution. For each sample and protocol, the sample's outcome is its mean over that protocol's
wheels/groupings (HIT: hit or miss; OV: precision and recall), or "skipped" where no wheel maps its ground
truth. For every sample whose outcome differs between the protocols, each ground-truth or predicted word
whose mapping status differs is charged one count (summed over all epochs):

- predicted words: `unknown-off` / `unknown-bi`: unknown to (or mapped to nothing by) the official /
  built-in protocol while the other maps it; `hits-off` / `hits-bi`: it lands on a ground-truth cluster in at
  least two more of the official / built-in wheels than of the other (e.g. `excited` is `surprised` in wheel1);
- ground-truth words: `unmapped-off` / `unmapped-bi`: mapped to nothing by that protocol only (the sample or
  that word is then skipped there); `hit-by-off` / `hit-by-bi`: its cluster is predicted in at least two more
  wheels of that protocol.

`move` is the mean change of those samples' outcome, built-in minus official (+: built-in scored higher).

    .venv/bin/python benchmarks/compare_protocols.py [--top 10] [--markdown] [--reference DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from affectgpt.bench.datasets import DATASETS, DatasetSpec
from affectgpt.bench.inputs import align, find_prediction_files, load_ground_truth, read_predictions
from affectgpt.bench.protocol import ResolvedProtocol, resolve_protocol
from affectgpt.bench.score import score_dataset
from affectgpt.formats.label_lists import parse_label_list
from affectgpt.lexicon.wheelmaps import WheelMaps

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
DATASET_KEYS = ("mer2023", "iemocapfour", "cmumosi", "sims", "ovmerdplus")


@dataclass
class Comparison:
    key: str
    metric: str
    rows: list[tuple[int | None, float, float]]  # epoch, official, builtin (x100)
    secondary: dict[str, list[tuple[float, float]]]  # metric -> per-epoch (official, builtin)
    words: list[tuple[str, str, int, float]]  # word, status, samples changed, mean signed change
    changed: int  # sample outcomes that differ, over all epochs
    samples: int  # sample outcomes compared, over all epochs
    per_wheel: dict[str, list[tuple[str, float]]]  # protocol -> (wheel, primary mean over epochs x100)
    valence_agreement: tuple[int, int] | None = None  # sentiment sets: (agreeing answers, answers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="the shared reference folder")
    parser.add_argument("--top", type=int, default=10, help="words listed per dataset and side")
    parser.add_argument("--markdown", action="store_true", help="also print the summary as a Markdown table")
    args = parser.parse_args(argv)
    ref = args.reference
    if not (ref / "emotion_wheel").is_dir() or not (ref / "labels").is_dir():
        print(f"skipped: reference data not found at {ref} (needs emotion_wheel/, labels/, affectgpt-outputs/)")
        return 0
    official = resolve_protocol("official", ref / "emotion_wheel")
    builtin = resolve_protocol("builtin")
    print(f"official: {official.maps.protocol} ({len(official.maps.clusters)} forms, "
          f"wheels {', '.join(official.maps.wheels)})")
    print(f"builtin:  {builtin.maps.protocol} ({len(builtin.maps.clusters)} forms, "
          f"groupings {', '.join(builtin.maps.wheels)})\n")
    results = []
    for key in DATASET_KEYS:
        preds, labels = ref / "affectgpt-outputs" / key, ref / "labels" / key
        if not preds.is_dir() or not labels.is_dir():
            print(f"{key}: skipped (no outputs or labels in the reference folder)\n")
            continue
        comparison = compare(DATASETS[key], preds, labels, official, builtin)
        results.append(comparison)
        print_comparison(comparison, args.top)
    print_summary(results, markdown=args.markdown)
    return 0


def compare(spec: DatasetSpec, preds: Path, labels: Path, official: ResolvedProtocol,
            builtin: ResolvedProtocol) -> Comparison:
    res_off = score_dataset(spec, preds, labels, official)
    res_bi = score_dataset(spec, preds, labels, builtin)
    rows = [(eo.epoch, 100 * eo.metrics[spec.primary], 100 * eb.metrics[spec.primary])
            for eo, eb in zip(res_off.epochs, res_bi.epochs, strict=True)]
    secondary = {m: [(100 * eo.metrics[m], 100 * eb.metrics[m])
                     for eo, eb in zip(res_off.epochs, res_bi.epochs, strict=True)]
                 for m in spec.metrics[1:]}
    per_wheel = {"official": _per_wheel(res_off.epochs, spec.primary),
                 "builtin": _per_wheel(res_bi.epochs, spec.primary)}
    if spec.task == "sentiment":
        return Comparison(spec.key, spec.primary, rows, secondary, [], 0, 0, per_wheel,
                          valence_agreement(spec, preds))
    words, changed, samples = attribute(spec, preds, labels, official.maps, builtin.maps)
    return Comparison(spec.key, spec.primary, rows, secondary, words, changed, samples, per_wheel)


def _per_wheel(epochs: Sequence, metric: str) -> list[tuple[str, float]]:
    values: dict[str, list[float]] = {}
    for epoch in epochs:
        for wheel in epoch.per_wheel:
            values.setdefault(wheel["wheel"], []).append(100 * wheel[metric])
    return [(name, _mean(v)) for name, v in values.items()]


def attribute(spec: DatasetSpec, preds: Path, labels: Path, off: WheelMaps,
              bi: WheelMaps) -> tuple[list[tuple[str, str, int, float]], int, int]:
    gt = load_ground_truth(labels, spec)
    gt_words = [parse_label_list(v) for v in gt.values()]
    counts: Counter[tuple[str, str]] = Counter()
    moves: defaultdict[tuple[str, str], float] = defaultdict(float)
    changed = samples = 0
    for pred_file in find_prediction_files(preds, spec):
        answers = align(gt, read_predictions(pred_file, spec), pred_file.path).answers
        for g_words, answer in zip(gt_words, answers, strict=True):
            p_words = parse_label_list(answer)
            o_off = outcome(off, g_words, p_words, spec.task)
            o_bi = outcome(bi, g_words, p_words, spec.task)
            samples += 1
            if o_off == o_bi:
                continue
            changed += 1
            delta = (o_bi or 0.0) - (o_off or 0.0)
            for word, status in differing_words(off, bi, g_words, p_words):
                counts[word, status] += 1
                moves[word, status] += delta
    words = [(w, s, n, moves[w, s] / n) for (w, s), n in counts.most_common()]
    return words, changed, samples


def valence_agreement(spec: DatasetSpec, preds: Path) -> tuple[int, int]:
    """How often the sign of the mean lexicon valence of a sample's OV words (the `-openset` answer) equals
    the LLM's own sentiment word (the `-openset-sentiment` answer); |mean| < 0.05 or no known word is neutral.
    A check of the lexicon's valences, which the offline extractor uses; it does not affect any score."""
    from affectgpt.lexicon.builtin import builtin_lexicon

    lexicon = builtin_lexicon()
    ov_spec = DatasetSpec(spec.key, spec.title, "ov", spec.size, spec.label_space, spec.labels)
    ov_files = {f.epoch: f for f in find_prediction_files(preds, ov_spec)}
    agree = total = 0
    for sent_file in find_prediction_files(preds, spec):
        if sent_file.epoch not in ov_files:
            continue
        words = read_predictions(ov_files[sent_file.epoch], ov_spec)
        for name, answer in read_predictions(sent_file, spec).items():
            if answer not in ("positive", "negative", "neutral") or name not in words:
                continue
            values = [v for v in map(lexicon.valence, parse_label_list(words[name])) if v is not None]
            mean = sum(values) / len(values) if values else 0.0
            mine = "neutral" if abs(mean) < 0.05 else "positive" if mean > 0 else "negative"
            total += 1
            agree += mine == answer
    return agree, total


def outcome(maps: WheelMaps, g_words: list[str], p_words: list[str], task: str) -> float | None:
    """The sample's score averaged over the wheels that score it (None: skipped in every wheel)."""
    g_sets, p_sets = maps.cluster_sets(g_words), maps.cluster_sets(p_words)
    values = []
    for g, p in zip(g_sets, p_sets, strict=True):
        if not g:
            continue
        if task == "basic":
            values.append(1.0 if g <= p else 0.0)
        else:  # one number per sample: the mean of its precision and recall
            common = len(g & p)
            values.append((common / len(p) + common / len(g)) / 2 if p else 0.0)
    return sum(values) / len(values) if values else None


def placed(maps: WheelMaps, word: str) -> bool:
    return any(c is not None for c in maps.clusters.get(word, ()))


def hit_share(maps: WheelMaps, word: str, others: list[str]) -> float:
    """Share of wheels in which `word` lands on a cluster of `others`."""
    row = maps.clusters.get(word)
    if row is None:
        return 0.0
    other_sets = maps.cluster_sets(others)
    return sum(1 for c, s in zip(row, other_sets, strict=True) if c is not None and c in s) / len(row)


def differing_words(off: WheelMaps, bi: WheelMaps, g_words: list[str],
                    p_words: list[str]) -> list[tuple[str, str]]:
    found = []
    for words, others, share_tag, unknown_tag in ((g_words, p_words, "hit-by", "unmapped"),
                                                  (p_words, g_words, "hits", "unknown")):
        for word in dict.fromkeys(words):
            in_off, in_bi = placed(off, word), placed(bi, word)
            if in_off != in_bi:
                found.append((word, f"{unknown_tag}-{'bi' if in_off else 'off'}"))
                continue
            if not in_off:
                continue
            s_off, s_bi = hit_share(off, word, others), hit_share(bi, word, others)
            if abs(s_off - s_bi) > 0.2:
                found.append((word, f"{share_tag}-{'off' if s_off > s_bi else 'bi'}"))
    return found


def print_comparison(c: Comparison, top: int) -> None:
    print(f"== {c.key} ({c.metric.upper()}, x100)")
    print(f"{'epoch':>5}  {'official':>8}  {'builtin':>8}  {'diff':>6}")
    for epoch, o, b in c.rows:
        print(f"{epoch!s:>5}  {o:8.2f}  {b:8.2f}  {b - o:+6.2f}")
    mean_o, mean_b = _mean([r[1] for r in c.rows]), _mean([r[2] for r in c.rows])
    print(f"{'mean':>5}  {mean_o:8.2f}  {mean_b:8.2f}  {mean_b - mean_o:+6.2f}")
    for metric, pairs in c.secondary.items():
        mo, mb = _mean([p[0] for p in pairs]), _mean([p[1] for p in pairs])
        print(f"  {metric.upper()} mean over epochs: official {mo:.2f}, builtin {mb:.2f} ({mb - mo:+.2f})")
    if all(abs(o - b) < 1e-9 for _, o, b in c.rows) and not c.words:
        if DATASETS[c.key].task == "sentiment":
            print("  sentiment set: scored from the extracted sentiment word; no wheel or lexicon is involved, "
                  "so both protocols give the same numbers (checked).")
        if c.valence_agreement and c.valence_agreement[1]:
            agree, total = c.valence_agreement
            print(f"  lexicon valence check (not a score): the sign of the mean valence of the OV words agrees "
                  f"with the LLM's sentiment word on {agree} of {total} answers ({100 * agree / total:.1f}%)")
        print()
        return
    for protocol, wheels in c.per_wheel.items():
        print(f"  {protocol} per wheel (mean over epochs): "
              + ", ".join(f"{name} {value:.2f}" for name, value in wheels))
    print(f"  sample outcomes that differ: {c.changed} of {c.samples} (all epochs)")
    print("  words responsible (count: changed sample outcomes they take part in, all epochs; move: mean "
          "builtin - official outcome of those samples)")
    for side, statuses in (("predicted", ("unknown", "hits-")), ("ground truth", ("unmapped", "hit-by"))):
        rows = [w for w in c.words if w[1].startswith(statuses)][:top]
        print(f"   {side} words:")
        for word, status, n, move in rows:
            print(f"    {word:<22} {status:<12} {n:5d}  move {move:+.2f}")
    print()


def print_summary(results: list[Comparison], *, markdown: bool) -> None:
    header = ["dataset", "metric", "official (mean of epochs)", "builtin", "diff",
              "max abs diff per epoch", "ep50 official", "ep50 builtin"]
    lines = []
    for c in results:
        mean_o, mean_b = _mean([r[1] for r in c.rows]), _mean([r[2] for r in c.rows])
        worst = max(abs(b - o) for _, o, b in c.rows)
        ep50 = next(((o, b) for e, o, b in c.rows if e == 50), (float("nan"), float("nan")))
        lines.append([c.key, c.metric.upper(), f"{mean_o:.2f}", f"{mean_b:.2f}", f"{mean_b - mean_o:+.2f}",
                      f"{worst:.2f}", f"{ep50[0]:.2f}", f"{ep50[1]:.2f}"])
        for metric, pairs in c.secondary.items():
            mo, mb = _mean([p[0] for p in pairs]), _mean([p[1] for p in pairs])
            worst = max(abs(p[1] - p[0]) for p in pairs)
            e50 = next(((p[0], p[1]) for (e, _, _), p in zip(c.rows, pairs, strict=True) if e == 50),
                       (float("nan"), float("nan")))
            lines.append([c.key, metric.upper(), f"{mo:.2f}", f"{mb:.2f}", f"{mb - mo:+.2f}", f"{worst:.2f}",
                          f"{e50[0]:.2f}", f"{e50[1]:.2f}"])
    print("== summary (x100)")
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in lines:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    if markdown:
        print()
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in lines:
            print("| " + " | ".join(row) + " |")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


if __name__ == "__main__":
    sys.exit(main())
