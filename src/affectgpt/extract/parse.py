"""Parse LLM answers: "[a, b]" word lists and sentiment words. A malformed answer stays a value, never a guess.

The published files store the LLM's answer as it came, and the scorer applies its own split rule to it, so
the raw answer is always kept. These functions only classify it: a well-formed answer gives its words or its
sentiment, anything else is reported as malformed (and will be counted as such by the scorer).
"""

from __future__ import annotations

import re

from affectgpt.extract.base import SENTIMENTS, LabelResult, SentimentResult

_BRACKETED = re.compile(r"^\s*\[([^\[\]]*)\]\s*$", re.DOTALL)


def format_words(words: list[str] | tuple[str, ...]) -> str:
    """The stored form of a word list: "[happy, calm]" ("[]" when empty)."""
    return "[" + ", ".join(words) + "]"


def parse_label_answer(answer: str) -> LabelResult:
    """Classify an LLM answer to the labels prompt; the answer text is kept as is."""
    match = _BRACKETED.match(answer)
    if match is None:
        return LabelResult(None, answer, "malformed", "the answer is not one bracketed list")
    words = []
    for piece in match[1].split(","):
        word = piece.strip().strip("'\"").strip().lower()
        if word:
            words.append(word)
    return LabelResult(tuple(words), answer)


def parse_sentiment_answer(answer: str) -> SentimentResult:
    """Classify an LLM answer to the sentiment prompt: exactly one of the three words, else malformed.

    The scorer matches the whole stored answer exactly (published rule), so "Positive." is malformed here
    too; it is kept verbatim and counted by the scorer as unparseable.
    """
    if answer in SENTIMENTS:
        return SentimentResult(answer, answer)
    return SentimentResult(None, answer, "malformed", "not exactly positive, negative or neutral")
