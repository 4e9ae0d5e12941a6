"""Label parsing, table style: every documented quirk of the published split rule has its own row."""

import math

import pytest

from affectgpt.formats.label_lists import parse_label_list, parse_sentiment


@pytest.mark.parametrize(("value", "expected"), [
    ("[happy, relaxed]", ["happy", "relaxed"]),
    ("happy, relaxed", ["happy", "relaxed"]),
    ("['happy', 'relaxed']", ["happy", "relaxed"]),
    ('["Happy", "Relaxed"]', ["happy", "relaxed"]),
    ("[Angry]", ["angry"]),
    ("[]", []),
    ("", []),
    (None, []),
    (math.nan, []),
    (["happy", "Sad "], ["happy", "sad"]),
    ("[don't know]", ["don", "t know"]),  # quotes are separators: the published behaviour
    ("[[happy]]", ["[happy]"]),  # only one leading [ and one trailing ] are dropped
    ("[happy,, ,sad]", ["happy", "sad"]),  # empty pieces are dropped
    ("[positive mood, at ease]", ["positive mood", "at ease"]),  # multi-word items stay whole
    ("happy]", ["happy"]),
])
def test_parse_label_list(value, expected):
    assert parse_label_list(value) == expected


@pytest.mark.parametrize(("answer", "expected"), [
    ("positive", 1), ("negative", -1), ("neutral", 0),
    ("mixed", None), ("Positive", None), (" positive", None), ("", None), (None, None),
])
def test_parse_sentiment_is_exact(answer, expected):
    assert parse_sentiment(answer) == expected
