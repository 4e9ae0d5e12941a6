"""The offline lexicon extractor, table style: each row is a text and the emotion words a reader finds in it.

Expected values come from reading the text as a person (and, for long lists, from the documented rule: the
first four words, then only strong emotions), never from running the code.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from affectgpt.extract import EXTRACTORS
from affectgpt.extract.base import LabelResult, SentimentResult
from affectgpt.extract.lexicon_extractor import LexiconExtractor

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"

LONG_DESCRIPTION = (
    "In the video, the woman frowns and her eyes are red. She does not look happy at all. In the audio, her "
    "voice trembles, expressing sadness and disappointment. In the text, the subtitle says that her father "
    "is in hospital. Based on these clues, we can infer that she is sad, anxious and helpless."
)

LABEL_ROWS = [
    # the template of the released outputs
    ("The character's emotional state is concern, worry.", ("concern", "worry")),
    ("The character's emotional state is anxiety, frustration, dissatisfaction.",
     ("anxiety", "frustration", "dissatisfaction")),
    ("The Character's Emotional State Is Happy, Excited.", ("happy", "excited")),
    # lists with "and" / "or"
    ("She feels happy and excited.", ("happy", "excited")),
    ("He is either angry or frustrated.", ("angry", "frustrated")),
    ("The character's emotional state is tense, anxious and worried.", ("tense", "anxious", "worried")),
    # negation, several shapes
    ("He is not angry.", ()),
    ("There is no sign of fear in her voice.", ()),
    ("She speaks without anxiety.", ()),
    ("He does not seem sad.", ()),
    ("He is neither angry nor sad.", ()),
    ("She is not angry, but disappointed.", ("disappointed",)),
    ("He never looked worried, he was calm.", ("calm",)),
    ("She is not only happy but also excited.", ("happy", "excited")),
    # ... but a negated phrase that the lexicon lists as an emotion of its own is that emotion
    ("He is not happy with the result.", ("not happy",)),
    ("She shows a lack of interest.", ("lack of interest",)),
    # hedges are kept
    ("He may be slightly nervous, possibly even scared.", ("nervous", "scared")),
    ("She seems frustrated.", ("frustrated",)),
    ("The character's emotional state might be sadness or possibly regret.", ("sadness", "regret")),
    # words that are not emotions are dropped
    ("The character's emotional state is happy, important, evaluation, request.", ("happy",)),
    ("The character is discussing a serious issue in a tense atmosphere.", ()),
    # multi-word forms
    ("The character's emotional state is at ease, under pressure.", ("at ease", "under pressure")),
    ("He is looking forward to the weekend.", ("looking forward to",)),
    # curly apostrophes
    ("The character\u2019s emotional state is anxious, tense.", ("anxious", "tense")),
    ("He doesn\u2019t feel happy.", ()),
    # nothing to find
    ("", ()),
    ("We cannot recognize his emotional state.", ()),
    ("The character's emotional state is neutral.", ()),
    ("The character's emotional state is calm, neutral.", ("calm", "neutral")),
    # a long list: the first four words, then only strong emotions (sad yes, serious no)
    ("The character's emotional state is anxious, tense, worried, nervous, serious, sad.",
     ("anxious", "tense", "worried", "nervous", "sad")),
    # a long free-form description with reasoning
    (LONG_DESCRIPTION, ("sadness", "disappointment", "sad", "anxious", "helpless")),
]


@pytest.fixture(scope="module")
def extractor() -> LexiconExtractor:
    return LexiconExtractor()


@pytest.mark.parametrize(("text", "expected"), LABEL_ROWS)
def test_labels(extractor: LexiconExtractor, text: str, expected: tuple[str, ...]) -> None:
    (result,) = extractor.labels([text])
    assert result == LabelResult(expected, "[" + ", ".join(expected) + "]")


SENTIMENT_ROWS = [
    ("[happy, excited]", "positive"),
    ("[joyful]", "positive"),
    ("[sad, angry, frustrated]", "negative"),
    ("[anxiety, tension, worry]", "negative"),
    ("[]", "neutral"),
    ("", "neutral"),
    ("[neutral]", "neutral"),
    ("[important, evaluation]", "neutral"),  # no known word
    ("[Happy]", "positive"),
    ("[calm, neutral]", "neutral"),  # an explicit neutral pulls a mild word to neutral
    ("[positive, neutral]", "positive"),
    ("[excited, tense, anxious]", "negative"),  # mixed: more and later negative words
    ("[tense, anxious, relieved, happy, joyful]", "positive"),  # mixed: more and later positive words
    ("[happy, disappointed, sad, depressed]", "negative"),
]


@pytest.mark.parametrize(("answer", "expected"), SENTIMENT_ROWS)
def test_sentiment(extractor: LexiconExtractor, answer: str, expected: str) -> None:
    (result,) = extractor.sentiment([answer])
    assert result == SentimentResult(expected, expected)


def test_results_come_in_order_through_the_callback(extractor: LexiconExtractor) -> None:
    seen: list[tuple[int, object]] = []
    texts = ["He is happy.", "He is not angry.", "He is happy."]
    results = extractor.labels(texts, on_result=lambda i, r: seen.append((i, r)))
    assert [r.words for r in results] == [("happy",), (), ("happy",)]
    assert seen == list(enumerate(results))
    sentiments = extractor.sentiment([r.answer for r in results], on_result=lambda i, r: seen.append((i, r)))
    assert [s.label for s in sentiments] == ["positive", "neutral", "positive"]
    assert seen[3:] == list(enumerate(sentiments))


def test_the_registry_builds_it_offline() -> None:
    extractor = EXTRACTORS.get("lexicon")()
    assert extractor.name == "lexicon"
    assert extractor.labels(["The character's emotional state is happy."])[0].answer == "[happy]"


@pytest.mark.reference
def test_lexicon_extraction_scores_like_the_released_llm_extraction(tmp_path: Path) -> None:
    """MER2023 epoch 50: the official-protocol HIT of the lexicon's words is within 0.5 points of the
    released LLM extraction's 78.5387 (shared/spec/mer-unibench.md, reference values)."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE}")
    from affectgpt.bench.datasets import DATASETS
    from affectgpt.bench.protocol import resolve_protocol
    from affectgpt.bench.score import score_dataset
    from affectgpt.io.tables import read_table

    texts = read_table(REFERENCE / "affectgpt-outputs" / "mer2023" / "checkpoint_000050_loss_0.527.npz").as_dict()
    results = LexiconExtractor().labels(list(texts.values()))
    predictions = tmp_path / "checkpoint_000050_loss_0.527-openset.csv"
    with open(predictions, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "openset"])
        writer.writerows((name, r.answer) for name, r in zip(texts, results, strict=True))
    official = resolve_protocol("official", REFERENCE / "emotion_wheel")
    result = score_dataset(DATASETS["mer2023"], predictions, REFERENCE / "labels" / "mer2023", official)
    assert abs(100 * result.epochs[0].metrics["hit"] - 78.5387) <= 0.5


def test_text_in_another_script_or_language_is_unreadable_not_emotionless():
    from affectgpt.extract.lexicon_extractor import LexiconExtractor

    results = LexiconExtractor().labels([
        "他看起来很高兴，但也有点紧张。",
        "Dans la vidéo, il parle vite et fort, les yeux grands ouverts, puis il se tait longuement.",
        "He looks down quietly and says nothing for a while.",  # English without an emotion word: readable
        "Café au lait, he is happy.",  # a few accented letters: still Latin script
        "",
    ])
    assert [r.status for r in results] == ["unreadable", "unreadable", "ok", "ok", "ok"]
    assert results[0].detail.startswith("not in Latin script") and results[0].answer == "[]"
    assert results[1].detail.startswith("no English word")
    assert results[3].words == ("happy",)
    sentiment = LexiconExtractor().sentiment(["[高兴]", "[happy]"])
    assert [r.status for r in sentiment] == ["unreadable", "ok"]
