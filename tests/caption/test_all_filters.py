"""One `affectgpt caption run` with every filter on (length tails, speaker mismatch with the sync detector, the
high-level vote with the perception text and face voters, checks E+S) over generated clips, the real sample and
the real sample with its audio delayed 1 s: the report's counts per stage and per check variant add up, every
dropped clip has a stage and a reason, and `affectgpt caption report OUT` re-renders the same counts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from media_clips import tone, write_video
from test_speaker import _read, _write

from affectgpt.caption.base import STAGE_ORDER
from affectgpt.caption.store import read_records
from affectgpt.cli import main

LONG = " ".join(["I keep telling everyone how happy and grateful I feel about this wonderful day."] * 12)
SUBTITLES = {  # generated clips get words so the text voter votes and the lengths differ
    "gen_happy": "I am so happy today, this is wonderful news!",
    "gen_angry": "This is terrible, I hate it and I am furious with you.",
    "gen_long": LONG,  # the longest description of the run: beyond the high percentile
}
CONFIG = {"executor": "local", "workers": 1, "stages": {
    "lowlevel": {"length_tails": {"enabled": True, "mode": "percentile", "low": 10, "high": 90},
                 "speaker_mismatch": {"enabled": True, "detector": "sync", "threshold": 0.35}},
    "highlevel": {"enabled": True, "checks": "E+S", "voters": [{"kind": "text"}, {"kind": "face"}]}}}


@pytest.fixture(scope="module")
def clips(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = reference_dir / "media" / "sample_00000000.mp4"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    folder = tmp_path_factory.mktemp("all_filters") / "clips"
    folder.mkdir()
    write_video(folder / "gen_happy.mp4", n_frames=30, fps=10, audio=tone([440], 3.0, 16000))
    write_video(folder / "gen_angry.mkv", n_frames=25, fps=10, audio=tone([1000], 2.5, 44100), audio_rate=44100,
                audio_codec="pcm_s16le")
    write_video(folder / "gen_long.mp4", n_frames=20, fps=10, audio=tone([330], 2.0, 16000))
    write_video(folder / "gen_mute.mp4", n_frames=20, fps=10)  # no audio stream, no subtitle
    shutil.copy(source, folder / "sample_00000000.mp4")
    frames, audio, rate, fps = _read(source)
    _write(folder / "sample_delayed.mp4", frames, np.concatenate([np.zeros(rate), audio])[:len(audio)], rate, fps)
    return folder


def _counts(printed: str) -> list[str]:
    return [line.split() for line in printed.splitlines() if line.split() and line.split()[0] in CHECK_ROWS]


CHECK_ROWS = ("none", "E", "S", "E+S")


@pytest.mark.slow
def test_every_filter_in_one_run_counts_add_up_and_drops_have_reasons(clips, tmp_path, capsys):
    config = tmp_path / "all-filters.yaml"
    config.write_text(json.dumps(CONFIG))  # JSON is YAML
    subtitles = tmp_path / "subtitles.csv"
    subtitles.write_text("name,chinese,english\n" + "".join(f'{n},,"{t}"\n' for n, t in SUBTITLES.items()))
    out = tmp_path / "out"
    code = main(["caption", "run", "--clips", str(clips), "--output", str(out), "--config", str(config),
                 "--subtitles", str(subtitles)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    records = {r["name"]: r for r in read_records(out)}
    names = sorted(p.stem for p in clips.iterdir())
    assert sorted(records) == names
    report = json.loads((out / "run_report.json").read_text())

    # every dropped clip has a stage and a non-empty reason, and the report lists exactly those
    dropped = {n: r["dropped"] for n, r in records.items() if r["dropped"]}
    assert all(d["stage"] in STAGE_ORDER and d["reason"].strip() for d in dropped.values()), dropped
    assert {d["name"]: (d["stage"], d["reason"]) for d in report["dropped"]} == \
        {n: (d["stage"], d["reason"]) for n, d in dropped.items()}
    assert all(d["reason"].strip() for d in report["dropped"])
    assert report["counts"] == {"records": len(names), "kept": len(names) - len(dropped), "dropped": len(dropped)}

    # per stage: what reached it = what it kept + what it dropped; what it kept reaches the next stage
    reached = len(names)
    for stage in STAGE_ORDER:
        row = report["stages"][stage]
        assert row["ran"] == reached, (stage, row)
        assert sum(row["reasons"].values()) == row["dropped"] == sum(d["stage"] == stage for d in dropped.values())
        reached = row["ran"] - row["dropped"]
    assert reached == report["counts"]["kept"]

    # the low-level filters: the delayed audio is a speaker mismatch; the longest description (gen_long) and the
    # shortest (gen_mute: no audio, no subtitle) are the two length tails
    assert dropped["sample_delayed"]["stage"] == "lowlevel"
    assert dropped["sample_delayed"]["reason"].startswith("speaker_mismatch: mismatch (score ")
    delayed = records["sample_delayed"]["stages"]["lowlevel"]["info"]["speaker"]
    assert delayed["decision"] == "mismatch" and delayed["score"] < delayed["threshold"]
    assert dropped["gen_long"]["stage"] == "lowlevel" and dropped["gen_long"]["reason"].startswith("length_tail: ")
    assert dropped["gen_mute"]["stage"] == "lowlevel" and dropped["gen_mute"]["reason"].startswith("length_tail: ")
    params = records["gen_long"]["stages"]["lowlevel"]["params"]
    tails, words = params["length_tails"], {n: r["stages"]["lowlevel"]["info"]["words"] for n, r in records.items()}
    assert tails["mode"] == "percentile" and tails["n"] == len(names) == sum(params["length_histogram"]["counts"])
    assert words["gen_long"] == max(words.values()) > tails["high"]
    assert words["gen_mute"] == min(words.values()) < tails["low"]
    assert all(tails["low"] <= n <= tails["high"] for k, n in words.items() if k not in ("gen_long", "gen_mute"))
    sample = records["sample_00000000"]["stages"]["lowlevel"]["info"]
    assert sample["speaker"]["decision"] == "match", sample
    for name in ("gen_happy", "gen_angry"):  # a tone is no speech: reported silent, kept
        assert records[name]["stages"]["lowlevel"]["info"]["speaker"]["decision"] == "silent"
    assert report["stages"]["lowlevel"]["reasons"] == {"length_tail": 2, "speaker_mismatch": 1}
    for name, record in sorted(records.items()):  # shown with `pytest -s`
        info = record["stages"]["lowlevel"]["info"]
        speaker = info.get("speaker") or {}
        print(f"lowlevel  {name:<16} {info['words']:>4} words  speaker {speaker.get('decision')} "
              f"score {speaker.get('score')}  dropped {record['dropped']}")
    print(f"length tails {tails}")

    # the high-level vote ran on every clip the low-level filters kept, with both voters, and decided something
    high = {n: r["stages"]["highlevel"]["info"] for n, r in records.items() if "highlevel" in r["stages"]}
    assert sorted(high) == sorted(set(names) - {"sample_delayed", "gen_long", "gen_mute"})
    assert all(i["enabled"] and i["voters"] == 2 and i["applied"] == "E+S" for i in high.values())
    ballots = {n: {b["voter"]: (b["emotion"], b["sentiment"]) for b in records[n]["fields"]["highlevel"]["ballots"]}
               for n in high}
    assert ballots["sample_00000000"]["face"][0] is not None  # the real sample has a face
    assert ballots["gen_happy"]["text"][0] is not None and ballots["gen_happy"]["face"] == (None, None)  # no face
    for name, info in high.items():
        print(f"highlevel {name:<16} vote {info['vote']} extracted {info['extracted']} checks {info['checks']}")
        reason = (records[name]["dropped"] or {}).get("reason", "")
        assert ("disagree" in info["checks"].values()) == bool(reason), (name, info, reason)
        if reason:
            assert reason.split(":")[0] in ("emotion_check", "sentiment_check")

    # the check variants (none, E, S, E+S) over the clips the high-level stage evaluated
    checks = report["checks"]
    assert checks["evaluated"] == len(high) and checks["applied"] == ["E+S"]
    for variant, row in checks["variants"].items():
        assert row["kept"] + row["dropped"] == len(high), (variant, row)
    assert checks["variants"]["none"] == {"kept": len(high), "dropped": 0}
    assert checks["variants"]["E+S"]["dropped"] == report["stages"]["highlevel"]["dropped"]
    assert checks["variants"]["E+S"]["kept"] <= min(checks["variants"]["E"]["kept"], checks["variants"]["S"]["kept"])
    for name in ("E", "S"):
        assert sum(checks["outcomes"][name].values()) == len(high)
        assert checks["variants"][name]["dropped"] == checks["outcomes"][name].get("disagree", 0)

    # `caption report OUT` re-renders the same counts
    (out / "run_report.json").unlink()
    assert main(["caption", "report", str(out)]) == 0
    printed = capsys.readouterr().out
    again = json.loads((out / "run_report.json").read_text())
    for key in ("counts", "stages", "dropped", "checks", "description_length"):
        assert again[key] == report[key], key
    rows = {row[0]: row for row in _counts(printed)}
    for variant, row in checks["variants"].items():
        assert rows[variant][1:] == ["kept", str(row["kept"]), "dropped", str(row["dropped"])], printed
