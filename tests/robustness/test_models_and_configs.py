"""Hostile and broken model checkpoints, training recipes and resumes through the CLI (issue 12).

Every broken file is built here in tmp_path: truncated weights, unknown config keys, NaN weights, NaN learning
rates, empty or binary recipes, a resume with nothing to resume. Each must end as one `error:` line with exit 2,
leaving no output behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from affectgpt.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY_CPU = ROOT / "configs" / "tiny-cpu.yaml"


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _snapshot(folder: Path) -> dict[str, int] | None:
    """Every file under `folder` with its size (None: the folder does not exist)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


# --- training recipes -------------------------------------------------------------------------------------------

def _train(capsys, config: Path, output: Path, *extra: str) -> str:
    """`affectgpt train` that must fail with exit 2 and one line, creating nothing in `output`."""
    pytest.importorskip("yaml")
    before = _snapshot(output)
    assert main(["train", "--config", str(config), "--output", str(output), *extra]) == 2
    assert _snapshot(output) == before
    return _one_error_line(capsys.readouterr().err)


def test_an_empty_recipe_is_refused_not_taken_for_the_released_one(tmp_path, capsys):
    for text in ("", "\n\n", "# only a comment\n"):
        config = tmp_path / "empty.yaml"
        config.write_text(text, encoding="utf-8")
        line = _train(capsys, config, tmp_path / "run")
        assert str(config) in line and "empty" in line


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a sentence\n", "42\n"])
def test_a_recipe_that_is_not_a_mapping(tmp_path, capsys, text):
    config = tmp_path / "list.yaml"
    config.write_text(text, encoding="utf-8")
    line = _train(capsys, config, tmp_path / "run")
    assert str(config) in line and "mapping" in line


def test_a_binary_recipe_is_not_utf8_text(tmp_path, capsys):
    config = tmp_path / "random.yaml"
    config.write_bytes(bytes(range(128, 256)) * 4)
    line = _train(capsys, config, tmp_path / "run")
    assert str(config) in line and "not UTF-8 text" in line


@pytest.mark.parametrize(("override", "field"), [
    ("optimiser.lr=.nan", "optimiser.lr"),
    ("optimiser.lr=.inf", "optimiser.lr"),
    ("optimiser.lr=1e999", "optimiser.lr"),
    ("optimiser.weight_decay=.nan", "optimiser.weight_decay"),
    ("optimiser.eps=.nan", "optimiser.eps"),
    ("optimiser.betas=[.nan, 0.999]", "optimiser.betas[0]"),
    ("model.config.lora_dropout=.nan", "model.config.lora_dropout"),
    ("model.config.llm_config.rms_norm_eps=.inf", "model.config.llm_config.rms_norm_eps"),
    ("schedule.min_lr_ratio=.nan", "schedule.min_lr_ratio"),
    ("max_grad_norm=.inf", "max_grad_norm"),
    ("max_grad_norm=.nan", "max_grad_norm"),
])
def test_non_finite_numbers_are_refused_naming_the_field(tmp_path, capsys, override, field):
    line = _train(capsys, TINY_CPU, tmp_path / "run", "--set", override)
    assert f"{field}: " in line and "finite" in line


def test_a_nan_learning_rate_in_the_file(tmp_path, capsys):
    config = tmp_path / "nan.yaml"
    config.write_text(TINY_CPU.read_text(encoding="utf-8").replace("lr: 5.0e-3", "lr: .nan"), encoding="utf-8")
    line = _train(capsys, config, tmp_path / "run")
    assert f"{config}: optimiser.lr: " in line and "finite" in line


def test_non_finite_numbers_are_refused_when_built_in_python():
    pytest.importorskip("yaml")
    from affectgpt.errors import InputError
    from affectgpt.train.config import OptimiserSection, ScheduleSection

    with pytest.raises(InputError, match="finite") as caught:
        OptimiserSection(lr=float("nan"))
    assert caught.value.field == "optimiser.lr"
    with pytest.raises(InputError, match="finite"):
        ScheduleSection(total_steps=3, min_lr_ratio=float("inf"))


def _alias_bomb(levels: int = 9) -> str:
    """A YAML "billion laughs": each level a list of 9 aliases of the level before (9**levels values once
    expanded, a few hundred bytes written)."""
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, levels):
        prev, cur = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "model:\n  config:\n    " + "\n    ".join(lines) + "\n"


@pytest.mark.parametrize("kind", ["aliases", "nested"])
def test_a_recipe_bomb_is_refused_before_it_is_expanded(tmp_path, capsys, kind):
    import time

    config = tmp_path / "bomb.yaml"
    config.write_text(_alias_bomb() if kind == "aliases" else "model: " + "[" * 5000 + "]" * 5000 + "\n",
                      encoding="utf-8")
    start = time.monotonic()
    line = _train(capsys, config, tmp_path / "run")
    assert time.monotonic() - start < 2
    assert str(config) in line and ("values" in line if kind == "aliases" else "deep" in line)


def test_an_override_bomb_is_refused(tmp_path, capsys):
    value = "[" * 5000 + "]" * 5000
    line = _train(capsys, TINY_CPU, tmp_path / "run", "--set", f"model.config.x={value}")
    assert "--set" in line and "deep" in line


def test_resume_with_nothing_to_resume(tmp_path, capsys):
    pytest.importorskip("accelerate")
    output = tmp_path / "run"
    line = _train(capsys, TINY_CPU, output, "--resume")  # no folder at all: none is made
    assert str(output) in line and "drop --resume" in line
    output.mkdir()
    (output / "notes.txt").write_text("mine", encoding="utf-8")
    (output / "checkpoint_000010").mkdir()  # an incomplete checkpoint (no trainer state) is nothing to resume
    line = _train(capsys, TINY_CPU, output, "--resume")
    assert str(output) in line and "drop --resume" in line


# --- model checkpoints ------------------------------------------------------------------------------------------

TINY_LLM = {"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
            "tie_word_embeddings": False}
TINY_MODEL = {"llm_config": TINY_LLM, "visual_dim": 16, "audio_dim": 12, "fusion_dim": 16, "lora_r": 4,
              "lora_alpha": 8, "lora_dropout": 0.0, "max_length": 128, "visual_encoder": "none",
              "audio_encoder": "none"}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Our checkpoint folder of a tiny random-init model (tiny/recipe.py), loadable by describe on its own."""
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from affectgpt.data.sample import Sample
    from affectgpt.model import checkpoint
    from affectgpt.model.config import ModelConfig, get_preset
    from affectgpt.tiny.recipe import build_random_model

    folder = tmp_path_factory.mktemp("tiny") / "checkpoint_000001"
    cfg = ModelConfig.from_json({**get_preset("released").to_json(), **TINY_MODEL})
    samples = [Sample(name="s0", subtitle="rain on the window", labels=("happy", "calm"),
                      description="The rain makes the person calm.")]
    model, _, base = build_random_model(cfg, samples, folder, seed=0)
    return checkpoint.save(model, folder, base={**base, "tokenizer": "tokenizer"})


@pytest.fixture()
def ckpt(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny checkpoint, to break."""
    import shutil

    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))


def _describe(capsys, clip: Path, folder: Path) -> str:
    assert main(["describe", str(clip), "--model", str(folder), "--max-new-tokens", "2"]) == 2
    return _one_error_line(capsys.readouterr().err)


def _edit_config(folder: Path, edit) -> Path:
    path = folder / "config.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    edit(meta)
    path.write_text(json.dumps(meta), encoding="utf-8")
    return path


def test_the_intact_tiny_checkpoint_loads(ckpt):
    from affectgpt.infer.describe import load_model

    model, _ = load_model(ckpt)
    assert model.trainable_state_dict()


@pytest.mark.parametrize("damage", ["truncated", "empty", "header", "garbage"])
def test_damaged_weights_name_the_file(ckpt, square_clip, capsys, damage):
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    broken = {"truncated": data[: len(data) // 2], "empty": b"",
              "header": (2 ** 62).to_bytes(8, "little") + data[8:],  # a header length beyond the file
              "garbage": os.urandom(4096)}[damage]
    weights.write_bytes(broken)
    line = _describe(capsys, square_clip, ckpt)
    assert str(weights) in line and "the file is damaged: copy or export it again" in line


@pytest.mark.parametrize(("edit", "field", "hint"), [
    (lambda m: m.update(bsae={}), "bsae", "'base'"),
    (lambda m: m["config"].update(lora_rr=4), "config.lora_rr", "'lora_r'"),
    (lambda m: m["base"].update(tokeniser="tokenizer"), "base.tokeniser", "'tokenizer'"),
])
def test_unknown_keys_in_config_json_are_refused(ckpt, square_clip, capsys, edit, field, hint):
    path = _edit_config(ckpt, edit)
    line = _describe(capsys, square_clip, ckpt)
    assert line.startswith(f"error: {path}: {field}: ") and f"did you mean {hint}" in line


@pytest.mark.parametrize(("edit", "field"), [
    (lambda m: m.clear() or m.update(format="affectgpt-checkpoint/1"), "config"),
    (lambda m: m.update(config=[1, 2]), "config"),
    (lambda m: m.update(base="somewhere"), "base"),
    (lambda m: m["config"].update(lora_r="four"), "config"),
])
def test_malformed_config_json_is_refused(ckpt, square_clip, capsys, edit, field):
    path = _edit_config(ckpt, edit)
    line = _describe(capsys, square_clip, ckpt)
    assert line.startswith(f"error: {path}: {field}")


def test_a_config_json_that_is_not_an_object(ckpt, square_clip, capsys):
    (ckpt / "config.json").write_text("[1, 2, 3]", encoding="utf-8")
    line = _describe(capsys, square_clip, ckpt)
    assert str(ckpt / "config.json") in line


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_on_load(ckpt, square_clip, capsys, bad):
    import torch
    from safetensors.torch import load_file, save_file

    weights = ckpt / "model.safetensors"
    tensors = load_file(str(weights))
    key = sorted(tensors)[len(tensors) // 2]
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = bad
    save_file(tensors, str(weights), metadata={"format": "affectgpt-checkpoint/1"})
    assert not torch.isfinite(load_file(str(weights))[key]).all()
    line = _describe(capsys, square_clip, ckpt)
    assert str(weights) in line and f"{key}: " in line and "not finite" in line


def _original_checkpoint(tiny_checkpoint: Path, path: Path, *, poison: str | None = None) -> dict:
    """The tiny checkpoint's trained weights in the original's naming (`.pth`, {"model": state}), one tensor
    filled with NaN when `poison` names it (our key); returns the config the import needs."""
    import torch
    from safetensors.torch import load_file

    from affectgpt.model.keymap import PREFIXES

    inverse = {ours: original for original, ours in PREFIXES.items()}
    state = {}
    for name, tensor in load_file(str(tiny_checkpoint / "model.safetensors")).items():
        if poison == name:
            tensor = torch.full_like(tensor, float("nan"))
        if name.startswith("llm.base_model.model."):
            state["llama_model." + name[len("llm."):]] = tensor
        else:
            prefix = next(p for p in sorted(inverse, key=len, reverse=True) if name.startswith(p))
            state[inverse[prefix] + name[len(prefix):]] = tensor
    torch.save({"model": state}, path)
    return json.loads((tiny_checkpoint / "config.json").read_text(encoding="utf-8"))["config"]


def test_model_import_refuses_nan_weights(tiny_checkpoint, tmp_path, capsys):
    from safetensors.torch import load_file

    config = tmp_path / "tiny.json"
    good = tmp_path / "good.pth"
    config.write_text(json.dumps(_original_checkpoint(tiny_checkpoint, good)), encoding="utf-8")
    assert main(["model", "import", str(good), "--output", str(tmp_path / "ok"), "--config", str(config)]) == 0
    capsys.readouterr()
    key = sorted(load_file(str(tiny_checkpoint / "model.safetensors")))[-1]
    bad = tmp_path / "checkpoint_000060_loss_nan.pth"
    _original_checkpoint(tiny_checkpoint, bad, poison=key)
    out = tmp_path / "imported"
    assert main(["model", "import", str(bad), "--output", str(out), "--config", str(config)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(bad) in line and "not finite" in line
    assert not (out / "model.safetensors").exists() and not (out / "config.json").exists()
