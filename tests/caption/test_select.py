"""caption/select.py: candidate clue backends ranked alone and in pairs by the emotion-wheel F/P/R of their
descriptions on hand-labelled generated clips (fake backends whose clue texts are known)."""

from __future__ import annotations

import json

import pytest
from media_clips import tone, write_video

from affectgpt.caption.select import (
    Candidate,
    format_ranking,
    load_candidates,
    parse_candidates,
    select,
    select_command,
)
from affectgpt.errors import InputError
from affectgpt.harness.base import Output

LABELS = {"clip_0": "['happy']", "clip_1": "['sad', 'angry']", "clip_2": "['worried']"}
CLUES = {
    # the right emotions for every clip
    "good": {"clip_0": "The voice is bright: she sounds happy.", "clip_1": "A trembling, loud voice: sad and angry.",
             "clip_2": "Hesitant pauses: the speaker sounds worried."},
    # the same wrong emotion everywhere
    "bad": {n: "The face looks surprised." for n in LABELS},
    # right for one clip, nothing for the others
    "half": {"clip_0": "A broad smile: happy.", "clip_1": "A still face.", "clip_2": "A still face."},
}
SEEN: dict[str, set[str]] = {}


class TableBackend:
    """An `openai` backend stand-in: answers each clip from CLUES[table], records the inputs and instruction it
    was given, fails on clip `fail`."""

    name = "openai"
    model = "table"

    def __init__(self, table: str, fail: str = "", **stage_chosen) -> None:
        self.table, self.fail, self.stage_chosen = table, fail, stage_chosen
        self.needs = frozenset({"audio", "frames", "faces", "subtitle"})

    def answer(self, jobs, on_result=None):
        outputs = []
        for job in jobs:
            clip = job.clip
            seen = SEEN.setdefault(self.table, set())
            seen.update(k for k in ("audio", "frames", "faces") if getattr(clip, k) is not None)
            seen.add(job.prompt.id)
            seen.update(f"modality:{m}" for m in self.stage_chosen.get("modalities", ()))
            if clip.name == self.fail:
                outputs.append(Output(clip.name, None, error="server said 500"))
            else:
                outputs.append(Output(clip.name, CLUES[self.table][clip.name]))
        return outputs

    def provenance(self):
        return {"backend": "table"}


def build(name, **options):
    assert name == "openai"  # the candidate's backend name reaches the stage's build_backend
    return TableBackend(**options)


@pytest.fixture
def labelled(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in LABELS:
        write_video(clips / f"{name}.mp4", n_frames=10, fps=10, audio=tone([330.0], 1.0, 16000))
    labels = tmp_path / "labels.csv"
    labels.write_text("name,openset\n" + "".join(f'{n},"{v}"\n' for n, v in LABELS.items()), encoding="utf-8")
    return clips, labels


CANDIDATES = [Candidate("good", "openai", "audio", {"table": "good"}),
              Candidate("bad", "openai", "visual", {"table": "bad"}),
              Candidate("half", "openai", "visual", {"table": "half", "fail": "clip_2"})]


@pytest.fixture(autouse=True)
def _fake_openai(monkeypatch):
    monkeypatch.setattr("affectgpt.harness.backends.build_backend", build)
    SEEN.clear()


def test_ranking_by_f_then_p_r(labelled):
    clips, labels = labelled
    result = select(CANDIDATES, clips, labels, protocol="builtin")
    ranking = {r["name"]: r for r in result["ranking"]}
    # good+half ties with good (half's one clue agrees with good's), broken by name; bad adds a wrong cluster
    assert [r["name"] for r in result["ranking"]] == ["good", "good+half", "good+bad", "half", "bad"]
    assert sorted(ranking) == ["bad", "good", "good+bad", "good+half", "half"]  # singles + audio x visual pairs
    # good names every clip's emotions exactly: P = R = F = 1
    assert ranking["good"]["f"] == ranking["good"]["p"] == ranking["good"]["r"] == pytest.approx(1.0)
    # adding bad's "surprised" to every clip keeps recall but halves-or-worse precision: it ranks below good
    assert ranking["good+bad"]["r"] == pytest.approx(1.0) and ranking["good+bad"]["p"] < 1.0
    # half is right on 1 of 3 clips (no word on the others: P = R = 0 there)
    assert ranking["half"]["p"] == pytest.approx(1 / 3) and ranking["half"]["failed"] == 1
    assert ranking["bad"]["f"] == 0.0 and result["ranking"][-1]["name"] == "bad"
    assert [r["rank"] for r in result["ranking"]] == [1, 2, 3, 4, 5]
    fs = [r["f"] for r in result["ranking"]]
    assert fs == sorted(fs, reverse=True)
    assert result["errors"] == {"half": {"clip_2": "backend_error: server said 500"}} and result["clips"] == 3
    # through the run's own stages: the audio candidate got only audio and the acoustic instruction, the visual
    # ones only pictures (frames: the generated clips show no face), as in the paper
    assert SEEN["good"] == {"audio", "acoustic/v1", "modality:audio", "modality:text"}
    assert SEEN["bad"] == {"frames", "visual/v1", "modality:image", "modality:text"}
    assert json.loads(json.dumps(result)) == result and "good+bad" in format_ranking(result)


def test_candidates_file_and_command(labelled, tmp_path):
    clips, labels = labelled
    spec = tmp_path / "backends.yaml"
    spec.write_text("candidates:\n"
                    "  - {name: good, backend: openai, role: audio, options: {table: good}}\n"
                    "  - {name: bad, backend: openai, role: visual, options: {table: bad}}\n"
                    "  - {name: face, backend: perception, role: visual, input: faces}\n")
    candidates = load_candidates(spec)
    assert candidates[:2] == CANDIDATES[:2] and candidates[2].config() == {"backend": "perception", "options": {},
                                                                          "input": "faces"}
    out = tmp_path / "ranking.json"
    result = select_command(spec, clips, labels, output=out, protocol="builtin")
    assert json.loads(out.read_text()) == result and result["ranking"][0]["name"] == "good"
    # the offline perception face candidate runs too: no face in the generated clips, so no emotion words
    assert {r["name"]: r["f"] for r in result["ranking"]}["face"] == 0.0


def test_bad_candidates_and_labels(labelled, tmp_path):
    clips, labels = labelled
    with pytest.raises(InputError, match="role 'speech' is not audio or visual"):
        parse_candidates([{"backend": "perception", "role": "speech"}])
    with pytest.raises(InputError, match="unknown key 'modalities'"):
        parse_candidates([{"backend": "openai", "role": "audio", "modalities": ["audio"]}])
    with pytest.raises(InputError, match="perception"):
        parse_candidates([{"backend": "perceptoin", "role": "audio"}])
    with pytest.raises(InputError, match="two candidates named"):
        parse_candidates([{"name": "x", "backend": "perception", "role": "audio"}] * 2)
    more = tmp_path / "more.csv"
    more.write_text(labels.read_text() + "clip_9,\"['calm']\"\n", encoding="utf-8")
    with pytest.raises(InputError, match="1 labelled clips have no video"):
        select(CANDIDATES, clips, more, protocol="builtin")
