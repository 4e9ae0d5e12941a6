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


# --- text the lexicon cannot read (issue 13 C.1) -------------------------------------------------------------

def _bilingual(reference_dir, tmp_path, count=40):
    """The first `count` rows of the real EMER reasonings, name,chinese,english (long descriptions)."""
    import csv

    source = reference_dir / "emer" / "emer_v2_reason.csv"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:count]
    path = tmp_path / "emer.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "chinese", "english"])
        writer.writerows((r["name"], r["chinese"], r["english"]) for r in rows)
    return path, rows


def _name_text(path, rows, column):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "text"])
        writer.writerows((r["name"], r[column]) for r in rows)
    return path


def test_chinese_text_is_reported_and_fails_the_file(reference_dir, tmp_path, capsys):
    """The real Chinese EMER reasonings gave `[]` for every item and "40 ok": now each file counts the texts the
    lexicon cannot read, warns once, and a file that is mostly unreadable is not written (exit 3)."""
    _, rows = _bilingual(reference_dir, tmp_path)
    source = _name_text(tmp_path / "zh.csv", rows, "chinese")
    out = tmp_path / "zh-openset.csv"
    assert main(["extract", "labels", "--input", str(source), "--output", str(out), "--format", "csv",
                 "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "40 of 40 texts" in err and "not in Latin script" in err
    assert "NOT written" in err and "--text-column" in err
    assert not out.exists()


def test_text_column_picks_the_english_column_of_the_real_bilingual_file(reference_dir, tmp_path, capsys):
    source, _ = _bilingual(reference_dir, tmp_path)
    out = tmp_path / "en-openset.csv"
    args = ["extract", "labels", "--input", str(source), "--output", str(out), "--format", "csv", "--no-progress"]
    assert main([*args, "--text-column", "english"]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "40 ok" in err
    from affectgpt.io.tables import read_table

    answers = read_table(out, ("openset",)).values
    assert sum(a != "[]" for a in answers) >= 35  # the long English reasonings name emotions
    assert main([*args, "--text-column", "chinese", "--force"]) == 3
    assert "40 of 40 texts" in capsys.readouterr().err


def test_transcripts_chinese_column_is_refused_english_column_read(reference_dir, tmp_path, capsys):
    import csv

    source = reference_dir / "transcripts" / "mer2023.csv"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[:31]
    path = tmp_path / "subtitles.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    out = tmp_path / "o.csv"
    args = ["extract", "labels", "--input", str(path), "--output", str(out), "--format", "csv", "--no-progress"]
    assert main([*args, "--text-column", "chinese"]) == 3
    assert "27 of 30 texts" in capsys.readouterr().err and not out.exists()  # 3 clips have no speech
    assert main([*args, "--text-column", "english"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_generated_bilingual_csv_and_a_minority_of_unreadable_texts(tmp_path, capsys):
    path = write_csv_rows(tmp_path / "bi.csv", ["name", "chinese", "english"], [
        ("a", "他很高兴，也有点紧张。", "He is happy and a little nervous."),
        ("b", "她非常生气。", "She is very angry."),
        ("c", "他感到悲伤。", "He feels sad."),
    ])
    out = tmp_path / "o.csv"
    args = ["extract", "labels", "--input", str(path), "--output", str(out), "--format", "csv", "--no-progress"]
    assert main(args) == 2  # two text columns: which one is not guessed
    err = capsys.readouterr().err
    assert "cannot tell the value column" in err and "--text-column english" in err
    assert main([*args, "--text-column", "english"]) == 0
    from affectgpt.io.tables import read_table

    assert read_table(out, ("openset",)).as_dict() == {"a": "[happy, nervous]", "b": "[angry]", "c": "[sad]"}
    assert main([*args, "--text-column", "nope", "--force"]) == 2
    assert "'nope'" in capsys.readouterr().err
    # one Chinese text of three: written, with one warning that counts it
    mixed = write_csv_rows(tmp_path / "mixed.csv", ["name", "text"], [
        ("a", "He is happy."), ("b", "她非常生气。"), ("c", "He feels sad.")])
    assert main(["extract", "labels", "--input", str(mixed), "--output", str(tmp_path / "m.csv"), "--format",
                 "csv", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "1 of 3 texts" in err and (tmp_path / "m.csv").is_file()
    # a language in Latin script that is not English: no English word at all
    french = write_csv_rows(tmp_path / "fr.csv", ["name", "text"], [
        ("a", "Dans la vidéo, il parle vite et fort, les yeux grands ouverts, puis il se tait longuement."),
        ("b", "Elle regarde par la fenêtre pendant un long moment sans dire un seul mot à personne.")])
    assert main(["extract", "labels", "--input", str(french), "--output", str(tmp_path / "f.csv"), "--format",
                 "csv", "--no-progress"]) == 3
    assert "2 of 2 texts" in capsys.readouterr().err


def test_sentiment_of_chinese_emotion_words_is_not_a_silent_neutral(tmp_path, capsys):
    path = write_csv_rows(tmp_path / "x-openset.csv", ["name", "openset"], [
        ("a", "[高兴, 开心]"), ("b", "[生气]")])
    out = tmp_path / "s.csv"
    assert main(["extract", "sentiment", "--input", str(path), "--output", str(out), "--format", "csv",
                 "--no-progress"]) == 3
    assert "2 of 2" in capsys.readouterr().err and not out.exists()


def write_csv_rows(path, header, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- malformed answers (issue 13 C.2) --------------------------------------------------------------------------

def test_openai_all_malformed_is_a_failure_and_writes_nothing(llm_server, tmp_path, capsys):
    llm_server.add_rule("", "I cannot tell")
    outputs = _generated(tmp_path / "outputs")
    out = tmp_path / "out"
    assert main(["extract", "labels", "--input", str(outputs), "--output", str(out),
                 *_llm_args(llm_server, tmp_path / "c.sqlite")]) == 3
    err = capsys.readouterr().err
    assert "3 malformed" in err and "NOT written" in err and "I cannot tell" in err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.reference
def test_transformers_all_malformed_is_a_failure_and_writes_nothing(chat_model_dir, one_torch_thread, tmp_path,
                                                                   capsys):
    """A random-weight model answers junk: no answer is a bracketed list, so nothing is written (exit 3) and the
    junk is reported, as for the openai backend."""
    pytest.importorskip("transformers")
    outputs = _generated(tmp_path / "outputs")
    out = tmp_path / "out"
    args = ["extract", "labels", "--input", str(outputs), "--output", str(out), "--backend", "transformers",
            "--model", str(chat_model_dir), "--device", "cpu", "--temperature", "0", "--max-tokens", "6",
            "--cache", str(tmp_path / "c.sqlite"), "--no-progress"]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "0 ok, 3 malformed" in err and "NOT written" in err
    assert err.count("malformed: the answer is not one bracketed list") == 3  # each junk answer listed
    assert not out.exists() or list(out.iterdir()) == []
