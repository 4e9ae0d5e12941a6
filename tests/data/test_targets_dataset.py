"""Targets and the dataset without media: task draws (hybrid, reproducible per seed/epoch/index), the question and
answer strings, encoded ids and labels, over-long samples, collate_batch."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from affectgpt.data.collate import collate_batch, skipped_in  # noqa: E402
from affectgpt.data.dataset import TrainingDataset  # noqa: E402
from affectgpt.data.sample import Sample  # noqa: E402
from affectgpt.data.targets import draw_task, question_answer  # noqa: E402
from affectgpt.errors import InputError  # noqa: E402
from affectgpt.model.config import ModelConfig  # noqa: E402
from affectgpt.model.prompt import IGNORE, QUESTIONS  # noqa: E402

TEXT_ONLY = ModelConfig(modalities=("text",))
BOTH = Sample("both", video=Path("x.mp4"), subtitle="I can't believe it.", description="She smiles widely.",
              labels=("happy", "surprised"))
LABELS_ONLY = Sample("labels-only", video=Path("y.mp4"), labels=())
DESCRIPTION_ONLY = Sample("desc-only", video=Path("z.mp4"), description="He sighs.")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    return None


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen2: Path):
    from affectgpt.model.lm import load_tokenizer

    return load_tokenizer(tiny_qwen2)


# -- targets --------------------------------------------------------------------------------------------------------
def test_question_answer_strings() -> None:
    assert question_answer(BOTH, "labels") == (
        "Please recognize all possible emotional states of the character.",
        "The character's emotional state is happy, surprised.###")
    assert question_answer(BOTH, "description") == (
        "Please infer the person's emotional state and provide your reasoning process.", "She smiles widely.###")
    assert question_answer(LABELS_ONLY, "labels")[1] == "The character's emotional state is neutral.###"
    with pytest.raises(InputError, match="'labels-only' has no description"):
        question_answer(LABELS_ONLY, "description")


def test_draw_task_modes() -> None:
    rng = random.Random(0)
    assert draw_task(BOTH, "labels", rng) == "labels"
    assert {draw_task(LABELS_ONLY, "hybrid", rng) for _ in range(20)} == {"labels"}
    assert {draw_task(DESCRIPTION_ONLY, "hybrid", rng) for _ in range(20)} == {"description"}
    counts = Counter(draw_task(BOTH, "hybrid", rng) for _ in range(2000))
    assert set(counts) == {"description", "labels"} and 900 < counts["labels"] < 1100
    with pytest.raises(InputError, match="'desc-only' has no labels target"):
        draw_task(DESCRIPTION_ONLY, "labels", rng)
    with pytest.raises(InputError, match="not one of"):
        draw_task(BOTH, "captions", rng)


# -- the dataset ----------------------------------------------------------------------------------------------------
def _many(n: int) -> list[Sample]:
    return [replace(BOTH, name=f"s{i}") for i in range(n)]


def test_hybrid_draws_both_tasks_reproducibly(tokenizer) -> None:
    samples = _many(64)
    a = TrainingDataset(samples, tokenizer, TEXT_ONLY, seed=3)
    tasks = [a.task_of(i) for i in range(len(a))]
    assert 20 < tasks.count("labels") < 44
    # another instance (another rank or worker, or a resumed run): the same draws for (seed, epoch, index)
    b = TrainingDataset(samples, tokenizer, TEXT_ONLY, seed=3)
    assert [b[i]["task"] for i in range(len(b))] == tasks
    a.set_epoch(1)
    b.set_epoch(1)
    epoch1 = [a.task_of(i) for i in range(len(a))]
    assert epoch1 != tasks and epoch1 == [b.task_of(i) for i in range(len(b))]
    assert [a.task_of(i) for i in range(len(a))] == epoch1  # repeated access: the same draw
    other_seed = TrainingDataset(samples, tokenizer, TEXT_ONLY, seed=4)
    assert [other_seed.task_of(i) for i in range(len(samples))] != tasks
    # one sample over many epochs sees both questions
    one = TrainingDataset(samples[:1], tokenizer, TEXT_ONLY)
    seen = set()
    for epoch in range(20):
        one.set_epoch(epoch)
        seen.add(one[0]["task"])
    assert seen == {"description", "labels"}


def test_item_ids_and_labels(tokenizer) -> None:
    data = TrainingDataset([BOTH], tokenizer, TEXT_ONLY, task="labels")
    item = data[0]
    assert item["name"] == "both" and item["task"] == "labels" and set(item) == {"name", "task", "input_ids",
                                                                                  "labels"}
    ids, labels = item["input_ids"].tolist(), item["labels"].tolist()
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id and len(ids) == len(labels)
    start = next(i for i, v in enumerate(labels) if v != IGNORE)
    assert all(v == IGNORE for v in labels[:start]) and labels[start:] == ids[start:]
    assert tokenizer.decode(ids[start:-1]) == "The character's emotional state is happy, surprised.###"
    prompt = tokenizer.decode(ids[1:start])
    assert prompt.endswith(f"{QUESTIONS['labels']} ###Assistant: ")
    assert "<Subtitle>I can't believe it.</Subtitle>" in prompt and "<AudioHere>" not in prompt


def test_explicit_task_needs_every_sample_to_have_it(tokenizer) -> None:
    with pytest.raises(InputError, match=r"1 samples have no description \(labels-only\)"):
        TrainingDataset([BOTH, LABELS_ONLY], tokenizer, TEXT_ONLY, task="description")
    with pytest.raises(InputError, match="duplicate"):
        TrainingDataset([BOTH, BOTH], tokenizer, TEXT_ONLY)
    with pytest.raises(InputError, match="no training samples"):
        TrainingDataset([], tokenizer, TEXT_ONLY)


def test_overlong_samples(tokenizer) -> None:
    long = replace(BOTH, name="long", description="very " * 400 + "sad.")
    samples = [LABELS_ONLY, long]
    data = TrainingDataset(samples, tokenizer, TEXT_ONLY, max_length=150)
    assert data.overlong() == [("long", "description")]
    data_desc = TrainingDataset([long], tokenizer, TEXT_ONLY, task="description", max_length=150)
    with pytest.raises(InputError, match="'long'"):
        data_desc[0]
    skipping = TrainingDataset([long, LABELS_ONLY], tokenizer, TEXT_ONLY, task="hybrid", max_length=150,
                               on_overflow="skip")
    for epoch in range(50):  # an epoch where the long sample is asked for its description
        skipping.set_epoch(epoch)
        if skipping.task_of(0) == "description":
            break
    items = [skipping[0], skipping[1]]
    assert items[0] is None and skipped_in(items) == 1
    batch = collate_batch(items, tokenizer.eos_token_id)
    assert batch.input_ids.shape[0] == 1
    with pytest.raises(InputError, match="skipped"):
        collate_batch([None], tokenizer.eos_token_id)


def test_collate_batch_pads_right(tokenizer) -> None:
    data = TrainingDataset([BOTH, LABELS_ONLY], tokenizer, TEXT_ONLY, task="labels")
    items = [data[0], data[1]]
    batch = collate_batch(items, tokenizer.eos_token_id)
    n0, n1 = len(items[0]["input_ids"]), len(items[1]["input_ids"])
    assert batch.input_ids.shape == batch.labels.shape == batch.attention_mask.shape == (2, max(n0, n1))
    short = 0 if n0 < n1 else 1
    assert (batch.labels[short, min(n0, n1):] == IGNORE).all()
    assert (batch.input_ids[short, min(n0, n1):] == tokenizer.eos_token_id).all()
    assert batch.frames is None and batch.visual_features is None
    loader = torch.utils.data.DataLoader(data, batch_size=2,
                                         collate_fn=lambda xs: collate_batch(xs, tokenizer.eos_token_id))
    assert torch.equal(next(iter(loader)).input_ids, batch.input_ids)
