"""The label rule: emotion probabilities -> the OV emotion words of an answer, and a sentiment word.

One rule for every dataset and every backend input (a clip or a transcript), deterministic:

- `neutral` is never emitted: the scorer maps it to no cluster (docs/metrics.md), so it can only cost a label;
  the non-neutral classes are ranked by probability (ties by the order of base.EMOTIONS);
- the most probable non-neutral class is always emitted;
- a further class is emitted while its probability is at least RATIO x that of the first and at least FLOOR,
  at most MAX_LABELS words in all;
- `named` words (emotion words the text names outright, found by the lexicon) come after the class words,
  within the same MAX_LABELS budget, only where the classes left room. The pipeline passes none
  (USE_NAMED_WORDS): on dev they cost more hit_precision than they gave HIT (below); they stay in the clues.

The class names are the words the official wheels know (MER2023's: `surprise` and `surprised` map alike).
The thresholds were chosen on dev data only and then frozen here. The `emotion-dev` head (MER2023 train without
its dev fold) answered the MER2023 dev fold and IEMOCAP session 4 (cross-corpus) through the text-only mode
itself (an empty transcript gets no label), scored under the official protocol, for ratio 0.4..0.8 x floor
0.10..0.20, with and without named words (benchmarks/bench_perception.py --calibrate). The rule kept is the one
with the highest HIT sum among those meeting the issue's targets on dev (MER2023 HIT >= 70 with hit_precision
>= 50; IEMOCAP HIT >= 60.54 with hit_precision >= 53.97): ratio 0.5, floor 0.15, no named words, which gave
HIT 71.27 / hit_precision 52.24 / 1.47 labels per sample on the MER2023 dev fold and 67.14 / 54.10 / 1.57 on
IEMOCAP session 4. With named words no setting met both (at 0.5 / 0.15: 71.92 / 50.66 and 67.94 / 53.60).
Test sets took no part. The region is thin: only two settings meet all four dev targets, by at most 0.34 points
(the `worst margin` column), against a standard error of about 2 points on 411 test clips. (An earlier
calibration answered rows without a transcript with the first classes of a uniform distribution, which
inflated HIT; it is superseded.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from affectgpt.perception.base import EMOTIONS

MAX_LABELS = 3
RATIO = 0.5
FLOOR = 0.15
USE_NAMED_WORDS = False  # see the module docstring
NEUTRAL = "neutral"


def choose_labels(emotions: Mapping[str, float], named: Sequence[str] = (), *, ratio: float = RATIO,
                  floor: float = FLOOR, max_labels: int = MAX_LABELS) -> list[str]:
    """The emotion words of one answer (1..max_labels words; [] only when `emotions` and `named` are empty)."""
    order = {c: i for i, c in enumerate(EMOTIONS)}
    ranked = sorted(((float(p), c) for c, p in emotions.items() if c != NEUTRAL and p == p),
                    key=lambda pc: (-pc[0], order.get(pc[1], len(order)), pc[1]))
    labels: list[str] = []
    if ranked:
        top = ranked[0][0]
        labels.append(ranked[0][1])
        for p, c in ranked[1:]:
            if len(labels) >= max_labels or p < ratio * top or p < floor:
                break
            labels.append(c)
    for word in named:
        word = word.strip().lower()
        if len(labels) >= max_labels:
            break
        if word and word != NEUTRAL and word not in labels:
            labels.append(word)
    return labels


def choose_sentiment(sentiment: Mapping[str, float]) -> str:
    """"positive" or "negative": the more probable of the two (ties: negative).

    `neutral` is never answered: the sentiment sets drop neutral ground truth and score a neutral answer as
    negative (docs/metrics.md, WAF), so its mass is left out. An empty dict gives "neutral" (nothing known).
    """
    positive = float(sentiment.get("positive", 0.0))
    negative = float(sentiment.get("negative", 0.0))
    if positive <= 0 and negative <= 0:
        return NEUTRAL
    return "positive" if positive > negative else "negative"
