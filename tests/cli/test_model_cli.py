"""`affectgpt model ...`: presets, configs and the full-size parameter counts built on the meta device."""

from __future__ import annotations

import json

import pytest

from affectgpt.cli import main


def test_released_summary_has_the_published_sizes(capsys):
    pytest.importorskip("peft")
    assert main(["model", "summary", "--config", "released", "--device", "meta"]) == 0
    counts = json.loads(capsys.readouterr().out)
    # the spec: LoRA r=16 on q,k,v,o,gate,up,down of Qwen2.5-7B; pooling + pre-fusion + projections
    assert counts["lora"] == 40_370_176
    assert counts["fusion"] == 14_042_372
    assert counts["trainable"] == counts["lora"] + counts["fusion"]
    assert counts["total"] == sum(counts[k] for k in ("lora", "fusion", "llm", "visual_encoder", "audio_encoder"))


def test_frame_variant_has_the_same_sizes(capsys):
    pytest.importorskip("peft")
    assert main(["model", "summary", "--config", "released-frame"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert (counts["lora"], counts["fusion"]) == (40_370_176, 14_042_372)


def test_config_round_trips_through_a_file(tmp_path, capsys):
    assert main(["model", "config", "released-frame"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["visual_input"] == "frame" and data["lora_r"] == 16
    data["lora_r"] = 8
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    assert main(["model", "config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["lora_r"] == 8


def test_bad_configs(tmp_path, capsys):
    assert main(["model", "summary", "--config", "relased"]) == 2
    assert "did you mean 'released'" in capsys.readouterr().err
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"fusion": "attention", "lora_rr": 4}))
    assert main(["model", "config", str(path)]) == 2
    assert "unknown model config key 'lora_rr'" in capsys.readouterr().err
    path.write_text(json.dumps({"fusion": "transformer"}))
    assert main(["model", "config", str(path)]) == 2
    assert "model.fusion" in capsys.readouterr().err


def test_ls_lists_the_presets(capsys):
    assert main(["model", "ls"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("released ") and "released-frame" in out
