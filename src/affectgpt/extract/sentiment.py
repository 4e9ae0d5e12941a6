"""The valence vote: an emotion-word list -> positive / negative / neutral, from the lexicon's valences.

The published protocol asks an LLM for the sentiment of the extracted word list. On the released cmumosi and
sims answers (7 epochs, 8,001 answers) that LLM is a near-deterministic function of the *ordered* list
(99.96% of repeated lists get the same answer), so its rule can be read off the data:

- later words weigh more in a mixed list: `[excited, tense]` is negative, `[tense, excited]` positive;
- an explicit stance word (`neutral`, `objective`, valence 0) pulls the list to neutral: `[calm, neutral]`
  is neutral, `[positive, neutral]` positive;
- `[]` (and a list with no known word) is neutral, as in the published prompt's example.

The vote: a weighted mean of the valences of the words the lexicon knows (unknown words are ignored), word i
of n weighing (1 + RECENCY * i / (n - 1)), times ZERO_WEIGHT for a valence-0 word; |mean| < NEUTRAL_BAND
is neutral. The three constants were chosen on those answers (grid: RECENCY 0.5..2, ZERO_WEIGHT 1..4,
NEUTRAL_BAND 0.02..0.1): positive-vs-not agreement 96.7% (cmumosi) and 96.1% (sims), three-way 94.2% / 94.3%,
on the lexicon extractor's own word lists (benchmarks/bench_extraction.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from affectgpt.lexicon.builtin import Lexicon

RECENCY = 1.0
ZERO_WEIGHT = 4.0
NEUTRAL_BAND = 0.05


def valence_vote(words: Sequence[str], lexicon: Lexicon) -> str:
    """"positive", "negative" or "neutral" for a word list (surface forms, lower-case)."""
    values = [v for v in map(lexicon.valence, words) if v is not None]
    if not values:
        return "neutral"
    last = len(values) - 1
    total = weights = 0.0
    for i, value in enumerate(values):
        weight = 1.0 + RECENCY * (i / last if last else 1.0)
        if value == 0:
            weight *= ZERO_WEIGHT
        total += weight * value
        weights += weight
    mean = total / weights
    if abs(mean) < NEUTRAL_BAND:
        return "neutral"
    return "positive" if mean > 0 else "negative"
