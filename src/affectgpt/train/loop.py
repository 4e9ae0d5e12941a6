"""train(): a TrainConfig -> checkpoints and metrics, on accelerate (one process, DDP, FSDP), resumable.

Reads top-down: `train` sets up the run, `run_steps` is the loop, `train_step` one optimiser step. The model and
data come from train/build.py, the Accelerator from train/accelerator.py, the data order from train/plan.py.
Progress goes to callbacks (`on_step`, `on_note`); this module prints nothing.

Choices that make runs reproducible and comparable:
- **Data order** is a permutation of the samples seeded by (seed, epoch), sliced per step and process
  (train/plan.py): a resumed run continues the exact sequence, and 2 processes see the samples 1 process sees.
- **The loss** of a step is the mean over every target token of the global batch (summed cross-entropy divided
  by the all-reduced token count), not a mean of per-micro-batch means: the value and the gradient do not
  depend on how the global batch is split across processes or accumulation steps. Accumulation is therefore
  done here (no_sync on all but the last micro-batch) rather than by accelerate's `accumulate`, which would
  divide each micro-batch's mean by the number of steps.
- **State** is saved in safe formats (train/state.py) and restored exactly: weights, AdamW, scheduler, loss
  scaler, each process's RNG.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from affectgpt.config import dump_config
from affectgpt.errors import InputError
from affectgpt.train import state
from affectgpt.train.accelerator import make_accelerator
from affectgpt.train.build import TrainParts, prepare
from affectgpt.train.config import TrainConfig
from affectgpt.train.optim import make_optimizer, make_scheduler
from affectgpt.train.plan import DataPlan

IGNORE = -100


@dataclass
class TrainResult:
    """The outcome of `train`: steps done in all, the loss of every step this call ran, the last checkpoint."""

    output: Path
    steps: int
    losses: list[float]
    checkpoint: Path | None
    samples_per_second: float
    seconds: float


@dataclass(frozen=True)
class StepRecord:
    """What `on_step` hears after each optimiser step, on the main process only.

    Attributes:
        step: optimiser steps done, counted over the whole run (a resumed run goes on from its checkpoint's).
        total: the run's last step.
        loss: on steps that write a metrics record (every log_every steps and the last), the mean loss since the
            previous record; None on the others.
        samples_per_s: with `loss`, the samples per second since the previous record; None on the others.
    """

    step: int
    total: int
    loss: float | None = None
    samples_per_s: float | None = None


OnStep = Callable[[StepRecord], None]
OnNote = Callable[[str], None]


def train(cfg: TrainConfig, output: str | Path, *, resume: bool = False,
          parts: TrainParts | Callable[[TrainConfig, Path], TrainParts] | None = None,
          until: int | None = None, on_step: OnStep | None = None, on_note: OnNote | None = None) -> TrainResult:
    """Train as `cfg` says, writing into `output`: config.resolved.yaml, metrics.jsonl, checkpoint_<step>/.

    Args:
        cfg: the recipe.
        output: the run folder.
        resume: continue from the newest complete checkpoint in `output` (exact: same weights, optimiser,
            scheduler, RNG and data position); without one, an InputError (nothing is created).
        parts: the model and data to train, or a builder of them; None builds them from cfg (train/build.py).
        until: stop after this optimiser step, with a checkpoint, as a preempted job would (tests, budgets).
        on_step: called with a StepRecord after every optimiser step, on the main process only (a progress bar).
        on_note: called with one-line notices for the person running it (fsdp with one process, samples skipped
            for unreadable media), on every process that has one.

    Raises:
        InputError: `output` already holds a run and resume is False; resume is True and `output` holds no
            complete checkpoint; a checkpoint that does not match cfg.
    """
    output = Path(output)
    found = state.list_checkpoints(output)  # checked before anything is made: a refused run leaves no folder
    if found and not resume:
        raise InputError("the output folder already holds checkpoints", path=output,
                         fix="pass --resume to continue that run, or choose another --output")
    if resume and not found:
        raise InputError("the output folder holds no complete checkpoint to resume from", path=output,
                         field="--resume",
                         fix="drop --resume to start a new run, or give the --output of the run to continue")
    accelerator = make_accelerator(cfg, on_note=on_note)
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        from affectgpt.io.atomic import write_text

        write_text(output / "config.resolved.yaml", dump_config(cfg))
    accelerator.wait_for_everyone()
    torch.manual_seed(cfg.seed)  # the same model on every process
    parts = parts(cfg, output) if callable(parts) else parts or prepare(cfg, output, accelerator, on_note=on_note)
    torch.manual_seed(cfg.seed + accelerator.process_index)  # each process's own dropout stream
    return run_steps(cfg, output, accelerator, parts, found[-1] if (found and resume) else None, until,
                     on_step=on_step if accelerator.is_main_process else None)


def run_steps(cfg: TrainConfig, output: Path, accelerator: Any, parts: TrainParts, checkpoint: Path | None,
              until: int | None = None, *, on_step: OnStep | None = None) -> TrainResult:
    """The training loop from step 0 or from `checkpoint`, to the last step (or `until`); `on_step` hears every
    step (give it on the main process only)."""
    plan = DataPlan(len(parts.dataset), cfg.batch_size, accelerator.num_processes, cfg.grad_accumulation, cfg.seed)
    if plan.steps_per_epoch < 1:
        raise InputError(f"{plan.n} samples are fewer than one global batch ({plan.global_batch})", field="batch_size",
                         fix="lower batch_size or grad_accumulation, or add data")
    total = cfg.schedule.total_steps or cfg.schedule.epochs * plan.steps_per_epoch
    run_facts = {"seed": cfg.seed, "global_batch": plan.global_batch, "samples": plan.n, "total_steps": total}
    wrapped, optimizer, scheduler, start = _set_up(cfg, accelerator, parts.model, checkpoint, total, run_facts)
    log = state.MetricsLog(output, tensorboard=cfg.tensorboard, start=start) if accelerator.is_main_process \
        else None
    if log is not None:
        log.truncate_after(start)
    losses, began, last_ckpt = [], time.perf_counter(), checkpoint
    window: list[float] = []
    window_start = time.perf_counter()
    batches = _batches(cfg, plan, parts, accelerator.process_index, start)
    end = total if until is None else min(total, until)
    for step in range(start, end):
        micro = [next(batches) for _ in range(cfg.grad_accumulation)]
        loss = train_step(wrapped, micro, optimizer, scheduler, accelerator, cfg.max_grad_norm)
        losses.append(loss)
        window.append(loss)
        done, heard = step + 1, StepRecord(step + 1, total)
        if done % cfg.log_every == 0 or done == end:
            elapsed = time.perf_counter() - window_start
            record = {"step": done, "loss": sum(window) / len(window), "lr": scheduler.get_last_lr()[0],
                      "samples_per_s": len(window) * plan.global_batch / max(elapsed, 1e-9),
                      "epoch": step // plan.steps_per_epoch}
            if log is not None:
                log.write(record)
            heard = StepRecord(done, total, record["loss"], record["samples_per_s"])
            window, window_start = [], time.perf_counter()
        if on_step is not None:
            on_step(heard)
        if (cfg.save_every and done % cfg.save_every == 0) or done == end:
            last_ckpt = save_checkpoint(accelerator, wrapped, optimizer, scheduler, output, done, cfg,
                                        {**run_facts}, parts.base, plan)
    if log is not None:
        log.close()
    seconds = time.perf_counter() - began
    return TrainResult(output, end, losses, last_ckpt, len(losses) * plan.global_batch / max(seconds, 1e-9),
                       seconds)


def _set_up(cfg: TrainConfig, accelerator: Any, model: Any, checkpoint: Path | None, total: int,
            run_facts: dict[str, Any]) -> tuple[Any, Any, Any, int]:
    """(prepared model, prepared optimiser, scheduler, first step): fresh, or restored exactly from `checkpoint`
    (after checking that it belongs to this run)."""
    model.train()
    optimizer = make_optimizer(model, cfg.optimiser)
    scheduler = make_scheduler(optimizer, cfg.schedule, total)
    if checkpoint is not None:
        trainer = state.read_trainer(checkpoint)
        state.check_compatible(checkpoint, model.cfg, trainer, run_facts)
        from affectgpt.model.checkpoint import load_weights

        load_weights(model, checkpoint)  # whole weights into the whole model, before FSDP shards it
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    if checkpoint is None:
        return wrapped, optimizer, scheduler, 0
    state.restore_optimizer(checkpoint, wrapped, optimizer.optimizer)
    scheduler.load_state_dict(trainer["scheduler"])
    state.restore_rng(checkpoint, accelerator.process_index)
    if accelerator.scaler is not None and trainer.get("scaler"):
        accelerator.scaler.load_state_dict(trainer["scaler"])
    return wrapped, optimizer, scheduler, int(trainer["step"])


def _batches(cfg: TrainConfig, plan: DataPlan, parts: TrainParts, rank: int, start: int) -> Iterator[Any]:
    """Collated micro-batches of this process from optimiser step `start` on, epoch after epoch."""
    from torch.utils.data import DataLoader

    epoch, first = divmod(start, plan.steps_per_epoch)
    while True:
        if hasattr(parts.dataset, "set_epoch"):
            parts.dataset.set_epoch(epoch)
        # Its own generator: a DataLoader otherwise draws its worker seed from the global RNG, which would
        # shift the dropout stream differently in a resumed run (which starts a loader mid-epoch).
        seeds = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        loader = DataLoader(parts.dataset, batch_sampler=plan.micro_batches(epoch, first, rank),
                            collate_fn=parts.collate, num_workers=cfg.num_workers, generator=seeds)
        yield from loader
        epoch, first = epoch + 1, 0


def train_step(model: Any, micro: Sequence[Any], optimizer: Any, scheduler: Any, accelerator: Any,
               max_grad_norm: float | None) -> float:
    """One optimiser step over this process's micro-batches; returns the global batch's mean token loss."""
    micro = [_to_device(batch, accelerator.device) for batch in micro]
    tokens = sum(int((batch.labels[:, 1:] != IGNORE).sum()) for batch in micro)
    total_tokens = accelerator.reduce(torch.tensor(float(tokens), device=accelerator.device), "sum")
    scale = accelerator.num_processes / total_tokens.clamp(min=1.0)  # DDP averages gradients over processes
    loss_sum = torch.zeros((), device=accelerator.device)
    for index, batch in enumerate(micro):
        last = index == len(micro) - 1
        with nullcontext() if last else accelerator.no_sync(model):
            summed = token_loss_sum(model, batch)
            accelerator.backward(summed * scale)
        loss_sum += summed.detach()
    if max_grad_norm is not None:
        # All parameters (frozen ones have no gradient and count for nothing): under FSDP accelerate recognises
        # only the model's own parameter list, and with a subset it would unscale fp16 gradients twice.
        accelerator.clip_grad_norm_(list(model.parameters()), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(accelerator.reduce(loss_sum, "sum") / total_tokens.clamp(min=1.0))


def token_loss_sum(model: Any, batch: Any) -> torch.Tensor:
    """Summed causal-LM cross-entropy over the batch's supervised tokens (labels != -100), in float32."""
    out = model(dataclasses.replace(batch, labels=None))
    logits = out.logits[:, :-1].float()
    targets = batch.labels[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE,
                           reduction="sum")


def _to_device(batch: Any, device: torch.device) -> Any:
    moved = {f.name: getattr(batch, f.name).to(device) for f in dataclasses.fields(batch)
             if isinstance(getattr(batch, f.name), torch.Tensor)}
    return dataclasses.replace(batch, **moved)


def save_checkpoint(accelerator: Any, model: Any, optimizer: Any, scheduler: Any, output: Path, step: int,
                    cfg: TrainConfig, run_facts: dict[str, Any], base: dict[str, str], plan: DataPlan) -> Path:
    """Write checkpoint_<step>/ (all processes take part: each writes its RNG state)."""
    final = state.checkpoint_dir(output, step)
    partial_dir = output / f".{final.name}.partial"
    if accelerator.is_main_process:
        import shutil

        shutil.rmtree(partial_dir, ignore_errors=True)
        partial_dir.mkdir(parents=True)
    accelerator.wait_for_everyone()
    inner = accelerator.unwrap_model(model)
    weights, optim = state.gather(model, inner, optimizer.optimizer)  # every process: FSDP gathers the shards
    if accelerator.is_main_process:
        scaler = accelerator.scaler.state_dict() if accelerator.scaler is not None else None
        trainer = {"step": step, "epoch": step // plan.steps_per_epoch, "scheduler": scheduler.state_dict(),
                   "scaler": scaler, "run": run_facts, "processes": accelerator.num_processes,
                   "distributed": accelerator.distributed_type.value}
        state.write_shared(partial_dir, inner.cfg, weights, optim, trainer, base)
    del weights, optim
    state.write_rng(partial_dir, accelerator.process_index)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state.finish(partial_dir, final, output, cfg.keep_last)
    accelerator.wait_for_everyone()
    return final
