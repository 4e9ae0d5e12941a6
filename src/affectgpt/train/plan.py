"""DataPlan: which samples each process takes at each optimiser step, so runs resume and scale exactly.

The data order is a permutation of the samples seeded by (seed, epoch); optimiser step s of an epoch takes the
global batch perm[s*G : (s+1)*G] (G = batch_size x processes x grad_accumulation) and process r takes its slice
of it. So a resumed run continues the exact sequence, and 2 processes see the samples 1 process sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DataPlan:
    """Which samples each process takes at each optimiser step (see the module docstring).

    Attributes:
        n: samples in the dataset.
        per_device: samples of one micro-batch of one process (batch_size).
        processes: processes of the run.
        accumulation: micro-batches per optimiser step (grad_accumulation).
        seed: seeds the order of each epoch, with the epoch.
    """

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
