"""The optimiser and its schedule: AdamW with the spec's weight-decay groups, linear warm-up + cosine decay."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from affectgpt.train.config import OptimiserSection, ScheduleSection

NORM_MARKS = ("norm", "ln_", "layernorm", "layer_norm")


def decays(name: str, param: torch.Tensor) -> bool:
    """Whether a parameter gets weight decay: >= 2-D weights that are not biases or normalisation (spec)."""
    lowered = name.lower()
    return param.ndim >= 2 and not lowered.endswith("bias") and not any(m in lowered for m in NORM_MARKS)


def parameter_groups(named: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Two AdamW groups over the trainable parameters: decayed (weight_decay) and not decayed (0)."""
    decay, no_decay = [], []
    for name, param in named:
        if param.requires_grad:
            (decay if decays(name, param) else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: OptimiserSection) -> torch.optim.AdamW:
    """AdamW over `model`'s trainable parameters, grouped by `parameter_groups`."""
    groups = [g for g in parameter_groups(model.named_parameters(), cfg.weight_decay) if g["params"]]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the peak lr at optimiser step `step` (0-based).

    Warm-up: (step + 1) / (warmup_steps + 1), so step 0 runs at a small fraction of lr and step warmup_steps
    at the full lr; then a half cosine from 1 down to min_lr_ratio at step total_steps - 1.
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    span = max(1, total_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleSection,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR following `lr_factor`; call .step() once per optimiser step."""
    factor: Callable[[int], float] = lambda step: lr_factor(step, cfg.warmup_steps, total_steps,  # noqa: E731
                                                            cfg.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
