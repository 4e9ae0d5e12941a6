"""The high-level filter's vote: voters' ballots -> one emotion and one sentiment -> checks E and S against the
emotion and sentiment extracted from the description.

Voters (VOTERS, a Registry; each built from its config entry, called per clip with ClipInputs, returning a Ballot
with an emotion, a sentiment, both, or neither when it abstains):
- `classifier` {checkpoint}: a checkpoint of `affectgpt classifiers train` on the clip's feature file
  (`<features>/<name>.safetensors`, the stage's `features` folder); it votes on its task only (emotion or
  sentiment) and abstains when the clip has no feature file;
- `text` {heads}: the perception text classifier on the clip's subtitle (abstains without one);
- `face` {weights}: the perception facial-expression model on the probe's face crops (abstains without a face).
  It has no sentiment head: its emotion's sentiment (EMOTION_SENTIMENT; `surprise` has none) is its ballot.

Majority (`majority`): the label with the most ballots wins. A tie between the most-voted labels is broken by
the highest sum of the voters' probabilities of the tied labels (over every voter that gave probabilities);
when that is tied too (or nobody gave probabilities), the vote abstains (status "tie"). No ballot: "no_votes".

Agreement (`emotion_outcome`, `sentiment_outcome`): the vote and the description's extraction agree when they
map to the same cluster of one emotion wheel (the stage's `protocol`, default `builtin` which works offline, and
`wheel`, default the protocol's first: builtin "basic", official "wheel1"), so "joyful" agrees with "happy".
The extraction's one emotion is the first extracted word the wheel maps; an extraction of no emotion word is
"neutral" (the extractors answer [] for a neutral description), and "neutral" agrees only with "neutral".
Sentiments agree when equal. Each outcome is "agree", "disagree" or "undecided" (the vote abstained, or a word
the wheel does not map). A check (CHECKS: none, E, S, E+S) keeps a clip unless one of its outcomes is
"disagree" (or "undecided" with `undecided: drop`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.registry import Registry

CHECKS: dict[str, tuple[str, ...]] = {"none": (), "E": ("E",), "S": ("S",), "E+S": ("E", "S")}
"""A check variant -> the outcomes it requires (the paper's Table 4 rows)."""
NEUTRAL = "neutral"
EMOTION_SENTIMENT = {"happy": "positive", "angry": "negative", "sad": "negative", "worried": "negative",
                     "neutral": "neutral"}
"""The sentiment of a perception emotion class, for voters without a sentiment head."""


@dataclass(frozen=True)
class Ballot:
    """One voter's say on one clip: a label per task (None: abstains) and its probabilities, if any."""

    voter: str
    emotion: str | None = None
    sentiment: str | None = None
    emotion_probs: Mapping[str, float] = field(default_factory=dict)
    sentiment_probs: Mapping[str, float] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("emotion_probs", "sentiment_probs"):
            out[key] = {k: round(float(v), 4) for k, v in out[key].items()}
        return out


@dataclass(frozen=True)
class Decision:
    """The vote on one task: the label (None when it abstains), why, and the ballot counts."""

    label: str | None
    status: str  # "majority", "tie_broken", "tie", "no_votes"
    counts: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "status": self.status, "counts": dict(self.counts)}


def majority(ballots: Sequence[Ballot], task: str) -> Decision:
    """The majority label of `task` ("emotion" or "sentiment") over the ballots (ties: module docstring)."""
    votes = [getattr(b, task) for b in ballots if getattr(b, task)]
    counts = Counter(votes)
    if not counts:
        return Decision(None, "no_votes", {})
    top = max(counts.values())
    tied = sorted(label for label, n in counts.items() if n == top)
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    if len(tied) == 1:
        return Decision(tied[0], "majority", ordered)
    sums = {label: sum(float(getattr(b, f"{task}_probs").get(label, 0.0)) for b in ballots) for label in tied}
    best = max(sums.values())
    leaders = [label for label in tied if abs(sums[label] - best) <= 1e-9]
    if best > 0 and len(leaders) == 1:
        return Decision(leaders[0], "tie_broken", ordered)
    return Decision(None, "tie", ordered)


# -- agreement through the emotion wheels ----------------------------------------------------------------------------
def wheel_index(maps: Any, wheel: str | None) -> int:
    """The index of `wheel` in the protocol's wheels (None: the first); InputError for an unknown name."""
    if wheel is None:
        return 0
    if wheel not in maps.wheels:
        raise InputError(f"the {maps.protocol} protocol has no wheel {wheel!r}", field="wheel",
                         fix=f"choose one of {', '.join(maps.wheels)}")
    return list(maps.wheels).index(wheel)


def cluster(word: str | None, maps: Any, wheel: int) -> str | None:
    """`word`'s cluster in the wheel; "neutral" for neutral; None for a word the wheel does not map."""
    word = (word or "").strip().lower()
    if word == NEUTRAL:
        return NEUTRAL
    row = maps.clusters.get(word)
    return row[wheel] if row else None


def extracted_emotion(words: Sequence[str] | None, maps: Any, wheel: int) -> str | None:
    """The description's one emotion: the first word the wheel maps; "neutral" for no word; None otherwise."""
    if words is None:
        return None
    if not words:
        return NEUTRAL
    return next((w for w in words if cluster(w, maps, wheel) is not None), None)


def emotion_outcome(vote: str | None, extracted: str | None, maps: Any, wheel: int) -> str:
    """"agree" when both map to the same cluster, "disagree" when to different ones, else "undecided"."""
    a, b = cluster(vote, maps, wheel), cluster(extracted, maps, wheel)
    if a is None or b is None:
        return "undecided"
    return "agree" if a == b else "disagree"


def sentiment_outcome(vote: str | None, extracted: str | None) -> str:
    if not vote or not extracted:
        return "undecided"
    return "agree" if vote == extracted else "disagree"


def kept(outcomes: Mapping[str, str], check: str, undecided: str = "keep") -> bool:
    """Whether check variant `check` (CHECKS) keeps a clip with these outcomes ({"E": ..., "S": ...})."""
    bad = {"disagree", "undecided"} if undecided == "drop" else {"disagree"}
    return not any(outcomes.get(name, "undecided") in bad for name in CHECKS[check])


# -- voters ----------------------------------------------------------------------------------------------------------
@dataclass
class ClipInputs:
    """What voters read of one clip: its name, subtitle text, face crops [T, H, W, 3] (None: no face), and the
    feature folder (None: no features given)."""

    name: str
    subtitle: str = ""
    faces: Any = None
    features: Path | None = None


class ClassifierVoter:
    """A trained classifier checkpoint on the clip's feature file (see the module docstring)."""

    def __init__(self, checkpoint: str, name: str | None = None) -> None:
        from affectgpt.train.classifiers import load_classifier

        self.classifier = load_classifier(checkpoint)
        self.name = name or f"classifier:{Path(checkpoint).name}"

    def __call__(self, clip: ClipInputs) -> Ballot:
        from affectgpt.data.features import feature_file
        from affectgpt.train.classifiers import read_vectors

        if clip.features is None or not feature_file(clip.features, clip.name).is_file():
            return Ballot(self.name, note="no feature file")
        vectors, meta = read_vectors(clip.features, clip.name, self.classifier.modalities)
        self.classifier.check_features(meta, feature_file(clip.features, clip.name))
        probs = dict(zip(self.classifier.classes, self.classifier.proba(vectors)[0].tolist(), strict=True))
        label = max(probs, key=lambda c: (probs[c], c))
        task = self.classifier.task
        return Ballot(self.name, **{task: label, f"{task}_probs": probs})


class TextVoter:
    """The perception text classifier on the subtitle."""

    def __init__(self, heads: str | None = None, perceiver: Any = None, name: str = "text") -> None:
        if perceiver is None:
            from affectgpt.perception.text import TextPerceiver

            perceiver = TextPerceiver(heads)
        self.perceiver, self.name = perceiver, name

    def __call__(self, clip: ClipInputs) -> Ballot:
        if not clip.subtitle.strip():
            return Ballot(self.name, note="no subtitle")
        reading = self.perceiver.read_text(clip.subtitle)
        return _ballot(self.name, reading.emotions, reading.sentiment)


class FaceVoter:
    """The perception facial-expression model on the face crops."""

    def __init__(self, weights: str | None = None, perceiver: Any = None, name: str = "face") -> None:
        if perceiver is None:
            from affectgpt.perception.face import FacePerceiver

            perceiver = FacePerceiver(weights)
        self.perceiver, self.name = perceiver, name

    def __call__(self, clip: ClipInputs) -> Ballot:
        from affectgpt.perception.base import Scene

        if clip.faces is None or len(clip.faces) == 0:
            return Ballot(self.name, note="no face")
        reading = self.perceiver(Scene(name=clip.name, faces=clip.faces))
        if not reading.emotions:
            return Ballot(self.name, note="no face")
        top = max(reading.emotions, key=lambda c: (reading.emotions[c], c))
        mood = EMOTION_SENTIMENT.get(top)
        return Ballot(self.name, top, mood, dict(reading.emotions), {mood: 1.0} if mood else {})


def _ballot(name: str, emotions: Mapping[str, float], sentiment: Mapping[str, float]) -> Ballot:
    emotion = max(emotions, key=lambda c: (emotions[c], c)) if emotions else None
    mood = max(sentiment, key=lambda c: (sentiment[c], c)) if sentiment else None
    return Ballot(name, emotion, mood, dict(emotions), dict(sentiment))


VOTERS = Registry("voter", {
    "classifier": "affectgpt.caption.vote:ClassifierVoter",
    "text": "affectgpt.caption.vote:TextVoter",
    "face": "affectgpt.caption.vote:FaceVoter",
})
"""Voter kinds: a config entry {kind: <name>, ...its options} builds VOTERS.get(kind)(**options)."""
VOTER_OPTIONS = {"classifier": ("checkpoint", "name"), "text": ("heads", "name"), "face": ("weights", "name")}


def check_voter(index: int, spec: Any) -> None:
    """InputError for an entry that is not {kind, options of that kind} (nothing is loaded)."""
    where = f"voters.{index}"
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise InputError(f"a voter must be a mapping with a kind, got {spec!r}", field=where,
                         fix="e.g. {kind: classifier, checkpoint: clf/emo-s0} or {kind: text} or {kind: face}")
    kind = str(spec["kind"])
    try:
        VOTERS.get(kind)
    except InputError as exc:
        raise InputError(exc.what, field=f"{where}.kind", fix=exc.fix) from exc
    for key in spec:
        if key != "kind" and key not in VOTER_OPTIONS[kind]:
            raise InputError(f"unknown option {key!r} of a {kind} voter", field=f"{where}.{key}",
                             fix=f"known: {', '.join(VOTER_OPTIONS[kind])}")
    if kind == "classifier" and not spec.get("checkpoint"):
        raise InputError("a classifier voter needs its checkpoint", field=f"{where}.checkpoint",
                         fix="give the folder written by `affectgpt classifiers train`")


def build_voters(specs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The voters the config entries describe (each checked first)."""
    voters = []
    for index, spec in enumerate(specs):
        check_voter(index, spec)
        voters.append(VOTERS.get(str(spec["kind"]))(**{k: v for k, v in spec.items() if k != "kind"}))
    return voters
