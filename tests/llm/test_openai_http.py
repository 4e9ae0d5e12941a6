"""OpenAIChat against the fake server: every fault is retried to success or reported per item, in order."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from affectgpt.errors import InputError
from affectgpt.llm import BACKENDS
from affectgpt.llm.base import ChatRequest, Completion, Message, Sampling
from affectgpt.llm.openai_http import OpenAIChat, retry_after_seconds

FAST = {"backoff": 0.001, "timeout": 5.0}


def ask(*texts: str, sampling: Sampling | None = None) -> list[ChatRequest]:
    return [ChatRequest((Message("system", "list emotions"), Message("user", t)), sampling or Sampling(), "t/v1")
            for t in texts]


def backend(server, **options) -> OpenAIChat:
    return OpenAIChat(server.base_url, "test-model", **{**FAST, **options})


def test_registry_names_the_class():
    assert BACKENDS.get("openai") is OpenAIChat


def test_results_follow_request_order_and_on_result_runs_in_the_calling_thread(llm_server):
    # the early items are slowest, so they finish last
    llm_server.add_fault("slow", contains="item-0", delay=0.3)
    llm_server.add_fault("slow", contains="item-1", delay=0.2)
    texts = [f"item-{i}" for i in range(8)]
    seen: list[tuple[int, Completion, int]] = []
    results = backend(llm_server, concurrency=4).complete(
        ask(*texts), on_result=lambda i, c: seen.append((i, c, threading.get_ident())))
    assert [r.text for r in results] == [f"[{t}]" for t in texts]
    assert all(r.ok and r.attempts == 1 for r in results)
    assert sorted(i for i, _, _ in seen) == list(range(8))
    assert [i for i, _, _ in seen][-2:] == [1, 0]  # reported as they finished, not in order
    assert {ident for _, _, ident in seen} == {threading.get_ident()}
    assert all(results[i] is c for i, c, _ in seen)


def test_body_carries_model_messages_sampling_seed_and_repetition_penalty(llm_server):
    sampling = Sampling(temperature=0.3, top_p=0.9, repetition_penalty=1.1, max_tokens=64, seed=7)
    [result] = backend(llm_server, api_key="sk-test", extra_body={"top_k": 20}).complete(ask("hi", sampling=sampling))
    body = llm_server.requests[0].body
    assert body == {
        "model": "test-model",
        "messages": [{"role": "system", "content": "list emotions"}, {"role": "user", "content": "hi"}],
        "temperature": 0.3, "top_p": 0.9, "max_tokens": 64, "seed": 7, "repetition_penalty": 1.1, "top_k": 20,
    }
    assert llm_server.requests[0].headers["Authorization"] == "Bearer sk-test"
    assert llm_server.requests[0].path == "/v1/chat/completions"
    assert (result.text, result.model, result.seed) == ("[hi]", "fake/served-model", 7)


def test_repetition_penalty_can_be_left_out_and_no_seed_sends_none(llm_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    [result] = backend(llm_server, send_repetition_penalty=False).complete(ask("hi"))
    body = llm_server.requests[0].body
    assert "repetition_penalty" not in body and "seed" not in body
    assert "Authorization" not in llm_server.requests[0].headers
    assert result.ok and result.seed is None


def test_api_key_defaults_to_the_environment(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    backend(llm_server).complete(ask("hi"))
    assert llm_server.requests[0].headers["Authorization"] == "Bearer sk-env"
    assert "sk-env" not in repr(backend(llm_server))


def test_concurrency_is_bounded(llm_server):
    llm_server.add_fault("slow", delay=0.05)
    results = backend(llm_server, concurrency=3).complete(ask(*(f"q{i}" for i in range(12))))
    assert all(r.ok for r in results)
    assert 1 < llm_server.max_in_flight <= 3


@pytest.mark.parametrize(("kind", "options"), [
    ("status", {"status": 500}),
    ("status", {"status": 503}),
    ("status", {"status": 429}),
    ("cut", {}),
    ("truncate", {}),
    ("malformed", {}),
    ("no_choices", {}),
    ("slow", {"delay": 1.0}),  # longer than the client's timeout
])
def test_transient_faults_are_retried_to_success(llm_server, kind, options):
    llm_server.add_fault(kind, first=2, **options)
    timeout = 0.3 if kind == "slow" else 5.0  # short only where it is the point: loaded machines are slow
    results = backend(llm_server, concurrency=1, timeout=timeout).complete(ask("a", "b"))
    assert [r.text for r in results] == ["[a]", "[b]"]
    assert [r.attempts for r in results] == [3, 1]
    assert llm_server.count == 4


def test_every_kth_failure_is_absorbed(llm_server):
    llm_server.add_fault("status", status=500, every=3)
    results = backend(llm_server, concurrency=2).complete(ask(*(f"q{i}" for i in range(9))))
    assert [r.text for r in results] == [f"[q{i}]" for i in range(9)]
    assert sum(r.attempts for r in results) == llm_server.count > 9


@pytest.mark.parametrize(("kind", "options", "error"), [
    ("status", {"status": 500, "message": "engine died"}, "HTTP 500: engine died"),
    ("cut", {}, "connection error: RemoteProtocolError"),
    ("truncate", {}, "connection error: RemoteProtocolError"),
    ("malformed", {}, "malformed response: "),
    ("no_choices", {}, "malformed response: no choices"),
    ("slow", {"delay": 1.0}, "timeout after 0.3 s"),
])
def test_persistent_faults_become_per_item_errors(llm_server, kind, options, error):
    llm_server.add_fault(kind, contains="bad", **options)
    timeout = 0.3 if kind == "slow" else 5.0
    results = backend(llm_server, max_retries=2, timeout=timeout).complete(ask("good", "bad", "good too"))
    assert [r.text for r in results] == ["[good]", None, "[good too]"]
    assert results[1].error.startswith(error), results[1].error
    assert (results[1].attempts, results[1].ok, results[1].model) == (3, False, "test-model")
    assert llm_server.user_texts().count("bad") == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried_and_carry_the_server_message(llm_server, status):
    llm_server.add_fault("status", status=status, contains="bad", message="max_tokens is too large")
    results = backend(llm_server).complete(ask("bad", "fine"))
    assert results[0].error == f"HTTP {status}: max_tokens is too large"
    assert results[0].attempts == 1
    assert results[1].text == "[fine]"
    assert llm_server.count == 2


def test_wrong_path_gives_a_404_error(llm_server):
    [result] = OpenAIChat(llm_server.base_url + "/nope", "m", **FAST).complete(ask("x"))
    assert result.error.startswith("HTTP 404: no route") and result.attempts == 1


def test_retry_after_is_honoured(llm_server):
    llm_server.add_fault("status", status=429, first=1, retry_after="0.3")
    [result] = backend(llm_server).complete(ask("x"))
    assert result.ok and result.attempts == 2
    first, second = llm_server.requests
    assert second.at - first.at >= 0.3


def test_retry_after_parsing():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("0.25") == 0.25
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: go now


def test_unreachable_server_is_reported_per_item():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = OpenAIChat(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, **FAST).complete(ask("a", "b"))
    assert all(r.error.startswith("connection error: ConnectError") and r.attempts == 2 for r in results)


def test_an_exception_in_on_result_stops_sending_and_propagates(llm_server):
    llm_server.add_fault("slow", delay=0.1)  # long enough that the callback runs before more are sent
    done: list[int] = []

    def interrupt_after_three(index: int, completion: Completion) -> None:
        done.append(index)
        if len(done) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backend(llm_server, concurrency=2).complete(ask(*(f"q{i}" for i in range(40))), interrupt_after_three)
    assert len(done) == 3
    # besides the 3 reported: at most 1 finished but unreported, and 2 in flight (which complete() waits for)
    sent = llm_server.count
    assert sent <= 3 + 1 + 2
    time.sleep(0.2)
    assert llm_server.count == sent  # nothing starts after complete() has returned


def test_no_requests_send_nothing(llm_server):
    assert backend(llm_server).complete([]) == []
    assert llm_server.count == 0


@pytest.mark.parametrize(("options", "field"), [
    ({"base_url": "127.0.0.1:8000/v1"}, "base_url"),
    ({"concurrency": 0}, "concurrency"),
    ({"max_retries": -1}, "max_retries"),
    ({"timeout": 0}, "timeout"),
])
def test_bad_options_are_input_errors(options, field):
    with pytest.raises(InputError) as caught:
        OpenAIChat(**{"base_url": "http://127.0.0.1:1/v1", "model": "m", **options})
    assert caught.value.field == field
