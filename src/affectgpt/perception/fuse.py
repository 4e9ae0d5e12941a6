"""Fusion: the perceivers' readings of one clip -> its emotions, labels, sentiment and a MER-Caption-style description.

The rule is one for every clip and every dataset, and deterministic:
- emotions: the readings' probabilities averaged with their weights (a reading of weight 0 says nothing);
- labels: labels.choose_labels on those emotions (the words the text names outright only where
  labels.USE_NAMED_WORDS says so);
- sentiment: the text's sentiment head where there is text, mixed with the polarity the fused emotions imply
  (EMOTION_POLARITY), then labels.choose_sentiment;
- description: the clues in the order text, tone, face, then "Taken together, ...", which names a conflict when
  two confident modalities point to different emotions.
"""

from __future__ import annotations

from affectgpt.perception.base import EMOTIONS, SENTIMENTS, Clue, Perception, Reading, Scene, normalised

EMOTION_POLARITY: dict[str, str] = {"neutral": "neutral", "angry": "negative", "happy": "positive", "sad": "negative",
                                    "worried": "negative", "surprise": "neutral"}
"""The sentiment each emotion class implies, used where no text sentiment is available (and mixed in where it is)."""

TEXT_SENTIMENT_SHARE = 0.9
"""How much the text's own sentiment head counts against the polarity of the fused emotions, when there is text.
Chosen on dev data only (CMU-MOSI and CH-SIMS val, each answered by a sentiment head that never saw its corpus,
text-only): mean WAF 78.54 at 1.0, 78.55 at 0.9, 78.07 at 0.8, 77.64 at 0.7."""

CONFLICT_MIN_WEIGHT = 0.2
"""Two readings at least this trusted whose top emotions differ are reported as a conflict."""

CONFLICT_MIN_PROBABILITY = 0.45
"""... provided each is this sure of its top emotion."""

WORDS: dict[str, str] = {"neutral": "calm", "angry": "angry", "happy": "happy", "sad": "sad",
                         "worried": "worried", "surprise": "surprised"}
"""How the description names each class."""

SECTIONS: tuple[tuple[str, str], ...] = (("speech", "In the speech, "), ("text", "In the text, "),
                                         ("voice", "The tone: "), ("face", "The face: "))
"""The description's order and each modality's opening (clues that already open with a subject keep theirs)."""


def fuse(scene: Scene, readings: dict[str, Reading]) -> Perception:
    """The answer for `scene` from its readings (see the module docstring); timings are filled in by the caller."""
    from affectgpt.perception.labels import USE_NAMED_WORDS, choose_labels, choose_sentiment

    emotions = fuse_emotions(readings.values())
    named = list(readings["text"].figures.get("named", [])) if "text" in readings and USE_NAMED_WORDS else []
    labels = choose_labels(emotions, named) if emotions or named else []
    sentiment = choose_sentiment(fuse_sentiment(readings.get("text"), emotions)) if emotions else "neutral"
    flags = sorted(set(scene.flags).union(*(r.flags for r in readings.values())))
    if not emotions:
        flags.append("no_evidence")
    return Perception(
        name=scene.name, description=describe(readings, emotions, scene.transcript), labels=labels,
        sentiment=sentiment,
        emotions=emotions, clues={m: list(r.clues) for m, r in readings.items()}, flags=flags,
        transcript=scene.transcript, transcript_source=scene.transcript_source,
        figures={m: dict(r.figures) for m, r in readings.items() if r.figures})


def fuse_emotions(readings) -> dict[str, float]:
    """The weighted mean of the readings' emotion probabilities over EMOTIONS ({} when no reading has weight)."""
    total = {c: 0.0 for c in EMOTIONS}
    weight = 0.0
    for reading in readings:
        probs = normalised(reading.emotions, EMOTIONS) if reading.emotions else {}
        if not probs or reading.weight <= 0:
            continue
        for c in EMOTIONS:
            total[c] += reading.weight * probs[c]
        weight += reading.weight
    return normalised(total, EMOTIONS) if weight > 0 else {}


def fuse_sentiment(text: Reading | None, emotions: dict[str, float]) -> dict[str, float]:
    """Sentiment probabilities: the text head's (if any, weight TEXT_SENTIMENT_SHARE) mixed with the emotions'."""
    implied = {s: 0.0 for s in SENTIMENTS}
    for c, p in emotions.items():
        implied[EMOTION_POLARITY[c]] += p
    own = normalised(text.sentiment, SENTIMENTS) if text is not None and text.weight > 0 and text.sentiment else {}
    if not own:
        return normalised(implied, SENTIMENTS)
    share = TEXT_SENTIMENT_SHARE
    return normalised({s: share * own[s] + (1 - share) * implied[s] for s in SENTIMENTS}, SENTIMENTS)


def describe(readings: dict[str, Reading], emotions: dict[str, float], transcript: str = "") -> str:
    """The English description: each modality's clues, then the conclusion (see the module docstring). A speech
    clue that quotes the transcript is left out when the text section quotes it too."""
    quoted = bool(transcript) and "text" in readings and any(transcript in c.text for c in readings["text"].clues)
    parts = []
    for modality, opening in SECTIONS:
        reading = readings.get(modality)
        clues = [c for c in reading.clues if not (modality == "speech" and quoted and transcript in c.text)] \
            if reading is not None else []
        if clues:
            parts.append(_section(opening, clues))
    parts.append(conclusion(readings, emotions))
    return " ".join(parts)


def _section(opening: str, clues: list[Clue]) -> str:
    sentences = [_sentence(c.text) for c in clues]
    first = sentences[0]
    if first.startswith(("The ", "A ", "An ", "No ", "In ", "Nothing ")):
        return " ".join(sentences)  # a clue that already says whose it is reads better without the opening
    return " ".join([opening + first[0].lower() + first[1:], *sentences[1:]])


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?", '"')) else text + "."


def conclusion(readings: dict[str, Reading], emotions: dict[str, float]) -> str:
    """'Taken together, ...': the fused top emotions, and the conflict between modalities if there is one."""
    if not emotions:
        return "Taken together, the clip gives too little evidence to say what the person feels."
    ranked = sorted(emotions.items(), key=lambda kv: (-kv[1], EMOTIONS.index(kv[0])))
    top, p = ranked[0]
    text = f"Taken together, the person most likely feels {WORDS[top]} ({p:.2f})"
    if len(ranked) > 1 and ranked[1][1] >= 0.5 * p:
        text += f", with a trace of feeling {WORDS[ranked[1][0]]} ({ranked[1][1]:.2f})"
    text += "."
    clash = conflict(readings)
    if clash:
        (m1, e1), (m2, e2) = clash
        text += (f" The modalities disagree: the {_noun(m1)} suggests {WORDS[e1]}, the {_noun(m2)} suggests "
                 f"{WORDS[e2]}, so the answer is less certain.")
    return text


def conflict(readings: dict[str, Reading]) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """The first two trusted readings (weight and top probability above the thresholds) whose top emotions
    differ, as ((modality, emotion), (modality, emotion)); None when they agree or fewer than two are trusted."""
    tops = []
    for modality, reading in readings.items():
        probs = normalised(reading.emotions, EMOTIONS) if reading.emotions else {}
        if not probs or reading.weight < CONFLICT_MIN_WEIGHT:
            continue
        top = max(EMOTIONS, key=lambda c: (probs[c], -EMOTIONS.index(c)))
        if probs[top] >= CONFLICT_MIN_PROBABILITY:
            tops.append((modality, top))
    for i, (m1, e1) in enumerate(tops):
        for m2, e2 in tops[i + 1:]:
            if e1 != e2:
                return (m1, e1), (m2, e2)
    return None


def _noun(modality: str) -> str:
    return {"text": "wording", "voice": "tone of voice", "face": "facial expression"}.get(modality, modality)
