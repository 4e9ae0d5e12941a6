"""`affectgpt train` end to end through its parser: a run folder from a recipe, and a bad key as InputError."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

pytest.importorskip("accelerate")
pytest.importorskip("peft")

from affectgpt.cli import train as train_cli
from affectgpt.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="affectgpt")
    train_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_train_command_runs_the_tiny_recipe_with_overrides(tmp_path, one_torch_thread):
    args = parse(["train", "--config", str(ROOT / "configs" / "tiny-cpu.yaml"), "--output", str(tmp_path),
                  "--set", "schedule.total_steps=4", "--set", "schedule.warmup_steps=1", "--set", "log_every=2",
                  "--set", "data.synthetic.n=4"])
    assert args.run(args) == 0
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    assert "total_steps: 4" in (tmp_path / "config.resolved.yaml").read_text()
    args = parse(["train", "--config", str(ROOT / "configs" / "tiny-cpu.yaml"), "--output", str(tmp_path),
                  "--set", "schedule.total_steps=6", "--set", "schedule.warmup_steps=1", "--set", "log_every=2",
                  "--set", "data.synthetic.n=4", "--resume"])
    with pytest.raises(InputError, match="total_steps"):  # the schedule is part of what a checkpoint continues
        args.run(args)


def test_bad_key_is_an_input_error(tmp_path):
    args = parse(["train", "--config", str(ROOT / "configs" / "tiny-cpu.yaml"), "--output", str(tmp_path),
                  "--set", "optimizer.lr=1"])
    with pytest.raises(InputError, match="did you mean 'optimiser'"):
        args.run(args)


@pytest.mark.slow
def test_torchrun_fsdp_runs_the_multimodal_recipe(tmp_path):
    """`torchrun -m affectgpt train` with FSDP on 2 CPU processes: the released-style model with its frozen
    (random) CLIP and HuBERT inside the sharded model, frozen weights in bfloat16 beside float32 trained ones,
    bf16 autocast, features extracted once by the main process, the tokenizer built by both processes at once,
    one metrics file, a float32 checkpoint gathered from the shards."""
    import torch
    from launch import torchrun
    from safetensors.torch import load_file

    torchrun("-m", "affectgpt", "train", "--config", str(ROOT / "configs" / "tiny-cpu.yaml"), "--output",
             str(tmp_path), "--set", "distributed=fsdp", "--set", "schedule.total_steps=20", "--set", "batch_size=2",
             "--set", "model.base_dtype=bfloat16", "--set", "precision=bf16")
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20] and records[1]["loss"] < records[0]["loss"]
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 12
    final = tmp_path / "checkpoint_000020"
    assert json.loads((final / "state" / "trainer.json").read_text())["distributed"] == "FSDP"
    weights = load_file(str(final / "model.safetensors"))
    lora = [k for k in weights if "lora_A" in k]
    assert lora and all(weights[k].shape[0] == 8 for k in lora)  # whole LoRA matrices (rank 8), not shards
    assert {w.dtype for w in weights.values()} == {torch.float32}
    assert any(k.startswith("fusion.") for k in weights)
