"""The high-level vote with outcomes known by construction: unanimous, split, tied (broken by probabilities, or
abstaining), abstentions; agreement through the emotion wheels ("joyful" agrees with "happy"); the E, S and E+S
decisions against a hand-computed table; the voter table."""

from __future__ import annotations

import numpy as np
import pytest

from affectgpt.bench.protocol import resolve_protocol
from affectgpt.caption.vote import (
    CHECKS,
    VOTERS,
    Ballot,
    ClipInputs,
    FaceVoter,
    TextVoter,
    build_voters,
    check_voter,
    emotion_outcome,
    extracted_emotion,
    kept,
    majority,
    sentiment_outcome,
)
from affectgpt.errors import InputError
from affectgpt.perception.base import Reading

MAPS = resolve_protocol("builtin").maps


def b(emotion=None, sentiment=None, ep=None, sp=None, name="v"):
    return Ballot(name, emotion, sentiment, ep or {}, sp or {})


def test_unanimous_split_and_abstentions():
    assert majority([b("happy"), b("happy"), b("happy")], "emotion").label == "happy"
    split = majority([b("happy"), b("sad"), b("happy"), b(None), b(None)], "emotion")
    assert (split.label, split.status, dict(split.counts)) == ("happy", "majority", {"happy": 2, "sad": 1})
    assert majority([b(None, "positive"), b(None)], "emotion").status == "no_votes"
    assert majority([], "sentiment").label is None


def test_ties_are_broken_by_summed_probability_else_abstain():
    tied = [b("happy", ep={"happy": 0.6, "sad": 0.4}), b("sad", ep={"sad": 0.9, "happy": 0.1}),
            b(None, ep={"happy": 0.5, "sad": 0.1})]  # an abstaining voter's probabilities count too
    # one ballot each; summed probabilities: happy 0.6 + 0.1 + 0.5 = 1.2, sad 0.4 + 0.9 + 0.1 = 1.4 -> sad
    decision = majority(tied, "emotion")
    assert (decision.label, decision.status) == ("sad", "tie_broken")
    even = [b("happy", ep={"happy": 0.7, "sad": 0.3}), b("sad", ep={"sad": 0.7, "happy": 0.3})]
    assert (majority(even, "emotion").label, majority(even, "emotion").status) == (None, "tie")
    assert majority([b(sentiment="positive"), b(sentiment="negative")], "sentiment").status == "tie"


def test_wheel_mapped_agreement():
    assert emotion_outcome("happy", "joyful", MAPS, 0) == "agree"
    assert emotion_outcome("worried", "anxious", MAPS, 0) == "agree"
    assert emotion_outcome("happy", "sad", MAPS, 0) == "disagree"
    assert emotion_outcome("neutral", "neutral", MAPS, 0) == "agree"
    assert emotion_outcome("neutral", "happy", MAPS, 0) == "disagree"
    assert emotion_outcome(None, "happy", MAPS, 0) == "undecided"
    assert emotion_outcome("happy", "flibbertigibbet", MAPS, 0) == "undecided"
    assert extracted_emotion(["important", "joyful", "sad"], MAPS, 0) == "joyful"
    assert extracted_emotion([], MAPS, 0) == "neutral" and extracted_emotion(None, MAPS, 0) is None
    assert sentiment_outcome("positive", "positive") == "agree"
    assert sentiment_outcome("positive", "negative") == "disagree"
    assert sentiment_outcome(None, "negative") == "undecided"


# (E outcome, S outcome) -> kept under none, E, S, E+S; with undecided: keep, then with undecided: drop
TABLE = [
    (("agree", "agree"), (True, True, True, True), (True, True, True, True)),
    (("agree", "disagree"), (True, True, False, False), (True, True, False, False)),
    (("disagree", "agree"), (True, False, True, False), (True, False, True, False)),
    (("disagree", "disagree"), (True, False, False, False), (True, False, False, False)),
    (("undecided", "agree"), (True, True, True, True), (True, False, True, False)),
    (("agree", "undecided"), (True, True, True, True), (True, True, False, False)),
]


@pytest.mark.parametrize(("outcomes", "keep", "drop"), TABLE)
def test_check_decisions_match_the_hand_computed_table(outcomes, keep, drop):
    given = {"E": outcomes[0], "S": outcomes[1]}
    assert tuple(kept(given, c) for c in CHECKS) == keep
    assert tuple(kept(given, c, "drop") for c in CHECKS) == drop


class FakeText:
    def read_text(self, text):
        return Reading("text", emotions={"happy": 0.7, "sad": 0.3}, sentiment={"positive": 0.8, "negative": 0.2})


class FakeFace:
    def __call__(self, scene):
        assert scene.faces.shape == (2, 8, 8, 3)
        return Reading("face", emotions={"surprise": 0.6, "happy": 0.4})


def test_perception_voters_vote_or_abstain():
    text, face = TextVoter(perceiver=FakeText()), FaceVoter(perceiver=FakeFace())
    clip = ClipInputs("c", subtitle="I got the job!", faces=np.zeros((2, 8, 8, 3), np.uint8))
    assert (text(clip).emotion, text(clip).sentiment) == ("happy", "positive")
    assert (face(clip).emotion, face(clip).sentiment) == ("surprise", None)  # surprise has no sentiment
    bare = ClipInputs("c")
    assert text(bare).emotion is None and text(bare).note == "no subtitle"
    assert face(bare).emotion is None and face(bare).note == "no face"


def test_the_real_face_model_votes_on_crops():
    ballot = FaceVoter()(ClipInputs("c", faces=np.full((2, 64, 64, 3), 128, np.uint8)))
    assert ballot.emotion in {"neutral", "angry", "happy", "sad", "worried", "surprise"}


@pytest.mark.parametrize("kind", VOTERS.names())
def test_every_voter_kind_resolves_and_checks_its_options(kind):
    assert callable(VOTERS.get(kind))
    spec = {"kind": kind, **({"checkpoint": "x"} if kind == "classifier" else {})}
    check_voter(0, spec)
    with pytest.raises(InputError, match="unknown option"):
        check_voter(0, {**spec, "bogus": 1})


def test_bad_voter_entries():
    with pytest.raises(InputError, match="did you mean 'face'"):
        check_voter(0, {"kind": "fase"})
    with pytest.raises(InputError, match="needs its checkpoint"):
        build_voters([{"kind": "classifier"}])
    with pytest.raises(InputError, match="mapping with a kind"):
        check_voter(1, "text")
