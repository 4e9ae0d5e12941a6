"""hit_precision (the original's unreported `mscore`) and the label-budget diagnostics, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectgpt.cli import main
from conftest import write_csv

EPOCHS = (30, 35, 40, 45, 50, 55, 60)
# issue 14 (computed with the original implementation, official 2025 protocol), x100, 4 decimals
HIT_PRECISION = {
    "mer2023": (52.2501, 54.0823, 51.6657, 53.0316, 55.6091, 54.7178, 51.7614),
    "iemocapfour": (52.2870, 53.9712, 50.2217, 53.3839, 51.5130, 52.6138, 52.3221),
}


def run_json(args: list[str], tmp_path: Path, capsys) -> dict:
    out = tmp_path / "result.json"
    assert main([*args, "--format", "json", "--output", str(out)]) == 0, capsys.readouterr().err
    return json.loads(out.read_text())


@pytest.mark.reference
@pytest.mark.parametrize("dataset", sorted(HIT_PRECISION))
def test_hit_precision_reproduces_the_original_mscore(dataset, reference_dir, wheel_dir, tmp_path, capsys):
    result = run_json(["bench", "score", "--dataset", dataset,
                       "--predictions", str(reference_dir / "affectgpt-outputs" / dataset),
                       "--labels", str(reference_dir / "labels" / dataset),
                       "--wheel-dir", str(wheel_dir)], tmp_path, capsys)
    assert [e["epoch"] for e in result["epochs"]] == list(EPOCHS)
    got = tuple(round(100 * e["metrics"]["hit_precision"], 4) for e in result["epochs"])
    assert got == HIT_PRECISION[dataset]
    for e in result["epochs"]:
        d = e["diagnostics"]
        assert 1 <= d["labels_per_sample"] < 10
        assert 0 < d["candidate_coverage"] < 1
        assert 0 <= e["metrics"]["hit_precision"] <= e["metrics"]["hit"]


def _score_vector(tmp_path: Path, capsys, wheel_dir: Path, samples) -> dict:
    labels = write_csv(tmp_path / "labels.csv", "name,label", [(n, g) for n, g, _ in samples])
    preds = write_csv(tmp_path / "preds.csv", "name,openset", [(n, p) for n, _, p in samples])
    result = run_json(["bench", "score", "--dataset", "mer2023", "--predictions", str(preds),
                       "--labels", str(labels), "--wheel-dir", str(wheel_dir)], tmp_path, capsys)
    return result["epochs"][0]


def test_hit_precision_hand_made_vectors(wheel_dir, tmp_path, capsys):
    # candidates = the mapped ground truth of the set: happy, sad, angry (neutral maps to nothing)
    samples = [("a", "happy", "[happy, sad]"),        # hit; 2 candidates predicted -> 1/2
               ("b", "sad", "[calm]"),                # a miss -> 0
               ("c", "angry", "[]"),                  # empty prediction: a miss, 0
               ("d", "happy", "[happy, happy, joyful]"),  # duplicates and a synonym: one cluster -> 1
               ("e", "neutral", "[happy, angry, sad]")]   # neutral ground truth: skipped
    epoch = _score_vector(tmp_path, capsys, wheel_dir, samples)
    for wheel in epoch["per_wheel"]:
        assert wheel["scored"] == 4 and wheel["skipped"] == 1
        assert wheel["hit_precision"] == pytest.approx((0.5 + 0 + 0 + 1) / 4)
    assert epoch["metrics"]["hit"] == pytest.approx(0.5)
    assert epoch["metrics"]["hit_precision"] == pytest.approx(0.375)
    d = epoch["diagnostics"]
    # distinct words per sample: 2, 1, 0, 2, 3
    assert d["labels_per_sample"] == pytest.approx(8 / 5)
    assert 0 < d["candidate_coverage"] < 1


def test_hit_precision_is_zero_when_no_prediction_is_a_candidate(wheel_dir, tmp_path, capsys):
    samples = [("a", "happy", "[sad]"), ("b", "happy", "[]")]  # candidates: happy only
    epoch = _score_vector(tmp_path, capsys, wheel_dir, samples)
    assert epoch["metrics"]["hit_precision"] == 0.0
    assert epoch["diagnostics"]["candidate_coverage"] == 0.0


def test_ov_and_sentiment_results_carry_their_budget_diagnostics(wheel_dir, tmp_path, capsys):
    labels = write_csv(tmp_path / "ov.csv", "name,label", [("a", "happy, relaxed"), ("b", "sad")])
    preds = write_csv(tmp_path / "ovp.csv", "name,openset", [("a", "[joyful, calm, joyful]"), ("b", "[]")])
    result = run_json(["bench", "score", "--dataset", "ovmerdplus", "--predictions", str(preds),
                       "--labels", str(labels), "--wheel-dir", str(wheel_dir)], tmp_path, capsys)
    assert result["epochs"][0]["diagnostics"]["labels_per_sample"] == pytest.approx(1.0)
    labels = write_csv(tmp_path / "s.csv", "name,label", [("a", "1.5"), ("b", "-2"), ("c", "0.4"), ("d", "-1")])
    preds = write_csv(tmp_path / "sp.csv", "name,sentiment",
                      [("a", "positive"), ("b", "neutral"), ("c", "no idea"), ("d", "negative")])
    result = run_json(["bench", "score", "--dataset", "cmumosi", "--predictions", str(preds),
                       "--labels", str(labels)], tmp_path, capsys)
    d = result["epochs"][0]["diagnostics"]
    assert d["neutral_share"] == pytest.approx(0.25)
    assert d["unparseable_share"] == pytest.approx(0.25)


def test_hit_beside_its_companion_is_bit_exact_with_hit_rate():
    import random

    from affectgpt.bench.metrics import hit_rate, hit_with_precision

    rng = random.Random(14)
    for _ in range(200):
        n = rng.randrange(1, 30)
        gt = [rng.choice([0, 1, 2, 4, 8, 16]) for _ in range(n)]
        pred = [rng.randrange(64) for _ in range(n)]
        wheel = rng.choice([-1, 0b11111, 0b01111])
        full = hit_with_precision(gt, pred, wheel)
        assert full.values["hit"] == hit_rate(gt, pred, wheel).values["hit"]
        assert (full.scored, full.skipped) == (hit_rate(gt, pred, wheel).scored, hit_rate(gt, pred, wheel).skipped)
        assert 0 <= full.values["hit_precision"] <= full.values["hit"]
