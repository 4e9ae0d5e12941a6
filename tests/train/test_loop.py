"""The trainer on the tiny in-test setup: metrics, exact resume, checkpoint/config mismatch, accumulation and DDP
equivalence, and the tiny CPU recipe end to end (learns, then greedy generation gives the training answers)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytest.importorskip("peft")

from launch import torchrun  # noqa: E402
from tinytrain import tiny_config, tiny_parts  # noqa: E402

from affectgpt.cli.train import TrainReport  # noqa: E402
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


def test_tensorboard_events_are_written(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_config(**{**SHORT, "tensorboard": True, "log_every": 2}), tmp_path, parts=tiny_parts)
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    accumulator = EventAccumulator(str(events[0]))
    accumulator.Reload()
    assert {"train/loss", "train/lr", "train/samples_per_s"} <= set(accumulator.Tags()["scalars"])
    assert [event.step for event in accumulator.Scalars("train/loss")] == [2, 4]


def _reported(cfg, output: Path, **options) -> Any:
    """train() as `affectgpt train` runs it: notices and the progress bar through the CLI's TrainReport."""
    with TrainReport(cfg.progress) as report:
        return train(cfg, output, on_step=report.on_step, on_note=report.on_note, **options)


def test_progress_bar_shows_loss_and_samples_per_second(tmp_path, capsys):
    _reported(tiny_config(**{**SHORT, "progress": True, "log_every": 2}), tmp_path, parts=tiny_parts)
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    last = [line for line in bar if line.startswith("train:")][-1]
    assert "4/4" in last and re.search(r"loss=\d+\.\d{4}, \d+\.\d samples/s", last), last
    _reported(tiny_config(**{**SHORT, "progress": False}), tmp_path / "quiet", parts=tiny_parts)
    assert "train:" not in capsys.readouterr().err


def test_on_step_hears_every_step_and_the_logged_loss(tmp_path, capsys):
    """The library reports through its callbacks and prints nothing itself."""
    heard = []
    cfg = tiny_config(**{**SHORT, "progress": True, "log_every": 2, "save_every": 2})
    first = train(cfg, tmp_path, parts=tiny_parts, until=2, on_step=heard.append)
    train(cfg, tmp_path, parts=tiny_parts, resume=True, on_step=heard.append)
    assert [(r.step, r.total) for r in heard] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [r.loss is None for r in heard] == [True, False, True, False]
    assert heard[1].loss == pytest.approx(sum(first.losses) / 2) and heard[1].samples_per_s > 0
    assert capsys.readouterr().err == ""


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


def test_fp16_on_cpu_uses_a_loss_scaler_and_resumes_exactly(tmp_path):
    """fp16 autocast + GradScaler on CPU (accelerate alone would drop both): the scaler's state is checkpointed
    and restored, so a resumed run equals an uninterrupted one."""
    cfg = tiny_config(**{"schedule.total_steps": 6, "schedule.warmup_steps": 2, "save_every": 3, "precision": "fp16"})
    straight = train(cfg, tmp_path / "straight", parts=tiny_parts)
    first = train(cfg, tmp_path / "split", parts=tiny_parts, until=3)
    second = train(cfg, tmp_path / "split", resume=True, parts=tiny_parts)
    assert straight.losses == first.losses + second.losses
    fp32 = train(tiny_config(**{"schedule.total_steps": 6, "schedule.warmup_steps": 2}), tmp_path / "fp32",
                 parts=tiny_parts)
    assert straight.losses != fp32.losses and straight.losses == pytest.approx(fp32.losses, rel=1e-2)
    scalers = [json.loads((tmp_path / run / "checkpoint_000006" / "state" / "trainer.json").read_text())["scaler"]
               for run in ("straight", "split")]
    assert scalers[0] == scalers[1] and scalers[0]["scale"] > 1 and scalers[0]["_growth_tracker"] > 0
    middle = json.loads((tmp_path / "split" / "checkpoint_000003" / "state" / "trainer.json").read_text())["scaler"]
    assert middle["_growth_tracker"] < scalers[0]["_growth_tracker"] or middle["scale"] != scalers[0]["scale"]
    a, b = trainable(tmp_path / "straight" / "checkpoint_000006"), trainable(tmp_path / "split" / "checkpoint_000006")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bfloat16_base_weights_with_float32_trained_weights(tmp_path):
    """model.base_dtype bfloat16: frozen weights in bfloat16, the trained ones float32 (also in the checkpoint),
    without autocast; it learns like the float32 model, and resumes exactly."""
    cfg = tiny_config(**{"schedule.total_steps": 6, "save_every": 3, "model.base_dtype": "bfloat16"})
    built = []
    straight = train(cfg, tmp_path / "straight", parts=lambda c, o: built.append(tiny_parts(c, o)) or built[-1])
    assert {(p.requires_grad, p.dtype) for p in built[0].model.parameters()} == {(True, torch.float32),
                                                                                (False, torch.bfloat16)}
    fp32 = train(tiny_config(**{"schedule.total_steps": 6}), tmp_path / "fp32", parts=tiny_parts)
    assert straight.losses != fp32.losses and straight.losses == pytest.approx(fp32.losses, rel=3e-2)
    weights = trainable(tmp_path / "straight" / "checkpoint_000006")
    assert weights and {w.dtype for w in weights.values()} == {torch.float32}
    first = train(cfg, tmp_path / "split", parts=tiny_parts, until=3)
    second = train(cfg, tmp_path / "split", resume=True, parts=tiny_parts)
    assert first.losses + second.losses == straight.losses


def test_resume_with_another_config_is_refused(tmp_path):
    cfg = tiny_config(**{**SHORT, "save_every": 2})
    train(cfg, tmp_path, parts=tiny_parts, until=2)
    with pytest.raises(InputError) as info:
        train(tiny_config(**{**SHORT, "model.config.lora_r": 4}), tmp_path, resume=True,
              parts=tiny_parts)
    assert "lora_r" in str(info.value) and "checkpoint_000002" in str(info.value)
    with pytest.raises(InputError, match="global_batch"):
        train(tiny_config(**{**SHORT, "batch_size": 2}), tmp_path, resume=True, parts=tiny_parts)


@pytest.mark.parametrize("damage", ["model.safetensors", "state/optimizer.pt", "state/rng_0.safetensors", "nan"])
def test_resume_from_a_damaged_checkpoint_names_the_file(tmp_path, damage):
    """A truncated weight, optimiser or RNG file, or weights gone NaN, is an InputError naming the file."""
    from safetensors.torch import load_file, save_file

    cfg = tiny_config(**{**SHORT, "save_every": 2})
    train(cfg, tmp_path, parts=tiny_parts, until=2)
    folder = tmp_path / "checkpoint_000002"
    if damage == "nan":
        path = folder / checkpoint.WEIGHTS
        tensors = load_file(str(path))
        key = sorted(tensors)[0]
        tensors[key] = torch.full_like(tensors[key], float("nan"))
        save_file(tensors, str(path), metadata={"format": checkpoint.FORMAT})
        expected = ("not finite", key)
    else:
        path = folder / damage
        path.write_bytes(path.read_bytes()[:100])
        expected = ("copy or export it again",)
    with pytest.raises(InputError) as info:
        train(cfg, tmp_path, resume=True, parts=tiny_parts)
    assert info.value.path == str(path) and all(text in str(info.value) for text in expected)


def test_accumulation_gives_the_same_steps_as_one_big_batch(tmp_path):
    big = train(tiny_config(**{**SHORT}), tmp_path / "big", parts=tiny_parts)
    split = train(tiny_config(**{**SHORT, "batch_size": 1, "grad_accumulation": 4}),
                  tmp_path / "split", parts=tiny_parts)
    assert split.losses == pytest.approx(big.losses, rel=1e-5)


def test_fsdp_in_one_process_says_so_and_trains_as_one_process(tmp_path, capsys):
    plain = _reported(tiny_config(**SHORT), tmp_path / "plain", parts=tiny_parts)
    fsdp = _reported(tiny_config(**SHORT, distributed="fsdp"), tmp_path / "fsdp", parts=tiny_parts)
    assert "nothing to shard" in capsys.readouterr().err
    assert fsdp.losses == plain.losses
    assert "ACCELERATE_USE_FSDP" not in os.environ


def _two_processes(output: Path, *args: str) -> None:
    """ddp_worker.py in 2 CPU processes over gloo."""
    torchrun(str(HERE / "ddp_worker.py"), str(output), *args)


def _losses(run: Path) -> list[float]:
    return json.loads((run / "losses.json").read_text())


def _held(run: Path) -> list[dict]:
    return [json.loads((run / f"held_{rank}.json").read_text()) for rank in (0, 1)]


def _trainer(checkpoint_dir: Path) -> dict:
    return json.loads((checkpoint_dir / "state" / "trainer.json").read_text())


@pytest.mark.slow
def test_ddp_two_processes_match_one(tmp_path):
    _two_processes(tmp_path / "two", "batch_size=2", "schedule.total_steps=12")
    one = train(tiny_config(**{"batch_size": 4, "schedule.total_steps": 12}), tmp_path / "one", parts=tiny_parts)
    two = _losses(tmp_path / "two" / "straight")
    assert len(two) == len(one.losses) == 12
    assert two == pytest.approx(one.losses, rel=1e-4)
    assert one.losses[-1] < one.losses[0]
    assert _trainer(tmp_path / "two" / "straight" / "checkpoint_000012")["distributed"] == "MULTI_CPU"
    held = _held(tmp_path / "two" / "straight")
    assert all(h["local"] == h["whole"] for h in held)  # DDP: every process holds the whole model


@pytest.mark.slow
def test_fsdp_two_processes_match_one_and_their_checkpoints_resume_anywhere(tmp_path):
    """FSDP2 over 2 CPU processes (with accumulation, so no_sync is exercised): the same loss curve as one process
    with the same global batch; checkpoints hold the whole weights and optimiser state gathered from the shards;
    an FSDP run resumed under FSDP is exact, and the same checkpoint resumes in a single process."""
    common = {"schedule.total_steps": 10, "save_every": 5, "optimiser.weight_decay": 0.05, "data.task": "hybrid"}
    _two_processes(tmp_path / "two", "--resume-at", "5", "distributed=fsdp", "batch_size=1", "grad_accumulation=2",
                   *(f"{k}={v}" for k, v in common.items()))
    straight, resumed = tmp_path / "two" / "straight", tmp_path / "two" / "resumed"
    trainer = _trainer(straight / "checkpoint_000010")
    assert trainer["distributed"] == "FSDP" and trainer["processes"] == 2
    held = _held(straight)  # each process holds its half of every parameter (rows split, padded to even)
    assert sum(h["local"] for h in held) >= held[0]["whole"] and all(h["local"] < 0.6 * h["whole"] for h in held)
    one = train(tiny_config(**common, batch_size=4), tmp_path / "one", parts=tiny_parts)
    assert _losses(straight) == pytest.approx(one.losses, rel=1e-4)
    # The checkpoint is whole (gathered), not one process's shard: the same tensors as the single process's.
    fsdp_w, one_w = trainable(straight / "checkpoint_000010"), trainable(tmp_path / "one" / "checkpoint_000010")
    assert fsdp_w.keys() == one_w.keys()
    for key in one_w:
        torch.testing.assert_close(fsdp_w[key], one_w[key], rtol=1e-3, atol=1e-4, msg=key)
    optim = torch.load(straight / "checkpoint_000010" / "state" / "optimizer.pt", weights_only=True)
    assert set(optim["state"]) == set(one_w)
    assert all(optim["state"][k]["exp_avg"].shape == one_w[k].shape for k in one_w)
    # Resumed under FSDP: bit for bit.
    assert _losses(resumed) == _losses(straight)
    again = trainable(resumed / "checkpoint_000010")
    assert all(torch.equal(again[k], fsdp_w[k]) for k in fsdp_w)
    # The FSDP checkpoint at step 5 resumed by one process continues the same curve.
    cross = tmp_path / "cross"
    cross.mkdir()
    shutil.copytree(resumed / "checkpoint_000005", cross / "checkpoint_000005")
    rest = train(tiny_config(**common, batch_size=4), cross, resume=True, parts=tiny_parts)
    assert rest.losses == pytest.approx(_losses(straight)[5:], rel=1e-4)
    crossed = trainable(cross / "checkpoint_000010")
    for key in one_w:
        torch.testing.assert_close(crossed[key], fsdp_w[key], rtol=1e-3, atol=1e-4, msg=key)


@pytest.mark.slow
def test_fsdp_fp16_clips_and_resumes_exactly_with_its_loss_scaler(tmp_path):
    """fp16 under FSDP: autocast + loss scaler with gradient clipping (unscaled once) and an exact resume."""
    _two_processes(tmp_path, "--resume-at", "3", "distributed=fsdp", "precision=fp16", "batch_size=2",
                   "schedule.total_steps=6", "save_every=3", "max_grad_norm=0.5")
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    trainer = _trainer(tmp_path / "straight" / "checkpoint_000006")
    assert trainer["distributed"] == "FSDP" and trainer["scaler"]["scale"] > 1
    a, b = trainable(tmp_path / "straight" / "checkpoint_000006"), trainable(tmp_path / "resumed" / "checkpoint_000006")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_tiny_cpu_recipe_learns_and_reproduces_answers(tmp_path, capsys):
    """The multimodal recipe (random CLIP + HuBERT, frames + audio + pre-fusion + subtitle) learns its data: each
    clip's own answer comes back, and the secondary label, which only the voice tells, is right for both voices."""
    from affectgpt.config import load_config
    from affectgpt.train.build import prepare
    from affectgpt.train.config import TrainConfig

    cfg = load_config(ROOT / "configs" / "tiny-cpu.yaml", TrainConfig)
    began = time.perf_counter()
    parts = prepare(cfg, tmp_path)
    result = train(cfg, tmp_path, parts=parts)
    assert time.perf_counter() - began < 120
    assert set(parts.model.cfg.modalities) == {"multi", "audio", "video", "text"}
    assert parts.model.visual_encoder is not None and parts.model.audio_encoder is not None
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 12
    final = sum(result.losses[-10:]) / 10
    assert final < 0.1 * result.losses[0]
    _greedy_answers_are_own_answers(parts.model, parts.tokenizer, parts.dataset.samples)
    # The checkpoint alone (what `affectgpt describe` / `predict` load): the random-init model is rebuilt from
    # its seed and the tokenizer saved with it, then its trained weights loaded; it answers the same.
    from affectgpt.infer.describe import load_model

    shutil.rmtree(tmp_path / "tokenizer")  # the run's own copy: the checkpoint must not need it
    model, tokenizer = load_model(result.checkpoint)
    _greedy_answers_are_own_answers(model, tokenizer, parts.dataset.samples)
    # And `affectgpt describe` on a clip file answers with that clip's description and labels.
    from affectgpt.cli import main

    sample = parts.dataset.samples[0]
    for task, wanted in (("description", sample.description), ("labels", ", ".join(sample.labels))):
        assert main(["describe", str(sample.video), "--subtitle", sample.subtitle, "--model",
                     str(result.checkpoint), "--task", task]) == 0
        said = capsys.readouterr().out
        assert "".join(wanted.split()) in "".join(said.split()), (task, said)  # the word tokenizer spaces words


def _greedy_answers_are_own_answers(model, tokenizer, samples) -> None:
    """Greedy generation from each sample's own media (encoded on the fly by the model's encoders, not the
    feature cache it trained from) gives exactly that sample's target, for both questions."""
    from affectgpt.data.targets import question_answer
    from affectgpt.media.inputs import load_inputs
    from affectgpt.model.affectgpt import Batch
    from affectgpt.model.prompt import encode_inference, prompt_for

    model = model.eval()
    wrong, secondaries = [], set()
    for sample in samples:
        inputs = load_inputs(sample.name, video=sample.video, audio=sample.audio, faces=sample.faces,
                             visual_input=model.cfg.visual_input)
        frames, clips = inputs.visual, inputs.audio_clips
        for task in sample.tasks:
            question, target = question_answer(sample, task)
            ids = encode_inference(tokenizer, prompt_for(model.cfg, question, sample.subtitle))
            batch = Batch(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                          frames=torch.from_numpy(frames)[None], audio_clips=torch.from_numpy(clips)[None])
            out = model.generate(batch, max_new_tokens=80, stop_ids=[tokenizer.eos_token_id])[0].tolist()
            wanted = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            if out != wanted:
                wrong.append((sample.name, task, tokenizer.decode(out), target))
        secondaries.add((sample.subtitle, len(sample.labels)))
    assert not wrong, wrong
    assert len(secondaries) > len({s.subtitle for s in samples})  # some subtitle had both answers
