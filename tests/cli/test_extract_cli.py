"""`affectgpt extract` end to end with the OpenAI-compatible backend against a real local server:
generated text -> -openset -> -openset-sentiment -> `bench score`, with faults, retries and the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectgpt.cli import main

TEXTS = {
    "s1": "The character's emotional state is happy, excited.",
    "s2": "He shouts and slams the table; he is angry.",
    "s3": "She looks down quietly.",
}
# The fake server answers by substring rules: the labels step sees the description in the prompt,
# the sentiment step sees the bracketed list.
RULES = [("happy, excited.", "[happy, excited]"), ("slams the table", "[angry]"), ("looks down", "[]"),
         ("[happy, excited]", "positive"), ("[angry]", "negative"), ("emotional states: []", "neutral")]


@pytest.fixture
def server(llm_server):
    for contains, answer in RULES:
        llm_server.add_rule(contains, answer)
    return llm_server


def _generated(folder):
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "checkpoint_000030_loss_0.602.npz", name2reason=TEXTS)
    return folder


def _llm_args(server, cache):
    return ["--backend", "openai", "--base-url", server.base_url, "--model", "qwen", "--seed", "7",
            "--cache", str(cache), "--no-progress"]


def test_extract_then_score_chains_without_glue(server, tmp_path, capsys):
    outputs = _generated(tmp_path / "outputs")
    cache = tmp_path / "answers.sqlite"
    assert main(["extract", "labels", "--input", str(outputs), "--output", str(outputs),
                 *_llm_args(server, cache)]) == 0
    assert main(["extract", "sentiment", "--input", str(outputs), "--output", str(outputs),
                 *_llm_args(server, cache)]) == 0
    assert server.count == 6
    sent = [r.body for r in server.requests]
    assert all(b["seed"] == 7 and b["temperature"] == 0.7 and b["top_p"] == 0.8 for b in sent)
    assert all(b["repetition_penalty"] == 1.05 and b["max_tokens"] == 512 for b in sent)
    labels = tmp_path / "labels.csv"
    labels.write_text("name,label\ns1,1.5\ns2,-2.0\ns3,-0.4\n")
    out = tmp_path / "r.json"
    assert main(["bench", "score", "--dataset", "cmumosi", "--predictions", str(outputs), "--labels",
                 str(labels), "--format", "json", "-o", str(out)]) == 0
    epoch = json.loads(out.read_text())["epochs"][0]
    assert epoch["epoch"] == 30
    # s1 positive (right), s2 negative (right), s3 neutral -> counted negative (right): all correct
    assert epoch["metrics"] == {"waf": 1.0, "acc": 1.0}
    meta = json.loads((outputs / "checkpoint_000030_loss_0.602-openset.npz.extract.json").read_text())
    assert meta["extractor"]["model"] == "qwen" and meta["extractor"]["sampling"]["seed"] == 7
    assert meta["extractor"]["labels_prompt"] == "ov-labels/v1"


def test_second_run_sends_nothing(server, tmp_path, capsys):
    outputs = _generated(tmp_path / "outputs")
    cache = tmp_path / "answers.sqlite"
    args = ["extract", "labels", "--input", str(outputs), "--output", str(tmp_path / "out"),
            *_llm_args(server, cache)]
    assert main(args) == 0
    sent = server.count
    assert main([*args, "--force"]) == 0
    assert server.count == sent
    assert main(args) == 0  # output complete: skipped without asking anything
    assert "skipped" in capsys.readouterr().err and server.count == sent


def test_faults_are_survived_or_reported_per_item(server, tmp_path, capsys):
    outputs = _generated(tmp_path / "outputs")
    cache = tmp_path / "answers.sqlite"
    server.add_fault("status", status=500, first=2)  # retried
    server.add_fault("malformed", first=1)  # retried
    server.add_fault("status", status=503, contains="slams the table")  # never recovers
    args = ["extract", "labels", "--input", str(outputs), "--output", str(tmp_path / "out"),
            *_llm_args(server, cache), "--retries", "2"]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "1 failed" in err and "NOT written" in err and "s2: failed: HTTP 503" in err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    server.clear_faults()
    before = server.count
    assert main(args) == 0
    assert server.count == before + 1  # only the failed item is asked again; the others are cached


def test_malformed_answers_are_recorded_not_guessed(server, tmp_path, capsys):
    server.rules.insert(0, ("She looks down", "I think she is sad"))
    outputs = _generated(tmp_path / "outputs")
    assert main(["extract", "labels", "--input", str(outputs), "--output", str(outputs),
                 *_llm_args(server, tmp_path / "c.sqlite")]) == 0
    assert "1 malformed" in capsys.readouterr().err
    meta = json.loads((outputs / "checkpoint_000030_loss_0.602-openset.npz.extract.json").read_text())
    assert meta["problems"][0]["name"] == "s3" and meta["problems"][0]["answer"] == "I think she is sad"


def test_llm_backend_needs_its_options(tmp_path, capsys):
    outputs = _generated(tmp_path / "outputs")
    assert main(["extract", "labels", "--input", str(outputs), "--output", str(outputs),
                 "--backend", "openai", "--model", "m"]) == 2
    assert "--base-url" in capsys.readouterr().err
    assert main(["extract", "labels", "--input", str(outputs), "--output", str(outputs),
                 "--backend", "opneai"]) == 2
    assert "did you mean 'openai'" in capsys.readouterr().err


@pytest.mark.reference
def test_transformers_backend_on_the_tiny_local_model(chat_model_dir, one_torch_thread, tmp_path, capsys):
    """A random-weight model answers gibberish: the job must finish, keep every answer verbatim, mark the
    ones that are not bracketed lists as malformed, and write files the scorer reads."""
    pytest.importorskip("transformers")
    outputs = _generated(tmp_path / "outputs")
    args = ["extract", "labels", "--input", str(outputs), "--output", str(outputs), "--backend", "transformers",
            "--model", str(chat_model_dir), "--device", "cpu", "--temperature", "0", "--max-tokens", "6",
            "--cache", str(tmp_path / "c.sqlite"), "--no-progress"]
    assert main(args) == 0
    meta = json.loads((outputs / "checkpoint_000030_loss_0.602-openset.npz.extract.json").read_text())
    assert meta["items"] == 3 and meta["ok"] + meta["malformed"] == 3 and meta["failed"] == 0
    assert meta["extractor"]["backend"] == "transformers"
    assert main(["bench", "score", "--dataset", "mer2023", "--protocol", "builtin", "--predictions",
                 str(outputs / "checkpoint_000030_loss_0.602-openset.npz"), "--labels",
                 str(_labels(tmp_path)), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0


def _labels(tmp_path):
    path = tmp_path / "mer_labels.csv"
    path.write_text("name,label\ns1,happy\ns2,angry\ns3,sad\n")
    return path
