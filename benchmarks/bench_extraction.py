"""Benchmark the offline `lexicon` extractor against the published LLM extraction, on the released outputs.

For every dataset with labels and released AffectGPT outputs in ../shared/reference (mer2023, iemocapfour,
cmumosi, sims, ovmerdplus) and every epoch: extract emotion words from the generated text (`name2reason`)
with the lexicon backend (and, for sentiment sets, sentiment from those words), score them with the OFFICIAL
protocol, and print them beside the score of the released LLM extraction (`-openset` / `-openset-sentiment`
files): the primary metric both ways and the difference, and how close the word lists are:

- `set=`: share of samples whose mapped word sets (official clusters, all five wheels) equal the LLM's;
- `jac`: mean Jaccard similarity of the raw word sets (1 where both are empty);
- sentiment sets: `sent=` share of equal sentiment answers, and the WAF and ACC differences.

The same is printed for a naive baseline: the text after "emotional state is", split on commas (sentiment
from the same valence vote), and, for sentiment sets, for `vote-only`: the LLM's own word lists with the
lexicon's valence vote, which isolates the sentiment step. Targets (issue): |delta| <= 0.5 points on every
dataset-epoch; sentiment agreement >= 90% with |delta WAF| <= 1.0; >= 5,000 descriptions/s on one core.

Then the EMER long-description check: words extracted from the English reasoning of
emer/emer_v2_reason.csv, scored (official protocol, OV-MERD+ F/P/R) against labels/ovmerdplus.

    .venv/bin/python benchmarks/bench_extraction.py [--reference DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from affectgpt.bench.datasets import DATASETS, DatasetSpec
from affectgpt.bench.inputs import load_ground_truth
from affectgpt.bench.protocol import ResolvedProtocol, resolve_protocol
from affectgpt.bench.score import score_dataset
from affectgpt.extract.lexicon_extractor import LexiconExtractor
from affectgpt.formats.checkpoints import CHECKPOINT_FILE
from affectgpt.formats.label_lists import parse_label_list
from affectgpt.io.tables import read_table

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
DATASET_KEYS = ("mer2023", "iemocapfour", "cmumosi", "sims", "ovmerdplus")
TARGET_DELTA, TARGET_AGREEMENT, TARGET_WAF, TARGET_SPEED = 0.5, 0.90, 1.0, 5000
_CUE = re.compile(r"emotional state is", re.IGNORECASE)


@dataclass
class Epoch:
    """One released checkpoint of one dataset: generated text and the LLM's answers, by name."""

    key: str
    epoch: int
    stem: str  # checkpoint_<E>_loss_<x>
    texts: dict[str, str]
    llm_openset: dict[str, str]
    llm_sentiment: dict[str, str] | None


@dataclass
class Row:
    """One dataset-epoch, one extraction method, against the released LLM extraction."""

    key: str
    epoch: int
    metric: str
    llm: float
    mine: float
    set_exact: float
    jaccard: float
    sentiment_agreement: float | None = None
    delta_acc: float | None = None

    @property
    def delta(self) -> float:
        return self.mine - self.llm


def naive_answer(text: str) -> str:
    """The baseline: the text after "emotional state is", split on commas, lower-cased."""
    match = _CUE.search(text)
    body = (text[match.end():] if match else text).strip().rstrip(".")
    return "[" + ", ".join(w.strip().lower() for w in body.split(",") if w.strip()) + "]"


def load_epochs(ref: Path, key: str) -> list[Epoch]:
    """Every released checkpoint of `key` that has generated text and LLM answers."""
    folder = ref / "affectgpt-outputs" / key
    epochs = []
    for path in sorted(folder.glob("checkpoint_*.npz")):
        match = CHECKPOINT_FILE.match(path.name)
        if not match or match["kind"]:
            continue
        stem = path.name[:-len(".npz")]
        sentiment = folder / f"{stem}-openset-sentiment.npz"
        epochs.append(Epoch(key, int(match["epoch"]), stem, read_table(path).as_dict(),
                            read_table(folder / f"{stem}-openset.npz").as_dict(),
                            read_table(sentiment).as_dict() if sentiment.is_file() else None))
    return epochs


def write_answers(folder: Path, epoch: Epoch, names: Sequence[str], openset: Sequence[str],
                  sentiment: Sequence[str] | None) -> None:
    """The answers as per-epoch CSV files in the original naming, for score_dataset."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = [("-openset", "openset", openset)]
    if sentiment is not None:
        tables.append(("-openset-sentiment", "sentiment", sentiment))
    for suffix, column, values in tables:
        with open(folder / f"{epoch.stem}{suffix}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["name", column])
            writer.writerows(zip(names, values, strict=True))


def agreement(official: ResolvedProtocol, mine: Sequence[str], llm: Sequence[str]) -> tuple[float, float]:
    """(exact-match rate of the mapped word sets, mean Jaccard of the raw word sets)."""
    maps = official.maps
    exact = jaccard = 0.0
    for a, b in zip(mine, llm, strict=True):
        wa, wb = parse_label_list(a), parse_label_list(b)
        exact += maps.cluster_sets(wa) == maps.cluster_sets(wb)
        sa, sb = set(wa), set(wb)
        jaccard += len(sa & sb) / len(sa | sb) if sa | sb else 1.0
    return exact / len(mine), jaccard / len(mine)


def run_method(ref: Path, spec: DatasetSpec, epochs: list[Epoch], official: ResolvedProtocol,
               answer_of: Callable[[Epoch, str], str], extractor: LexiconExtractor, workdir: Path) -> list[Row]:
    """Word lists from `answer_of(epoch, name)`, sentiment by the extractor's vote, every epoch scored with the
    official protocol and compared with the released LLM extraction."""
    labels = ref / "labels" / spec.key
    names = list(load_ground_truth(labels, spec))
    folder = workdir / spec.key
    extras: dict[int, tuple[float, float, float | None]] = {}
    for epoch in epochs:
        openset = [answer_of(epoch, n) for n in names]
        sentiment = None
        if spec.task == "sentiment":
            sentiment = [r.label or "" for r in extractor.sentiment(openset)]
            same = sum(a == epoch.llm_sentiment[n] for a, n in zip(sentiment, names, strict=True))
        write_answers(folder, epoch, names, openset, sentiment)
        exact, jaccard = agreement(official, openset, [epoch.llm_openset[n] for n in names])
        extras[epoch.epoch] = (exact, jaccard, same / len(names) if sentiment is not None else None)
    mine = score_dataset(spec, folder, labels, official)
    llm = score_dataset(spec, ref / "affectgpt-outputs" / spec.key, labels, official)
    rows = []
    for m, r in zip(mine.epochs, llm.epochs, strict=True):
        exact, jaccard, sent = extras[m.epoch]
        acc = 100 * (m.metrics["acc"] - r.metrics["acc"]) if spec.task == "sentiment" else None
        rows.append(Row(spec.key, m.epoch, spec.primary, 100 * r.metrics[spec.primary],
                        100 * m.metrics[spec.primary], exact, jaccard, sent, acc))
    return rows


def print_rows(title: str, rows: list[Row], *, markdown: bool) -> None:
    header = ["dataset", "epoch", "metric", "LLM", title, "delta",
              "set=", "jac", "sent=", "dACC"]
    lines = [[r.key, str(r.epoch), r.metric.upper(), f"{r.llm:.2f}", f"{r.mine:.2f}", f"{r.delta:+.2f}",
              f"{r.set_exact:.3f}", f"{r.jaccard:.3f}",
              "" if r.sentiment_agreement is None else f"{r.sentiment_agreement:.3f}",
              "" if r.delta_acc is None else f"{r.delta_acc:+.2f}"] for r in rows]
    print(f"== {title} extraction vs released LLM extraction (official protocol, x100)")
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for line in lines:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
    if markdown:
        print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    print()


def summary(rows: list[Row]) -> str:
    """Mean and largest |delta| of the primary metric, mean agreement."""
    deltas = [abs(r.delta) for r in rows]
    exact, jaccard = (sum(r.set_exact for r in rows) / len(rows), sum(r.jaccard for r in rows) / len(rows))
    text = f"mean |delta| {sum(deltas) / len(deltas):.2f}, max {max(deltas):.2f}; set= {exact:.3f}, jac {jaccard:.3f}"
    sentiment = [r.sentiment_agreement for r in rows if r.sentiment_agreement is not None]
    if sentiment:
        text += f"; sentiment agreement {min(sentiment):.3f}..{max(sentiment):.3f}"
    return text


def check_targets(rows: list[Row]) -> list[str]:
    """The dataset-epochs that miss a target, one line each."""
    misses = []
    for r in rows:
        limit = TARGET_WAF if r.metric == "waf" else TARGET_DELTA
        if abs(r.delta) > limit:
            misses.append(f"{r.key} ep{r.epoch}: |delta {r.metric.upper()}| {abs(r.delta):.2f} > {limit}")
        if r.sentiment_agreement is not None and r.sentiment_agreement < TARGET_AGREEMENT:
            misses.append(f"{r.key} ep{r.epoch}: sentiment agreement {r.sentiment_agreement:.3f} < "
                          f"{TARGET_AGREEMENT}")
    return misses


def measure_speed(texts: Sequence[str]) -> tuple[float, float]:
    """Descriptions per second: all texts through a fresh extractor, and distinct texts only (no cache hits)."""
    start = time.perf_counter()
    LexiconExtractor().labels(texts)
    every = len(texts) / (time.perf_counter() - start)
    distinct = list(dict.fromkeys(texts))
    start = time.perf_counter()
    LexiconExtractor().labels(distinct)
    return every, len(distinct) / (time.perf_counter() - start)


def emer_check(ref: Path, official: ResolvedProtocol, workdir: Path) -> None:
    """Long descriptions: EMER v2 English reasoning -> words -> OV-MERD+ F/P/R against its public labels."""
    source = ref / "emer" / "emer_v2_reason.csv"
    labels = ref / "labels" / "ovmerdplus"
    if not source.is_file() or not labels.is_dir():
        print(f"EMER check skipped: {source} or {labels} not found")
        return
    texts = read_table(source, ("english",)).as_dict()
    spec = DATASETS["ovmerdplus"]
    names = [n for n in load_ground_truth(labels, spec) if n in texts]
    start = time.perf_counter()
    results = LexiconExtractor().labels([texts[n] for n in names])
    speed = len(names) / (time.perf_counter() - start)
    path = workdir / "emer" / "emer_v2_reason-openset.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "openset"])
        writer.writerows((n, r.answer) for n, r in zip(names, results, strict=True))
    metrics = score_dataset(spec, path, labels, official, allow_missing=True).epochs[0].metrics
    words = sum(len(r.words or ()) for r in results) / len(results)
    print(f"== EMER long descriptions ({len(names)} English reasonings of emer_v2_reason.csv vs "
          f"labels/ovmerdplus, official protocol, x100)")
    print(f"F {100 * metrics['f']:.2f}  P {100 * metrics['p']:.2f}  R {100 * metrics['r']:.2f}  "
          f"({words:.1f} words per description; {speed:,.0f} descriptions/s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="the shared reference folder")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    args = parser.parse_args(argv)
    ref = args.reference
    if not all((ref / sub).is_dir() for sub in ("emotion_wheel", "labels", "affectgpt-outputs")):
        print(f"skipped: reference data not found at {ref} (needs emotion_wheel/, labels/, affectgpt-outputs/)")
        return 0
    official = resolve_protocol("official", ref / "emotion_wheel")
    extractor = LexiconExtractor()
    methods: dict[str, Callable[[Epoch, str], str]] = {
        "lexicon": lambda epoch, name: extractor.labels([epoch.texts[name]])[0].answer,
        "naive": lambda epoch, name: naive_answer(epoch.texts[name]),
        "vote-only": lambda epoch, name: epoch.llm_openset[name],  # sentiment sets only
    }
    rows: dict[str, list[Row]] = {method: [] for method in methods}
    texts: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in DATASET_KEYS:
            if not (ref / "affectgpt-outputs" / key).is_dir() or not (ref / "labels" / key).is_dir():
                print(f"{key}: skipped (no outputs or labels in the reference folder)")
                continue
            epochs = load_epochs(ref, key)
            texts += [t for e in epochs for t in e.texts.values()]
            for method, answer_of in methods.items():
                if method == "vote-only" and DATASETS[key].task != "sentiment":
                    continue
                rows[method] += run_method(ref, DATASETS[key], epochs, official, answer_of, extractor,
                                           Path(tmp) / method)
        for method, method_rows in rows.items():
            print_rows(method, method_rows, markdown=args.markdown)
            misses = check_targets(method_rows)
            print(f"{method}: {summary(method_rows)}")
            print(f"targets ({method}): " + ("all met" if not misses else f"{len(misses)} missed"))
            for miss in misses:
                print(f"  {miss}")
            print()
        every, distinct = measure_speed(texts)
        print(f"speed (one core): {len(texts):,} released descriptions at {every:,.0f}/s; "
              f"{len(set(texts)):,} distinct ones, cache cold, at {distinct:,.0f}/s "
              f"(target {TARGET_SPEED:,}/s)\n")
        emer_check(ref, official, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
