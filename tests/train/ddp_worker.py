"""One process of the multi-process tests: `python -m torch.distributed.run --nproc-per-node 2 ddp_worker.py OUT
[--resume-at N] k=v...`.

Trains the tiny in-test setup (tinytrain.py) with the given overrides into OUT/straight; with --resume-at N,
also trains the same run into OUT/resumed stopping after step N (as a preempted job) and resumes it to the end.
The main process writes each run's per-step losses to <run>/losses.json; each process writes how many parameter
elements it holds (its shards under FSDP) to straight/held_<rank>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tinytrain import tiny_config, tiny_parts

from affectgpt.train.loop import train


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("output", type=Path)
    parser.add_argument("--resume-at", type=int)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    cfg = tiny_config(**dict(item.split("=", 1) for item in args.overrides))
    built = []
    runs = {"straight": [train(cfg, args.output / "straight", parts=lambda c, o: built.append(tiny_parts(c, o))
                               or built[-1])]}
    # What this process holds of the trained model's parameters (its shards under FSDP), for the tests.
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    held = {"local": sum(_local(p).numel() for p in built[0].model.parameters()),
            "whole": sum(p.numel() for p in built[0].model.parameters())}
    (args.output / "straight" / f"held_{rank}.json").write_text(json.dumps(held), encoding="utf-8")
    if args.resume_at is not None:
        runs["resumed"] = [train(cfg, args.output / "resumed", parts=tiny_parts, until=args.resume_at),
                           train(cfg, args.output / "resumed", parts=tiny_parts, resume=True)]
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return
    for name, results in runs.items():
        losses = [loss for result in results for loss in result.losses]
        (args.output / name / "losses.json").write_text(json.dumps(losses), encoding="utf-8")


def _local(param: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor

    return param.to_local() if isinstance(param, DTensor) else param


if __name__ == "__main__":
    main()
