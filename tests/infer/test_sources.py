"""A checkpoint's model is built as its config.json's `base.init` says (a table, no special case in describe),
and generation stops at the answer's end marker whatever the tokenizer, without asking for its class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from affectgpt.errors import InputError
from affectgpt.infer.describe import _stops, load_model
from affectgpt.infer.sources import MODEL_SOURCES, model_source, pretrained
from affectgpt.model import checkpoint
from affectgpt.model.config import get_preset
from affectgpt.model.prompt import TARGET_END


def _checkpoint(folder: Path, base: dict) -> Path:
    folder.mkdir()
    meta = {"format": checkpoint.FORMAT, "config": get_preset("released").to_json(), "base": base}
    (folder / checkpoint.CONFIG).write_text(json.dumps(meta), encoding="utf-8")
    return folder


def test_init_picks_the_source_and_pretrained_is_the_default(tmp_path):
    from affectgpt.tiny.random_init import from_checkpoint

    assert MODEL_SOURCES.names() == ["pretrained", "random"]
    assert model_source({"llm": "/models/llm"}, tmp_path) is pretrained
    assert model_source({"init": "random", "seed": 3}, tmp_path) is from_checkpoint


def test_an_unknown_init_names_config_json_and_the_closest_value(tmp_path):
    folder = _checkpoint(tmp_path / "ckpt", {"init": "randm"})
    with pytest.raises(InputError, match="did you mean 'random'") as caught:
        load_model(folder)
    assert caught.value.path == str(folder / "config.json") and "randm" in caught.value.what


def test_the_word_tokenizer_stops_on_the_marker_id(tmp_path):
    from affectgpt.tiny.tokenizer import build_word_tokenizer

    tokenizer = build_word_tokenizer(["The person may feel sad.###", "hello ###"], tmp_path / "tokenizer")
    assert _stops(tokenizer) == {"stop_ids": [tokenizer.eos_token_id, tokenizer.get_vocab()[TARGET_END]]}
    without = build_word_tokenizer(["no marker here"], tmp_path / "plain")
    assert _stops(without) == {"stop_ids": [without.eos_token_id]}


def test_a_subword_tokenizer_also_stops_on_the_string(tiny_qwen2):
    from affectgpt.model.lm import load_tokenizer

    tokenizer = load_tokenizer(tiny_qwen2)
    stops = _stops(tokenizer)
    assert stops["stop_strings"] == [TARGET_END] and stops["tokenizer"] is tokenizer
    assert stops["stop_ids"][0] == tokenizer.eos_token_id
    assert stops["stop_ids"][1:] == ([tokenizer.get_vocab()[TARGET_END]] if TARGET_END in tokenizer.get_vocab() else [])
