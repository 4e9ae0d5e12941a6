"""caption/report.py: counts, histograms, label distribution and throughput equal hand-computed ones; the HTML
page is self-contained."""

from __future__ import annotations

import json

from affectgpt.caption.report import REPORT_HTML, REPORT_JSON, build_report, length_histogram, write_report


def _rec(name, words, openset=None, sentiment=None, dropped=None, stages=None):
    fields = {"description": " ".join(["w"] * words)} if words else {}
    if openset is not None:
        fields["openset"] = openset
    if sentiment:
        fields["sentiment"] = sentiment
    return {"name": name, "fields": fields, "dropped": dropped, "stages": stages or {}}


def _stages(*names, seconds=1.0, reused=False):
    return {n: {"key": "k", "seconds": seconds, "reused": reused} for n in names}


TAILS = {"low": 5, "high": 40, "k": 2.0}
RECORDS = [
    _rec("a", 10, ["happy", "relaxed"], "positive", stages=_stages("probe", "merge", "lowlevel", "labels")),
    _rec("b", 20, ["happy"], "positive", stages=_stages("probe", "merge", "lowlevel", "labels", seconds=3.0)),
    _rec("c", 30, ["sad", "sad"], "negative", stages=_stages("probe", "merge", "lowlevel", "labels", reused=True)),
    _rec("d", 2, dropped={"stage": "lowlevel", "reason": "length_tail: 2 words < 5"},
         stages={**_stages("probe", "merge"),
                 "lowlevel": {"key": "k", "seconds": 0.0, "params": {"length_tails": TAILS}}}),
    _rec("e", 0, dropped={"stage": "probe", "reason": "unreadable: moov atom not found"}, stages=_stages("probe")),
    _rec("f", 0, dropped={"stage": "probe", "reason": "unreadable: no video stream"}, stages=_stages("probe")),
]


def test_counts_and_reasons():
    report = build_report(RECORDS, {"config": "caption-offline"})
    assert report["counts"] == {"records": 6, "kept": 3, "dropped": 3}
    assert report["stages"]["probe"] == {"ran": 6, "dropped": 2, "reasons": {"unreadable": 2}}
    assert report["stages"]["lowlevel"] == {"ran": 4, "dropped": 1, "reasons": {"length_tail": 1}}
    assert report["stages"]["subtitle"] == {"ran": 0, "dropped": 0, "reasons": {}}
    assert [d["name"] for d in report["dropped"]] == ["d", "e", "f"]
    assert report["dropped"][0] == {"name": "d", "stage": "lowlevel", "reason": "length_tail: 2 words < 5"}
    assert report["summary"] == {"config": "caption-offline"}


def test_length_histogram_and_thresholds():
    hist = build_report(RECORDS, {})["description_length"]
    # lengths 10, 20, 30, 2 (the dropped one counts: the filter cuts this distribution's tails)
    assert hist["n"] == 4 and hist["min"] == 2 and hist["max"] == 30 and hist["mean"] == 15.5
    assert hist["thresholds"] == {"length_tails.low": 5, "length_tails.high": 40, "length_tails.k": 2.0}
    assert sum(hist["counts"]) == 4 and len(hist["edges"]) == len(hist["counts"]) + 1
    by_hand = length_histogram([_rec(str(i), n) for i, n in enumerate([1, 2, 2, 5])], {}, bins=4)
    assert by_hand["edges"] == [1, 2, 3, 4, 5] and by_hand["counts"] == [1, 2, 0, 1]
    engine_params = build_report(RECORDS, {"params": {"lowlevel": {"low": 3, "high": 9}}})
    assert engine_params["description_length"]["thresholds"] == {"low": 3, "high": 9}
    assert "params" not in engine_params["summary"]


def test_labels_and_throughput():
    report = build_report(RECORDS, {"wall_seconds": {"probe": 2.0}})
    labels = report["labels"]
    assert labels["clips"] == 3 and labels["distinct"] == 3
    assert labels["top"] == [["happy", 2], ["relaxed", 1], ["sad", 1]]  # a word counts once per clip
    assert labels["sentiment"] == {"positive": 2, "negative": 1}
    probe = report["throughput"]["probe"]
    # c's stages were reused from an earlier run: a, b, d, e, f ran probe (1 + 3 + 1 + 1 + 1 seconds)
    assert probe["clips"] == 5 and probe["seconds"] == 7.0 and probe["seconds_per_clip"] == 7.0 / 5
    assert probe["clips_per_worker_second"] == 5 / 7.0 and probe["clips_per_second"] == 2.5
    assert report["throughput"]["labels"]["clips"] == 2 and "subtitle" not in report["throughput"]


def test_written_files_are_self_contained(tmp_path):
    write_report(RECORDS, tmp_path, {"clips_dir": "https://example.invalid/not-a-link"})
    data = json.loads((tmp_path / REPORT_JSON).read_text())
    assert data["counts"]["kept"] == 3
    page = (tmp_path / REPORT_HTML).read_text()
    assert "<svg" in page and "length_tail (1)" in page and "happy" in page
    assert page.count("stroke='#c00'") == 1  # the low threshold (5) is inside the lengths' range 2..30, 40 is not
    # the only "https" is the escaped summary text, shown as text: no link, script, image or stylesheet
    assert "<script" not in page and "<link" not in page and "<img" not in page and " href=" not in page
    assert "http://" not in page.replace("https://example.invalid", "")
    assert "https://" not in page.replace("https://example.invalid/not-a-link", "")


def test_empty_run(tmp_path):
    write_report([], tmp_path, {})
    page = (tmp_path / REPORT_HTML).read_text()
    assert "No descriptions." in page and "http://" not in page and "https://" not in page
