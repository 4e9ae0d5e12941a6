"""The published numbers, reproduced through the CLI as a user calls it, from the original release files.

Expected values are the spec's reference table (computed with the original implementation) and its
hand-checked vectors; nothing here comes from running our own code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectgpt.cli import main
from conftest import write_csv

pytestmark = pytest.mark.reference

EPOCHS = (30, 35, 40, 45, 50, 55, 60)
# shared/spec/mer-unibench.md, "Reference values" (x100, 4 decimals)
REFERENCE_TABLE = {
    "mer2023": {"hit": (72.5540, 76.7867, 73.4428, 74.6376, 78.5387, 75.6975, 73.6868)},
    "iemocapfour": {"hit": (58.2730, 60.5368, 56.9428, 59.4166, 57.2695, 59.0432, 57.7363)},
    "cmumosi": {"waf": (81.2124, 78.4830, 81.3014, 80.7404, 79.8483, 79.5341, 78.3040),
                "acc": (81.0976, 78.3537, 81.2500, 80.6402, 79.7256, 79.4207, 78.2012)},
    "sims": {"waf": (88.4897, 88.0183, 84.2904, 86.7072, 87.2331, 87.8959, 85.2838),
             "acc": (88.4021, 87.8866, 84.2784, 86.5979, 87.1134, 87.8866, 85.0515)},
    "ovmerdplus": {"f": (65.8607, 64.0161, 65.3611, 64.4837, 65.7445, 64.1951, 61.7384),
                   "p": (63.7048, 61.0164, 61.8215, 60.6193, 63.0522, 60.9869, 57.9527),
                   "r": (68.2665, 67.4082, 69.5679, 68.9235, 68.8386, 67.8516, 66.1346)},
}


def run_json(args: list[str], tmp_path: Path, capsys) -> dict:
    out = tmp_path / "result.json"
    assert main([*args, "--format", "json", "--output", str(out)]) == 0, capsys.readouterr().err
    return json.loads(out.read_text())


@pytest.mark.parametrize("dataset", sorted(REFERENCE_TABLE))
def test_every_reference_value_through_bench_score(dataset, reference_dir, wheel_dir, tmp_path, capsys):
    result = run_json(["bench", "score", "--dataset", dataset,
                       "--predictions", str(reference_dir / "affectgpt-outputs" / dataset),
                       "--labels", str(reference_dir / "labels" / dataset),
                       "--wheel-dir", str(wheel_dir), "--epoch", "45"], tmp_path, capsys)
    assert result["dataset"] == dataset
    assert result["protocol"] == "official-2025"
    assert [e["epoch"] for e in result["epochs"]] == list(EPOCHS)
    for metric, expected in REFERENCE_TABLE[dataset].items():
        got = tuple(round(100 * e["metrics"][metric], 4) for e in result["epochs"])
        assert got == expected, metric
    primary = result["primary_metric"]
    values = REFERENCE_TABLE[dataset][primary]
    best = max(range(len(EPOCHS)), key=lambda i: values[i])
    assert result["best"]["epoch"] == EPOCHS[best]
    assert result["best"]["selection"] == "oracle"
    assert round(100 * result["fixed"]["metrics"][primary], 4) == values[EPOCHS.index(45)]


def test_suite_gives_the_row_and_skips_missing_sets(reference_dir, wheel_dir, tmp_path, capsys):
    suite = run_json(["bench", "suite", "--predictions-root", str(reference_dir / "affectgpt-outputs"),
                      "--labels-root", str(reference_dir / "labels"), "--wheel-dir", str(wheel_dir)],
                     tmp_path, capsys)
    row = {c["dataset"]: c for c in suite["row"]}
    assert [c["dataset"] for c in suite["row"]] == ["mer2023", "mer2024", "meld", "iemocapfour", "cmumosi",
                                                     "cmumosei", "sims", "simsv2", "ovmerdplus"]
    for dataset, table in REFERENCE_TABLE.items():
        primary = next(iter(table))
        assert round(100 * row[dataset]["value"], 4) == max(table[primary])
        assert suite["results"][dataset]["dataset"] == dataset
    assert row["mer2024"]["value"] is None and row["mer2024"]["reason"] == "no labels"
    assert row["meld"]["reason"] == "no predictions"
    assert suite["mean"] is None
    present = [max(t[next(iter(t))]) for t in REFERENCE_TABLE.values()]
    assert suite["mean_present"]["datasets"] == 5
    assert round(100 * suite["mean_present"]["value"], 4) == pytest.approx(sum(present) / 5, abs=1e-4)


def test_ground_truth_from_the_plain_csv_gives_the_same_scores(reference_dir, wheel_dir, tmp_path, capsys):
    for dataset in ("mer2023", "cmumosi"):
        result = run_json(["bench", "score", "--dataset", dataset,
                           "--predictions", str(reference_dir / "affectgpt-outputs" / dataset),
                           "--labels", str(reference_dir / "labels" / dataset / "test_labels.csv"),
                           "--wheel-dir", str(wheel_dir)], tmp_path, capsys)
        metric, expected = next(iter(REFERENCE_TABLE[dataset].items()))
        assert tuple(round(100 * e["metrics"][metric], 4) for e in result["epochs"]) == expected


OV_SAMPLES = [  # spec: five OV samples scored together
    ("a", "happy, relaxed", "[joyful, calm]"),
    ("b", "angry, frustrated", "[sad]"),
    ("c", "worried, nervous", "[]"),
    ("d", "neutral", "[calm]"),
    ("e", "surprised, excited", "[shocked, happy, curious]"),
]


def _write_pair(tmp_path: Path, samples) -> tuple[Path, Path]:
    labels = write_csv(tmp_path / "labels.csv", "name,label", [(n, g) for n, g, _ in samples])
    preds = write_csv(tmp_path / "preds.csv", "name,openset", [(n, p) for n, _, p in samples])
    return labels, preds


def test_hand_checked_ov_vector(wheel_dir, tmp_path, capsys):
    labels, preds = _write_pair(tmp_path, OV_SAMPLES)
    result = run_json(["bench", "score", "--dataset", "ovmerdplus", "--predictions", str(preds),
                       "--labels", str(labels), "--wheel-dir", str(wheel_dir)], tmp_path, capsys)
    epoch = result["epochs"][0]
    expected = [(.4286, .5, .375), (.5556, .625, .5), (.5, .5, .5), (.6452, .6667, .625), (.25, .25, .25)]
    for wheel, (f, p, r) in zip(epoch["per_wheel"], expected, strict=True):
        assert (round(wheel["f"], 4), round(wheel["p"], 4), round(wheel["r"], 4)) == (f, p, r)
        assert wheel["skipped"] >= 1  # d (neutral) is skipped in every wheel
    metrics = epoch["metrics"]
    assert [round(metrics[k], 4) for k in ("f", "p", "r")] == [0.4759, 0.5083, 0.45]
    assert epoch["epoch"] is None


def test_single_ov_sample_is_perfect_in_every_wheel(wheel_dir, tmp_path, capsys):
    labels, preds = _write_pair(tmp_path, OV_SAMPLES[:1])
    result = run_json(["bench", "score", "--dataset", "ovmerdplus", "--predictions", str(preds),
                       "--labels", str(labels), "--wheel-dir", str(wheel_dir)], tmp_path, capsys)
    for wheel in result["epochs"][0]["per_wheel"]:
        assert (wheel["f"], wheel["p"], wheel["r"]) == (1.0, 1.0, 1.0)


def test_hand_checked_hit_vector(wheel_dir, tmp_path, capsys):
    samples = [("s1", "happy", "[joyful, excited]"), ("s2", "worried", "[anxious, tense]"),
               ("s3", "neutral", "[calm]"), ("s4", "surprise", "[amazed]"), ("s5", "angry", "[sad]"),
               ("s6", "sad", "[]")]
    labels, preds = _write_pair(tmp_path, samples)
    result = run_json(["bench", "score", "--dataset", "mer2023", "--predictions", str(preds),
                       "--labels", str(labels), "--wheel-dir", str(wheel_dir)], tmp_path, capsys)
    epoch = result["epochs"][0]
    assert [round(w["hit"], 4) for w in epoch["per_wheel"]] == [0.6, 0.6, 0.6, 0.4, 0.5]
    assert round(epoch["metrics"]["hit"], 4) == 0.54
