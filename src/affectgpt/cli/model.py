"""`affectgpt model summary|ls|config|import|get`: the AffectGPT configurations, their sizes, original checkpoints,
the known released weights (downloaded only by `model get`)."""

from __future__ import annotations

import argparse
import json

from affectgpt.cli.output import emit

EXAMPLES = """examples:
  affectgpt model ls
  affectgpt model get affectgpt-mercaptionplus
  affectgpt model get affectgpt-mercaptionplus --epoch 40 --dir models/affectgpt-e40
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
    summary.set_defaults(run=run_summary, needs=("model",))
    ls = commands.add_parser("ls", help="list the preset configurations and the known released weights")
    ls.set_defaults(run=run_ls)
    get = commands.add_parser("get", help="download a known released model (see `model ls`) and import it")
    get.add_argument("name", help="a known model name (affectgpt model ls)")
    get.add_argument("--dir", metavar="DIR", help="the checkpoint folder to write (default: <cache>/models/NAME)")
    get.add_argument("--revision", help="a branch, tag or commit of the run's repository (default: the pinned one, "
                                        "else main)")
    get.add_argument("--epoch", type=int, help="the checkpoint of this epoch (default: the highest)")
    get.set_defaults(run=run_get, needs=("model",))
    convert = commands.add_parser("import", help="an original AffectGPT checkpoint (.pth) -> our checkpoint folder")
    convert.add_argument("checkpoint", help="checkpoint_<epoch>_loss_<x>.pth (read with weights_only=True)")
    convert.add_argument("--output", "-o", required=True, metavar="DIR")
    convert.add_argument("--config", default="released",
                         help="the original's configuration: a preset (what the checkpoint's tensors show, e.g. the "
                              "LoRA rank or Q-Former sizes, is read off them) or a JSON file (taken as written)")
    convert.add_argument("--llm", help="base LLM folder or id (its config.json gives the shapes)")
    convert.add_argument("--visual-encoder", help="CLIP folder or id")
    convert.add_argument("--audio-encoder", help="HuBERT folder or id")
    convert.set_defaults(run=run_import, needs=("model",))
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


def _is_config_file(name: str) -> bool:
    from pathlib import Path

    return Path(name).suffix == ".json" and Path(name).is_file()


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
    # a preset is a starting point: what the checkpoint's tensors show wins; a config file is taken as written
    report = convert_original(args.checkpoint, cfg, args.output, infer=not _is_config_file(args.config))
    for line in report.inferred:
        note(line)
    note(f"imported {len(report.loaded)} tensors into {args.output}")
    for key, reason in report.skipped:
        note(f"  not imported: {key}: {reason}")
    return 0


def run_ls(args: argparse.Namespace) -> int:
    from affectgpt.model.config import PRESETS
    from affectgpt.model.known import KNOWN, installed_path

    lines = [f"{name:16} visual={c.visual_input} pooling={c.video_pooling}/{c.audio_pooling} fusion={c.fusion} "
             f"modalities={'+'.join(c.modalities)} lora_r={c.lora_r}" for name, c in PRESETS.items()]
    lines += ["", "known weights (affectgpt model get NAME):"]
    for name, known in KNOWN.items():
        where = installed_path(name)
        lines.append(f"{name:26} preset={known.preset} {'installed at ' + str(where) if where else 'not installed'}")
        lines.append(f"  {known.description}")
        lines.append(f"  run {known.repo}/{known.run} @ {known.revision or 'main'}")
        lines.append(f"  base llm={known.llm} visual={known.visual_encoder} audio={known.audio_encoder}")
    emit("\n".join(lines), None)
    return 0


def run_get(args: argparse.Namespace) -> int:
    from affectgpt.cli.output import note
    from affectgpt.io.outputs import output_folder
    from affectgpt.model.download import get
    from affectgpt.model.known import default_path, get_known

    known = get_known(args.name)
    output = args.dir if args.dir is not None else str(default_path(known.name))
    output_folder(output, create=False)
    report = get(known, output=output, revision=args.revision, epoch=args.epoch, log=note)
    for line in report.notes:
        note(line)
    for key, reason in report.skipped:
        note(f"  not imported: {key}: {reason}")
    note(f"imported {report.chosen} (epoch {report.epoch}, {report.imported} tensors) from {known.repo} at "
         f"{report.revisions['checkpoint']}")
    emit(str(report.output), None)
    return 0


def run_config(args: argparse.Namespace) -> int:
    emit(json.dumps(resolve_config(args.name).to_json(), indent=2), None)
    return 0
