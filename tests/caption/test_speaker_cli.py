"""`affectgpt caption speaker CLIP... [--format json]` on the reference clip, and its bad input."""

from __future__ import annotations

import json

import pytest

from affectgpt.cli import main


@pytest.mark.slow
def test_caption_speaker_prints_json_decisions(reference_dir, capsys):
    clip = str(reference_dir / "media" / "sample_00000000.mp4")
    assert main(["caption", "speaker", clip, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["clip"], r["decision"]) for r in rows] == [(clip, "match")] and rows[0]["score"] > 0.35
    assert main(["caption", "speaker", clip, "--threshold", "0.9"]) == 0
    assert capsys.readouterr().out.startswith("mismatch")


def test_caption_speaker_missing_clip_is_exit_2(tmp_path, capsys):
    assert main(["caption", "speaker", str(tmp_path / "nope.mp4")]) == 2
    assert "not found" in capsys.readouterr().err
