"""Fusion on hand-made readings: weighted emotions, sentiment mixing, the conflict sentence, the description's order."""

from __future__ import annotations

import pytest

from affectgpt.perception.base import EMOTIONS, Clue, Reading, Scene
from affectgpt.perception.fuse import conflict, fuse, fuse_emotions, fuse_sentiment


def one_hot(name: str, p: float) -> dict[str, float]:
    rest = (1 - p) / (len(EMOTIONS) - 1)
    return {c: (p if c == name else rest) for c in EMOTIONS}


def test_emotions_are_the_weighted_mean_and_weightless_readings_say_nothing():
    text = Reading("text", emotions={"happy": 0.6, "neutral": 0.4}, weight=0.75)
    face = Reading("face", emotions={"sad": 1.0}, weight=0.25)
    voice = Reading("voice", emotions={"angry": 1.0}, weight=0.0)  # no weight: ignored
    fused = fuse_emotions([text, face, voice])
    assert fused["happy"] == pytest.approx(0.45)
    assert fused["neutral"] == pytest.approx(0.30)
    assert fused["sad"] == pytest.approx(0.25)
    assert fused["angry"] == 0.0
    assert fuse_emotions([voice, Reading("speech")]) == {}


def test_text_sentiment_is_mixed_with_the_polarity_of_the_emotions():
    text = Reading("text", sentiment={"positive": 1.0}, weight=0.5)
    mixed = fuse_sentiment(text, {"sad": 1.0})
    assert mixed == pytest.approx({"negative": 0.1, "neutral": 0.0, "positive": 0.9})
    assert fuse_sentiment(None, {"happy": 0.5, "surprise": 0.5}) == pytest.approx(
        {"negative": 0.0, "neutral": 0.5, "positive": 0.5})


def test_two_confident_modalities_that_disagree_are_a_conflict_in_the_description():
    readings = {"text": Reading("text", emotions=one_hot("happy", 0.8), weight=0.6,
                                clues=[Clue("text", 'The person says "we won"', 0.8)]),
                "face": Reading("face", emotions=one_hot("sad", 0.7), weight=0.4,
                                clues=[Clue("face", "Looks sad throughout", 0.7)])}
    assert conflict(readings) == (("text", "happy"), ("face", "sad"))
    answer = fuse(Scene(name="c"), readings)
    assert "disagree" in answer.description and "wording suggests happy" in answer.description
    # order: text first, face after, the conclusion last
    text_at = answer.description.index("we won")
    face_at = answer.description.index("looks sad throughout")
    assert text_at < face_at < answer.description.index("Taken together")
    assert answer.backend == "perception"


def test_agreeing_or_unsure_modalities_are_no_conflict():
    agree = {"text": Reading("text", emotions=one_hot("happy", 0.8), weight=0.6),
             "face": Reading("face", emotions=one_hot("happy", 0.9), weight=0.4)}
    unsure = {"text": Reading("text", emotions=one_hot("happy", 0.8), weight=0.6),
              "face": Reading("face", emotions=one_hot("sad", 0.3), weight=0.4)}
    light = {"text": Reading("text", emotions=one_hot("happy", 0.8), weight=0.6),
             "voice": Reading("voice", emotions=one_hot("angry", 0.9), weight=0.1)}
    assert conflict(agree) is None and conflict(unsure) is None and conflict(light) is None


def test_no_evidence_gives_no_labels_a_neutral_sentiment_and_says_so():
    scene = Scene(name="silent", flags={"no_audio"})
    answer = fuse(scene, {"face": Reading("face", flags=["no_face"], clues=[Clue("face", "No face is visible.", 1.0)])})
    assert answer.labels == [] and answer.sentiment == "neutral"
    assert {"no_audio", "no_face", "no_evidence"} <= set(answer.flags)
    assert answer.description.startswith("No face is visible.")
    assert "too little evidence" in answer.description
    record = answer.to_dict()
    assert record["backend"] == "perception" and record["labels"] == [] and record["clues"]["face"][0]["text"]


def test_the_transcript_is_quoted_once_when_the_text_section_quotes_it():
    said = "We won the final!"
    speech = Reading("speech", clues=[Clue("speech", "The person speaks English for 2.0 s of the 3.0 s clip.", 0.8),
                                      Clue("speech", f'The speech recogniser hears: "{said}"', 0.8)])
    text = Reading("text", emotions=one_hot("happy", 0.8), weight=0.6,
                   clues=[Clue("text", f'In the text, the person says "{said}", which sounds happy (0.80).', 0.8)])
    answer = fuse(Scene(name="c", transcript=said, transcript_source="asr"), {"speech": speech, "text": text})
    assert answer.description.count(said) == 1 and "speaks English" in answer.description
    # without a text reading the speech clue is what carries the transcript
    alone = fuse(Scene(name="c", transcript=said, transcript_source="asr"), {"speech": speech})
    assert alone.description.count(said) == 1
