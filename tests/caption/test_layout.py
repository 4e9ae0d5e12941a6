"""caption/layout.py: the kept records become the released layout, read back by data/manifests.read_mercaptionplus
(and trained on by `affectgpt train` through data.mercaptionplus)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from media_clips import tone, write_audio, write_video

from affectgpt.caption.layout import SUBTITLES, TRACK2, TRACK3, openset_string, write_released
from affectgpt.data.manifests import read_mercaptionplus
from affectgpt.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def _record(out: Path, name: str, description: str, openset: list[str], *, english: str = "", chinese: str = "",
            dropped=None, media: bool = True, audio: bool = True, faces: bool = True) -> dict:
    fields = {"video_file": f"video/{name}.mp4", "audio_file": f"audio/{name}.wav" if audio else None,
              "face_file": f"openface_face/{name}/{name}.npy" if faces else None,
              "subtitle": {"chinese": chinese, "english": english, "text": english or chinese,
                           "source": "given" if english or chinese else "none"},
              "description": description, "openset": openset, "sentiment": "neutral"}
    if media:
        (out / "video").mkdir(parents=True, exist_ok=True)
        write_video(out / "video" / f"{name}.mp4", n_frames=20, fps=10, audio=tone([220.0], 2.0, 16000))
        if audio:
            (out / "audio").mkdir(exist_ok=True)
            write_audio(out / "audio" / f"{name}.wav", tone([220.0], 2.0, 16000), 16000)
        if faces:
            (out / "openface_face" / name).mkdir(parents=True, exist_ok=True)
            np.save(out / "openface_face" / name / f"{name}.npy", np.zeros((4, 8, 8, 3), np.uint8))
    return {"name": name, "fields": fields, "dropped": dropped}


def _records(out: Path) -> list[dict]:
    return [
        _record(out, "clip_b", 'He says "fine, really", but his voice shakes: he is anxious and sad.',
                ["anxious", "sad"], english='Fine, really.', chinese="真的没事。"),
        _record(out, "clip_a", "She smiles broadly and sounds relaxed, so she is happy.", ["happy", "relaxed"],
                english="What a day!", audio=False, faces=False),
        _record(out, "clip_n", "No emotion is shown.", [], english=""),
        _record(out, "clip_x", "Dropped for its length.", ["calm"], dropped={"stage": "lowlevel",
                                                                           "reason": "length_tail: 3 words < 8"}),
    ]


def test_written_layout_reads_back(tmp_path):
    out = tmp_path / "OUT"
    counts = write_released(_records(out), out)
    assert {k: counts[k] for k in ("records", "kept", "dropped", "track3", "track2", "subtitles", "video", "audio",
                                   "faces")} == {"records": 4, "kept": 3, "dropped": 1, "track3": 3, "track2": 3,
                                                 "subtitles": 3, "video": 3, "audio": 2, "faces": 2}
    assert (out / TRACK2).read_text().splitlines()[1] == "clip_a,\"['happy', 'relaxed']\""
    samples = {s.name: s for s in read_mercaptionplus(out)}
    assert sorted(samples) == ["clip_a", "clip_b", "clip_n"]  # the dropped clip is not listed (its files stay)
    assert (out / "video" / "clip_x.mp4").is_file()
    b = samples["clip_b"]
    assert b.description == 'He says "fine, really", but his voice shakes: he is anxious and sad.'
    assert b.labels == ("anxious", "sad") and b.subtitle == "Fine, really."
    assert b.video == out / "video" / "clip_b.mp4" and b.audio == out / "audio" / "clip_b.wav"
    assert b.faces == out / "openface_face" / "clip_b" / "clip_b.npy"
    assert samples["clip_a"].labels == ("happy", "relaxed") and samples["clip_a"].audio is None
    assert samples["clip_a"].faces is None
    assert samples["clip_n"].labels == () and samples["clip_n"].subtitle == ""  # "[]": neutral, as released
    assert read_mercaptionplus(out, language="chinese")[1].subtitle == "真的没事。"


def test_openset_string_is_the_released_form():
    assert openset_string(["happy", "relaxed"]) == "['happy', 'relaxed']"
    assert openset_string([]) == "[]"


def test_missing_media_of_a_kept_clip_is_refused_and_nothing_written(tmp_path):
    out = tmp_path / "OUT"
    records = _records(out)
    (out / "audio" / "clip_b.wav").unlink()
    with pytest.raises(InputError, match="audio_file of kept clip 'clip_b' is missing"):
        write_released(records, out)
    assert not any(out.glob("*.csv"))


def test_media_outside_the_layout_is_refused(tmp_path):
    out = tmp_path / "OUT"
    record = _record(out, "clip_a", "Happy.", ["happy"], audio=False, faces=False)
    record["fields"]["video_file"] = "elsewhere/clip_a.mp4"
    with pytest.raises(InputError, match="not where the released layout puts it"):
        write_released([record], out)


def test_unfinished_and_duplicate_records(tmp_path):
    out = tmp_path / "OUT"
    unfinished = _record(out, "clip_u", "", [], media=False)
    counts = write_released([unfinished, *_records(out)[:1]], out)
    assert counts["incomplete"] == 1 and counts["kept"] == 1
    assert (out / TRACK3).read_text().count("clip_u") == 0 and (out / SUBTITLES).is_file()
    with pytest.raises(InputError, match="appears twice"):
        write_released([unfinished, unfinished], out)


@pytest.mark.slow
def test_affectgpt_train_trains_on_the_written_layout(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from affectgpt.cli import main

    out = tmp_path / "OUT"
    write_released(_records(out), out)
    run = tmp_path / "run"
    code = main(["train", "--config", str(ROOT / "configs" / "tiny-cpu.yaml"), "--output", str(run),
                 "--set", "data.synthetic=null", "--set", f"data.mercaptionplus={out}",
                 "--set", "schedule.total_steps=2", "--set", "schedule.warmup_steps=0", "--set", "batch_size=2",
                 "--set", "log_every=1", "--set", "save_every=0", "--set", "progress=false"])
    assert code == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
    assert len(list((run / "features").glob("*.safetensors"))) == 3  # the three kept clips, not the dropped one
