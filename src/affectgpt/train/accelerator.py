"""The Accelerator of a run (precision, DDP or FSDP2, on GPUs or CPU processes), with the fixes accelerate needs.

accelerate leaves three things undone that the runs here rely on, so this module sets its state by hand, as
accelerate itself would for a GPU. Those fixes touch accelerate's private or undocumented state:

- `AcceleratorState._shared_state` and `AcceleratorState._reset_state(reset_partial_state=False)`: forget the
  previous run's settings in this process (accelerate refuses another precision in a later Accelerator);
- `PartialState._shared_state`, `PartialState().distributed_type` and `accelerator.state.distributed_type` /
  `accelerator.state.fsdp_plugin`: FSDP on CPU processes over gloo (`_cpu_fsdp`, undone by `_forget_cpu_fsdp`);
- `accelerator.native_amp` and `accelerator.scaler`: fp16 autocast and a loss scaler on CPU (`_cpu_fp16`);
- the environment variable `ACCELERATE_USE_FSDP`, which accelerate sets for good when given an FSDP plugin.

They are tested against the accelerate releases in TESTED_ACCELERATE; pyproject.toml bounds accelerate below the
next release (tests/train/test_accelerator.py checks both), so a new release is tried here before it is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from affectgpt.train.config import TrainConfig

TESTED_ACCELERATE = ("1.15", "1.16")
"""The accelerate releases (major.minor) whose private state the fixes of this module were tested against."""


def make_accelerator(cfg: TrainConfig, *, on_note: Callable[[str], None] | None = None) -> Any:
    """The Accelerator for cfg.precision and cfg.distributed (FSDP2: each LLM decoder layer is a shard unit).

    `on_note` hears a one-line notice when the run cannot do what cfg asks as asked (fsdp with one process).
    """
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
        if on_note is not None:
            on_note("distributed: fsdp with one process has nothing to shard: training as a single process (start "
                    "several with torchrun or accelerate launch)")
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
