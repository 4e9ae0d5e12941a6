"""The extractor interface and its results: what every extraction backend returns per item."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["ok", "malformed", "unreadable", "failed"]
SENTIMENTS = ("positive", "negative", "neutral")


@dataclass(frozen=True, slots=True)
class LabelResult:
    """The emotion words found in one text.

    Attributes:
        words: the emotion words, lower-case, in order of appearance; empty when none are clearly stated;
            None when there is no usable answer (status "malformed" or "failed").
        answer: the text stored in the `-openset` file: the bracketed list (`[happy, calm]`), or for an LLM
            the raw answer exactly as it came (the published files store the LLM's answer as is).
        status: "ok"; "malformed": an answer that is not a bracketed list (kept in `answer`, never turned
            into a guess); "unreadable": a text the extractor cannot read (another script or language; the
            lexicon extractor answers `[]` and says why in `detail`); "failed": no answer at all (see `detail`).
        detail: why a result is malformed or failed.
    """

    words: tuple[str, ...] | None
    answer: str
    status: Status = "ok"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SentimentResult:
    """The sentiment of one emotion-word list.

    Attributes:
        label: "positive", "negative" or "neutral"; None when the answer is none of them.
        answer: the text stored in the `-openset-sentiment` file (the LLM's raw answer for LLM backends).
        status, detail: as in LabelResult. An answer outside the three words is "malformed", never
            silently "neutral" (the scorer counts it as unparseable).
    """

    label: str | None
    answer: str
    status: Status = "ok"
    detail: str = ""


OnLabel = Callable[[int, LabelResult], None]
OnSentiment = Callable[[int, SentimentResult], None]


class Extractor(Protocol):
    """Turns descriptions into emotion words, and emotion-word lists into sentiment."""

    name: str

    def labels(self, texts: Sequence[str], on_result: OnLabel | None = None) -> list[LabelResult]:
        """Emotion words of each text, in input order; `on_result` sees each result as it is ready."""
        ...

    def sentiment(self, openset_answers: Sequence[str],
                  on_result: OnSentiment | None = None) -> list[SentimentResult]:
        """Sentiment of each `-openset` answer (a bracketed word list as stored in the files)."""
        ...
