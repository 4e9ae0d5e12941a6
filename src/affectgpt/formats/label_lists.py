"""The published label-splitting rule: label strings and lists -> word lists, sentiment words -> polarity."""

from __future__ import annotations

import math
import re
from typing import Any

# Split on commas and on both quote characters: `"['happy', 'sad']"` and `"happy, sad"` both give
# ["happy", "sad"]. Quotes are separators, so `don't` becomes ["don", "t"]: the published behaviour.
_SEPARATORS = re.compile(r"[,'\"]")


def parse_label_list(value: Any) -> list[str]:
    """Turn one label value into a list of lower-case words (shared/spec/mer-unibench.md, "Parsing").

    Accepts a string such as "[happy, relaxed]" or "happy, relaxed", a list/tuple of strings, None or NaN.
    Drops one leading "[" and one trailing "]", splits on `,` `'` `"`, strips, drops empty pieces.
    """
    if value is None:
        return []
    if isinstance(value, float) and math.isnan(value):
        return []
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    text = str(value)
    if text.startswith("["):
        text = text[1:]
    if text.endswith("]"):
        text = text[:-1]
    words = []
    for piece in _SEPARATORS.split(text):
        piece = piece.strip()
        if piece:
            words.append(piece.lower())
    return words


SENTIMENT_WORDS = {"positive": 1, "negative": -1, "neutral": 0}


def parse_sentiment(value: Any) -> int | None:
    """positive -> 1, negative -> -1, neutral -> 0; anything else -> None ("unparseable", scored as 0).

    Exact match on the whole answer, as published; None lets the scorer count unparseable answers.
    """
    if not isinstance(value, str):
        return None
    return SENTIMENT_WORDS.get(value)
