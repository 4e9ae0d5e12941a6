"""The pure metric functions on hand-built cluster sets (bit masks) and the spec's sentiment vector."""

import pytest

from affectgpt.bench.metrics import hit_rate, mean_over_wheels, sentiment_waf_acc, wheel_fpr

A, B, C, D = 1, 2, 4, 8  # four clusters of one wheel


def test_hit_rate_skips_unmapped_ground_truth_and_counts_empty_prediction_as_miss():
    gt = [A, B, 0, C]
    pred = [A | B, 0, A, D]
    score = hit_rate(gt, pred)
    assert score.values == {"hit": pytest.approx(1 / 3)}
    assert (score.scored, score.skipped) == (3, 1)


def test_hit_rate_only_looks_at_the_selected_wheel():
    other = 16  # a cluster of another wheel
    score = hit_rate([A | other], [other], wheel=A | B | C | D)
    assert score.values["hit"] == 0.0


def test_wheel_fpr_by_hand():
    # sample 1: G={A,B}, P={A}: p=1, r=.5; sample 2: G={C}, P={}: p=r=0; sample 3: G={} skipped
    score = wheel_fpr([A | B, C, 0], [A, 0, D])
    assert score.values["p"] == pytest.approx(0.5)
    assert score.values["r"] == pytest.approx(0.25)
    assert score.values["f"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert (score.scored, score.skipped) == (2, 1)


def test_wheel_fpr_defines_f_as_zero_where_the_original_gives_nan():
    assert wheel_fpr([A], [B]).values == {"f": 0.0, "p": 0.0, "r": 0.0}


def test_mean_over_wheels_averages_each_metric_separately():
    w1, w2 = wheel_fpr([A], [A]), wheel_fpr([A | B], [C])
    mean = mean_over_wheels([w1, w2])
    assert mean == {"f": 0.5, "p": 0.5, "r": 0.5}


def test_sentiment_vector_from_the_spec():
    # GT [2.0, -1.4, 0.0, 0.6, -0.2], predictions [positive, negative, positive, neutral, mixed]:
    # the 0.0 sample is dropped, neutral and the unparseable `mixed` count as 0, i.e. negative.
    result = sentiment_waf_acc([2.0, -1.4, 0.0, 0.6, -0.2], [1, -1, 1, 0, 0])
    assert result["acc"] == pytest.approx(0.75)
    assert round(result["waf"], 4) == 0.7333


def test_sentiment_with_one_class_only_uses_zero_for_the_undefined_f1():
    result = sentiment_waf_acc([1.0, 2.0], [-1, -1])
    assert result == {"waf": 0.0, "acc": 0.0}


def test_sentiment_all_zero_ground_truth():
    assert sentiment_waf_acc([0.0, 0.0], [1, -1]) == {"waf": 0.0, "acc": 0.0}
