"""CachedBackend: a second run sends nothing, an interrupted run resumes with only what is missing."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace

import pytest

from affectgpt.errors import InputError
from affectgpt.llm.base import ChatRequest, Completion, Message, Sampling
from affectgpt.llm.cache import CachedBackend, request_key
from affectgpt.llm.openai_http import OpenAIChat


def ask(*texts: str, tag: str = "ov-labels/v1", sampling: Sampling | None = None) -> list[ChatRequest]:
    return [ChatRequest((Message("user", t),), sampling or Sampling(seed=1), tag) for t in texts]


def cached(server, path, **options) -> CachedBackend:
    return CachedBackend(OpenAIChat(server.base_url, "m", backoff=0.001, max_retries=1, **options), path)


def test_second_run_sends_nothing(llm_server, tmp_path):
    requests = ask("a", "b", "c")
    first = cached(llm_server, tmp_path / "c.sqlite").complete(requests)
    assert llm_server.count == 3 and not any(r.cached for r in first)
    seen: list[int] = []
    second = cached(llm_server, tmp_path / "c.sqlite").complete(requests, lambda i, c: seen.append(i))
    assert llm_server.count == 3
    assert [r.text for r in second] == [r.text for r in first] == ["[a]", "[b]", "[c]"]
    assert all(r.cached and r.attempts == 0 and r.model == "fake/served-model" and r.seed == 1 for r in second)
    assert seen == [0, 1, 2]


def test_only_misses_are_sent_and_in_one_call(llm_server, tmp_path):
    backend = cached(llm_server, tmp_path / "c.sqlite")
    backend.complete(ask("a", "c"))
    calls: list[int] = []
    inner = backend.backend.complete
    backend.backend.complete = lambda reqs, on_result=None: calls.append(len(reqs)) or inner(reqs, on_result)
    results = backend.complete(ask("a", "b", "c", "d"))
    assert [r.text for r in results] == ["[a]", "[b]", "[c]", "[d]"]
    assert [r.cached for r in results] == [True, False, True, False]
    assert calls == [2]
    assert sorted(llm_server.user_texts()[2:]) == ["b", "d"]


def test_identical_requests_in_one_call_are_sent_once(llm_server, tmp_path):
    seen: list[int] = []
    results = cached(llm_server, tmp_path / "c.sqlite").complete(ask("a", "b", "a"), lambda i, c: seen.append(i))
    assert [r.text for r in results] == ["[a]", "[b]", "[a]"]
    assert sorted(llm_server.user_texts()) == ["a", "b"]
    assert sorted(seen) == [0, 1, 2]


@pytest.mark.parametrize("change", ["tag", "sampling", "model", "messages"])
def test_key_covers_tag_sampling_model_and_messages(change):
    [request] = ask("a")
    other = {
        "tag": replace(request, tag="ov-labels/v2"),
        "sampling": replace(request, sampling=Sampling(seed=2)),
        "model": request,
        "messages": replace(request, messages=(Message("system", "a"),)),
    }[change]
    assert request_key("openai", "m", request) == request_key("openai", "m", ask("a")[0])
    assert request_key("openai", "m", request) != request_key("openai", "m2" if change == "model" else "m", other)
    assert request_key("openai", "m", request) != request_key("transformers", "m", request)


def test_errors_are_not_cached_and_a_rerun_retries_only_them(llm_server, tmp_path):
    llm_server.add_fault("status", status=500, contains="flaky")
    first = cached(llm_server, tmp_path / "c.sqlite").complete(ask("a", "flaky", "b"))
    assert [r.ok for r in first] == [True, False, True]
    sent_before = llm_server.count
    llm_server.clear_faults()
    second = cached(llm_server, tmp_path / "c.sqlite").complete(ask("a", "flaky", "b"))
    assert [r.text for r in second] == ["[a]", "[flaky]", "[b]"]
    assert [r.cached for r in second] == [True, False, True]
    assert llm_server.user_texts()[sent_before:] == ["flaky"]


def test_an_interrupted_run_resumes_with_only_the_unfinished_items(llm_server, tmp_path):
    texts = [f"q{i}" for i in range(12)]
    finished: list[int] = []

    def interrupt_after_four(index: int, completion: Completion) -> None:
        finished.append(index)
        if len(finished) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached(llm_server, tmp_path / "c.sqlite", concurrency=3).complete(ask(*texts), interrupt_after_four)
    sent_before = llm_server.count
    results = cached(llm_server, tmp_path / "c.sqlite", concurrency=3).complete(ask(*texts))
    assert [r.text for r in results] == [f"[{t}]" for t in texts]
    assert {i for i, r in enumerate(results) if r.cached} == set(finished)
    assert sorted(llm_server.user_texts()[sent_before:]) == sorted(t for i, t in enumerate(texts) if i not in finished)


def test_the_file_is_in_wal_mode_and_defaults_to_the_cache_root(llm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    backend = cached(llm_server, None)
    assert backend.path == tmp_path / "cache" / "llm-cache.sqlite"
    assert (backend.name, backend.model) == ("openai", "m")
    backend.complete(ask("a"))
    with closing(sqlite3.connect(backend.path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = db.execute("SELECT text, tag, backend FROM completions").fetchall()
    assert rows == [("[a]", "ov-labels/v1", "openai")]


def test_an_unusable_cache_path_is_an_input_error(llm_server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot open the LLM cache"):
        cached(llm_server, blocker / "c.sqlite").complete(ask("a"))
    assert llm_server.count == 0


_RACER = r"""
import os, sys, time
from pathlib import Path

from affectgpt.llm.base import ChatRequest, Completion, Message, Sampling
from affectgpt.llm.cache import CachedBackend


class Echo:
    name, model = "echo", "m"

    def complete(self, requests, on_result=None):
        out = []
        for index, request in enumerate(requests):
            out.append(Completion(f"[{request.messages[-1].content}]", model="m"))
            if on_result is not None:
                on_result(index, out[-1])
        return out


path, go, who = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
Path(f"{go}.ready-{who}").touch()
while not go.exists():
    time.sleep(0.0005)
requests = [ChatRequest((Message("user", text),), Sampling(seed=1), "t") for text in (who, "shared")]
first = CachedBackend(Echo(), path).complete(requests)
again = CachedBackend(Echo(), path).complete(requests)
assert [r.text for r in first] == [r.text for r in again] == [f"[{who}]", "[shared]"], (first, again)
assert all(r.cached for r in again), again
"""


def test_two_processes_opening_a_new_cache_at_once_both_succeed(tmp_path):
    """Two jobs started together on a new cache file (4 rounds at once, 8 processes released by one file): no
    "database is locked", each writes its entry and reads both back."""
    import os
    import subprocess
    import sys
    import time

    script = tmp_path / "racer.py"
    script.write_text(_RACER, encoding="utf-8")
    go = tmp_path / "go"
    rounds = 4
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"cache{r}.sqlite"), str(go), f"p{r}{who}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for r in range(rounds) for who in "ab"]
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("go.ready-*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.005)
    go.touch()
    outcomes = [(p.wait(timeout=60), p.stderr.read().decode(errors="replace")) for p in procs]
    assert all(code == 0 for code, _ in outcomes), [err for code, err in outcomes if code]
    for r in range(rounds):
        with closing(sqlite3.connect(tmp_path / f"cache{r}.sqlite")) as db:
            assert db.execute("SELECT COUNT(*) FROM completions").fetchone() == (3,)


class _LockedAtFirst:
    """A connection whose first WAL switch fails as sqlite fails it when another process creates the file."""

    failures = 0

    def __init__(self, db: sqlite3.Connection, fail: bool) -> None:
        self.db, self.fail = db, fail

    def execute(self, sql: str, *args):
        if self.fail and "journal_mode" in sql:
            type(self).failures += 1
            raise sqlite3.OperationalError("database is locked")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self.db, name)

    def __enter__(self):
        return self.db.__enter__()

    def __exit__(self, *exc):
        return self.db.__exit__(*exc)


def test_opening_is_retried_when_sqlite_answers_locked_at_once(llm_server, tmp_path, monkeypatch):
    connect = sqlite3.connect
    calls: list[int] = []

    def flaky(*args, **kwargs):
        calls.append(1)
        return _LockedAtFirst(connect(*args, **kwargs), fail=len(calls) <= 2)

    monkeypatch.setattr(sqlite3, "connect", flaky)
    results = cached(llm_server, tmp_path / "c.sqlite").complete(ask("a"))
    assert [r.text for r in results] == ["[a]"] and _LockedAtFirst.failures == 2 and len(calls) == 3


def test_a_lock_held_too_long_is_not_called_a_permission_problem(llm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_LLM_CACHE_TIMEOUT", "0.2")
    path = tmp_path / "c.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("CREATE TABLE other (a)")
        with pytest.raises(InputError) as caught:
            cached(llm_server, path).complete(ask("a"))
        holder.execute("ROLLBACK")
    message = str(caught.value)
    assert "locked" in message and "another process" in message and "writable" not in message
    assert llm_server.count == 0


def test_a_file_that_is_not_a_database(llm_server, tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="not a sqlite database") as caught:
        cached(llm_server, path).complete(ask("a"))
    assert "writable" not in str(caught.value) and "delete the file" in str(caught.value)


def test_a_bad_lock_timeout_setting(llm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_LLM_CACHE_TIMEOUT", "nan")
    with pytest.raises(InputError, match="AFFECTGPT_LLM_CACHE_TIMEOUT"):
        cached(llm_server, tmp_path / "c.sqlite").complete(ask("a"))
