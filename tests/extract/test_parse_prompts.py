"""LLM answer parsing (malformed answers stay values) and the versioned prompt templates."""

from __future__ import annotations

import pytest

from affectgpt.errors import InputError
from affectgpt.extract.parse import format_words, parse_label_answer, parse_sentiment_answer
from affectgpt.extract.prompts import OV_LABELS_V1, PROMPTS, SENTIMENT_V1, load_template


@pytest.mark.parametrize(("answer", "words"), [
    ("[happy, sad, angry]", ("happy", "sad", "angry")),
    ("  [Happy,Calm ]\n", ("happy", "calm")),
    ("['happy', \"calm\"]", ("happy", "calm")),
    ("[]", ()),
    ("[ , ]", ()),
    ("[positive mood, at ease]", ("positive mood", "at ease")),
])
def test_well_formed_label_answers(answer, words):
    result = parse_label_answer(answer)
    assert (result.status, result.words, result.answer) == ("ok", words, answer)


@pytest.mark.parametrize("answer", [
    "happy, sad",  # no brackets
    "The emotional states are [happy, sad].",  # prose around the list
    "[happy] [sad]",  # two lists
    "[happy, sad",  # cut off
    "",
])
def test_malformed_label_answers_are_kept_verbatim(answer):
    result = parse_label_answer(answer)
    assert result.status == "malformed" and result.words is None and result.answer == answer


@pytest.mark.parametrize(("answer", "label", "status"), [
    ("positive", "positive", "ok"), ("negative", "negative", "ok"), ("neutral", "neutral", "ok"),
    ("Positive", None, "malformed"), ("positive.", None, "malformed"), ("mixed", None, "malformed"),
    ("The sentiment is positive", None, "malformed"),
])
def test_sentiment_answers(answer, label, status):
    result = parse_sentiment_answer(answer)
    assert (result.label, result.status, result.answer) == (label, status, answer)


def test_format_words():
    assert format_words(["happy", "at ease"]) == "[happy, at ease]"
    assert format_words([]) == "[]"


def test_published_prompt_content():
    labels = OV_LABELS_V1.render("He smiles warmly.")
    assert "He smiles warmly." in labels and "{text}" not in labels
    assert "[happy, sad, angry]" in labels and "[]" in labels  # the two inline examples
    sentiment = SENTIMENT_V1.render("[joyful, calm]")
    assert "[joyful, calm]" in sentiment
    assert all(word in sentiment for word in ("positive", "negative", "neutral"))
    assert set(PROMPTS) == {"ov-labels/v1", "sentiment/v1"}


def test_user_template_gets_a_content_id(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("List the emotions in: {text}")
    first = load_template(path, "text")
    assert first.id.startswith("custom-text/") and first.render("x") == "List the emotions in: x"
    path.write_text("Emotions of: {text}")
    assert load_template(path, "text").id != first.id


def test_user_template_without_placeholder(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("no placeholder")
    with pytest.raises(InputError, match=r"no \{labels\} placeholder"):
        load_template(path, "labels")
