"""Building an extractor from options: only the chosen backend is loaded, and bad options are named."""

from __future__ import annotations

import pytest

from affectgpt.errors import InputError
from affectgpt.extract.build import ExtractorOptions, build_extractor
from affectgpt.extract.lexicon_extractor import LexiconExtractor


def test_the_default_is_the_offline_lexicon():
    assert isinstance(build_extractor(ExtractorOptions()), LexiconExtractor)


@pytest.mark.parametrize(("options", "field", "message"), [
    (ExtractorOptions(backend="opneai"), "extraction backend", "unknown extraction backend 'opneai'"),
    (ExtractorOptions(backend="openai"), "--model", "the openai backend needs --model"),
    (ExtractorOptions(backend="transformers"), "--model", "the transformers backend needs --model"),
    (ExtractorOptions(backend="openai", model="m"), "--base-url", "the openai backend needs --base-url"),
    (ExtractorOptions(backend="openai", model="m", base_url="http://127.0.0.1:1/v1", top_p=0),
     "sampling", "top_p"),
])
def test_bad_options_are_input_errors(options, field, message):
    with pytest.raises(InputError, match=message) as caught:
        build_extractor(options)
    assert caught.value.field == field


def test_an_openai_extractor_records_its_settings_and_prompt(tmp_path):
    prompt = tmp_path / "p.txt"
    prompt.write_text("Which sentiment do these words carry? {labels}")
    extractor = build_extractor(ExtractorOptions(backend="openai", step="sentiment", model="qwen",
                                                 base_url="http://127.0.0.1:1/v1", seed=7, prompt=prompt,
                                                 cache=False))
    described = extractor.describe()
    assert described["model"] == "qwen" and described["sampling"]["seed"] == 7
    assert described["sentiment_prompt"] != "sentiment/v1" and described["labels_prompt"] == "ov-labels/v1"
