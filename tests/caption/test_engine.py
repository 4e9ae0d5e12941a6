"""The caption engine with small deterministic fake stages: resume, re-run only what changed, drops, config errors.

The fake stages (importable as `test_engine:Fake*`, so worker processes and Ray actors build them too) mimic
the real pipeline's shape: probe, subtitle, acoustic, visual, merge are clip stages, lowlevel is a dataset stage
(drops the clips whose description is longer than the mean + `cut` words), highlevel passes, labels reads the
description. A clip named `bad*` makes acoustic raise; a clip named `mute*` is dropped by the probe.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import types
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest

from affectgpt.caption.base import STAGE_ORDER, StageResult
from affectgpt.caption.config import build_caption_config
from affectgpt.caption.engine import run_caption
from affectgpt.caption.store import LOG, RECORDS, EventLog, comparable, read_records
from affectgpt.errors import InputError
from affectgpt.registry import Registry


def _h(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8]


class _Fake:
    version = "1"
    scope = "clip"
    reads: tuple[str, ...] = ()
    defaults: Mapping = MappingProxyType({"note": ""})

    def __call__(self, fields, context):
        time.sleep(float(os.environ.get("FAKE_STAGE_SLEEP", "0")))  # outside the key: a slow run has the same keys
        return self.make(fields, context)


class FakeProbe(_Fake):
    name = "probe"
    reads = ("video",)

    def make(self, fields, context):
        if fields["name"].startswith("mute"):
            return StageResult(dropped="unreadable: no streams")
        copy = Path(context.output) / "video" / f"{fields['name']}.mp4"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(Path(fields["video"]).read_bytes())
        return StageResult({"duration": float(len(fields["name"])), "video_file": f"video/{fields['name']}.mp4"},
                           info={"probe": "fake"})


class FakeSubtitle(_Fake):
    name = "subtitle"
    reads = ("duration",)
    defaults = MappingProxyType({"note": "", "subtitles": None})

    def make(self, fields, context):
        return StageResult({"subtitle": {"text": f"line {fields['name']}", "source": "none"}})


class FakeAcoustic(_Fake):
    name = "acoustic"
    reads = ("duration", "subtitle")

    def make(self, fields, context):
        if fields["name"].startswith("bad"):
            raise RuntimeError("backend exploded")
        return StageResult({"acoustic_clues": f"calm voice {_h(fields['name'])}"}, info={"backend": "fake"})


class FakeVisual(_Fake):
    name = "visual"
    reads = ("duration",)

    def make(self, fields, context):
        down = Path(context.output) / "server-down"  # a test's switch: the visual backend fails while it exists
        if down.exists() and fields["name"] == "clip2":
            return StageResult(dropped="backend_error: HTTP 503: overloaded")
        return StageResult({"visual_clues": f"smiles {_h('v', fields['name'])}"})


class FakeMerge(_Fake):
    name = "merge"
    reads = ("acoustic_clues", "visual_clues", "subtitle")
    defaults = MappingProxyType({"note": "", "template": "merge-v1"})

    def make(self, fields, context):
        if context.config["template"] == "boom":  # a config value the stage refuses only when it runs
            raise InputError("unknown template 'boom'", field="template", fix="choose merge-v1")
        words = 3 + len(fields["name"]) % 4 + (6 if fields["name"].endswith("9") else 0)
        text = " ".join([context.config["template"]] + ["happy"] * words)
        return StageResult({"description": text}, info={"prompt": context.config["template"]})


class FakeLowlevel(_Fake):
    name = "lowlevel"
    scope = "dataset"
    reads = ("description",)
    defaults = MappingProxyType({"note": "", "cut": 2.0})

    def prepare(self, all_fields, config):
        lengths = [len(f["description"].split()) for f in all_fields]
        return {"max_words": sum(lengths) / len(lengths) + float(config["cut"])}

    def make(self, fields, context):
        n = len(fields["description"].split())
        if n > context.params["max_words"]:
            return StageResult(dropped=f"length_tail: {n} words > {context.params['max_words']:.1f}")
        return StageResult({})


class FakeHighlevel(_Fake):
    name = "highlevel"
    reads = ("description",)

    def make(self, fields, context):
        return StageResult({})


class FakeLabels(_Fake):
    name = "labels"
    reads = ("description",)

    def make(self, fields, context):
        return StageResult({"openset": ["happy"], "sentiment": "positive"})


FAKE_TABLE = Registry("caption stage", {n: f"test_engine:Fake{n.capitalize()}" for n in STAGE_ORDER})


def fake_config(**stages):
    return build_caption_config({"stages": stages}, source="test.yaml", table=FAKE_TABLE)


def make_clips(folder: Path, names) -> list[tuple[str, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for name in names:
        (folder / f"{name}.mp4").write_bytes(name.encode())
        clips.append((name, folder / f"{name}.mp4"))
    return clips


NAMES = ["clip01", "clip2", "clip003", "clip9", "bad1", "mute1", "clip0005"]


def install_fake_stages() -> None:
    """Make `affectgpt.caption.stages.STAGES` the fake table (for a subprocess running the CLI)."""
    module = types.ModuleType("affectgpt.caption.stages")
    module.STAGES = FAKE_TABLE
    sys.modules["affectgpt.caption.stages"] = module


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG).read_text().splitlines()]


def test_run_writes_one_record_per_clip_with_drops_and_errors(tmp_path):
    clips = make_clips(tmp_path / "clips", NAMES)
    summary = run_caption(clips, fake_config(), tmp_path / "out", table=FAKE_TABLE)
    records = {r["name"]: r for r in read_records(tmp_path / "out")}
    assert sorted(records) == sorted(NAMES)
    assert records["bad1"]["dropped"] == {"stage": "acoustic",
                                          "reason": "error: acoustic: RuntimeError: backend exploded"}
    assert records["mute1"]["dropped"] == {"stage": "probe", "reason": "unreadable: no streams"}
    assert records["clip9"]["dropped"]["stage"] == "lowlevel"  # the long description's tail
    assert records["clip9"]["dropped"]["reason"].startswith("length_tail: ")
    kept = records["clip01"]
    assert kept["dropped"] is None and list(kept["stages"]) == list(STAGE_ORDER)
    assert kept["fields"]["description"].startswith("merge-v1 ") and kept["fields"]["openset"] == ["happy"]
    assert kept["stages"]["lowlevel"]["params"] == summary.params["lowlevel"]
    assert kept["stages"]["acoustic"]["info"] == {"backend": "fake"}
    assert summary.kept == 4 and summary.dropped == 3 and summary.clips == 7
    assert summary.stages["acoustic"].errors == 1 and summary.stages["probe"].dropped == 1
    # the error is not logged (a rerun tries it again); every finished stage is, once
    events = _events(tmp_path / "out")
    assert not any(e["name"] == "bad1" and e["stage"] == "acoustic" for e in events)
    assert len({(e["name"], e["stage"]) for e in events}) == len(events)


def test_rerun_reuses_everything_and_gives_the_same_records(tmp_path):
    clips = make_clips(tmp_path / "clips", NAMES)
    run_caption(clips, fake_config(), tmp_path / "out", table=FAKE_TABLE)
    first = (tmp_path / "out" / RECORDS).read_text()
    n_events = len(_events(tmp_path / "out"))
    summary = run_caption(clips, fake_config(), tmp_path / "out", table=FAKE_TABLE)
    assert len(_events(tmp_path / "out")) == n_events  # nothing ran again
    assert sum(s.ran for s in summary.stages.values()) == 0
    assert summary.stages["acoustic"].errors == 1  # the failing clip is retried, and fails again
    second = read_records(tmp_path / "out")
    assert sorted(map(comparable, second)) == sorted(map(comparable, map(json.loads, first.splitlines())))


def test_changing_only_the_merge_template_reruns_merge_and_what_reads_it(tmp_path):
    clips = make_clips(tmp_path / "clips", NAMES)
    run_caption(clips, fake_config(), tmp_path / "out", table=FAKE_TABLE)
    before = len(_events(tmp_path / "out"))
    run_caption(clips, fake_config(merge={"template": "merge-v2"}), tmp_path / "out", table=FAKE_TABLE)
    new = _events(tmp_path / "out")[before:]
    assert {e["stage"] for e in new} == {"merge", "lowlevel", "highlevel", "labels"}
    assert sorted(e["name"] for e in new if e["stage"] == "merge") == sorted(["clip01", "clip2", "clip003",
                                                                             "clip9", "clip0005"])
    records = {r["name"]: r for r in read_records(tmp_path / "out")}
    assert records["clip2"]["fields"]["description"].startswith("merge-v2 ")
    assert records["clip2"]["stages"]["probe"]["reused"] and not records["clip2"]["stages"]["merge"]["reused"]
    # switching back is served from the log: nothing runs
    run_caption(clips, fake_config(), tmp_path / "out", table=FAKE_TABLE)
    assert len(_events(tmp_path / "out")) == before + len(new)


def test_a_cut_last_line_is_truncated_away_and_redone(tmp_path):
    clips = make_clips(tmp_path / "clips", NAMES[:3])
    run_caption(clips, fake_config(), tmp_path / "out", table=FAKE_TABLE)
    reference = sorted(map(comparable, read_records(tmp_path / "out")))
    log = tmp_path / "out" / LOG
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:5]) + lines[5][:17])  # a kill in the middle of writing line 6
    (tmp_path / "out" / RECORDS).unlink()
    assert EventLog(tmp_path / "out").loaded == 5
    assert log.read_bytes() == b"".join(lines[:5])  # the cut tail is gone before anything is appended
    run_caption(clips, fake_config(), tmp_path / "out", table=FAKE_TABLE)
    assert sorted(map(comparable, read_records(tmp_path / "out"))) == reference
    events = _events(tmp_path / "out")
    assert len({(e["name"], e["stage"]) for e in events}) == len(events) == len(lines)


def test_an_unknown_stage_or_key_names_the_file_and_field(tmp_path):
    with pytest.raises(InputError) as info:
        build_caption_config({"stages": {"mergee": {}}}, source="run.yaml", table=FAKE_TABLE)
    assert info.value.path == "run.yaml" and info.value.field == "stages.mergee"
    assert "did you mean 'merge'" in info.value.fix
    with pytest.raises(InputError) as info:
        build_caption_config({"stages": {"merge": {"templat": "x"}}}, source="run.yaml", table=FAKE_TABLE)
    assert info.value.field == "stages.merge.templat" and "template" in info.value.fix
    with pytest.raises(InputError) as info:
        build_caption_config({"executer": "local"}, source="run.yaml", table=FAKE_TABLE)
    assert info.value.field == "executer" and "executor" in info.value.fix
    with pytest.raises(InputError) as info:
        build_caption_config({"executor": "spark"}, source="run.yaml", table=FAKE_TABLE)
    assert info.value.field == "executor"
    with pytest.raises(InputError) as info:
        build_caption_config({"workers": 0}, source="run.yaml", table=FAKE_TABLE)
    assert info.value.field == "workers"


def test_a_stage_check_error_is_reraised_with_the_file_and_section():
    class Checked(FakeMerge):
        def check(self, section):
            if section["template"] != "merge-v1":
                raise InputError(f"unknown merge backend {section['template']!r}", field="backend",
                                 fix="choose one of template, openai")

    table = types.SimpleNamespace(get=lambda name: Checked if name == "merge" else FAKE_TABLE.get(name))
    with pytest.raises(InputError) as info:
        build_caption_config({"stages": {"merge": {"template": "nope"}}}, source="run.yaml", table=table)
    assert (info.value.path, info.value.field) == ("run.yaml", "stages.merge.backend")


def test_overrides_reach_the_stage_sections():
    config = build_caption_config({"workers": 1}, source="t.yaml", table=FAKE_TABLE,
                                  overrides=["stages.merge.template=merge-v3", "workers=2"])
    assert config.section("merge") == {"note": "", "template": "merge-v3"} and config.workers == 2
    assert config.section("probe") == {"note": ""}  # defaults fill a missing section


def test_duplicate_clip_names_are_refused(tmp_path):
    clips = make_clips(tmp_path / "a", ["x"]) + make_clips(tmp_path / "b", ["x"])
    with pytest.raises(InputError, match="appear twice"):
        run_caption(clips, fake_config(), tmp_path / "out", table=FAKE_TABLE)


def test_a_stage_refusing_its_config_stops_the_run_naming_the_file(tmp_path):
    clips = make_clips(tmp_path / "clips", NAMES[:3])
    with pytest.raises(InputError) as info:
        run_caption(clips, fake_config(merge={"template": "boom"}), tmp_path / "out", table=FAKE_TABLE)
    assert (info.value.path, info.value.field) == ("test.yaml", "stages.merge.template")
    assert not (tmp_path / "out" / RECORDS).exists()
    assert {e["stage"] for e in _events(tmp_path / "out")} == {"probe", "subtitle", "acoustic", "visual"}


def test_a_backend_failure_drops_the_clip_now_and_is_asked_again_on_the_rerun(tmp_path):
    clips = make_clips(tmp_path / "clips", ["clip01", "clip2"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "server-down").touch()
    run_caption(clips, fake_config(), out, table=FAKE_TABLE)
    records = {r["name"]: r for r in read_records(out)}
    assert records["clip2"]["dropped"] == {"stage": "visual", "reason": "backend_error: HTTP 503: overloaded"}
    assert not any(e["name"] == "clip2" and e["stage"] == "visual" for e in _events(out))  # not a decision
    (out / "server-down").unlink()
    summary = run_caption(clips, fake_config(), out, table=FAKE_TABLE)
    records = {r["name"]: r for r in read_records(out)}
    assert records["clip2"]["dropped"] is None and summary.stages["visual"].ran == 1
