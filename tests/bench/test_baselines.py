"""`affectgpt bench baselines`: reference baselines scored by the scorer itself, through the CLI.

Expected values come from the inputs: a constant prediction that lists every class of the label space hits
every scorable sample (HIT 1.0); the majority and random rows are checked for presence and determinism.
The real-label tests use ../shared/reference (skipped with a reason when absent); the others write their
own small label files and use the built-in protocol.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from affectgpt.cli import main

MER_LABELS = {"s1": "happy", "s2": "angry", "s3": "happy", "s4": "neutral", "s5": "sad"}
MOSI_LABELS = {"a": 1.5, "b": -2.0, "c": 0.0, "d": -0.8, "e": -0.4, "f": 2.2}


def write_labels(path: Path, labels: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "label"])
        writer.writerows(labels.items())
    return path


def run_json(args: list[str], out: Path, capsys) -> dict:
    code = main([*args, "--format", "json", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    return json.loads(out.read_text())


def rows(result: dict) -> dict[str, dict]:
    return {e["source"]: e for e in result["epochs"]}


@pytest.mark.reference
def test_iemocap_all_candidates_scores_hit_100_official(reference_dir, wheel_dir, tmp_path, capsys):
    result = run_json(["bench", "baselines", "--dataset", "iemocapfour", "--labels",
                       str(reference_dir / "labels" / "iemocapfour"), "--protocol", "official", "--wheel-dir",
                       str(wheel_dir)], tmp_path / "i.json", capsys)
    constant = rows(result)["baseline: all candidates"]
    assert round(100 * constant["metrics"]["hit"], 2) == 100.00
    assert sorted(constant["baseline"]["words"]) == ["anger", "happy", "sad"]


@pytest.mark.reference
def test_mer2023_all_candidates_scores_hit_100_official(reference_dir, wheel_dir, tmp_path, capsys):
    args = ["bench", "baselines", "--dataset", "mer2023", "--labels", str(reference_dir / "labels" / "mer2023"),
            "--protocol", "official", "--wheel-dir", str(wheel_dir)]
    first = run_json(args, tmp_path / "a.json", capsys)
    assert first["protocol"] == "official-2025"
    table = rows(first)
    constant = table["baseline: all candidates"]
    assert round(100 * constant["metrics"]["hit"], 2) == 100.00
    # the five scorable classes of MER2023; neutral maps to no cluster and is not listed
    assert sorted(constant["baseline"]["words"]) == ["angry", "happy", "sad", "surprise", "worried"]
    assert {"baseline: majority", "baseline: random-1", "baseline: random-2", "baseline: random-3"} <= set(table)
    assert table["baseline: majority"]["baseline"]["words"] == ["angry"]
    # the scorer's own warning comes with the row: HIT says little for a prediction that lists everything
    assert "hit_uninformative" in [w["code"] for w in constant["warnings"]]
    assert table["baseline: random-2"]["baseline"]["seeds"] == [0, 1, 2, 3, 4]
    # random labels do worse than listing everything, and more labels hit more often
    hits = [table[f"baseline: random-{k}"]["metrics"]["hit"] for k in (1, 2, 3)]
    assert hits == sorted(hits) and hits[-1] < 1.0
    again = run_json(args, tmp_path / "b.json", capsys)
    assert [e["metrics"] for e in again["epochs"]] == [e["metrics"] for e in first["epochs"]]


@pytest.mark.reference
@pytest.mark.parametrize("dataset", ["cmumosi", "sims"])
def test_sentiment_sets_give_all_positive_and_majority(dataset, reference_dir, tmp_path, capsys):
    result = run_json(["bench", "baselines", "--dataset", dataset,
                       "--labels", str(reference_dir / "labels" / dataset)], tmp_path / "s.json", capsys)
    table = rows(result)
    assert set(table) == {"baseline: all positive", "baseline: majority"}
    assert set(table["baseline: all positive"]["metrics"]) >= {"waf", "acc"}
    assert table["baseline: majority"]["baseline"]["words"] in (["positive"], ["negative"])


def test_small_basic_set_every_format(tmp_path, capsys):
    labels = write_labels(tmp_path / "mer" / "test_labels.csv", MER_LABELS)
    args = ["bench", "baselines", "--dataset", "mer2023", "--labels", str(labels), "--protocol", "builtin"]
    result = run_json(args, tmp_path / "b.json", capsys)
    table = rows(result)
    assert table["baseline: all candidates"]["metrics"]["hit"] == 1.0
    assert table["baseline: majority"]["metrics"]["hit"] == pytest.approx(2 / 4)  # happy, neutral skipped
    assert result["best"]["source"] == "baseline: all candidates"
    for fmt in ("table", "csv", "markdown", "latex"):
        assert main([*args, "--format", fmt]) == 0
        out = capsys.readouterr().out
        for name in ("all candidates", "majority", "random-1", "random-3"):
            assert name in out, (fmt, name)
        assert "100.00" in out, fmt


def test_small_sentiment_set(tmp_path, capsys):
    labels = write_labels(tmp_path / "mosi" / "test_labels.csv", MOSI_LABELS)
    result = run_json(["bench", "baselines", "--dataset", "cmumosi", "--labels", str(labels)],
                      tmp_path / "s.json", capsys)
    table = rows(result)
    # 2 positive, 3 negative, 1 zero (dropped): all-positive ACC 2/5; majority says negative, ACC 3/5
    assert table["baseline: all positive"]["metrics"]["acc"] == pytest.approx(2 / 5)
    assert table["baseline: majority"]["baseline"]["words"] == ["negative"]
    assert table["baseline: majority"]["metrics"]["acc"] == pytest.approx(3 / 5)


def test_report_shows_baselines_beside_a_model(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    labels = write_labels(tmp_path / "mer" / "test_labels.csv", MER_LABELS)
    preds = write_labels(tmp_path / "preds.csv", {"s1": "happy", "s2": "sad", "s3": "happy", "s4": "angry",
                                                  "s5": "sad"})
    model, base = tmp_path / "model.json", tmp_path / "baselines.json"
    run_json(["bench", "score", "--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
              "--protocol", "builtin"], model, capsys)
    run_json(["bench", "baselines", "--dataset", "mer2023", "--labels", str(labels), "--protocol", "builtin"],
             base, capsys)
    page = tmp_path / "report.html"
    assert main(["bench", "report", str(model), str(base), "--output", str(page)]) == 0, capsys.readouterr().err
    text = page.read_text()
    assert "<th>model</th>" in text  # the model, then one reference column per baseline
    for name in ("all candidates", "majority", "random-1", "random-3"):
        assert f"<th>baselines: {name}</th>" in text, name
    assert "<b>75.00</b>" in text  # the model: 3 of the 4 scorable samples
    assert "<b>100.00</b>" in text  # all candidates, in the column beside it


def test_each_baseline_expands_to_a_result_the_report_shows_as_its_own_column(tmp_path, capsys):
    """expand(): the per-baseline results inside the JSON are valid results (`bench report` reads each)."""
    pytest.importorskip("matplotlib")
    from affectgpt.bench.baselines import expand

    labels = write_labels(tmp_path / "mer" / "test_labels.csv", MER_LABELS)
    data = run_json(["bench", "baselines", "--dataset", "mer2023", "--labels", str(labels), "--protocol",
                     "builtin"], tmp_path / "baselines.json", capsys)
    parts = expand(data)
    assert [n for n, _ in parts][:2] == ["baseline: all candidates", "baseline: majority"]
    files = []
    for i, (_, one) in enumerate(parts):
        files.append(tmp_path / f"b{i}.json")
        files[-1].write_text(json.dumps(one))
    page = tmp_path / "each.html"
    args = ["bench", "report", *map(str, files), "--output", str(page)]
    for name, _ in parts:
        args += ["--name", name]
    assert main(args) == 0, capsys.readouterr().err
    text = page.read_text()
    for name, _ in parts:
        assert f"<th>{name}</th>" in text
    assert expand({"dataset": "mer2023"}) == []


@pytest.mark.parametrize("case", ["unknown dataset", "missing labels", "nothing scorable"])
def test_bad_input_exits_2_one_line_no_output(case, tmp_path, capsys):
    labels = write_labels(tmp_path / "mer" / "test_labels.csv",
                          {"x": "neutral", "y": "neutral"} if case == "nothing scorable" else MER_LABELS)
    dataset, where = {"unknown dataset": ("mer2032", labels), "missing labels": ("mer2023", tmp_path / "none.csv"),
                      "nothing scorable": ("mer2023", labels)}[case]
    out = tmp_path / "out.json"
    code = main(["bench", "baselines", "--dataset", dataset, "--labels", str(where), "--format", "json",
                 "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "mer"]


def test_dataset_spec_baselines_use_the_declared_classes(tmp_path, capsys):
    """A user dataset (--dataset-spec): `all candidates` lists the classes it declares, even unseen ones."""
    write_labels(tmp_path / "labels.csv", MER_LABELS)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "my-set", "task": "basic", "labels": {"file": "labels.csv"},
                                "label_space": ["happy", "sad", "angry", "worried", "neutral"]}))
    args = ["bench", "baselines", "--dataset-spec", str(spec), "--protocol", "builtin"]
    result = run_json(args, tmp_path / "b.json", capsys)
    assert result["dataset"] == "my-set"
    constant = rows(result)["baseline: all candidates"]
    assert constant["baseline"]["words"] == ["happy", "sad", "angry", "worried"]  # neutral maps to nothing
    assert constant["metrics"]["hit"] == 1.0
    assert main([*args, "--format", "table"]) == 0
    assert "baseline: random-2" in capsys.readouterr().out


def test_dataset_and_dataset_spec_are_exclusive_and_labels_needed(tmp_path, capsys):
    out = tmp_path / "out.json"
    assert main(["bench", "baselines", "--dataset", "mer2023", "--format", "json", "--output", str(out)]) == 2
    assert "--labels" in capsys.readouterr().err
    assert not out.exists()
