"""Prompts of `bench run`: the versioned templates, the subtitle sentence, the user's file and its id."""

from __future__ import annotations

import hashlib

import pytest

from affectgpt.errors import InputError
from affectgpt.harness.prompts import TASK_PROMPTS, TEMPLATES, get_prompt, prompt_from_file, render


def test_every_task_family_has_a_versioned_template():
    assert set(TASK_PROMPTS) == {"basic", "sentiment", "ov"}
    for name in TASK_PROMPTS.values():
        prompt = get_prompt(name)
        assert prompt.id == name and "/v" in name and prompt.text == TEMPLATES[name]
    assert "all possible emotional states" in get_prompt(TASK_PROMPTS["ov"]).text


def test_the_subtitle_sentence_goes_in_front_or_nothing_when_there_is_none():
    prompt = get_prompt("emotion/v1")
    with_text = render(prompt, "  I can't believe it! ")
    assert with_text == ("The subtitle of this video is: I can't believe it!\n"
                         "Please infer the person's emotional state and provide your reasoning process.")
    assert render(prompt, "") == render(prompt, "   ") == \
        "Please infer the person's emotional state and provide your reasoning process."


def test_a_users_file_is_its_own_prompt_with_a_content_hash_id(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("Describe how the person feels.\n", encoding="utf-8")
    prompt = prompt_from_file(path)
    assert prompt.id == "file:" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert prompt.text == "Describe how the person feels."
    assert render(prompt, "Hi.") == "The subtitle of this video is: Hi.\nDescribe how the person feels."
    path.write_text("Describe how the person feels!\n", encoding="utf-8")
    assert prompt_from_file(path).id != prompt.id  # one changed character, a new id


@pytest.mark.parametrize(("content", "message"), [(b"", "empty"), (b"\xff\xfe\x00bad", "not UTF-8"),
                                                  (b"x" * 70000, "larger than")])
def test_bad_prompt_files_are_input_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        prompt_from_file(path)
    assert "bad.txt" in str(caught.value)


def test_an_unknown_template_name_suggests_the_closest():
    with pytest.raises(InputError, match="emotion/v1"):
        get_prompt("emotion/v2")
