"""train(): a TrainConfig -> checkpoints and metrics, on accelerate (one process, DDP, FSDP), resumable.

Reads top-down: `train` sets up the run, `run_steps` is the loop, `train_step` one optimiser step.

Choices that make runs reproducible and comparable:
- **Data order** is a permutation of the samples seeded by (seed, epoch); optimiser step s of an epoch takes
  the global batch perm[s*G : (s+1)*G] (G = batch_size x processes x grad_accumulation) and process r takes its
  slice of it. So a resumed run continues the exact sequence, and 2 processes see the samples 1 process sees.
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
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from affectgpt.config import dump_config
from affectgpt.errors import InputError
from affectgpt.train import state
from affectgpt.train.config import TrainConfig
from affectgpt.train.optim import make_optimizer, make_scheduler

IGNORE = -100


@dataclass
class TrainParts:
    """What a run trains: the model, its tokenizer, the dataset (len, [i] -> item dict, optional set_epoch),
    `collate(items) -> Batch`, and the base-model locations recorded in checkpoints."""

    model: Any
    tokenizer: Any
    dataset: Any
    collate: Callable[[list[dict[str, Any]]], Any]
    base: dict[str, str] = field(default_factory=dict)


@dataclass
class TrainResult:
    """The outcome of `train`: steps done in all, the loss of every step this call ran, the last checkpoint."""

    output: Path
    steps: int
    losses: list[float]
    checkpoint: Path | None
    samples_per_second: float
    seconds: float


def train(cfg: TrainConfig, output: str | Path, *, resume: bool = False,
          parts: TrainParts | Callable[[TrainConfig, Path], TrainParts] | None = None,
          until: int | None = None) -> TrainResult:
    """Train as `cfg` says, writing into `output`: config.resolved.yaml, metrics.jsonl, checkpoint_<step>/.

    Args:
        cfg: the recipe.
        output: the run folder.
        resume: continue from the newest complete checkpoint in `output` (exact: same weights, optimiser,
            scheduler, RNG and data position); without one, start from scratch.
        parts: the model and data to train, or a builder of them; None builds them from cfg (`prepare`).
        until: stop after this optimiser step, with a checkpoint, as a preempted job would (tests, budgets).

    Raises:
        InputError: `output` already holds a run and resume is False; a checkpoint that does not match cfg.
    """
    output = Path(output)
    accelerator = make_accelerator(cfg)
    found = state.list_checkpoints(output)
    if found and not resume:
        raise InputError("the output folder already holds checkpoints", path=output,
                         fix="pass --resume to continue that run, or choose another --output")
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        from affectgpt.io.atomic import write_text

        write_text(output / "config.resolved.yaml", dump_config(cfg))
    accelerator.wait_for_everyone()
    torch.manual_seed(cfg.seed)  # the same model on every process
    parts = parts(cfg, output) if callable(parts) else parts or prepare(cfg, output, accelerator)
    torch.manual_seed(cfg.seed + accelerator.process_index)  # each process's own dropout stream
    return run_steps(cfg, output, accelerator, parts, found[-1] if (found and resume) else None, until)


def make_accelerator(cfg: TrainConfig) -> Any:
    """The Accelerator for cfg.precision and cfg.distributed (FSDP2: each LLM decoder layer is a shard unit)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # accelerate keeps one AcceleratorState per process and refuses another precision in a later Accelerator;
    # each train() call sets up its own run, so forget the previous run's settings (not the process group).
    if AcceleratorState._shared_state:
        AcceleratorState._reset_state(reset_partial_state=False)
    _forget_cpu_fsdp()
    plugins: dict[str, Any] = {}
    fsdp = _fsdp_plugin() if cfg.distributed == "fsdp" else None
    if fsdp is not None and torch.cuda.is_available():
        plugins["fsdp_plugin"] = fsdp
    # Without a GPU, say cpu=True: accelerate then runs torchrun's processes as DDP over gloo (multi-CPU).
    use_fsdp = os.environ.get("ACCELERATE_USE_FSDP")  # accelerate sets it for good when given a plugin
    accelerator = Accelerator(mixed_precision=cfg.precision, gradient_accumulation_steps=1,
                              cpu=not torch.cuda.is_available(), **plugins)
    if use_fsdp is None:
        os.environ.pop("ACCELERATE_USE_FSDP", None)  # a later run in this process is not FSDP unless it says so
    if fsdp is not None and accelerator.num_processes < 2:
        print("distributed: fsdp with one process has nothing to shard: training as a single process (start "
              "several with torchrun or accelerate launch)", file=sys.stderr)
    elif fsdp is not None and accelerator.device.type == "cpu":
        _cpu_fsdp(accelerator, fsdp, cfg.precision)
    if cfg.precision == "fp16" and accelerator.device.type == "cpu" and accelerator.scaler is None:
        _cpu_fp16(accelerator)
    return accelerator


def _fsdp_plugin() -> Any:
    """FSDP2 (per-parameter sharding, so frozen and LoRA weights share units), one unit per LLM decoder layer
    (AffectGPT._no_split_modules) plus the root; weights resharded after each forward."""
    from accelerate import FullyShardedDataParallelPlugin

    return FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy="transformer_based_wrap",
                                          reshard_after_forward=True)


def _cpu_fsdp(accelerator: Any, plugin: Any, precision: str) -> None:
    """FSDP over gloo on CPU processes, through accelerate's own FSDP2 preparation.

    accelerate (1.x) enables FSDP only for accelerator devices: with cpu=True its state says MULTI_CPU and a
    plugin would be dropped without a word (the run would be DDP). torch's FSDP2 runs on CPU with gloo, so the
    state is switched to FSDP here exactly as accelerate sets it for GPUs (distributed type, plugin, the plugin's
    mixed precision).
    """
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    # Both states: accelerate's utilities construct AcceleratorState on the fly, which copies PartialState's fields.
    PartialState().distributed_type = accelerator.state.distributed_type = DistributedType.FSDP
    accelerator.state.fsdp_plugin = plugin
    if precision != "no":
        plugin.set_mixed_precision(precision)


def _forget_cpu_fsdp() -> None:
    """Undo `_cpu_fsdp` of an earlier run in this process (the process group, and so PartialState, outlive it)."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    if PartialState._shared_state and not torch.cuda.is_available() \
            and PartialState().distributed_type == DistributedType.FSDP:
        PartialState().distributed_type = DistributedType.MULTI_CPU


def _cpu_fp16(accelerator: Any) -> None:
    """fp16 on CPU as on a GPU: float16 autocast and a loss scaler.

    accelerate (1.x) silently drops fp16 on CPU (no autocast, no GradScaler: the run would be fp32 under an fp16
    label), while torch has both on CPU. Switched on here exactly as accelerate does it for a GPU (`native_amp`
    makes `prepare` wrap the forward in `torch.autocast("cpu", float16)`; `scaler` is used by `backward`,
    `clip_grad_norm_` and the prepared optimizer's step), so the fp16 path, loss scaler state included, runs and
    is tested on CPU.
    """
    accelerator.native_amp = True
    accelerator.scaler = torch.amp.GradScaler("cpu")


@dataclass(frozen=True)
class DataPlan:
    """Which samples each process takes at each optimiser step (see the module docstring)."""

    n: int
    per_device: int
    processes: int
    accumulation: int
    seed: int

    @property
    def global_batch(self) -> int:
        return self.per_device * self.processes * self.accumulation

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.global_batch

    def order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=generator).tolist()

    def micro_batches(self, epoch: int, first_step: int, rank: int) -> list[list[int]]:
        """Index lists of this process's micro-batches, from `first_step` of the epoch to its end."""
        order, out = self.order(epoch), []
        for step in range(first_step, self.steps_per_epoch):
            for micro in range(self.accumulation):
                start = step * self.global_batch + (micro * self.processes + rank) * self.per_device
                out.append(order[start:start + self.per_device])
        return out


def run_steps(cfg: TrainConfig, output: Path, accelerator: Any, parts: TrainParts,
              checkpoint: Path | None, until: int | None = None) -> TrainResult:
    """The training loop from step 0 or from `checkpoint`, to the last step (or `until`)."""
    plan = DataPlan(len(parts.dataset), cfg.batch_size, accelerator.num_processes, cfg.grad_accumulation, cfg.seed)
    if plan.steps_per_epoch < 1:
        raise InputError(f"{plan.n} samples are fewer than one global batch ({plan.global_batch})", field="batch_size",
                         fix="lower batch_size or grad_accumulation, or add data")
    total = cfg.schedule.total_steps or cfg.schedule.epochs * plan.steps_per_epoch
    model = parts.model
    model.train()
    optimizer = make_optimizer(model, cfg.optimiser)
    scheduler = make_scheduler(optimizer, cfg.schedule, total)
    run_facts = {"seed": cfg.seed, "global_batch": plan.global_batch, "samples": plan.n, "total_steps": total}
    start = 0
    if checkpoint is not None:
        trainer = state.read_trainer(checkpoint)
        state.check_compatible(checkpoint, model.cfg, trainer, run_facts)
        from affectgpt.model.checkpoint import load_weights

        load_weights(model, checkpoint)  # whole weights into the whole model, before FSDP shards it
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    if checkpoint is not None:
        state.restore_optimizer(checkpoint, wrapped, optimizer.optimizer)
        scheduler.load_state_dict(trainer["scheduler"])
        state.restore_rng(checkpoint, accelerator.process_index)
        start = int(trainer["step"])
        if accelerator.scaler is not None and trainer.get("scaler"):
            accelerator.scaler.load_state_dict(trainer["scaler"])
    log = state.MetricsLog(output, tensorboard=cfg.tensorboard, start=start) if accelerator.is_main_process \
        else None
    if log is not None:
        log.truncate_after(start)
    losses, began, last_ckpt = [], time.perf_counter(), checkpoint
    window: list[float] = []
    window_start = time.perf_counter()
    progress = _progress(accelerator, start, total, cfg.progress)
    batches = _batches(cfg, plan, parts, accelerator.process_index, start)
    end = total if until is None else min(total, until)
    for step in range(start, end):
        micro = [next(batches) for _ in range(cfg.grad_accumulation)]
        loss = train_step(wrapped, micro, optimizer, scheduler, accelerator, cfg.max_grad_norm)
        losses.append(loss)
        window.append(loss)
        done = step + 1
        if done % cfg.log_every == 0 or done == end:
            elapsed = time.perf_counter() - window_start
            record = {"step": done, "loss": sum(window) / len(window), "lr": scheduler.get_last_lr()[0],
                      "samples_per_s": len(window) * plan.global_batch / max(elapsed, 1e-9),
                      "epoch": step // plan.steps_per_epoch}
            if log is not None:
                log.write(record)
            progress.set_postfix_str(f"loss={record['loss']:.4f}, {record['samples_per_s']:.1f} samples/s")
            window, window_start = [], time.perf_counter()
        progress.update(1)
        if (cfg.save_every and done % cfg.save_every == 0) or done == end:
            last_ckpt = save_checkpoint(accelerator, wrapped, optimizer, scheduler, output, done, cfg,
                                        {**run_facts}, parts.base, plan)
    progress.close()
    if log is not None:
        log.close()
    seconds = time.perf_counter() - began
    return TrainResult(output, end, losses, last_ckpt, len(losses) * plan.global_batch / max(seconds, 1e-9),
                       seconds)


def _progress(accelerator: Any, start: int, total: int, show: bool | None) -> Any:
    """The main process's bar (steps, loss, samples/s) on stderr: `show` None means when stderr is a terminal."""
    from tqdm import tqdm

    disable = True if not accelerator.is_main_process or show is False else None if show is None else False
    return tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True, disable=disable,
                file=sys.stderr)


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


def prepare(cfg: TrainConfig, output: Path, accelerator: Any = None) -> TrainParts:
    """Model, tokenizer and dataset as cfg says (data read or generated; model pretrained or random; features
    extracted first when cfg.data.extract_features). With an accelerator, files (a synthetic set, features) are
    written by the main process only while the others wait, then read by all."""
    from affectgpt.data.dataset import TrainingDataset, collate_batch

    samples, features_dir = _main_then_rest(accelerator, lambda: read_samples(cfg, output),
                                            lambda: read_samples(cfg, output, generate=False))
    model_cfg = cfg.model_config
    if cfg.model.init == "random":
        from affectgpt.train.tiny import build_random_model

        model, tokenizer, base = build_random_model(model_cfg, samples, output, seed=cfg.seed)
    else:
        from affectgpt.model.build import build_model

        model, tokenizer = build_model(model_cfg, dtype=getattr(torch, cfg.model.base_dtype))
        base = {"llm": model_cfg.llm, "visual_encoder": model_cfg.visual_encoder,
                "audio_encoder": model_cfg.audio_encoder}
    set_dtypes(model, getattr(torch, cfg.model.base_dtype))
    needs_media = set(model.cfg.modalities) != {"text"}
    if cfg.data.extract_features and needs_media:
        features_dir = features_dir or output / "features"
        samples = usable_samples(samples, model.cfg.visual_input, output)
        _main_then_rest(accelerator, lambda: extract_for_training(samples, model, features_dir), lambda: None)
    elif features_dir is None and needs_media:
        samples = usable_samples(samples, model.cfg.visual_input, output)
    dataset = TrainingDataset(samples, tokenizer, model.cfg, task=cfg.data.task, features_dir=features_dir,
                              seed=cfg.seed, max_length=model.cfg.max_length)
    return TrainParts(model, tokenizer, dataset, partial(collate_batch, pad_id=tokenizer.pad_token_id), base)


def set_dtypes(model: Any, base: torch.dtype) -> None:
    """Frozen weights in `base`, trained weights in float32 (the AdamW master weights), in place."""
    for param in model.parameters():
        wanted = torch.float32 if param.requires_grad else base
        if param.is_floating_point() and param.dtype != wanted:
            param.data = param.data.to(wanted)


def _main_then_rest(accelerator: Any, main: Callable[[], Any], rest: Callable[[], Any]) -> Any:
    """`main()` on the main process (or without an accelerator); the others wait for it, then run `rest()`."""
    if accelerator is None:
        return main()
    result = main() if accelerator.is_main_process else None
    accelerator.wait_for_everyone()
    return result if accelerator.is_main_process else rest()


def extract_for_training(samples: list[Any], model: Any, features_dir: Path) -> None:
    """The feature cache of `samples` with the model's frozen encoders (files already there are kept)."""
    from affectgpt.data.features import extract_features

    if model.visual_encoder is None or model.audio_encoder is None:
        raise InputError("data.extract_features needs the model's visual and audio encoders", field="data",
                         fix="give the model its encoders (local folders, or `random` with init random), or "
                             "extract features beforehand (affectgpt features extract) and set data.features_dir")
    report = extract_features(samples, model.visual_encoder, model.audio_encoder, features_dir,
                              visual_input=model.cfg.visual_input)
    if report.failures:
        shown = "; ".join(f"{f['name']}: {f['reason']}" for f in report.failures[:3])
        raise InputError(f"feature extraction failed for {len(report.failures)} samples ({shown})",
                         path=Path(features_dir) / "failures.json", field="data.extract_features",
                         fix="fix or drop those samples")


def usable_samples(samples: list[Any], visual_input: str, output: Path) -> list[Any]:
    """Samples whose media can be read; the others are counted, listed in <output>/skipped_samples.json and
    never replaced by another sample. No usable sample at all is an error."""
    import json

    from affectgpt.data.manifests import check_media
    from affectgpt.errors import InputError
    from affectgpt.io.atomic import write_text

    usable, problems = check_media(samples, visual_input=visual_input)
    if problems:
        write_text(output / "skipped_samples.json",
                   json.dumps([{"name": n, "reason": r} for n, r in problems], indent=2, ensure_ascii=False))
        print(f"skipped {len(problems)} of {len(samples)} samples whose media cannot be read "
              f"(listed in {output / 'skipped_samples.json'})", file=sys.stderr)
    if not usable:
        raise InputError("no sample has readable media", path=output / "skipped_samples.json", field="data",
                         fix="check the media paths of the manifest, or extract features first")
    return usable


def read_samples(cfg: TrainConfig, output: Path, *, generate: bool = True) -> tuple[list[Any], Path | None]:
    """The samples and feature folder of cfg.data (a synthetic set is generated into <output>/data, or only read
    back from there when `generate` is False)."""
    from affectgpt.data import manifests

    data = cfg.data
    features = Path(data.features_dir) if data.features_dir else None
    if data.manifest is not None:
        return manifests.read_manifest(data.manifest), features
    if data.mercaptionplus is not None:
        return manifests.read_mercaptionplus(data.mercaptionplus), features
    from affectgpt.data.dataset import make_synthetic_dataset

    made = make_synthetic_dataset(output / "data", data.synthetic.n, seed=data.synthetic.seed) if generate \
        else output / "data" / "manifest.jsonl"
    return manifests.read_manifest(made), features
