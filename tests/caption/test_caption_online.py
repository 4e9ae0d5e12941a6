"""`affectgpt caption run` end to end against one loopback OpenAI-compatible server that answers the acoustic,
visual and merge calls from a table and checks each call's payload: audio only to the audio model, pictures only
to the visual model, the merge/v1 instruction with both clues and the subtitle to the merge model."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest

pytest.importorskip("httpx")
pytest.importorskip("yaml")

import test_stages
from test_stages import TONES, ToneServer

from affectgpt.cli import main

clips = test_stages.clips  # two generated clips: numbered frames, and a pure tone each (TONES)
ACOUSTIC = {0: "A low, steady voice with long pauses: the speaker sounds tired.",
            1: "A bright, fast voice that rises at the end: the speaker sounds excited."}
VISUAL = {0: "The person frowns and looks down throughout.", 1: "The person smiles broadly and nods."}
MERGED = {0: "The tired voice and the frown suggest the character is sad and worn out.",
          1: "The excited voice and the broad smile suggest the character is happy."}


class CaptionServer(ToneServer):
    """Answers by call kind and clip: an audio call by its tone, a picture call by its frames, a merge call (text
    only) by the clue texts it quotes. Every accepted call's kind and part types are recorded in `calls`."""

    def prepare(self) -> CaptionServer:
        self.answers = {**{k: ACOUSTIC[k] for k in TONES}, **{10 + k: VISUAL[k] for k in TONES},
                        **{20 + k: MERGED[k] for k in TONES}}
        self.calls: list[tuple[str, int, tuple[str, ...]]] = []
        self.check = self._payload
        return self

    def kind(self, body: Any) -> str:
        content = body["messages"][-1]["content"]
        if isinstance(content, str):
            return "merge"
        return "acoustic" if any(p.get("type") == "input_audio" for p in content) else "visual"

    def clip_of(self, body: Any) -> int:
        kind = self.kind(body)
        if kind == "merge":
            text = body["messages"][-1]["content"]
            [k] = [k for k in TONES if ACOUSTIC[k] in text and VISUAL[k] in text]
            return 20 + k
        base = super().clip_of(body)
        return base if kind == "acoustic" else 10 + base

    def _payload(self, body: Any) -> None:
        kind, content = self.kind(body), body["messages"][-1]["content"]
        if kind == "merge":
            assert "Acoustic clues:" in content and "Visual clues:" in content and "Subtitle:" in content
            types: tuple[str, ...] = ("text",)
        else:
            types = tuple({"image_url": "image", "input_audio": "audio", "text": "text"}[p["type"]] for p in content)
            expected = ("audio", "text") if kind == "acoustic" else ("image",) * 4 + ("text",)
            assert types == expected, f"{kind} call with parts {types}"
        with self.lock:
            self.calls.append((kind, self.clip_of(body) % 10, types))


@pytest.fixture
def server():
    server = CaptionServer().prepare().start()
    try:
        yield server
    finally:
        server.stop()


def test_online_clue_and_merge_models_through_caption_run(server, clips, tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    for clip in clips:
        (folder / clip.name).write_bytes(clip.read_bytes())
    subtitles = tmp_path / "subtitles.csv"
    subtitles.write_text("name,chinese,english\ngen0,我累了,I am tired\ngen1,我们赢了,We won\n", encoding="utf-8")
    options = json.dumps({"base_url": server.base_url, "model": "omni", "backoff": 0.01,
                          "cache": str(tmp_path / "answers.sqlite")})
    chat = json.dumps({"base_url": server.base_url, "model": "qwen", "backoff": 0.01})
    out = tmp_path / "out"
    argv = ["caption", "run", "--clips", str(folder), "--output", str(out), "--subtitles", str(subtitles),
            "--set", "stages.acoustic.backend=openai", "--set", f"stages.acoustic.options={options}",
            "--set", "stages.visual.backend=openai", "--set", f"stages.visual.options={options}",
            "--set", "stages.visual.input=frames", "--set", "stages.visual.n_frames=4",
            "--set", "stages.merge.backend=openai", "--set", f"stages.merge.options={chat}",
            "--set", f"stages.merge.cache={tmp_path / 'merge.sqlite'}",
            "--set", "stages.lowlevel.length_tails.enabled=false"]
    assert main(argv) == 0, capsys.readouterr().err
    assert server.rejected == []
    assert sorted(server.calls) == sorted([("acoustic", k, ("audio", "text")) for k in TONES]
                                          + [("visual", k, ("image",) * 4 + ("text",)) for k in TONES]
                                          + [("merge", k, ("text",)) for k in TONES])
    records = {r["name"]: r for r in map(json.loads, (out / "records.jsonl").read_text().splitlines())}
    for k in TONES:
        fields = records[f"gen{k}"]["fields"]
        assert fields["acoustic_clues"] == ACOUSTIC[k] and fields["visual_clues"] == VISUAL[k]
        assert fields["description"] == MERGED[k]
    with open(out / "track3_train_mercaptionplus.csv", encoding="utf-8", newline="") as handle:
        reasons = {row["name"]: row["reason"] for row in csv.DictReader(handle)}
    assert reasons == {f"gen{k}": MERGED[k] for k in TONES}
    with open(out / "track2_train_mercaptionplus.csv", encoding="utf-8", newline="") as handle:
        openset = {row["name"]: row["openset"] for row in csv.DictReader(handle)}
    assert "happy" in openset["gen1"] and "sad" in openset["gen0"]
    # a rerun asks the server nothing: every stage is in the log
    before = len(server.calls)
    assert main(argv) == 0
    assert len(server.calls) == before
