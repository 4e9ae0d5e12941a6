"""The trainer on the tiny in-test setup: metrics, exact resume, checkpoint/config mismatch, accumulation and DDP
equivalence, and the tiny CPU recipe end to end (learns, then greedy generation gives the training answers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytest.importorskip("peft")

from tinytrain import tiny_config, tiny_parts  # noqa: E402

from affectgpt.errors import InputError  # noqa: E402
from affectgpt.model import checkpoint  # noqa: E402
from affectgpt.train.loop import train  # noqa: E402

HERE = Path(__file__).resolve().parent
SHORT = {"schedule.total_steps": 4, "schedule.warmup_steps": 2}
ROOT = HERE.parents[1]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trainable(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / checkpoint.WEIGHTS))


def test_metrics_config_and_checkpoints(tmp_path):
    cfg = tiny_config(**{"schedule.total_steps": 6, "log_every": 2, "save_every": 2, "keep_last": 2})
    result = train(cfg, tmp_path, parts=tiny_parts)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4, 6]
    assert all({"loss", "lr", "samples_per_s"} <= set(line) for line in lines)
    assert lines[0]["loss"] == pytest.approx(sum(result.losses[:2]) / 2)
    assert sorted(p.name for p in tmp_path.glob("checkpoint_*")) == ["checkpoint_000004", "checkpoint_000006"]
    assert (tmp_path / "config.resolved.yaml").is_file()
    cfg_saved, base = checkpoint.read_config(tmp_path / "checkpoint_000006")  # our inference format
    assert cfg_saved.llm_config["hidden_size"] == 48 and "tokenizer" in base
    with pytest.raises(InputError, match="--resume"):
        train(cfg, tmp_path, parts=tiny_parts)


def test_resume_is_exact(tmp_path):
    cfg = tiny_config(**{"schedule.total_steps": 10, "save_every": 5, "optimiser.weight_decay": 0.05,
                         "data.task": "hybrid", "model.config.lora_dropout": 0.1})
    straight = train(cfg, tmp_path / "straight", parts=tiny_parts)
    first = train(cfg, tmp_path / "split", parts=tiny_parts, until=5)
    assert first.steps == 5
    second = train(cfg, tmp_path / "split", resume=True, parts=tiny_parts)
    assert straight.losses == first.losses + second.losses
    a, b = trainable(tmp_path / "straight" / "checkpoint_000010"), trainable(tmp_path / "split" / "checkpoint_000010")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 11))  # appended without duplicates


def test_resume_with_another_config_is_refused(tmp_path):
    cfg = tiny_config(**{**SHORT, "save_every": 2})
    train(cfg, tmp_path, parts=tiny_parts, until=2)
    with pytest.raises(InputError) as info:
        train(tiny_config(**{**SHORT, "model.config.lora_r": 4}), tmp_path, resume=True,
              parts=tiny_parts)
    assert "lora_r" in str(info.value) and "checkpoint_000002" in str(info.value)
    with pytest.raises(InputError, match="global_batch"):
        train(tiny_config(**{**SHORT, "batch_size": 2}), tmp_path, resume=True, parts=tiny_parts)


def test_accumulation_gives_the_same_steps_as_one_big_batch(tmp_path):
    big = train(tiny_config(**{**SHORT}), tmp_path / "big", parts=tiny_parts)
    split = train(tiny_config(**{**SHORT, "batch_size": 1, "grad_accumulation": 4}),
                  tmp_path / "split", parts=tiny_parts)
    assert split.losses == pytest.approx(big.losses, rel=1e-5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_match_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    steps = "schedule.total_steps=12"
    two = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), str(HERE / "ddp_worker.py"), str(tmp_path / "two"), "batch_size=2",
           steps]
    one = [sys.executable, str(HERE / "ddp_worker.py"), str(tmp_path / "one"), "batch_size=4", steps]
    for command in (two, one):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    a = json.loads((tmp_path / "two" / "losses.json").read_text())
    b = json.loads((tmp_path / "one" / "losses.json").read_text())
    assert len(a) == len(b) == 12
    assert a == pytest.approx(b, rel=1e-4)
    assert b[-1] < b[0]


def test_tiny_cpu_recipe_learns_and_reproduces_answers(tmp_path):
    from affectgpt.config import load_config
    from affectgpt.train.config import TrainConfig
    from affectgpt.train.loop import prepare

    cfg = load_config(ROOT / "configs" / "tiny-cpu.yaml", TrainConfig)
    began = time.perf_counter()
    parts = prepare(cfg, tmp_path)
    result = train(cfg, tmp_path, parts=parts)
    assert time.perf_counter() - began < 120
    final = sum(result.losses[-10:]) / 10
    assert final < 0.1 * result.losses[0]
    _greedy_answers_are_training_answers(parts)


def _greedy_answers_are_training_answers(parts) -> None:
    from affectgpt.data.targets import question_answer
    from affectgpt.model.affectgpt import Batch
    from affectgpt.model.prompt import encode_inference, prompt_for

    model, tokenizer, dataset = parts.model.eval(), parts.tokenizer, parts.dataset
    answers: dict[tuple[str, str], set[str]] = {}
    for sample in dataset.samples:  # the same prompt may have several answers (random secondary labels)
        for task in sample.tasks:
            question, target = question_answer(sample, task)
            answers.setdefault((question, sample.subtitle), set()).add(target)
    for (question, subtitle), targets in answers.items():
        ids = encode_inference(tokenizer, prompt_for(model.cfg, question, subtitle))
        batch = Batch(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
        out = model.generate(batch, max_new_tokens=80, stop_ids=[tokenizer.eos_token_id])[0].tolist()
        wanted = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in targets]
        assert out in wanted, (tokenizer.decode(out), targets)
