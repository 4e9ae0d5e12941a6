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


# `model import` reads the configuration off the checkpoint where the preset disagrees (fidelity fixtures).
def _fidelity():
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from tiny_models import FIDELITY

    if not (FIDELITY / "fixtures" / "qformer" / "ckpt.pth").is_file():
        pytest.skip(f"fidelity fixtures not found under {FIDELITY}")
    return FIDELITY


def _bases(fidelity) -> list[str]:
    models = fidelity / "models"
    return ["--llm", str(models / "tiny-qwen2"), "--visual-encoder", str(models / "tiny-clip"),
            "--audio-encoder", str(models / "tiny-hubert")]


def test_import_infers_the_qformer_settings_the_preset_lacks(tmp_path, capsys):
    from safetensors.torch import load_file

    from affectgpt.model.build import config_from_original, with_base_models

    fidelity = _fidelity()
    fixture = fidelity / "fixtures" / "qformer"
    assert main(["model", "import", str(fixture / "ckpt.pth"), "--config", "released", "--output",
                 str(tmp_path / "inferred"), *_bases(fidelity)]) == 0
    err = capsys.readouterr().err
    for line in ("inferred video_pooling=qformer", "inferred audio_pooling=qformer", "inferred fusion=qformer",
                 "inferred qformer_hidden=40", "inferred qformer_intermediate=80", "inferred lora_r=4",
                 "inferred video_tokens=2", "inferred qformer_heads=4"):
        assert line in err, line
    assert "README" not in err  # reasons are given in full, not as pointers to a file users do not have
    # the same as importing with the run's own configuration
    meta = json.loads((fixture / "meta.json").read_text(encoding="utf-8"))
    qformer = json.loads((fidelity / "models" / "tiny-bert-qformer" / "config.json").read_text(encoding="utf-8"))
    models = fidelity / "models"
    right = with_base_models(config_from_original(meta["model_cfg"], llm=models / "tiny-qwen2",
                                                  visual_encoder=models / "tiny-clip",
                                                  audio_encoder=models / "tiny-hubert", qformer=qformer),
                             llm=models / "tiny-qwen2", visual_encoder=models / "tiny-clip",
                             audio_encoder=models / "tiny-hubert")
    path = tmp_path / "right.json"
    path.write_text(json.dumps(right.to_json()))
    assert main(["model", "import", str(fixture / "ckpt.pth"), "--config", str(path), "--output",
                 str(tmp_path / "right"), *_bases(fidelity)]) == 0
    assert "inferred" not in capsys.readouterr().err
    ours = json.loads((tmp_path / "inferred" / "config.json").read_text())
    theirs = json.loads((tmp_path / "right" / "config.json").read_text())
    assert ours == theirs
    a, b = load_file(tmp_path / "inferred" / "model.safetensors"), load_file(tmp_path / "right" / "model.safetensors")
    assert sorted(a) == sorted(b) and all(a[k].equal(b[k]) for k in a)


def test_import_of_the_released_fixture_infers_the_lora_rank(tmp_path, capsys):
    fidelity = _fidelity()
    assert main(["model", "import", str(fidelity / "fixtures" / "released" / "ckpt.pth"), "--output",
                 str(tmp_path / "out"), *_bases(fidelity)]) == 0
    err = capsys.readouterr().err
    assert "inferred lora_r=4" in err and "inferred video_pooling" not in err and "README" not in err


def test_import_refuses_tensors_that_fit_no_configuration(tmp_path, capsys):
    import torch

    fidelity = _fidelity()
    state = torch.load(fidelity / "fixtures" / "released" / "ckpt.pth", map_location="cpu", weights_only=True)
    lora = sorted(k for k in state["model"] if k.endswith("lora_A.default.weight"))
    state["model"][lora[-1]] = state["model"][lora[-1]][:3].clone()  # one adapter of another rank
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    assert main(["model", "import", str(bad), "--output", str(tmp_path / "out"), *_bases(fidelity)]) == 2
    err = capsys.readouterr().err
    assert "fit no configuration" in err and lora[-1] in err and lora[0] in err
    assert not (tmp_path / "out").exists()


def test_a_hub_id_that_is_not_downloaded_names_the_way_to_get_it():
    pytest.importorskip("transformers")
    from affectgpt.errors import InputError
    from affectgpt.model.lm import load_tokenizer

    with pytest.raises(InputError) as caught:
        load_tokenizer("MERChallenge/no-such-model")
    assert "affectgpt model get" in caught.value.fix and "--allow-download" in caught.value.fix
    assert "local_files_only" not in caught.value.fix


def test_a_written_config_is_taken_as_written_and_the_refusal_says_what_the_tensors_show(tmp_path, capsys):
    fidelity = _fidelity()
    assert main(["model", "config", "released"]) == 0
    path = tmp_path / "mine.json"
    path.write_text(capsys.readouterr().out)
    assert main(["model", "import", str(fidelity / "fixtures" / "qformer" / "ckpt.pth"), "--config", str(path),
                 "--output", str(tmp_path / "out"), *_bases(fidelity)]) == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "the checkpoint's tensors say" in err and "fusion=qformer" in err
    assert not (tmp_path / "out").exists()
