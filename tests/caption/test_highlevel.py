"""The high-level stage in a caption run: classifier voters trained on synthetic feature files (the clip's class is
a known function of its features), descriptions chosen to agree or disagree, so every check outcome is known;
drops carry their reasons, and the report's counts per check variant (none, E, S, E+S) add up to the hand-computed
ones, also when re-rendered by `affectgpt caption report`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save

from affectgpt.caption.base import STAGE_ORDER, StageResult
from affectgpt.caption.config import build_caption_config
from affectgpt.caption.engine import run_caption
from affectgpt.caption.executors import InlineExecutor, WorkerSpec
from affectgpt.cli import main
from affectgpt.errors import InputError
from affectgpt.registry import Registry
from affectgpt.train.classifiers import load_feature_set, train_classifier

META = {"format": "affectgpt-features/1", "visual_encoder": "tiny-clip", "audio_encoder": "tiny-hubert",
        "visual_dim": "16", "audio_dim": "12", "encoder_dtype": "float32", "visual_input": "face",
        "hubert_normalization": "sample", "n_steps": "8"}
EMOTIONS, SENTIMENTS = ("angry", "happy", "sad"), ("negative", "positive")
V_PROTO = np.random.default_rng(1).normal(0, 1, (3, 16)).astype(np.float32) * 3
A_PROTO = np.random.default_rng(2).normal(0, 1, (2, 12)).astype(np.float32) * 3
# clip -> (emotion of its visual features, sentiment of its audio features, description); None: no feature file
CLIPS = {
    "k1": ("happy", "positive", "The person looks joyful and relaxed."),
    "k2": ("sad", "negative", "The person seems happy and cheerful."),
    "k3": ("happy", "negative", "She is delighted and joyful."),
    "k4": ("angry", "negative", "He is sad and upset."),
    "k5": (None, None, "He is sad and upset."),
}
EXPECTED = {"k1": ("agree", "agree"), "k2": ("disagree", "disagree"), "k3": ("agree", "disagree"),
            "k4": ("disagree", "agree"), "k5": ("undecided", "undecided")}
VARIANTS = {"none": (5, 0), "E": (3, 2), "S": (3, 2), "E+S": (2, 3)}  # kept, dropped: from EXPECTED by hand


def write_features(folder: Path, name: str, emotion: str, sentiment: str, rng: np.random.Generator) -> None:
    visual = V_PROTO[EMOTIONS.index(emotion)] + rng.normal(0, 1, (8, 16)).astype(np.float32)
    audio = A_PROTO[SENTIMENTS.index(sentiment)] + rng.normal(0, 1, (8, 12)).astype(np.float32)
    (folder / f"{name}.safetensors").write_bytes(save({"visual": torch.from_numpy(visual),
                                                       "audio": torch.from_numpy(audio)}, metadata=META))


@pytest.fixture(scope="module")
def voters(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path]:
    """Three emotion classifiers (seeds, modality subsets) and one sentiment classifier, and the clips' features."""
    root = tmp_path_factory.mktemp("highlevel")
    train, clips = root / "train", root / "clips"
    train.mkdir()
    clips.mkdir()
    rng = np.random.default_rng(0)
    rows = ["name,emotion,sentiment"]
    for i in range(60):
        emotion, sentiment = EMOTIONS[i % 3], SENTIMENTS[(i // 3) % 2]
        write_features(train, f"t{i:03d}", emotion, sentiment, rng)
        rows.append(f"t{i:03d},{emotion},{sentiment}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    specs = []
    for task, seed, modalities in (("emotion", 0, ["visual"]), ("emotion", 1, ["audio", "visual"]),
                                   ("emotion", 2, ["visual"]), ("sentiment", 0, ["audio"])):
        out = root / f"{task}-{seed}"
        config = train_classifier(load_feature_set(train, root / "labels.csv", task, modalities), task, out, seed=seed)
        assert config["held_out"]["accuracy"] >= 0.9
        specs.append({"kind": "classifier", "checkpoint": str(out)})
    for name, (emotion, sentiment, _) in CLIPS.items():
        if emotion:
            write_features(clips, name, emotion, sentiment, rng)
    return specs, clips


class _Fake:
    version, scope, reads, defaults = "1", "clip", (), {}

    def check(self, section):
        pass

    def __call__(self, fields, context):
        if self.name == "probe":  # the released layout needs each kept clip's video
            copy = Path(context.output) / "video" / f"{fields['name']}.mp4"
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(fields["name"].encode())
            return StageResult({"video_file": f"video/{fields['name']}.mp4"})
        return StageResult({"description": CLIPS[fields["name"]][2]} if self.name == "merge" else {})


class FakeLowlevel(_Fake):
    name, scope = "lowlevel", "dataset"

    def prepare(self, all_fields, config):
        return {}


FAKES = {n: type(f"Fake{n.capitalize()}", (_Fake,), {"name": n}) for n in STAGE_ORDER if n != "lowlevel"}
globals().update({cls.__name__: cls for cls in FAKES.values()})
TABLE = Registry("caption stage", {**{n: f"test_highlevel:Fake{n.capitalize()}" for n in STAGE_ORDER},
                                   "highlevel": "affectgpt.caption.stages.highlevel:HighLevel"})


def caption_run(tmp_path: Path, section: dict) -> Path:
    clips = []
    for name in CLIPS:
        (tmp_path / f"{name}.mp4").write_bytes(name.encode())
        clips.append((name, tmp_path / f"{name}.mp4"))
    config = build_caption_config({"stages": {"highlevel": section}}, source="t.yaml", table=TABLE)
    out = tmp_path / "out"
    spec = WorkerSpec(table=TABLE, sections={s: config.section(s) for s in STAGE_ORDER}, output=str(out.resolve()))
    run_caption(clips, config, out, table=TABLE, executor=InlineExecutor(spec))
    return out


def test_checks_drop_with_reasons_and_the_report_counts_add_up(voters, tmp_path, capsys):
    specs, features = voters
    out = caption_run(tmp_path, {"enabled": True, "checks": "E+S", "voters": specs, "features": str(features)})
    records = {r["name"]: r for r in map(json.loads, (out / "records.jsonl").read_text().splitlines())}
    for name, (e, s) in EXPECTED.items():
        info = records[name]["stages"]["highlevel"]["info"]
        assert (info["checks"]["E"], info["checks"]["S"]) == (e, s), (name, info)
        assert records[name]["fields"]["highlevel"]["checks"] == {"E": e, "S": s}
    assert records["k1"]["stages"]["highlevel"]["info"]["vote"] == {"emotion": "happy", "sentiment": "positive"}
    assert records["k1"]["fields"]["highlevel"]["vote"]["emotion"]["counts"] == {"happy": 3}
    assert records["k5"]["fields"]["highlevel"]["vote"]["emotion"]["status"] == "no_votes"
    assert records["k2"]["dropped"] == {"stage": "highlevel", "reason": "emotion_check: vote sad vs description "
                                        "happy; sentiment_check: vote negative vs description positive"}
    assert records["k3"]["dropped"]["reason"] == "sentiment_check: vote negative vs description positive"
    assert records["k4"]["dropped"]["reason"] == "emotion_check: vote angry vs description sad"
    assert records["k1"]["dropped"] is None and records["k5"]["dropped"] is None
    report = json.loads((out / "run_report.json").read_text())
    assert report["checks"]["evaluated"] == 5 and report["checks"]["applied"] == ["E+S"]
    assert {v: (c["kept"], c["dropped"]) for v, c in report["checks"]["variants"].items()} == VARIANTS
    assert report["stages"]["highlevel"]["reasons"] == {"emotion_check": 2, "sentiment_check": 1}
    assert report["counts"] == {"records": 5, "kept": 2, "dropped": 3}
    assert all(d["reason"] for d in report["dropped"])
    (out / "run_report.json").unlink()
    assert main(["caption", "report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "E+S   kept      2  dropped      3" in printed
    again = json.loads((out / "run_report.json").read_text())
    assert again["checks"] == report["checks"] and "High-level checks" in (out / "run_report.html").read_text()


def test_checks_none_records_outcomes_and_keeps_everything(voters, tmp_path):
    specs, features = voters
    out = caption_run(tmp_path, {"enabled": True, "checks": "none", "voters": specs[:1], "features": str(features)})
    report = json.loads((out / "run_report.json").read_text())
    assert report["counts"]["dropped"] == 0 and report["checks"]["variants"]["none"] == {"kept": 5, "dropped": 0}
    assert report["checks"]["outcomes"]["S"] == {"undecided": 5}  # an emotion classifier alone has no sentiment


def test_disabled_default_and_bad_sections(tmp_path):
    out = caption_run(tmp_path, {})
    report = json.loads((out / "run_report.json").read_text())
    assert report["counts"]["kept"] == 5 and report["checks"]["evaluated"] == 0
    for section, match in (({"enabled": True}, "at least one voter"), ({"checks": "E+X"}, "must be one of"),
                           ({"voters": [{"kind": "clasifier"}]}, "did you mean 'classifier'"),
                           ({"protocol": "offical"}, "must be one of"), ({"undecided": "maybe"}, "must be one of")):
        with pytest.raises(InputError, match=match):
            build_caption_config({"stages": {"highlevel": section}}, source="t.yaml", table=TABLE)
