"""`affectgpt bench` end to end through main([...]): outputs, formats, exit codes, no partial files.

These use the built-in protocol (package data), so they run on a fresh clone without the official files.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from affectgpt.cli import main
from conftest import write_csv

BASIC = [("s1", "happy", "[happy, excited]"), ("s2", "angry", "[sad]"), ("s3", "neutral", "[happy]"),
         ("s4", "sad", "[]")]


def basic_files(tmp_path: Path, samples=BASIC, epochs=(1, 2)) -> tuple[Path, Path]:
    labels = write_csv(tmp_path / "labels.csv", "name,label", [(n, g) for n, g, _ in samples])
    folder = tmp_path / "preds"
    for epoch in epochs:
        rows = [(n, p if epoch == epochs[0] else "[angry]") for n, _, p in samples]
        write_csv(folder / f"checkpoint_{epoch:06d}_loss_0.{epoch}-openset.csv", "name,openset", rows)
    return labels, folder


def score(args: list[str]) -> list[str]:
    return ["bench", "score", "--protocol", "builtin", *args]


def test_score_table_announces_the_builtin_protocol(tmp_path, capsys):
    labels, preds = basic_files(tmp_path)
    assert main(score(["--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels)])) == 0
    captured = capsys.readouterr()
    assert "BUILT-IN protocol builtin-1" in captured.out  # the table says it; stderr need not repeat it
    assert "not comparable with published numbers" in captured.out
    assert "ORACLE" in captured.out
    assert "partial ground truth: labels cover 4 of the 411" in captured.out


def test_score_json_contract_and_oracle(tmp_path, capsys):
    labels, preds = basic_files(tmp_path)
    out = tmp_path / "r.json"
    assert main(score(["--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
                       "--epoch", "2", "--format", "json", "--output", str(out)])) == 0
    assert "note: BUILT-IN protocol builtin-1" in capsys.readouterr().err  # JSON to a file: said on stderr
    result = json.loads(out.read_text())
    assert {"dataset", "protocol", "epochs", "best", "fixed"} <= set(result)
    assert result["protocol"] == "builtin-1"
    assert [e["epoch"] for e in result["epochs"]] == [1, 2]
    # epoch 1: s1 hit, s2 miss, s4 miss (empty), s3 neutral skipped -> 1/3 in every grouping;
    # epoch 2 predicts [angry] everywhere: only s2 hits -> 1/3 as well; the tie goes to the earlier epoch.
    for e in result["epochs"]:
        assert set(e["metrics"]) == {"hit", "hit_precision"}  # issue 14: the precision companion
        assert e["metrics"]["hit"] == pytest.approx(1 / 3)
        assert all(w["skipped"] == 1 for w in e["per_wheel"])
    assert result["best"]["epoch"] == 1 and result["best"]["selection"] == "oracle"
    assert result["fixed"]["epoch"] == 2 and result["fixed"]["selection"] == "fixed"
    assert result["epochs"][0]["diagnostics"]["empty_predictions"] == 1


@pytest.mark.parametrize("fmt", ["csv", "markdown", "latex", "table"])
def test_other_formats(tmp_path, capsys, fmt):
    labels, preds = basic_files(tmp_path)
    assert main(score(["--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
                       "--format", fmt])) == 0
    out = capsys.readouterr().out
    assert "33.33" in out
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["epoch"] for r in rows] == ["1", "2", "1"]
        assert rows[-1]["selection"] == "oracle" and rows[0]["HIT"] == "33.33"
    if fmt == "markdown":
        assert out.startswith("| dataset | protocol | epoch |")
    if fmt == "latex":
        assert r"\begin{tabular}" in out and r"\bottomrule" in out


def test_sentiment_counts_unparseable_answers(tmp_path, capsys):
    labels = write_csv(tmp_path / "l.csv", "name,label", [("a", "2.0"), ("b", "-1.4"), ("c", "0.0"),
                                                         ("d", "0.6"), ("e", "-0.2")])
    preds = write_csv(tmp_path / "p.csv", "name,sentiment", [("a", "positive"), ("b", "negative"),
                                                             ("c", "positive"), ("d", "neutral"),
                                                             ("e", "mixed")])
    out = tmp_path / "r.json"
    assert main(score(["--dataset", "cmumosi", "--predictions", str(preds), "--labels", str(labels),
                       "--format", "json", "-o", str(out)])) == 0
    epoch = json.loads(out.read_text())["epochs"][0]
    assert epoch["metrics"]["acc"] == pytest.approx(0.75)
    assert round(epoch["metrics"]["waf"], 4) == 0.7333
    assert epoch["diagnostics"]["unparseable_answers"] == 1
    assert epoch["diagnostics"]["top_unparseable"] == [["mixed", 1]]
    assert epoch["diagnostics"]["skipped_zero_ground_truth"] == 1


def test_extra_names_are_counted_and_missing_ones_can_be_allowed(tmp_path, capsys):
    labels, _ = basic_files(tmp_path)
    preds = write_csv(tmp_path / "p.csv", "name,openset", [("s1", "[happy]"), ("s2", "[angry]"),
                                                           ("zz", "[sad]")])
    out = tmp_path / "r.json"
    args = score(["--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
                  "--format", "json", "-o", str(out)])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "2 of 4 ground-truth names have no prediction (s3, s4)" in err and "--allow-missing" in err
    assert not out.exists()
    assert main([*args, "--allow-missing"]) == 0
    diagnostics = json.loads(out.read_text())["epochs"][0]["diagnostics"]
    assert diagnostics["missing_predictions"] == 2 and diagnostics["extra_predictions"] == 1


def _fails(args: list[str], capsys, *needles: str) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: ")
    for needle in needles:
        assert needle in err
    return err


def test_unknown_dataset_suggests_the_closest(tmp_path, capsys):
    labels, preds = basic_files(tmp_path)
    _fails(score(["--dataset", "mer2O23", "--predictions", str(preds), "--labels", str(labels)]), capsys,
           "unknown dataset 'mer2O23'", "did you mean 'mer2023'")


@pytest.mark.parametrize(("labels_text", "needle"), [
    ("", "holds no rows"),
    ("name,label\ns1,nan\n", "not a finite number"),
    ("name,label\ns1,\n", "not a finite number"),
    ("name;label\ns1;1.0\n", "no 'name' column"),
])
def test_bad_sentiment_labels_exit_2_without_output(tmp_path, capsys, labels_text, needle):
    labels = tmp_path / "labels.csv"
    labels.write_text(labels_text)
    preds = write_csv(tmp_path / "p.csv", "name,sentiment", [("s1", "positive")])
    out = tmp_path / "out" / "r.json"
    _fails(score(["--dataset", "cmumosi", "--predictions", str(preds), "--labels", str(labels),
                  "-o", str(out)]), capsys, needle, str(labels))
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_nan_in_original_npz_labels(tmp_path, capsys):
    labels = tmp_path / "label.npz"
    np.savez(labels, test_corpus={"s1": {"emo": 0, "val": float("nan")}})
    preds = write_csv(tmp_path / "p.csv", "name,sentiment", [("s1", "positive")])
    _fails(score(["--dataset", "cmumosi", "--predictions", str(preds), "--labels", str(labels)]), capsys,
           "label of 's1' is not a finite number")


def test_malformed_and_empty_prediction_files(tmp_path, capsys):
    labels, _ = basic_files(tmp_path)
    broken = tmp_path / "checkpoint_000001_loss_0.1-openset.npz"
    broken.write_bytes(b"PK\x03\x04 truncated")
    _fails(score(["--dataset", "mer2023", "--predictions", str(broken), "--labels", str(labels)]), capsys,
           "not a readable .npz", str(broken))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _fails(score(["--dataset", "mer2023", "--predictions", str(empty), "--labels", str(labels)]), capsys,
           "holds no rows")


def test_folder_with_only_generated_text_points_to_extract(tmp_path, capsys):
    labels, _ = basic_files(tmp_path)
    folder = tmp_path / "gen"
    folder.mkdir()
    np.savez(folder / "checkpoint_000030_loss_0.602.npz", name2reason={"s1": "He smiles."})
    _fails(score(["--dataset", "mer2023", "--predictions", str(folder), "--labels", str(labels)]), capsys,
           "holds generated text but no extracted", "affectgpt extract")


def test_unknown_epoch_lists_the_available_ones(tmp_path, capsys):
    labels, preds = basic_files(tmp_path)
    _fails(score(["--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
                  "--epoch", "7"]), capsys, "no prediction file for epoch 7", "[1, 2]")


@pytest.mark.reference
def test_wheel_folder_with_a_missing_file(tmp_path, capsys, wheel_dir):
    labels, preds = basic_files(tmp_path)
    folder = tmp_path / "wheels"
    shutil.copytree(wheel_dir, folder)
    (folder / "synonym.xlsx").unlink()
    out = tmp_path / "r.json"
    _fails(["bench", "score", "--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
            "--wheel-dir", str(folder), "-o", str(out)], capsys, "synonym.xlsx is missing")
    assert not out.exists()


def test_official_protocol_asked_for_without_files(tmp_path, capsys):
    labels, preds = basic_files(tmp_path)
    _fails(["bench", "score", "--protocol", "official", "--dataset", "mer2023", "--predictions", str(preds),
            "--labels", str(labels)], capsys, "fetch-wheels")


def test_iemocap_npz_labels_take_session_5_and_class_indices(tmp_path, capsys):
    corpus = {"Ses05F_a": {"emo": 0, "val": -10}, "Ses05M_b": {"emo": 3, "val": -10},
              "Ses01F_c": {"emo": 1, "val": -10}}
    (tmp_path / "labels").mkdir()
    np.savez(tmp_path / "labels" / "label_4way.npz", whole_corpus=corpus)
    preds = write_csv(tmp_path / "p.csv", "name,openset", [("Ses05F_a", "[happy]"), ("Ses05M_b", "[happy]")])
    out = tmp_path / "r.json"
    assert main(score(["--dataset", "iemocapfour", "--predictions", str(preds),
                       "--labels", str(tmp_path / "labels"), "--format", "json", "-o", str(out)])) == 0
    result = json.loads(out.read_text())
    assert result["n_labels"] == 2  # Session 1 is not test data
    assert result["epochs"][0]["metrics"]["hit"] == pytest.approx(0.5)  # happy hits, anger misses


def test_suite_over_a_root_in_published_order(tmp_path, capsys):
    labels, preds = basic_files(tmp_path / "x")
    (tmp_path / "preds" / "mer2023").parent.mkdir()
    shutil.copytree(preds, tmp_path / "preds" / "mer2023")
    (tmp_path / "labels" / "mer2023").mkdir(parents=True)
    shutil.copy(labels, tmp_path / "labels" / "mer2023" / "test_labels.csv")
    out = tmp_path / "suite.md"
    assert main(["bench", "suite", "--protocol", "builtin", "--predictions-root", str(tmp_path / "preds"),
                 "--labels-root", str(tmp_path / "labels"), "--format", "markdown", "-o", str(out)]) == 0
    header, _, row = out.read_text().splitlines()[:3]
    assert header.startswith("| MER2023 (HIT) | MER2024 (HIT) | MELD (HIT) | IEMOCAP (HIT) |")
    assert re.match(r"\| 33\.33 \| n/a \| n/a \|", row)
    assert row.endswith("| n/a |")  # the 9-dataset mean needs all nine


def test_ls_lists_the_nine_datasets(capsys):
    assert main(["bench", "ls"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 10 and out[1].startswith("mer2023")


def test_help_epilogs_parse(capsys):
    from affectgpt.cli import build_parser
    from affectgpt.cli.bench import FETCH_EXAMPLES, REPORT_EXAMPLES, SCORE_EXAMPLES, SUITE_EXAMPLES

    parser = build_parser()
    for block in (SCORE_EXAMPLES, SUITE_EXAMPLES, REPORT_EXAMPLES, FETCH_EXAMPLES):
        for command in block.replace("\\\n", " ").splitlines()[1:]:
            command = command.split("#")[0].split()
            assert command[0] == "affectgpt"
            parser.parse_args(command[1:])


# --- the protocol asked for is the protocol scored (issue 13 C.3) --------------------------------------------

def _edited_wheels(wheel_dir, tmp_path):
    folder = tmp_path / "edited-wheels"
    shutil.copytree(wheel_dir, folder)
    with open(folder / "format.csv", "a", encoding="utf-8") as handle:
        handle.write('zestful,"zestful,zest"\n')
    return folder


def test_official_protocol_refuses_the_2026_files(tmp_path, capsys, reference_dir):
    labels, preds = basic_files(tmp_path)
    wheels_2026 = reference_dir / "emotion_wheel-2026"
    out = tmp_path / "r.json"
    base = ["bench", "score", "--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
            "--format", "json", "-o", str(out)]
    err = _fails([*base, "--protocol", "official", "--wheel-dir", str(wheels_2026)], capsys,
                 str(wheels_2026), "format.csv", "official-2026", "--protocol auto")
    assert "synonym.xlsx" not in err.split("Fix:")[0]  # only the file that differs is named
    assert not out.exists()
    assert main([*base, "--protocol", "official-2026", "--wheel-dir", str(wheels_2026)]) == 0
    assert json.loads(out.read_text())["protocol"] == "official-2026"
    assert main([*base, "--protocol", "auto", "--wheel-dir", str(wheels_2026)]) == 0
    assert json.loads(out.read_text())["protocol"] == "official-2026"


def test_edited_wheel_files_are_not_scored_as_official(tmp_path, capsys, wheel_dir):
    labels, preds = basic_files(tmp_path)
    edited = _edited_wheels(wheel_dir, tmp_path)
    out = tmp_path / "r.json"
    base = ["bench", "score", "--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
            "--format", "json", "-o", str(out), "--wheel-dir", str(edited)]
    for protocol in ("official", "official-2026"):
        err = _fails([*base, "--protocol", protocol], capsys, str(edited), "format.csv", "--protocol auto")
        assert "wheel1.xlsx" not in err.split("Fix:")[0]
        assert not out.exists()
    assert main([*base, "--protocol", "auto"]) == 0  # auto accepts what it finds, and the result says so
    assert json.loads(out.read_text())["protocol"].startswith("official-custom-")
    assert main(["bench", "suite", "--protocol", "official", "--wheel-dir", str(edited), "--predictions-root",
                 str(tmp_path), "--labels-root", str(tmp_path)]) == 2
    assert "format.csv" in capsys.readouterr().err


# --- caveats in every format (issue 13 C.4) and a single file (C.5) ------------------------------------------

ORACLE_WORDS = "not a fair model selection"


def _suite_root(tmp_path):
    labels, preds = basic_files(tmp_path / "x")
    shutil.copytree(preds, tmp_path / "preds" / "mer2023")
    (tmp_path / "labels" / "mer2023").mkdir(parents=True)
    shutil.copy(labels, tmp_path / "labels" / "mer2023" / "test_labels.csv")
    return tmp_path / "preds", tmp_path / "labels"


@pytest.mark.parametrize("fmt", ["csv", "markdown", "latex"])
def test_score_formats_keep_the_oracle_and_partial_notes(tmp_path, capsys, fmt):
    labels, preds = basic_files(tmp_path)
    assert main(score(["--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
                       "--format", fmt])) == 0
    out = capsys.readouterr().out
    assert "ORACLE" in out and ORACLE_WORDS in out
    assert "partial ground truth" in out and "4 of the 411" in out
    if fmt in ("latex", "markdown"):
        assert str(tmp_path) not in out and "/" + preds.name not in out  # no file paths in a paper table
    if fmt == "latex":
        assert "\\footnotesize" in out


@pytest.mark.parametrize("fmt", ["csv", "markdown", "latex"])
def test_suite_formats_keep_the_oracle_and_partial_notes(tmp_path, capsys, fmt):
    preds, labels = _suite_root(tmp_path)
    assert main(["bench", "suite", "--protocol", "builtin", "--predictions-root", str(preds),
                 "--labels-root", str(labels), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "ORACLE" in out and ORACLE_WORDS in out
    assert "partial ground truth" in out and "MER2023" in out
    assert str(tmp_path) not in out


def test_full_ground_truth_has_no_partial_note_and_a_fixed_epoch_no_oracle_note(tmp_path, capsys):
    samples = [(f"n{i}", "happy", "[happy]") for i in range(411)]  # the whole MER2023 test set's size
    labels, preds = basic_files(tmp_path, samples=samples)
    assert main(score(["--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels),
                       "--format", "markdown"])) == 0
    out = capsys.readouterr().out
    assert "partial ground truth" not in out and ORACLE_WORDS in out
    preds_root, labels_root = _suite_root(tmp_path / "s")
    assert main(["bench", "suite", "--protocol", "builtin", "--predictions-root", str(preds_root),
                 "--labels-root", str(labels_root), "--format", "csv", "--epoch", "1"]) == 0
    out = capsys.readouterr().out
    assert ORACLE_WORDS not in out and "partial ground truth" in out


def test_a_single_file_without_an_epoch_prints_no_epoch_line(tmp_path, capsys):
    labels = write_csv(tmp_path / "labels.csv", "name,label", [(n, g) for n, g, _ in BASIC])
    preds = write_csv(tmp_path / "answers.csv", "name,openset", [(n, p) for n, _, p in BASIC])
    args = score(["--dataset", "mer2023", "--predictions", str(preds), "--labels", str(labels)])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "None" not in out and "best epoch" not in out and "ORACLE" not in out
    assert "single file" in out and "HIT 33.33" in out
    assert main([*args, "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["best"]["epoch"] is None and result["epochs"][0]["epoch"] is None
    assert main([*args, "--format", "markdown"]) == 0
    assert "None" not in capsys.readouterr().out
