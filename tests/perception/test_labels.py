"""The label rule: emotion probabilities -> at most 3 OV words, a sentiment word; words the wheels know."""

from __future__ import annotations

import pytest

from affectgpt.perception.base import EMOTIONS
from affectgpt.perception.labels import FLOOR, MAX_LABELS, RATIO, choose_labels, choose_sentiment


def test_top_class_only_when_the_rest_is_far_below() -> None:
    probs = {"neutral": 0.1, "angry": 0.7, "happy": 0.05, "sad": 0.05, "worried": 0.05, "surprise": 0.05}
    assert choose_labels(probs) == ["angry"]


def test_second_class_joins_when_close_to_the_top_and_above_the_floor() -> None:
    probs = {"neutral": 0.1, "angry": 0.4, "happy": 0.02, "sad": 0.3, "worried": 0.13, "surprise": 0.05}
    # sad: 0.3 >= 0.5 * 0.4 and >= 0.15; worried: 0.13 < 0.2
    assert choose_labels(probs) == ["angry", "sad"]


def test_the_thresholds_are_the_documented_constants() -> None:
    assert (RATIO, FLOOR, MAX_LABELS) == (0.5, 0.15, 3)
    top = 0.30
    just_in = {"angry": top, "sad": RATIO * top + 1e-9, "neutral": 1 - top - RATIO * top}
    just_out = {"angry": top, "sad": RATIO * top - 1e-3, "neutral": 1 - top - RATIO * top + 1e-3}
    assert choose_labels(just_in) == ["angry", "sad"]
    assert choose_labels(just_out) == ["angry"]
    low = {"neutral": 0.72, "angry": 0.14, "sad": 0.14}  # close to the top but under the floor
    assert choose_labels(low) == ["angry"]


def test_neutral_is_never_emitted_and_the_top_non_neutral_class_always_is() -> None:
    probs = {"neutral": 0.9, "angry": 0.02, "happy": 0.03, "sad": 0.02, "worried": 0.02, "surprise": 0.01}
    assert choose_labels(probs) == ["happy"]


def test_at_most_three_labels_even_when_all_classes_tie() -> None:
    flat = {c: 1 / len(EMOTIONS) for c in EMOTIONS}
    labels = choose_labels(flat)
    assert len(labels) == MAX_LABELS
    assert labels == ["angry", "happy", "sad"]  # ties broken by the order of EMOTIONS, neutral left out


def test_deterministic_whatever_the_dict_order() -> None:
    probs = {"surprise": 0.2, "worried": 0.2, "sad": 0.2, "happy": 0.2, "angry": 0.1, "neutral": 0.1}
    reordered = dict(reversed(list(probs.items())))
    assert choose_labels(probs) == choose_labels(reordered) == ["happy", "sad", "worried"]


def test_named_words_fill_the_remaining_budget_only() -> None:
    probs = {"neutral": 0.1, "angry": 0.7, "happy": 0.05, "sad": 0.05, "worried": 0.05, "surprise": 0.05}
    assert choose_labels(probs, ["Furious", "angry", "neutral", "annoyed", "upset"]) == \
        ["angry", "furious", "annoyed"]


def test_empty_input_gives_no_label() -> None:
    assert choose_labels({}) == []
    assert choose_labels({"neutral": 1.0}) == []


def test_sentiment_is_the_more_probable_polarity_never_neutral() -> None:
    assert choose_sentiment({"negative": 0.3, "neutral": 0.0, "positive": 0.7}) == "positive"
    assert choose_sentiment({"negative": 0.6, "positive": 0.4}) == "negative"
    assert choose_sentiment({"negative": 0.2, "neutral": 0.6, "positive": 0.2}) == "negative"  # tie
    assert choose_sentiment({}) == "neutral"


def test_every_emitted_class_word_is_known_to_the_official_wheels(wheel_dir) -> None:
    from affectgpt.bench.protocol import resolve_protocol

    maps = resolve_protocol("official", wheel_dir).maps
    for word in EMOTIONS:
        if word == "neutral":
            assert maps.bits.mask([word]) == 0  # maps to no cluster: why the rule never emits it
            continue
        assert maps.knows(word), word
        assert maps.bits.mask([word]) != 0, word
    assert maps.bits.mask(["surprise"]) == maps.bits.mask(["surprised"])
    assert maps.bits.mask(["angry"]) == maps.bits.mask(["anger"])  # IEMOCAP's ground-truth word


@pytest.mark.parametrize("seed", range(5))
def test_budget_on_random_distributions(seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    counts = []
    for p in rng.dirichlet(np.ones(len(EMOTIONS)) * 0.7, size=200):
        labels = choose_labels(dict(zip(EMOTIONS, p, strict=True)))
        assert 1 <= len(labels) <= MAX_LABELS and "neutral" not in labels
        assert len(set(labels)) == len(labels)
        counts.append(len(labels))
    assert sum(counts) / len(counts) <= 3.1
