"""`affectgpt model summary|ls|config|import`: the AffectGPT configurations, their sizes, original checkpoints."""

from __future__ import annotations

import argparse
import json

from affectgpt.cli.output import emit

EXAMPLES = """examples:
  affectgpt model ls
  affectgpt model summary --config released --device meta
  affectgpt model config released-frame > my-config.json
  affectgpt model import checkpoint_000060_loss_0.480.pth --output ckpt60 --llm models/Qwen2.5-7B-Instruct
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
    convert = commands.add_parser("import", help="an original AffectGPT checkpoint (.pth) -> our checkpoint folder")
    convert.add_argument("checkpoint", help="checkpoint_<epoch>_loss_<x>.pth (read with weights_only=True)")
    convert.add_argument("--output", "-o", required=True, metavar="DIR")
    convert.add_argument("--config", default="released", help="the original's configuration: a preset or JSON")
    convert.add_argument("--llm", help="base LLM folder or id (its config.json gives the shapes)")
    convert.add_argument("--visual-encoder", help="CLIP folder or id")
    convert.add_argument("--audio-encoder", help="HuBERT folder or id")
    convert.set_defaults(run=run_import)
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
            return ModelConfig.from_json(json.loads(path.read_text(encoding="utf-8"),
                                                    parse_constant=_no_constant))
        except InputError as exc:
            raise InputError(exc.what, path=path, field=exc.field, fix=exc.fix) from exc
        except ValueError as exc:
            raise InputError(f"not valid JSON ({exc})", path=path, fix="write the config as JSON") from exc
    return get_preset(name)


def _no_constant(name: str) -> None:
    """NaN and Infinity are not JSON (Python's json module reads them unless told not to)."""
    raise ValueError(f"{name} is not a JSON value")


def run_summary(args: argparse.Namespace) -> int:
    from affectgpt.model.summary import summarize

    counts = summarize(resolve_config(args.config))
    emit(json.dumps({"config": args.config, **counts}, indent=2), None)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from affectgpt.cli.output import note
    from affectgpt.io.outputs import output_folder
    from affectgpt.model.build import with_base_models
    from affectgpt.model.checkpoint import convert_original

    output_folder(args.output, create=False)
    cfg = with_base_models(resolve_config(args.config), llm=args.llm, visual_encoder=args.visual_encoder,
                           audio_encoder=args.audio_encoder)
    report = convert_original(args.checkpoint, cfg, args.output)
    note(f"imported {len(report.loaded)} tensors into {args.output}")
    for key, reason in report.skipped:
        note(f"  not imported: {key}: {reason}")
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
