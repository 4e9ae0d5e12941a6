"""`affectgpt train`: a YAML recipe (+ --set overrides) -> a training run folder (checkpoints, metrics)."""

from __future__ import annotations

import argparse
from typing import Any

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
    parser.set_defaults(run=run_train, needs=("train",))


def run_train(args: argparse.Namespace) -> int:
    from affectgpt.cli.output import note
    from affectgpt.config import load_config
    from affectgpt.io.outputs import output_folder
    from affectgpt.train.config import TrainConfig
    from affectgpt.train.loop import train

    output_folder(args.output, create=False)  # a file there, or a place that cannot be written: refused up front
    cfg = load_config(args.config, TrainConfig, args.overrides)
    with TrainReport(cfg.progress) as report:
        result = train(cfg, args.output, resume=args.resume, on_step=report.on_step, on_note=report.on_note)
    note(f"trained to step {result.steps} ({result.samples_per_second:.1f} samples/s); "
         f"last checkpoint: {result.checkpoint}")
    return 0


class TrainReport:
    """What a run tells the person at the terminal: its notices as lines on stderr, and a bar of its steps with
    the loss and samples/s of the last metrics record.

    Args:
        progress: the recipe's `progress`: None shows the bar when stderr is a terminal, True always (e.g. into a
            log file), False never. train() calls `on_step` on the main process only, so only it draws a bar.
    """

    def __init__(self, progress: bool | None) -> None:
        self.progress = progress
        self.bar: Any = None
        self.done = 0

    def on_note(self, message: str) -> None:
        from affectgpt.cli.output import note

        note(message)

    def on_step(self, record: Any) -> None:
        """One optimiser step done (train/loop.py: StepRecord)."""
        if self.bar is None:
            from affectgpt.cli.output import progress_bar

            self.done = record.step - 1  # the first step this call runs (a resumed run starts past 0)
            self.bar = progress_bar(record.total, unit="step", desc="train", enabled=self.progress is not False,
                                    always=self.progress is True, initial=self.done)
        if record.loss is not None:
            self.bar.set_postfix_str(f"loss={record.loss:.4f}, {record.samples_per_s:.1f} samples/s")
        self.bar.update(record.step - self.done)
        self.done = record.step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> TrainReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
