"""The offline merger: acoustic clues, visual clues and subtitle (text only) -> a MER-Caption-style description.

Deterministic and model-free, so `affectgpt caption run` works on a fresh install; it reads only the three texts,
so it works as well on clues an LLM wrote as on the perception clues. The description:

1. the subtitle, quoted ("In the text, the character says: ..."), when there is one;
2. each clue text, verbatim ("Acoustic clues: ...", "Visual clues: ..."), so nothing the clue stages saw is lost;
3. per source, the emotion words it points to ("The voice points to excited."): the built-in lexicon's words in
   the text (the MER-UniBench lexicon extraction: negation-aware, so "not angry" names nothing), plus CUES, the
   few facial and vocal descriptions that name no emotion word themselves ("smiles" -> happy, "frowns" ->
   displeased, "sounds subdued" -> low), in the order the text names them;
4. "Taken together, ...": up to MAX_WORDS words, those named by more sources first (then in source order text,
   voice, face, then by position), and, when one source leans positive and another negative (the lexicon's
   valence vote), a sentence that says so; with no word at all, the state is "most likely neutral".
The fixed wording names no emotion word of its own (the lexicon extraction of a description finds only the
words of its clues and conclusion), which test_merge.py checks.
"""

from __future__ import annotations

import functools
import re

VERSION = "template-merge/v1"
MAX_WORDS = 3
SOURCES = (("text", "wording"), ("voice", "voice"), ("face", "face"))

CUES: tuple[tuple[str, str], ...] = (
    (r"\bsmil(?:e|es|ed|ing)\b|\blaugh(?:s|ed|ing)?\b|\bgrin(?:s|ning)?\b", "happy"),
    (r"\bfrown(?:s|ed|ing)?\b|\bscowl(?:s|ed|ing)?\b", "displeased"),
    (r"\bsigh(?:s|ed|ing)?\b", "tired"),
    (r"\btears\b|\bcr(?:y|ies|ied|ying)\b|\bsob(?:s|bed|bing)?\b", "sad"),
    (r"\bsounds? aroused\b", "excited"),
    (r"\bsounds? subdued\b", "low"),
)
"""Descriptions that name no emotion word -> the word they suggest (searched case-insensitively)."""


@functools.lru_cache(maxsize=1)
def _extractor():
    from affectgpt.extract.lexicon_extractor import LexiconExtractor

    return LexiconExtractor()


def emotion_words(text: str) -> list[str]:
    """The emotion words a text points to (CUES and the lexicon's words) in the order the text names them;
    "neutral" and repeats left out."""
    lowered = text.lower()
    found = [(m.start(), word) for pattern, word in CUES for m in [re.search(pattern, lowered)] if m]
    for word in _extractor().words(text) if text.strip() else ():
        at = lowered.find(word)
        found.append((at if at >= 0 else len(lowered), word))
    return [w for w in dict.fromkeys(word for _, word in sorted(found, key=lambda f: f[0])) if w != "neutral"]


def merge_description(acoustic: str, visual: str, subtitle: str) -> str:
    """The description of one clip (see the module docstring)."""
    acoustic, visual, subtitle = acoustic.strip(), visual.strip(), subtitle.strip()
    parts = []
    if subtitle:
        parts.append(f'In the text, the character says: "{subtitle}"' + ("" if subtitle[-1] in ".!?。！？" else "."))
    if acoustic:
        parts.append(f"Acoustic clues: {_sentence(acoustic)}")
    if visual:
        parts.append(f"Visual clues: {_sentence(visual)}")
    named = {"text": emotion_words(subtitle), "voice": emotion_words(acoustic), "face": emotion_words(visual)}
    for source, noun in SOURCES:
        if named[source]:
            parts.append(f"The {noun} points to {_join(named[source])}.")
    parts.append(conclusion(named))
    return " ".join(parts)


def conclusion(named: dict[str, list[str]]) -> str:
    """'Taken together, ...' from the words each source names (see the module docstring)."""
    order = [source for source, _ in SOURCES]
    count: dict[str, int] = {}
    first: dict[str, tuple[int, int]] = {}
    for rank, source in enumerate(order):
        for position, word in enumerate(named[source]):
            count[word] = count.get(word, 0) + 1
            first.setdefault(word, (rank, position))
    if not count:
        return "Taken together, none of the clues names a clear feeling, so the character's emotional state is " \
               "most likely neutral."
    top = sorted(count, key=lambda w: (-count[w], first[w]))[:MAX_WORDS]
    text = f"Taken together, the character's emotional state is most likely {_join(top)}."
    leaning = {source: _lean(named[source]) for source in order if named[source]}
    positive = [s for s in order if leaning.get(s) == "positive"]
    negative = [s for s in order if leaning.get(s) == "negative"]
    if positive and negative:
        nouns = dict(SOURCES)
        text += f" The {nouns[positive[0]]} and the {nouns[negative[0]]} point in different directions."
    return text


def _lean(words: list[str]) -> str:
    from affectgpt.extract.sentiment import valence_vote

    return valence_vote(words, _extractor().lexicon)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", '"', "。", "！", "？")) else text + "."
