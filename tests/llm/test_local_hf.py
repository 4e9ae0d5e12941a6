"""TransformersChat on the real tiny random-weight Qwen2 checkpoint: properties of generation, not its text."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectgpt.errors import InputError
from affectgpt.llm.base import ChatRequest, ImagePart, Message, Sampling, TextPart

GREEDY = Sampling(temperature=0.0, max_tokens=8)

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def chat(chat_model_dir: Path):
    import torch

    from affectgpt.llm.local_hf import TransformersChat

    # One thread: a 64-wide model gains nothing from more, and on a busy 2-core machine torch's threads
    # contend with numpy's spinning BLAS threads (seen: 100x slower generation).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield TransformersChat(chat_model_dir, device="cpu", batch_size=3)
    finally:
        torch.set_num_threads(threads)


def ask(*texts: str, sampling: Sampling = GREEDY) -> list[ChatRequest]:
    return [ChatRequest((Message("system", "name the emotions"), Message("user", t)), sampling) for t in texts]


TEXTS = ("she smiled at last", "why would you do that to me", "ok")


def test_registry_names_the_class():
    from affectgpt.llm import BACKENDS
    from affectgpt.llm.local_hf import TransformersChat

    assert BACKENDS.get("transformers") is TransformersChat


@pytest.mark.reference
def test_greedy_is_deterministic_and_independent_of_batching(chat):
    once = chat.complete(ask(*TEXTS))
    again = chat.complete(ask(*TEXTS))
    chat.batch_size = 1
    try:
        alone = chat.complete(ask(*TEXTS))
    finally:
        chat.batch_size = 3
    assert all(c.ok and isinstance(c.text, str) for c in once)
    assert [c.text for c in once] == [c.text for c in again] == [c.text for c in alone]
    assert all(c.model == chat.model and c.seed is None and not c.cached for c in once)


@pytest.mark.reference
def test_max_tokens_bounds_the_new_tokens(chat, monkeypatch):
    new_lengths: list[int] = []
    generate = chat._model.generate

    def counting_generate(**kwargs):
        output = generate(**kwargs)
        new_lengths.append(output.shape[1] - kwargs["input_ids"].shape[1])
        return output

    monkeypatch.setattr(chat._model, "generate", counting_generate)
    results = chat.complete(ask(*TEXTS, sampling=Sampling(temperature=0.0, max_tokens=3)))
    assert all(r.ok for r in results)
    assert new_lengths and all(0 < n <= 3 for n in new_lengths)
    # the decoded text holds only new tokens: no trace of the prompt or of special tokens
    assert not any("name the emotions" in r.text or "<|im_" in r.text for r in results)


@pytest.mark.reference
def test_sampled_generation_with_a_seed_repeats(chat):
    sampling = Sampling(temperature=0.9, top_p=0.9, max_tokens=8, seed=123)
    first = chat.complete(ask(*TEXTS, sampling=sampling))
    second = chat.complete(ask(*TEXTS, sampling=sampling))
    assert [c.text for c in first] == [c.text for c in second]
    assert all(c.seed == 123 for c in first)


@pytest.mark.reference
def test_one_bad_item_fails_alone_and_results_keep_order(chat):
    requests = ask("first", "second")
    requests.insert(1, ChatRequest((Message("tool", "{}"),), GREEDY))
    requests.append(ask("other settings", sampling=Sampling(temperature=0.0, max_tokens=2))[0])
    seen: list[int] = []
    results = chat.complete(requests, lambda i, c: seen.append(i))
    assert [r.ok for r in results] == [True, False, True, True]
    assert "chat template failed" in results[1].error and "unknown role tool" in results[1].error
    assert results[0].text == chat.complete(ask("first"))[0].text
    assert sorted(seen) == [0, 1, 2, 3]


def test_a_missing_folder_is_an_input_error(tmp_path):
    from affectgpt.llm.local_hf import TransformersChat

    with pytest.raises(InputError, match="no such model folder") as caught:
        TransformersChat(tmp_path / "nowhere")
    assert caught.value.path == str(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"config\.json is missing"):
        TransformersChat(tmp_path)


@pytest.mark.reference
def test_a_tokenizer_without_chat_template_is_an_input_error(tiny_qwen2):
    from affectgpt.llm.local_hf import TransformersChat

    with pytest.raises(InputError, match="no chat template") as caught:
        TransformersChat(tiny_qwen2, device="cpu")
    assert caught.value.field == "chat_template"


@pytest.mark.reference
def test_a_failing_batch_is_retried_item_by_item(chat, monkeypatch):
    expected = [c.text for c in chat.complete(ask(*TEXTS))]
    generate = chat._model.generate

    def no_batches(**kwargs):
        if kwargs["input_ids"].shape[0] > 1:
            raise RuntimeError("out of memory")
        return generate(**kwargs)

    monkeypatch.setattr(chat._model, "generate", no_batches)
    assert [c.text for c in chat.complete(ask(*TEXTS))] == expected

    def always_fails(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(chat._model, "generate", always_fails)
    results = chat.complete(ask(*TEXTS))
    assert [r.error for r in results] == ["generation failed: RuntimeError: boom"] * 3


@pytest.mark.reference
def test_media_parts_are_refused_per_item_and_text_parts_are_joined(chat, monkeypatch):
    jpeg = bytes.fromhex("ffd8ffe0") + bytes(60) + bytes.fromhex("ffd9")  # only its magic bytes are checked here
    with_image = ChatRequest((Message("user", (TextPart("she smiled"), ImagePart(jpeg))),), GREEDY)
    as_parts = ChatRequest((Message("system", "name the emotions"),
                            Message("user", (TextPart("she smiled"), TextPart("at last")))), GREEDY)
    prompts: list[int] = []
    generate = chat._model.generate
    monkeypatch.setattr(chat._model, "generate", lambda **kw: prompts.append(kw["input_ids"].shape[0]) or
                        generate(**kw))
    refused, joined, plain = chat.complete([with_image, as_parts, *ask("she smiled\nat last")])
    assert refused.text is None
    assert refused.error == ("the transformers backend takes text only, and this request has image parts: send "
                             "it to a multimodal backend (e.g. openai with a multimodal server)")
    assert joined.ok and joined.text == plain.text
    assert prompts == [2]  # the refused item never reached the model
