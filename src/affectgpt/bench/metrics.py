"""Pure metric functions of MER-UniBench: HIT, emotion-wheel F/P/R, sentiment WAF/ACC.

Inputs are already mapped: cluster sets per sample and wheel, or numbers. No files, no globals.
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


def hit_rate(gt: Sequence[frozenset[str]], pred: Sequence[frozenset[str]]) -> WheelScore:
    """HIT for one wheel: share of samples whose ground-truth cluster is among the predicted clusters.

    Samples whose ground truth maps to nothing (every `neutral`, and e.g. `surprise` in wheel 5) are
    skipped; an empty prediction is a miss, not a skip.
    """
    hits = [1.0 if g <= p else 0.0 for g, p in zip(gt, pred, strict=True) if g]
    return WheelScore({"hit": _mean(hits)}, scored=len(hits), skipped=len(gt) - len(hits))


def wheel_fpr(gt: Sequence[frozenset[str]], pred: Sequence[frozenset[str]]) -> WheelScore:
    """Set precision/recall for one wheel, averaged over samples with a non-empty mapped ground truth.

    F = 2PR / (P + R) of the averaged P and R. Where P + R = 0 the original divides by zero and yields
    NaN; we report F = 0 there.
    """
    precisions, recalls = [], []
    for g, p in zip(gt, pred, strict=True):
        if not g:
            continue
        if p:
            common = len(g & p)
            precisions.append(common / len(p))
            recalls.append(common / len(g))
        else:
            precisions.append(0.0)
            recalls.append(0.0)
    precision, recall = _mean(precisions), _mean(recalls)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return WheelScore({"f": f, "p": precision, "r": recall}, scored=len(precisions),
                      skipped=len(gt) - len(precisions))


def mean_over_wheels(scores: Sequence[WheelScore]) -> dict[str, float]:
    """Each metric averaged over the wheels separately (so the mean F is not 2PR/(P+R) of mean P, R)."""
    keys = scores[0].values.keys()
    return {k: _mean([s.values[k] for s in scores]) for k in keys}


def sentiment_waf_acc(gt: Sequence[float], pred: Sequence[float]) -> dict[str, float]:
    """Binary sentiment WAF (support-weighted F1 of both classes) and ACC, as published.

    Samples whose ground truth is exactly 0 are dropped; both sides are binarised as `value > 0`, so a
    neutral (0) or unparseable prediction counts as negative.
    """
    pairs = [(g > 0, p > 0) for g, p in zip(gt, pred, strict=True) if g != 0]
    n = len(pairs)
    if n == 0:
        return {"waf": 0.0, "acc": 0.0}
    tp = sum(1 for g, p in pairs if g and p)
    tn = sum(1 for g, p in pairs if not g and not p)
    fp = sum(1 for g, p in pairs if not g and p)
    fn = n - tp - tn - fp
    f1_pos = _f1(tp, fp, fn)
    f1_neg = _f1(tn, fn, fp)
    support_pos, support_neg = tp + fn, tn + fp
    waf = (f1_pos * support_pos + f1_neg * support_neg) / n
    return {"waf": waf, "acc": (tp + tn) / n}


def _f1(tp: int, fp: int, fn: int) -> float:
    """F1 of one class; 0 where it is undefined (sklearn's zero_division=0 convention)."""
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0
