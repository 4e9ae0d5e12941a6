"""User-defined datasets (`--dataset-spec FILE`) through the command line: the worked example, strict specs,
labels checked against the declared layout, `score` and `suite`, and bad spec files refused with exit 2."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile_files import KINDS, MARKER, make

from affectgpt.cli import main
from conftest import write_csv

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dataset-spec"


def spec_score(spec: Path, preds: Path, *extra: str) -> list[str]:
    return ["bench", "score", "--protocol", "builtin", "--dataset-spec", str(spec), "--predictions", str(preds),
            *extra]


def predictions_root(tmp_path: Path, dataset: str) -> Path:
    """`<tmp>/preds/<dataset>/` holding the example's predictions as one epoch file; returns `<tmp>/preds`."""
    root = tmp_path / "preds"
    (root / dataset).mkdir(parents=True)
    shutil.copy(EXAMPLE / "predictions.csv", root / dataset / "checkpoint_000010_loss_0.1-openset.csv")
    return root


def write_spec(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE / "labels.csv", folder / "labels.csv")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """name: studio-takes
task: basic
labels:
  file: labels.csv
  column: label
label_space: [happy, sad, angry, worried, surprise, neutral]
"""


def refused(argv: list[str], capsys, out: Path, *needles: str) -> str:
    """Exit 2, one error line naming every needle, and no output file."""
    capsys.readouterr()
    assert main([*argv, "--format", "json", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not out.exists()
    return lines[0]


def test_the_worked_example_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(spec_score(EXAMPLE / "spec.yaml", EXAMPLE / "predictions.csv", "--format", "json",
                           "--output", str(out))) == 0
    result = json.loads(out.read_text())
    assert (result["dataset"], result["task"], result["primary_metric"], result["n_labels"]) == \
        ("studio-takes", "basic", "hit", 10)
    hit = result["epochs"][0]["metrics"]["hit"]
    assert 0.0 < hit < 1.0


def test_json_specs_are_read_too_and_labels_override_the_file(tmp_path, capsys):
    spec = write_spec(tmp_path, json.dumps({"name": "json-set", "task": "basic", "labels": {"file": "none.csv"},
                                            "label_space": ["happy", "sad", "angry", "worried", "surprise",
                                                            "neutral"]}), "spec.json")
    out = tmp_path / "r.json"
    assert main(spec_score(spec, EXAMPLE / "predictions.csv", "--labels", str(tmp_path / "labels.csv"),
                           "--format", "json", "--output", str(out))) == 0
    assert json.loads(out.read_text())["dataset"] == "json-set"


@pytest.mark.parametrize(("text", "needles"), [
    (GOOD.replace("task: basic\n", ""), ["spec.yaml", "task", "missing"]),
    (GOOD.replace("task: basic", "task: basik"), ["spec.yaml", "task", "basik", "did you mean 'basic'"]),
    (GOOD + "primary_metirc: hit\n", ["spec.yaml", "primary_metirc", "did you mean 'primary_metric'"]),
    (GOOD + "primary_metric: waf\n", ["spec.yaml", "primary_metric", "waf", "hit"]),
    (GOOD.replace("  column: label\n", "  colum: label\n"), ["spec.yaml", "labels.colum", "did you mean"]),
    (GOOD.replace("name: studio-takes", "name: mer2023"), ["spec.yaml", "name", "mer2023"]),
    (GOOD.replace("name: studio-takes", "name: ../up"), ["spec.yaml", "name", "plain"]),
    (GOOD.replace("name: studio-takes\n", "name: [a, b]\n"), ["spec.yaml", "name", "text"]),
    (GOOD.replace("label_space: [happy, sad, angry, worried, surprise, neutral]", "label_space: happy"),
     ["spec.yaml", "label_space", "list"]),
    (GOOD.replace("  file: labels.csv\n", ""), ["spec.yaml", "labels.file", "--labels"]),
    (GOOD.replace("labels.csv", "absent.csv"), ["spec.yaml", "labels.file", "absent.csv"]),
    ("- just\n- a list\n", ["spec.yaml", "mapping"]),
    ("", ["spec.yaml", "empty"]),
])
def test_bad_specs_exit_2_naming_the_file_and_field(tmp_path, capsys, text, needles):
    spec = write_spec(tmp_path, text)
    refused(spec_score(spec, EXAMPLE / "predictions.csv"), capsys, tmp_path / "r.json", *needles)


@pytest.mark.parametrize(("edit", "needles"), [
    (lambda t: t.replace("column: label", "column: emotion"), ["spec.yaml", "labels.column", "emotion"]),
    (lambda t: t.replace("worried, ", ""), ["spec.yaml", "label_space", "worried", "take_04"]),
    (lambda t: t.replace("  column: label\n", "  split: test_corpus\n"), ["spec.yaml", "labels.split", "npz"]),
])
def test_a_label_file_that_does_not_match_the_layout_exits_2(tmp_path, capsys, edit, needles):
    spec = write_spec(tmp_path, edit(GOOD))
    refused(spec_score(spec, EXAMPLE / "predictions.csv"), capsys, tmp_path / "r.json", *needles)


def test_sentiment_labels_must_be_numbers(tmp_path, capsys):
    spec = write_spec(tmp_path, "name: s\ntask: sentiment\nlabels:\n  file: labels.csv\n")
    refused(spec_score(spec, EXAMPLE / "predictions.csv"), capsys, tmp_path / "r.json", "spec.yaml", "labels",
            "take_01")


def test_original_style_npz_labels_with_split_field_classes_and_session(tmp_path, capsys):
    corpus = {"Ses05F_a": {"emo": 0}, "Ses05M_b": {"emo": 2}, "Ses01F_c": {"emo": 1}}
    np.savez(tmp_path / "label_mine.npz", my_split=corpus)
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: my-iemocap\ntask: basic\nlabels:\n  file: label_mine.npz\n  split: my_split\n"
                    "  field: emo\n  classes: [happy, sad, angry]\n  session: '5'\n"
                    "label_space: [happy, sad, angry]\n", encoding="utf-8")
    preds = write_csv(tmp_path / "p.csv", "name,openset", [("Ses05F_a", "[happy]"), ("Ses05M_b", "[sad]")])
    out = tmp_path / "r.json"
    assert main(spec_score(spec, preds, "--format", "json", "--output", str(out))) == 0
    result = json.loads(out.read_text())
    assert result["n_labels"] == 2  # Session 1 filtered out
    assert result["epochs"][0]["metrics"]["hit"] == pytest.approx(0.5)  # happy hits, angry misses
    spec.write_text(spec.read_text().replace("split: my_split", "split: test_corpus"), encoding="utf-8")
    refused(spec_score(spec, preds), capsys, tmp_path / "r2.json", "label_mine.npz", "labels.split")


def test_sentiment_spec_with_another_primary_metric(tmp_path, capsys):
    labels = write_csv(tmp_path / "gt.csv", "name,score", [("a", "1.5"), ("b", "-2"), ("c", "0.4")])
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: my-sentiment\ntask: sentiment\nlabels:\n  file: {labels.name}\n  column: score\n"
                    "label_space: float in [-3, 3]\nprimary_metric: acc\n", encoding="utf-8")
    preds = write_csv(tmp_path / "p.csv", "name,sentiment", [("a", "positive"), ("b", "positive"), ("c", "x")])
    out = tmp_path / "r.json"
    assert main(spec_score(spec, preds, "--format", "json", "--output", str(out))) == 0
    result = json.loads(out.read_text())
    assert result["primary_metric"] == "acc"
    assert result["best"]["metrics"]["acc"] == pytest.approx(1 / 3)


def test_dataset_and_dataset_spec_are_mutually_exclusive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "score", "--dataset", "mer2023", "--dataset-spec", str(EXAMPLE / "spec.yaml"),
              "--predictions", "p.csv", "--labels", "l.csv"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "score", "--predictions", "p.csv", "--labels", "l.csv"])  # one of the two is required


def test_yaml_without_pyyaml_names_the_extra_and_json_still_works(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    out = tmp_path / "r.json"
    refused(spec_score(EXAMPLE / "spec.yaml", EXAMPLE / "predictions.csv"), capsys, out, "affectgpt[train]")
    spec = write_spec(tmp_path, json.dumps({"name": "j", "task": "basic", "labels": {"file": "labels.csv"},
                                            "label_space": ["happy", "sad", "angry", "worried", "surprise",
                                                            "neutral"]}), "spec.json")
    assert main(spec_score(spec, EXAMPLE / "predictions.csv", "--format", "json", "--output", str(out))) == 0


def test_suite_adds_user_datasets_after_the_nine_and_keeps_the_published_mean(tmp_path, capsys):
    preds_root = predictions_root(tmp_path, "studio-takes")
    predictions_root(tmp_path, "mer2023")
    (tmp_path / "labels" / "mer2023").mkdir(parents=True)
    shutil.copy(EXAMPLE / "labels.csv", tmp_path / "labels" / "mer2023" / "test_labels.csv")
    out = tmp_path / "suite.json"
    assert main(["bench", "suite", "--protocol", "builtin", "--predictions-root", str(preds_root),
                 "--labels-root", str(tmp_path / "labels"), "--dataset-spec", str(EXAMPLE / "spec.yaml"),
                 "--format", "json", "--output", str(out)]) == 0
    suite = json.loads(out.read_text())
    assert list(suite["results"]) == ["mer2023", "studio-takes"]
    assert [c["dataset"] for c in suite["row"]][:9] == ["mer2023", "mer2024", "meld", "iemocapfour", "cmumosi",
                                                         "cmumosei", "sims", "simsv2", "ovmerdplus"]
    assert suite["mean_present"]["of"] == 9 and suite["mean_present"]["datasets"] == 1
    assert suite["mean_present"]["value"] == pytest.approx(suite["results"]["mer2023"]["best"]["metrics"]["hit"])
    assert suite["results"]["studio-takes"]["best"]["metrics"]["hit"] == \
        suite["results"]["mer2023"]["best"]["metrics"]["hit"]


def test_the_suite_table_shows_user_datasets_after_the_mean(tmp_path, capsys):
    preds_root = predictions_root(tmp_path, "studio-takes")
    (tmp_path / "labels").mkdir()
    assert main(["bench", "suite", "--protocol", "builtin", "--predictions-root", str(preds_root),
                 "--labels-root", str(tmp_path / "labels"), "--dataset-spec", str(EXAMPLE / "spec.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    mean_at = next(i for i, line in enumerate(lines) if line.startswith("Mean (9 datasets)"))
    user = [line for line in lines[mean_at + 1:] if "user dataset" in line]
    assert len(user) == 1 and "75.00" in user[0] and "10" in user[0]


def test_suite_with_only_user_datasets(tmp_path, capsys):
    preds_root = predictions_root(tmp_path, "studio-takes")
    (tmp_path / "labels").mkdir()
    out = tmp_path / "suite.json"
    assert main(["bench", "suite", "--protocol", "builtin", "--predictions-root", str(preds_root),
                 "--labels-root", str(tmp_path / "labels"), "--dataset-spec", str(EXAMPLE / "spec.yaml"),
                 "--format", "json", "--output", str(out)]) == 0
    suite = json.loads(out.read_text())
    assert list(suite["results"]) == ["studio-takes"] and suite["mean"] is None


def test_suite_without_the_user_datasets_predictions_exits_2(tmp_path, capsys):
    (tmp_path / "preds").mkdir()
    (tmp_path / "labels").mkdir()
    refused(["bench", "suite", "--protocol", "builtin", "--predictions-root", str(tmp_path / "preds"),
             "--labels-root", str(tmp_path / "labels"), "--dataset-spec", str(EXAMPLE / "spec.yaml")],
            capsys, tmp_path / "s.json", "studio-takes")


@pytest.mark.parametrize("kind", KINDS["yaml"])
def test_hostile_spec_files(tmp_path, capsys, kind, monkeypatch):
    case = tmp_path / "case"
    case.mkdir()
    monkeypatch.chdir(case)
    hostile = make(kind, "yaml", EXAMPLE / "spec.yaml", case)
    if hostile.is_file():
        shutil.copy(EXAMPLE / "labels.csv", case / "labels.csv")
    line = refused(spec_score(hostile, EXAMPLE / "predictions.csv"), capsys, tmp_path / "r.json")
    assert hostile.name in line
    assert not (case / MARKER).exists()


def test_dataset_still_needs_labels(tmp_path, capsys):
    refused(["bench", "score", "--protocol", "builtin", "--dataset", "mer2023", "--predictions",
             str(EXAMPLE / "predictions.csv")], capsys, tmp_path / "r.json", "--labels", "mer2023")


def test_load_dataset_spec_gives_the_dataset_spec():
    from affectgpt.bench.datasets import get_dataset
    from affectgpt.bench.spec import load_dataset_spec

    spec = load_dataset_spec(EXAMPLE / "spec.yaml")
    assert (spec.key, spec.title, spec.task, spec.size, spec.primary) == \
        ("studio-takes", "Studio takes", "basic", 10, "hit")
    assert spec.candidates == ("happy", "sad", "angry", "worried", "surprise", "neutral")
    assert spec.labels.csv_names == ("labels.csv",) and spec.labels.csv_column == "label"
    assert get_dataset("studio-takes") == spec


def test_suite_finds_labels_under_the_labels_root_when_the_spec_names_none(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "rooted", "task": "basic", "labels": {},
                                "label_space": ["happy", "sad", "angry", "worried", "surprise", "neutral"]}),
                    encoding="utf-8")
    (tmp_path / "preds" / "rooted").mkdir(parents=True)
    shutil.copy(EXAMPLE / "predictions.csv", tmp_path / "preds" / "rooted" / "checkpoint_000001-openset.csv")
    (tmp_path / "labels" / "rooted").mkdir(parents=True)
    shutil.copy(EXAMPLE / "labels.csv", tmp_path / "labels" / "rooted" / "test_labels.csv")
    out = tmp_path / "suite.json"
    assert main(["bench", "suite", "--protocol", "builtin", "--predictions-root", str(tmp_path / "preds"),
                 "--labels-root", str(tmp_path / "labels"), "--dataset-spec", str(spec),
                 "--format", "json", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["results"]["rooted"]["n_labels"] == 10


def test_baselines_take_the_spec_too(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "baselines", "--protocol", "builtin", "--dataset-spec", str(EXAMPLE / "spec.yaml"),
                 "--format", "json", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["dataset"] == "studio-takes"
    spec = write_spec(tmp_path / "bad", GOOD.replace("task: basic", "task: basik"))
    refused(["bench", "baselines", "--protocol", "builtin", "--dataset-spec", str(spec)], capsys,
            tmp_path / "b2.json", "spec.yaml", "task")


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "latex"])
def test_the_worked_example_prints_in_every_format(fmt, capsys):
    assert main(spec_score(EXAMPLE / "spec.yaml", EXAMPLE / "predictions.csv", "--format", fmt)) == 0
    out = capsys.readouterr().out
    assert "studio-takes" in out and ("HIT" in out or "hit" in out), out


def test_the_report_shows_a_user_dataset_given_its_spec(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    result = tmp_path / "studio.json"
    assert main(spec_score(EXAMPLE / "spec.yaml", EXAMPLE / "predictions.csv", "--format", "json", "--output",
                           str(result))) == 0
    from affectgpt.bench.datasets import USER_DATASETS

    USER_DATASETS.clear()  # a new process: the report command has not read the spec
    page = tmp_path / "report.html"
    assert main(["bench", "report", str(result), "--output", str(page)]) == 2  # unknown without its spec
    assert "--dataset-spec" in capsys.readouterr().err and not page.exists()
    assert main(["bench", "report", str(result), "--dataset-spec", str(EXAMPLE / "spec.yaml"), "--output",
                 str(page)]) == 0, capsys.readouterr().err
    assert "studio-takes" in page.read_text()
