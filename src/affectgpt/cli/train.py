"""`affectgpt train`: a YAML recipe (+ --set overrides) -> a training run folder (checkpoints, metrics)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  affectgpt train --config configs/tiny-cpu.yaml --output runs/tiny
  affectgpt train --config configs/released.yaml --output runs/released --set data.mercaptionplus=/data/MER-Caption+
  accelerate launch --num_processes 8 -m affectgpt train --config configs/released.yaml --output runs/r --resume
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train AffectGPT from a YAML recipe (one CPU to many GPUs)",
                                   epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, metavar="FILE", help="a recipe, e.g. configs/released.yaml")
    parser.add_argument("--output", "-o", required=True, metavar="DIR",
                        help="the run folder: config.resolved.yaml, metrics.jsonl, checkpoint_<step>/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), e.g. --set optimiser.lr=2e-5")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --output (exactly: weights, optimiser, data)")
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from affectgpt.cli.output import note
    from affectgpt.config import load_config
    from affectgpt.train.config import TrainConfig
    from affectgpt.train.loop import train

    cfg = load_config(args.config, TrainConfig, args.overrides)
    result = train(cfg, args.output, resume=args.resume)
    note(f"trained to step {result.steps} ({result.samples_per_second:.1f} samples/s); "
         f"last checkpoint: {result.checkpoint}")
    return 0
