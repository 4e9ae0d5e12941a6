"""describe / predict on the tiny fidelity models through our checkpoint format, clips made by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from tiny_models import FIDELITY, released_checkpoint  # noqa: E402

from affectgpt.cli import main  # noqa: E402
from affectgpt.io.npy import read_npz  # noqa: E402

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory) -> Path:
    """Our checkpoint folder for the original `released` fixture checkpoint on the tiny base models."""
    return released_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint_000007_loss_0.500")


@pytest.fixture(scope="module")
def caches(tmp_path_factory, square_clip, tone_clip) -> Path:
    from affectgpt.media.batch import ClipOptions, preprocess

    out = tmp_path_factory.mktemp("caches")
    report = preprocess([square_clip, tone_clip], out, ClipOptions())
    assert not report.failures
    return out


def test_batched_left_padded_generation_equals_one_by_one(checkpoint_dir, caches):
    from dataclasses import replace

    from affectgpt.infer.describe import Generation, answer, load_model
    from affectgpt.media.cache import cache_file, load_cached_clip

    model, tokenizer = load_model(checkpoint_dir)
    a = replace(load_cached_clip(cache_file(caches, "square")), subtitle="Hello.")
    b = replace(load_cached_clip(cache_file(caches, "tone")), subtitle="A much longer subtitle than the other one.")
    greedy = Generation(max_new_tokens=6)
    together = answer(model, tokenizer, [a, b], task="labels", generation=greedy)
    alone = [answer(model, tokenizer, [clip], task="labels", generation=greedy)[0] for clip in (a, b)]
    assert together == alone


def test_describe_command(checkpoint_dir, square_clip, capsys):
    args = ["describe", str(square_clip), "--model", str(checkpoint_dir), "--subtitle", "Hi.",
            "--max-new-tokens", "5"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first  # greedy: the same answer twice
    assert main([*args, "--sample", "--seed", "3"]) == 0
    sampled = capsys.readouterr().out
    assert main([*args, "--sample", "--seed", "3"]) == 0
    assert capsys.readouterr().out == sampled  # seeded sampling repeats
    assert main([*args, "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["backend"] == "affectgpt" and record["description"] + "\n" == first


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_describe_in_half_precision(checkpoint_dir, square_clip, capsys, dtype):
    """The whole model in the asked dtype (encoders, LLM, trained weights): it answers, the same way twice."""
    args = ["describe", str(square_clip), "--model", str(checkpoint_dir), "--subtitle", "Hi.",
            "--max-new-tokens", "5", "--dtype", dtype]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.strip()
    assert main(args) == 0
    assert capsys.readouterr().out == first
    from affectgpt.infer.describe import load_model

    model, _ = load_model(checkpoint_dir, dtype=getattr(torch, dtype))
    assert {p.dtype for p in model.parameters()} == {getattr(torch, dtype)}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: 'auto' would pick it")
def test_device_auto_is_the_cpu_here_and_a_missing_gpu_is_a_clear_error(checkpoint_dir, square_clip, capsys):
    from affectgpt.infer.describe import load_model
    from affectgpt.llm.local_hf import resolve_device

    args = ["describe", str(square_clip), "--model", str(checkpoint_dir), "--subtitle", "Hi.", "--max-new-tokens", "4"]
    assert main(args) == 0
    auto = capsys.readouterr().out
    assert main([*args, "--device", "cpu"]) == 0
    assert capsys.readouterr().out == auto
    assert resolve_device("auto") == "cpu" and resolve_device("cuda:1") == "cuda:1"
    model, _ = load_model(checkpoint_dir, device="cpu")
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert main([*args, "--device", "cuda"]) == 2  # no GPU here: one line naming the device, no traceback
    err = capsys.readouterr().err
    assert "cuda" in err and "device" in err and "Traceback" not in err


def test_predict_writes_one_file_per_checkpoint_and_resumes(checkpoint_dir, caches, tmp_path, capsys):
    out = tmp_path / "outputs"
    partial = out / f"{checkpoint_dir.name}.partial.jsonl"
    out.mkdir()
    partial.write_text(json.dumps({"name": "square", "text": "written before a crash"}) + "\n{cut")
    assert main(["predict", "--clips", str(caches), "--model", str(checkpoint_dir), "--output", str(out),
                 "--max-new-tokens", "4", "--batch-size", "2"]) == 0
    target = out / f"{checkpoint_dir.name}.npz"
    data = read_npz(target)
    assert data["filenames"] == ["square", "tone"]
    assert data["fileitems"][0] == "written before a crash"  # resumed: not generated again
    assert not partial.exists()
    # the extractor reads it like an original generation file
    assert main(["extract", "labels", "--input", str(out), "--output", str(out), "--no-progress"]) == 0
    assert (out / "checkpoint_000007_loss_0.500-openset.npz").is_file()


def test_a_model_without_its_base_models_is_a_clear_error(checkpoint_dir, square_clip, tmp_path, capsys):
    assert main(["describe", str(square_clip), "--model", str(checkpoint_dir), "--llm", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["describe", str(square_clip), "--model", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err


def test_stacked_inputs_have_the_model_layout(caches):
    from affectgpt.media.cache import cache_file, load_cached_clip

    clip = load_cached_clip(cache_file(caches, "square"))
    assert clip.faces.shape == (8, 224, 224, 3) and clip.audio_clips.shape == (8, 32000)
    assert np.asarray(clip.faces).dtype == np.uint8


def test_model_import_command_gives_the_same_model(tmp_path, checkpoint_dir, capsys):
    """Converting the original .pth without loading any base model, then loading it, equals a direct import."""
    from affectgpt.infer.describe import load_model

    models = FIDELITY / "models"
    config = tmp_path / "released-tiny.json"
    meta = json.loads((FIDELITY / "fixtures" / "released" / "meta.json").read_text(encoding="utf-8"))
    config.write_text(json.dumps({"lora_r": meta["model_cfg"]["lora_r"]}))
    out = tmp_path / "converted"
    assert main(["model", "import", str(FIDELITY / "fixtures" / "released" / "ckpt.pth"), "--output", str(out),
                 "--config", str(config), "--llm", str(models / "tiny-qwen2"), "--visual-encoder",
                 str(models / "tiny-clip"), "--audio-encoder", str(models / "tiny-hubert")]) == 0
    assert "not imported: image_llama_proj.weight" in capsys.readouterr().err
    converted, _ = load_model(out)
    direct, _ = load_model(checkpoint_dir)
    for key, value in direct.trainable_state_dict().items():
        assert torch.equal(value, converted.trainable_state_dict()[key]), key
    assert main(["model", "import", str(FIDELITY / "fixtures" / "qformer" / "ckpt.pth"), "--output",
                 str(tmp_path / "bad"), "--config", str(config), "--llm", str(models / "tiny-qwen2"),
                 "--visual-encoder", str(models / "tiny-clip"), "--audio-encoder", str(models / "tiny-hubert")]) == 2
    assert "another configuration" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def _run_folder(checkpoint_dir: Path, run: Path) -> Path:
    """A training run folder as `affectgpt train --output RUN` leaves it: two complete checkpoints, one being
    written (a temporary name) and one without weights."""
    import shutil

    for step in (2, 4):
        shutil.copytree(checkpoint_dir, run / f"checkpoint_{step:06d}")
        (run / f"checkpoint_{step:06d}" / "state").mkdir()
        (run / f"checkpoint_{step:06d}" / "state" / "trainer.json").write_text(json.dumps({"step": step}))
    shutil.copytree(checkpoint_dir, run / ".checkpoint_000006.partial")
    (run / "checkpoint_000008" / "state").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("")
    return run


def test_describe_and_predict_take_a_training_run_folder(checkpoint_dir, square_clip, caches, tmp_path, capsys):
    run = _run_folder(checkpoint_dir, tmp_path / "run")
    assert main(["describe", str(square_clip), "--model", str(run), "--max-new-tokens", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert f"using {run / 'checkpoint_000004'}" in captured.err  # the latest complete one, named
    out = tmp_path / "out"
    assert main(["predict", "--clips", str(caches), "--model", str(run), "--output", str(out),
                 "--max-new-tokens", "2"]) == 0
    assert "checkpoint_000004" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint_000004.npz"]


def test_describe_takes_an_installed_known_name(checkpoint_dir, square_clip, tmp_path, capsys, monkeypatch):
    import shutil

    known = pytest.importorskip("affectgpt.model.known")
    name = sorted(known.KNOWN)[0]
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["describe", str(square_clip), "--model", name]) == 2
    err = capsys.readouterr().err
    assert f"affectgpt model get {name}" in err and "not installed" in err
    assert main(["describe", str(square_clip), "--model", name[:-1]]) == 2  # a near miss
    err = capsys.readouterr().err
    assert f"did you mean {name!r}" in err and "affectgpt model get" in err
    installed = shutil.copytree(checkpoint_dir, known.default_path(name))
    (installed / known.MARKER).write_text("{}", encoding="utf-8")
    assert main(["describe", str(square_clip), "--model", name, "--max-new-tokens", "3"]) == 0
    assert f"using {installed}" in capsys.readouterr().err


def test_hub_ids_in_the_base_models_load_only_with_allow_download(checkpoint_dir, square_clip, tmp_path, capsys,
                                                                monkeypatch):
    import shutil

    from affectgpt.errors import InputError

    hub = shutil.copytree(checkpoint_dir, tmp_path / "hub-ckpt")
    meta = json.loads((hub / "config.json").read_text(encoding="utf-8"))
    meta["config"]["llm"] = "example-org/not-downloaded-llm"
    (hub / "config.json").write_text(json.dumps(meta), encoding="utf-8")
    assert main(["describe", str(square_clip), "--model", str(hub)]) == 2
    err = capsys.readouterr().err
    assert "example-org/not-downloaded-llm" in err and "--allow-download" in err and "affectgpt model get" in err
    seen = {}

    def fake_build(cfg, *, dtype=None, local_files_only=True):
        seen["local_files_only"] = local_files_only
        raise InputError("stop here", field="model.llm")

    monkeypatch.setattr("affectgpt.model.build.build_model", fake_build)
    assert main(["describe", str(square_clip), "--model", str(hub), "--allow-download"]) == 2
    assert seen == {"local_files_only": False}
    assert main(["predict", "--clips", str(tmp_path), "--model", str(hub), "--output", str(tmp_path / "o"),
                 "--allow-download"]) == 2
    assert "stop here" in capsys.readouterr().err


def test_describe_is_quiet_and_times_its_parts(checkpoint_dir, square_clip, capsys):
    import re

    assert main(["describe", str(square_clip), "--model", str(checkpoint_dir), "--max-new-tokens", "3",
                 "--timings"]) == 0
    err = capsys.readouterr().err
    assert "Loading weights" not in err  # transformers' own bars are off during our loads
    assert re.search(r"^load \d+\.\d+ s, media \d+\.\d+ s, generate \d+\.\d+ s$", err, re.M), err
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()  # restored afterwards


def test_predict_skips_unreadable_videos_lists_them_and_resumes(checkpoint_dir, square_clip, tone_clip, tmp_path,
                                                               capsys):
    import shutil

    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(square_clip, clips / "a.mp4")
    shutil.copy(tone_clip, clips / "c.mkv")
    (clips / "b.mp4").write_text("not a video\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = ["predict", "--clips", str(clips), "--model", str(checkpoint_dir), "--output", str(out),
            "--max-new-tokens", "2", "--batch-size", "2"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    failures = out / f"{checkpoint_dir.name}.failures.json"
    assert str(failures) in err and "b.mp4" in err
    assert [f["file"] for f in json.loads(failures.read_text(encoding="utf-8"))["failures"]] == [str(clips / "b.mp4")]
    target = out / f"{checkpoint_dir.name}.npz"
    assert read_npz(target)["filenames"] == ["a", "c"]
    assert sorted(p.name for p in out.iterdir()) == sorted([target.name, failures.name])  # no partial file left
    from affectgpt.io.npy import write_npz

    write_npz(target, {"filenames": ["a", "c"], "fileitems": ["kept a", "kept c"]})  # not asked again
    shutil.copy(square_clip, clips / "b.mp4")  # fixed
    assert main(argv) == 0
    assert "1 answered, 2 kept from before, 0 failed" in capsys.readouterr().err
    data = read_npz(target)
    assert data["filenames"] == ["a", "b", "c"]
    assert (data["fileitems"][0], data["fileitems"][2]) == ("kept a", "kept c")
    assert sorted(p.name for p in out.iterdir()) == [target.name]
    assert main(argv) == 0
    assert "already written" in capsys.readouterr().err
