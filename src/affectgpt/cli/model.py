"""`affectgpt model summary|ls|config`: the AffectGPT configurations and their sizes."""

from __future__ import annotations

import argparse
import json

from affectgpt.cli.output import emit

EXAMPLES = """examples:
  affectgpt model ls
  affectgpt model summary --config released --device meta
  affectgpt model config released-frame > my-config.json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser("model", help="AffectGPT configurations and parameter counts",
                                  epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = model.add_subparsers(dest="model_command", metavar="<model command>")
    commands.required = True
    summary = commands.add_parser("summary", help="parameter counts as JSON (built on the meta device)")
    summary.add_argument("--config", default="released", help="a preset name or a config JSON file")
    summary.add_argument("--device", default="meta", choices=("meta",),
                         help="meta: count without allocating or downloading anything")
    summary.set_defaults(run=run_summary)
    ls = commands.add_parser("ls", help="list the preset configurations")
    ls.set_defaults(run=run_ls)
    config = commands.add_parser("config", help="print a preset as JSON, to edit and pass back with --config")
    config.add_argument("name")
    config.set_defaults(run=run_config)


def resolve_config(name: str):
    """A preset by name, or a JSON file of ModelConfig fields."""
    from pathlib import Path

    from affectgpt.errors import InputError
    from affectgpt.model.config import ModelConfig, get_preset

    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        try:
            return ModelConfig.from_json(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise InputError(f"not valid JSON ({exc})", path=path, fix="write the config as JSON") from exc
    return get_preset(name)


def run_summary(args: argparse.Namespace) -> int:
    from affectgpt.model.summary import summarize

    counts = summarize(resolve_config(args.config))
    emit(json.dumps({"config": args.config, **counts}, indent=2), None)
    return 0


def run_ls(args: argparse.Namespace) -> int:
    from affectgpt.model.config import PRESETS

    lines = [f"{name:16} visual={c.visual_input} pooling={c.video_pooling}/{c.audio_pooling} fusion={c.fusion} "
             f"modalities={'+'.join(c.modalities)} lora_r={c.lora_r}" for name, c in PRESETS.items()]
    emit("\n".join(lines), None)
    return 0


def run_config(args: argparse.Namespace) -> int:
    emit(json.dumps(resolve_config(args.name).to_json(), indent=2), None)
    return 0
