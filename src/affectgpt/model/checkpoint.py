"""Checkpoints: our format (safetensors + JSON config) and import of the original AffectGPT `.pth` files.

Our format is a folder: `model.safetensors` (the trainable weights only: poolers, pre-fusion, LoRA) and
`config.json` (the ModelConfig and where the frozen base models come from), so `load` needs nothing else.
Original checkpoints (`checkpoint_<epoch>_loss_<x>.pth`, `torch.save({"model": state_dict})`) are read with
`torch.load(weights_only=True)` (never arbitrary pickled objects) and mapped through model/keymap.py; every
key that cannot be placed is reported, and a checkpoint of another configuration is refused with the keys and
shapes that disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.extras import require

LLM_PREFIX = "llm.base_model.model."  # AffectGPT.llm is a peft model: it nests the LM as base_model.model
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT = "affectgpt-checkpoint/1"


@dataclass
class ImportReport:
    """What an import placed, skipped (with reasons) and left unset."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def read_original_state(path: str | Path) -> dict[str, Any]:
    """The tensors of an original checkpoint (.pth with key "model", or .safetensors)."""
    torch = require("torch", extra="model")
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path=path, fix="check the path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses anything but tensors and plain containers
        raise InputError(f"not a plain tensor checkpoint ({type(exc).__name__}: {exc})", path=path,
                         fix="only checkpoints of tensors are loaded (torch.load weights_only=True)") from exc
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise InputError("no state dict in the checkpoint", path=path, field="model",
                         fix="pass an original AffectGPT checkpoint ({'model': state_dict})")
    return state


def plan_import(model: Any, state: dict[str, Any], *,
                source: str = "<checkpoint>") -> tuple[dict[str, Any], ImportReport]:
    """Our name -> tensor for every weight of an original checkpoint that `model` takes, and the report.

    `model` may live on the meta device (only names, shapes and dtypes are read).

    Raises:
        InputError: a shape that does not match (a checkpoint of another configuration), or trainable weights
            of this model that the checkpoint does not hold.
    """
    from affectgpt.model.keymap import map_key

    params = dict(model.named_parameters())
    report = ImportReport()
    updates = {}
    for key, tensor in state.items():
        target, reason = map_key(key, llm_prefix=LLM_PREFIX)
        if target is None or target not in params:
            report.skipped.append((key, reason or "no parameter of this model takes it"))
            continue
        if tuple(params[target].shape) != tuple(tensor.shape):
            raise InputError(f"{key} has shape {list(tensor.shape)} but this model's {target} is "
                             f"{list(params[target].shape)}: the checkpoint is for another configuration",
                             path=source, field=key, fix="build the model with the checkpoint's config "
                                                         "(pooling, fusion, tokens, LoRA rank, LLM width)")
        updates[target] = tensor.to(params[target].dtype)
        report.loaded.append(key)
    trainable = {n for n, p in params.items() if p.requires_grad}
    report.missing = sorted(trainable - set(updates))
    if report.missing:
        shown = ", ".join(report.missing[:5])
        raise InputError(f"the checkpoint holds no weights for {len(report.missing)} trainable parameters "
                         f"of this model ({shown}...)", path=source, field="model",
                         fix="the checkpoint is for another configuration; check pooling/fusion/modalities")
    return updates, report


def import_original(model: Any, state: dict[str, Any], *, source: str = "<checkpoint>") -> ImportReport:
    """Copy an original checkpoint's weights into `model` (an AffectGPT); report what could not be placed."""
    torch = require("torch", extra="model")
    updates, report = plan_import(model, state, source=source)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for target, tensor in updates.items():
            params[target].copy_(tensor)
    return report


def convert_original(path: str | Path, cfg: Any, output: str | Path) -> ImportReport:
    """An original checkpoint -> our checkpoint folder, checked against `cfg` without loading any base model.

    The model is laid out on the meta device from `cfg` (its llm_config gives the LLM's shapes), so converting
    a 7B checkpoint needs neither the LLM's weights nor its memory.
    """
    torch = require("torch", extra="model")
    from affectgpt.model.affectgpt import AffectGPT
    from affectgpt.model.lm import build_llm_from_config

    state = read_original_state(path)
    with torch.device("meta"):
        skeleton = AffectGPT(cfg, build_llm_from_config(cfg, device="meta"), {})
    updates, report = plan_import(skeleton, state, source=str(path))
    write(output, updates, cfg, {})
    return report


def save(model: Any, folder: str | Path, *, base: dict[str, str] | None = None) -> Path:
    """Write our checkpoint folder: trainable weights (safetensors) + config (JSON), atomically per file."""
    return write(folder, model.trainable_state_dict(), model.cfg, base or {})


def write(folder: str | Path, tensors: dict[str, Any], cfg: Any, base: dict[str, str]) -> Path:
    """Write our checkpoint folder from the trainable tensors themselves (e.g. gathered from FSDP shards)."""
    from safetensors.torch import save as save_tensors

    from affectgpt.io.atomic import write_bytes, write_text

    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    write_bytes(folder / WEIGHTS, save_tensors(tensors, metadata={"format": FORMAT}))
    write_text(folder / CONFIG, json.dumps({"format": FORMAT, "config": cfg.to_json(), "base": base}, indent=2))
    return folder


def read_config(folder: str | Path) -> tuple[Any, dict[str, str]]:
    """The ModelConfig and base-model locations stored in our checkpoint folder."""
    from affectgpt.model.config import ModelConfig

    path = Path(folder) / CONFIG
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable checkpoint config ({exc})", path=path,
                         fix="pass a folder written by affectgpt (model.safetensors + config.json)") from exc
    if meta.get("format") != FORMAT:
        raise InputError(f"unknown checkpoint format {meta.get('format')!r}", path=path, field="format",
                         fix="re-save the checkpoint with this version")
    return ModelConfig.from_json(meta["config"]), meta.get("base", {})


def load_weights(model: Any, folder: str | Path) -> None:
    """Load our checkpoint's trainable weights into `model`; a mismatch names the keys."""
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise InputError("no model.safetensors in the checkpoint folder", path=folder, fix="check the path")
    tensors = load_file(str(path))
    expected = model.trainable_state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    wrong = [k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}" for label, keys in
                           (("missing", missing), ("unexpected", unexpected), ("wrong shape", sorted(wrong))) if keys)
        raise InputError(f"the checkpoint does not fit this model ({detail})", path=path,
                         fix="load it with the config stored beside it (config.json)")
    model.load_state_dict(tensors, strict=False)
