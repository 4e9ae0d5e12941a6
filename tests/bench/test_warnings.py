"""The hit_uninformative warning and the --epochs mean summary, in every output format (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectgpt.cli import main

# the label space of each basic set (bench/datasets.py) and the constant prediction of every candidate class
BASIC_SETS = {
    "mer2023": (["neutral", "angry", "happy", "sad", "worried", "surprise"],
                "[worried, happy, angry, surprised, sad]"),
    "meld": (["anger", "joy", "sadness", "neutral", "disgust", "fear", "surprise"],
             "[anger, joy, sadness, disgust, fear, surprise]"),
    "iemocapfour": (["happy", "sad", "neutral", "anger"], "[happy, sad, anger]"),
}
CODE = "hit_uninformative"


def write_set(root: Path, key: str, answers: dict[int, str | dict[str, str]]) -> tuple[Path, Path]:
    """labels/<key>/test_labels.csv (one sample per class) and preds/<key>/ with one file per epoch."""
    classes = BASIC_SETS[key][0]
    labels, preds = root / "labels" / key, root / "preds" / key
    labels.mkdir(parents=True)
    preds.mkdir(parents=True)
    names = [f"s{i}" for i in range(len(classes))]
    (labels / "test_labels.csv").write_text("name,label\n" + "".join(f"{n},{c}\n" for n, c in
                                                                     zip(names, classes, strict=True)))
    for epoch, answer in answers.items():
        per_name = answer if isinstance(answer, dict) else dict.fromkeys(names, answer)
        lines = "".join(f'{n},"{per_name.get(n, "[]")}"\n' for n in names)
        (preds / f"checkpoint_{epoch:06d}_loss_0.5-openset.csv").write_text(f"name,openset\n{lines}")
    return preds, labels


def in_format(text: str, fmt: str) -> str:
    """`text` as the format writes it (LaTeX escapes the underscore)."""
    return text.replace("_", r"\_") if fmt == "latex" else text


def score(preds: Path, labels: Path, key: str, fmt: str, tmp_path: Path, capsys, *extra: str) -> str:
    out = tmp_path / f"out.{fmt}"
    rc = main(["bench", "score", "--dataset", key, "--predictions", str(preds), "--labels", str(labels),
               "--protocol", "builtin", "--format", fmt, "--output", str(out), *extra])
    assert rc == 0, capsys.readouterr().err
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("key", sorted(BASIC_SETS))
def test_constant_all_candidates_is_warned_in_every_format(key, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    preds, labels = write_set(tmp_path, key, {30: BASIC_SETS[key][1]})
    result = json.loads(score(preds, labels, key, "json", tmp_path, capsys))
    epoch = result["epochs"][0]
    assert epoch["metrics"]["hit"] == 1.0
    assert epoch["diagnostics"]["candidate_coverage"] == 1.0
    assert epoch["metrics"]["hit_precision"] < 0.5
    for warnings in (epoch["warnings"], result["warnings"]):
        assert [w["code"] for w in warnings] == [CODE]
        assert "HIT 100.00 says little" in warnings[0]["message"]
    for fmt in ("table", "markdown", "csv", "latex"):
        text = score(preds, labels, key, fmt, tmp_path, capsys)
        assert in_format(CODE, fmt) in text and "says little" in text, fmt
    report = tmp_path / "report.html"
    assert main(["bench", "report", str(tmp_path / "out.json"), "--output", str(report)]) == 0
    page = report.read_text(encoding="utf-8")
    assert CODE in page and "says little" in page
    assert "hit_precision" in page or "HIT precision" in page


def test_a_one_label_prediction_is_not_warned(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    preds, labels = write_set(tmp_path, "iemocapfour", {30: {"s0": "[happy]", "s1": "[happy]", "s3": "[anger]"}})
    result = json.loads(score(preds, labels, "iemocapfour", "json", tmp_path, capsys))
    assert result["epochs"][0]["warnings"] == [] and result["warnings"] == []
    assert CODE not in score(preds, labels, "iemocapfour", "table", tmp_path, capsys)


def test_suite_mean_carries_the_warning(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    write_set(tmp_path, "mer2023", {30: BASIC_SETS["mer2023"][1]})
    out = tmp_path / "suite.json"
    common = ["bench", "suite", "--predictions-root", str(tmp_path / "preds"), "--labels-root",
              str(tmp_path / "labels"), "--protocol", "builtin"]
    assert main([*common, "--format", "json", "--output", str(out)]) == 0
    suite = json.loads(out.read_text())
    assert [w["code"] for w in suite["warnings"]] == [CODE]
    assert "MER2023" in suite["warnings"][0]["message"]
    assert [w["code"] for w in suite["row"][0]["warnings"]] == [CODE]
    for fmt in ("table", "markdown", "csv", "latex"):
        assert main([*common, "--format", fmt]) == 0
        assert in_format(CODE, fmt) in capsys.readouterr().out, fmt


EPOCH_ANSWERS = {  # mer2023 names s0..s5 = neutral, angry, happy, sad, worried, surprise
    30: {"s1": "[angry]", "s2": "[happy]"},                        # HIT 2/5
    40: {"s1": "[angry]", "s2": "[happy]", "s3": "[sad]", "s4": "[worried]"},  # 4/5
    50: {"s1": "[angry]"},                                         # 1/5
    60: {"s1": "[angry]", "s2": "[happy]", "s3": "[sad]"},         # 3/5
}


def test_epoch_range_mean_beside_oracle_and_fixed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    preds, labels = write_set(tmp_path, "mer2023", EPOCH_ANSWERS)
    result = json.loads(score(preds, labels, "mer2023", "json", tmp_path, capsys, "--epochs", "30-50",
                              "--epoch", "60"))
    hits = {e["epoch"]: e["metrics"]["hit"] for e in result["epochs"]}
    assert result["best"]["epoch"] == 40 and result["fixed"]["epoch"] == 60
    mean = result["mean"]
    assert mean["selection"] == "mean" and mean["epochs"] == [30, 40, 50]
    assert mean["metrics"]["hit"] == pytest.approx((hits[30] + hits[40] + hits[50]) / 3)
    assert hits[40] > hits[60] > hits[30] > hits[50] > 0
    shown = f"{100 * mean['metrics']['hit']:.2f}"
    for fmt in ("table", "markdown", "csv", "latex"):
        text = score(preds, labels, "mer2023", fmt, tmp_path, capsys, "--epochs", "30-50")
        assert shown in text and "30-50" in text, fmt
    score(preds, labels, "mer2023", "json", tmp_path, capsys, "--epochs", "30-50")
    report = tmp_path / "report.html"
    assert main(["bench", "report", str(tmp_path / "out.json"), "--output", str(report)]) == 0
    page = report.read_text(encoding="utf-8")
    assert shown in page and "30-50" in page


def test_suite_row_carries_the_epoch_range_mean(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    write_set(tmp_path, "mer2023", EPOCH_ANSWERS)
    common = ["bench", "suite", "--predictions-root", str(tmp_path / "preds"), "--labels-root",
              str(tmp_path / "labels"), "--protocol", "builtin", "--epochs", "30-50"]
    out = tmp_path / "suite.json"
    assert main([*common, "--format", "json", "--output", str(out)]) == 0
    suite = json.loads(out.read_text())
    cell, result = suite["row"][0], suite["results"]["mer2023"]
    hits = {e["epoch"]: e["metrics"]["hit"] for e in result["epochs"]}
    assert cell["value"] == hits[40] == max(hits.values())  # the oracle stays the headline
    mean = (hits[30] + hits[40] + hits[50]) / 3
    assert cell["mean"] == {"value": pytest.approx(mean), "epochs": [30, 40, 50]}
    assert result["mean"]["selection"] == "mean"
    assert suite["epochs_mean"]["range"] == "30-50"
    assert suite["epochs_mean"]["mean_present"]["value"] == pytest.approx(mean)
    for fmt in ("table", "markdown", "csv", "latex"):
        assert main([*common, "--format", fmt]) == 0
        text = capsys.readouterr().out
        assert f"{100 * mean:.2f}" in text and "30-50" in text, fmt


@pytest.mark.parametrize("value", ["70-80", "60-30", "x", "30-", "-5-10"])
def test_bad_or_empty_epoch_range_is_an_input_error(value, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    preds, labels = write_set(tmp_path, "mer2023", EPOCH_ANSWERS)
    out = tmp_path / "out.json"
    rc = main(["bench", "score", "--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
               "--protocol", "builtin", "--format", "json", "--output", str(out), f"--epochs={value}"])
    err = capsys.readouterr().err
    assert rc == 2 and "--epochs" in err
    assert len(err.strip().splitlines()) <= 2
    assert not out.exists()


def test_suite_with_an_empty_epoch_range_exits_2_without_output(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    write_set(tmp_path, "mer2023", EPOCH_ANSWERS)
    out = tmp_path / "suite.json"
    rc = main(["bench", "suite", "--predictions-root", str(tmp_path / "preds"), "--labels-root",
               str(tmp_path / "labels"), "--protocol", "builtin", "--epochs", "61-70", "--format", "json",
               "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--epochs" in err and "61-70" in err
    assert not out.exists()
