"""Pure metric functions of MER-UniBench: HIT and its precision companion, emotion-wheel F/P/R, sentiment WAF/ACC.

Inputs are already mapped. A cluster set is a bit mask (an int, see lexicon.wheelmaps.ClusterBits): `a & b`
is the intersection, `x.bit_count()` the size, 0 the empty set. `wheel` selects one wheel's bits.
No files, no globals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class WheelScore:
    """One wheel's result: the metric values and how many samples counted and were skipped."""

    values: dict[str, float]
    scored: int
    skipped: int


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def hit_rate(gt: Sequence[int], pred: Sequence[int], wheel: int = -1) -> WheelScore:
    """HIT for one wheel: share of samples whose ground-truth cluster is among the predicted clusters.

    Samples whose ground truth maps to nothing (every `neutral`, and e.g. `surprise` in wheel 5) are
    skipped; an empty prediction is a miss, not a skip.
    """
    hits = 0
    scored = 0
    for g, p in zip(gt, pred, strict=True):
        g &= wheel
        if g:
            scored += 1
            hits += (g & p) == g
    return WheelScore({"hit": hits / scored if scored else 0.0}, scored=scored, skipped=len(gt) - scored)


def hit_with_precision(gt: Sequence[int], pred: Sequence[int], wheel: int = -1,
                       candidates: int | None = None) -> WheelScore:
    """HIT for one wheel (bit-exact with hit_rate) with its precision companion and the candidate coverage.

    `candidates` are the dataset's candidate clusters: the mapped ground truth of the whole set (computed
    from `gt` when None). Per scored sample, hit_precision is the hit (0 or 1) divided by the number of
    distinct predicted clusters among the candidates, 0 when none is (the original's unreported `mscore`);
    candidate_coverage is the share of the candidates the prediction covers. Both are averaged over the
    samples HIT scores (ground truth that maps to nothing is skipped, as for HIT).
    """
    if candidates is None:
        candidates = 0
        for g in gt:
            candidates |= g
    candidates &= wheel
    n_candidates = candidates.bit_count()
    hits = 0
    scored = 0
    precision_sum = 0.0
    covered = 0
    for g, p in zip(gt, pred, strict=True):
        g &= wheel
        if g:
            scored += 1
            inside = (p & candidates).bit_count()
            covered += inside
            if (g & p) == g:
                hits += 1
                precision_sum += 1 / inside  # g is among the candidates, so inside >= 1
    values = {"hit": hits / scored if scored else 0.0,
              "hit_precision": precision_sum / scored if scored else 0.0,
              "candidate_coverage": covered / (scored * n_candidates) if scored and n_candidates else 0.0}
    return WheelScore(values, scored=scored, skipped=len(gt) - scored)


def wheel_fpr(gt: Sequence[int], pred: Sequence[int], wheel: int = -1) -> WheelScore:
    """Set precision/recall for one wheel, averaged over samples with a non-empty mapped ground truth.

    F = 2PR / (P + R) of the averaged P and R. Where P + R = 0 the original divides by zero and yields
    NaN; we report F = 0 there.
    """
    precision_sum = recall_sum = 0.0
    scored = 0
    for g, p in zip(gt, pred, strict=True):
        g &= wheel
        if not g:
            continue
        scored += 1
        p &= wheel
        if p:  # an empty prediction scores precision 0 and recall 0
            common = (g & p).bit_count()
            precision_sum += common / p.bit_count()
            recall_sum += common / g.bit_count()
    precision = precision_sum / scored if scored else 0.0
    recall = recall_sum / scored if scored else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return WheelScore({"f": f, "p": precision, "r": recall}, scored=scored, skipped=len(gt) - scored)


def mean_over_wheels(scores: Sequence[WheelScore]) -> dict[str, float]:
    """Each metric averaged over the wheels separately (so the mean F is not 2PR/(P+R) of mean P, R)."""
    keys = scores[0].values.keys()
    return {k: _mean([s.values[k] for s in scores]) for k in keys}


def sentiment_waf_acc(gt: Sequence[float], pred: Sequence[float]) -> dict[str, float]:
    """Binary sentiment WAF (support-weighted F1 of both classes) and ACC, as published.

    Samples whose ground truth is exactly 0 are dropped; both sides are binarised as `value > 0`, so a
    neutral (0) or unparseable prediction counts as negative.
    """
    tp = tn = fp = fn = 0
    for g, p in zip(gt, pred, strict=True):
        if g == 0:
            continue
        if g > 0:
            tp, fn = (tp + 1, fn) if p > 0 else (tp, fn + 1)
        else:
            fp, tn = (fp + 1, tn) if p > 0 else (fp, tn + 1)
    n = tp + tn + fp + fn
    if n == 0:
        return {"waf": 0.0, "acc": 0.0}
    waf = (_f1(tp, fp, fn) * (tp + fn) + _f1(tn, fn, fp) * (tn + fp)) / n
    return {"waf": waf, "acc": (tp + tn) / n}


def _f1(tp: int, fp: int, fn: int) -> float:
    """F1 of one class; 0 where it is undefined (sklearn's zero_division=0 convention)."""
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0
