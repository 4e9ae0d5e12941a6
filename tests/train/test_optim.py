"""Weight-decay groups (spec: >= 2-D non-bias non-norm weights) and the warm-up + cosine schedule."""

from __future__ import annotations

from itertools import pairwise

import pytest

torch = pytest.importorskip("torch")

from affectgpt.train.config import OptimiserSection, ScheduleSection  # noqa: E402
from affectgpt.train.optim import lr_factor, make_optimizer, make_scheduler, parameter_groups  # noqa: E402


class Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.query = torch.nn.Parameter(torch.zeros(1, 2, 3))
        self.scale = torch.nn.Parameter(torch.ones(3))
        self.frozen = torch.nn.Linear(3, 3)
        self.frozen.requires_grad_(False)


def test_decay_groups():
    model = Toy()
    decay, no_decay = parameter_groups(model.named_parameters(), 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    ids = lambda group: {id(p) for p in group["params"]}  # noqa: E731
    assert ids(decay) == {id(model.proj.weight), id(model.query)}
    assert ids(no_decay) == {id(model.proj.bias), id(model.norm.weight), id(model.norm.bias), id(model.scale)}


def test_schedule_warms_up_then_decays_to_min():
    model = Toy()
    optimizer = make_optimizer(model, OptimiserSection(lr=1e-3))
    scheduler = make_scheduler(optimizer, ScheduleSection(warmup_steps=10, total_steps=100, min_lr_ratio=0.1), 100)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] < 0.1 * 1e-3  # step 0 is not the full lr
    assert all(a < b for a, b in pairwise(lrs[:11]))  # rising through the warm-up
    assert lrs[10] == pytest.approx(1e-3)
    assert all(a >= b for a, b in pairwise(lrs[10:]))  # then never rising
    assert lrs[-1] == pytest.approx(1e-4)


def test_no_warmup_starts_at_full_lr_and_constant_when_min_ratio_is_one():
    assert lr_factor(0, 0, 50, 0.0) == 1.0
    assert {lr_factor(s, 5, 50, 1.0) for s in range(5, 50)} == {1.0}
