"""`affectgpt classifiers train`: a MERBench-style emotion or sentiment classifier on cached encoder features."""

from __future__ import annotations

import argparse

from affectgpt.cli.output import note

EXAMPLES = """examples:
  affectgpt classifiers train --features features/ --labels labels.csv --task emotion --output clf/emo-s0
  affectgpt classifiers train --features features/ --labels labels.csv --task sentiment --seed 1 \\
      --modalities audio visual --output clf/sent-av-s1
Several seeds and modality subsets make the ensemble of the caption high-level vote (stages.highlevel.voters).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("classifiers", help="emotion/sentiment classifiers on cached features "
                                                      "(voters of the caption high-level filter)")
    commands = group.add_subparsers(dest="classifiers_command", metavar="<classifiers command>")
    commands.required = True
    train = commands.add_parser("train", help="train one classifier (seconds on CPU)", epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--features", required=True, metavar="DIR", help="`affectgpt features extract` output")
    train.add_argument("--labels", required=True, metavar="FILE",
                       help="CSV/JSONL: name and an `emotion` or `sentiment` (or `label`) column")
    train.add_argument("--task", required=True, choices=("emotion", "sentiment"))
    train.add_argument("--output", "-o", required=True, metavar="CKPT", help="checkpoint folder to write")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--modalities", nargs="+", choices=("audio", "visual", "text"), default=["audio", "visual"],
                       help="which feature tensors to fuse (default audio visual; text needs a `text` tensor)")
    train.add_argument("--epochs", type=int, default=60)
    train.add_argument("--hidden", type=int, default=64)
    train.set_defaults(run=run_train, needs=("model",))


def run_train(args: argparse.Namespace) -> int:
    from affectgpt.train.classifiers import load_feature_set, train_classifier

    modalities = list(dict.fromkeys(args.modalities))
    data = load_feature_set(args.features, args.labels, args.task, modalities)
    config = train_classifier(data, args.task, args.output, seed=args.seed, epochs=args.epochs, hidden=args.hidden)
    if data.missing:
        note(f"{len(data.missing)} labelled samples have no feature file and were skipped "
             f"(first: {', '.join(data.missing[:3])})")
    held = config["held_out"]
    print(f"{args.task} classifier ({'+'.join(modalities)}, seed {args.seed}, {len(config['classes'])} classes): "
          f"held-out accuracy {held['accuracy']:.4f} on {config['samples']['held_out']} samples after "
          f"{config['epochs_run']} epochs -> {args.output}")
    return 0
