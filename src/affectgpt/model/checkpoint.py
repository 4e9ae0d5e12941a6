"""Checkpoints: our format (safetensors + JSON config) and import of the original AffectGPT `.pth` files.

Our format is a folder: `model.safetensors` (the trainable weights only: poolers, pre-fusion, LoRA) and
`config.json` (the ModelConfig and where the frozen base models come from), so `load` needs nothing else.
Original checkpoints (`checkpoint_<epoch>_loss_<x>.pth`, `torch.save({"model": state_dict})`) are read with
`torch.load(weights_only=True)` (never arbitrary pickled objects) and mapped through model/keymap.py; every
key that cannot be placed is reported, and a checkpoint of another configuration is refused with the keys and
shapes that disagree.

Nothing broken is taken in silence: unreadable or truncated weights are an InputError naming the file ("the file
is damaged"); config.json is checked key by key like a training recipe (an unknown key at its top level or in its
`config` or `base` record is refused with a did-you-mean); trained weights holding NaN or infinities are refused
on import and on load, naming the file and the first such tensor.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.extras import require

LLM_PREFIX = "llm.base_model.model."  # AffectGPT.llm is a peft model: it nests the LM as base_model.model
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT = "affectgpt-checkpoint/1"
TOP_KEYS = ("format", "config", "base")
"""The keys of config.json."""
BASE_KEYS = ("init", "seed", "tokenizer", "llm", "visual_encoder", "audio_encoder", "source", "source_revision",
             "llm_revision", "visual_encoder_revision", "audio_encoder_revision")
"""The keys of config.json's `base` record: how the model is made (infer/sources.py), where its base models
and tokenizer are (train/build.py, tiny/recipe.py), and for a downloaded model (model/download.py) the hub file it
was imported from and the commits every repository resolved to."""
DAMAGED = "the file is damaged: copy or export it again"


@dataclass
class ImportReport:
    """What an import placed, skipped (with reasons) and left unset."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    inferred: list[str] = field(default_factory=list)
    """One line per configuration field read off the checkpoint where the given config disagreed."""


def read_original_state(path: str | Path) -> dict[str, Any]:
    """The tensors of an original checkpoint (.pth with key "model", or .safetensors)."""
    torch = require("torch", extra="model")
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path=path, fix="check the path")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
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


def read_safetensors(path: str | Path) -> dict[str, Any]:
    """The tensors of a safetensors file; a truncated or otherwise unreadable file is an InputError naming it.

    safetensors checks the header against the file's size before it reads any tensor (a header that declares more
    than the file holds is refused without allocating), so a damaged file costs nothing to refuse."""
    require("torch", extra="model")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        return load_file(str(path))
    except FileNotFoundError as exc:
        raise InputError("file not found", path=path, fix="check the path") from exc
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(f"not a readable safetensors file ({reason})", path=path, fix=DAMAGED) from exc


def check_finite(tensors: dict[str, Any], *, source: str | Path) -> None:
    """Refuse trained weights that hold NaN or an infinity (a diverged run, a damaged export): named by the file
    and the first such tensor, in the file's order."""
    torch = require("torch", extra="model")
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and tensor.device.type != "meta" and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise InputError(f"the weights are not finite: {bad} of {tensor.numel()} values are NaN or infinite",
                             path=source, field=key,
                             fix="the training diverged or the file is damaged: use an earlier checkpoint, or copy "
                                 "or export it again")


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
    placed = {}
    for key, tensor in state.items():
        target, reason = map_key(key, llm_prefix=LLM_PREFIX)
        if target is None or target not in params:
            report.skipped.append((key, reason or "no parameter of this model takes it"))
            continue
        placed[key] = tensor
        if tuple(params[target].shape) != tuple(tensor.shape):
            raise InputError(f"{key} has shape {list(tensor.shape)} but this model's {target} is "
                             f"{list(params[target].shape)}: the checkpoint is for another configuration",
                             path=source, field=key, fix="build the model with the checkpoint's config "
                                                         "(pooling, fusion, tokens, LoRA rank, LLM width)")
        updates[target] = tensor.to(params[target].dtype)
        report.loaded.append(key)
    check_finite(placed, source=source)  # what is imported; skipped keys (never used) are not judged
    trainable = {n for n, p in params.items() if p.requires_grad}
    report.missing = sorted(trainable - set(updates))
    if report.missing:
        shown = ", ".join(report.missing[:5])
        raise InputError(f"the checkpoint holds no weights for {len(report.missing)} trainable parameters "
                         f"of this model ({shown}...)", path=source, field="model",
                         fix="the checkpoint is for another configuration; check pooling/fusion/modalities")
    return updates, report


_LORA_KEY = re.compile(r"^llama_model\.base_model\.model\..*\.(?P<target>[a-z_]+)\.lora_A\.default\.weight$")
_QFORMER_LAYER = re.compile(r"^(?P<who>video|audio|multi)_Qformer\.bert\.encoder\.layer\.(?P<i>\d+)\.")


def infer_config(state: dict[str, Any], cfg: Any, *, source: str = "<checkpoint>") -> tuple[Any, list[str]]:
    """`cfg` with every field the checkpoint's key set and tensor shapes fix set to what they say, and one note
    per field that changed ("lora_r=4 (lora_A is [4, 64]; the config said 16)").

    Read off the checkpoint: the pooling kind of each modality and the fusion kind (which modules are present),
    the LoRA rank and target modules, the Q-Former width, FFN width and layer count, the query-token counts and
    position-table sizes. The attention-head count changes no shape: when the config's does not divide the
    inferred width, the largest count dividing both is taken, and said so. Widths that come from the base models
    (LLM, encoders) are not inferred: the shape check of `plan_import` names any key that disagrees.

    Raises:
        InputError: naming the keys, when the tensors contradict each other (two LoRA ranks, two Q-Former widths)
            and so fit no configuration.
    """
    from dataclasses import replace

    keys = set(state)
    values: dict[str, Any] = {}
    why: dict[str, str] = {}

    def shape(key: str) -> list[int]:
        return list(state[key].shape)

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    def agree(field_name: str, value: Any, key: str, reason: str | None = None) -> None:
        if field_name in values and values[field_name] != value:
            raise InputError(f"the checkpoint's tensors fit no configuration: {why[field_name].split(' ')[0]} says "
                             f"{field_name}={values[field_name]} but {key} says {value}", path=source, field=key,
                             fix="the file is damaged or mixes two runs: use another checkpoint of the run")
        values.setdefault(field_name, value)
        why.setdefault(field_name, reason or f"{key} is {shape(key)}")

    # pooling and fusion kinds: which modules the checkpoint holds
    for who, pool in (("video", "video_pooling"), ("audio", "audio_pooling")):
        proj = "affectgpt_proj." if who == "video" else "audio_llama_proj."
        if has(f"{who}_Qformer."):
            values[pool], why[pool] = "qformer", f"{who}_Qformer.* present"
        elif has(f"{who}_attention_mlp."):
            values[pool], why[pool] = "attention", f"{who}_attention_mlp.* present"
        elif has(proj):
            values[pool], why[pool] = "mean", f"{proj}* present, no attention or Q-Former"
    if has("multi_Qformer."):
        values["fusion"], why["fusion"] = "qformer", "multi_Qformer.* present"
    elif has("attention_mlp.") or has("fc_att."):
        values["fusion"], why["fusion"] = "attention", "attention_mlp.*/fc_att.* present"
    elif keys and not has("multi_"):
        values["fusion"], why["fusion"] = "none", "no pre-fusion (multi_*) weights"
    # LoRA rank and targets
    targets = set()
    for key in sorted(keys):
        match = _LORA_KEY.match(key)
        if match:
            targets.add(match["target"])
            agree("lora_r", shape(key)[0], key)
    if targets:
        ordered = tuple(t for t in cfg.lora_targets if t in targets) + tuple(sorted(targets - set(cfg.lora_targets)))
        values["lora_targets"], why["lora_targets"] = ordered, "the modules holding lora_A weights"
    elif keys and not any(".lora_" in k for k in keys):
        values["lora_r"], why["lora_r"] = 0, "no LoRA weights"
    # Q-Former sizes, query tokens, position tables
    for who in ("video", "audio", "multi"):
        queries = f"{who}_query_tokens"
        if queries in keys:
            agree(f"{who}_tokens", shape(queries)[1], queries)
            agree("qformer_hidden", shape(queries)[2], queries)
        ffn = f"{who}_Qformer.bert.encoder.layer.0.intermediate_query.dense.weight"
        if ffn in keys:
            agree("qformer_intermediate", shape(ffn)[0], ffn)
        layers = {int(m["i"]) for m in map(_QFORMER_LAYER.match, keys) if m and m["who"] == who}
        if layers:
            agree("qformer_layers", max(layers) + 1, f"{who}_Qformer.bert.encoder.layer.{max(layers)}.*",
                  f"{who}_Qformer.bert.encoder.layer.0..{max(layers)}")
    for key, name in (("video_frame_position_embedding.weight", "video_positions"),
                      ("audio_position_embedding.weight", "audio_positions"),
                      ("multi_position_embedding.weight", "multi_positions")):
        if key in keys:
            agree(name, shape(key)[0], key)
    if "qformer_hidden" in values and values["qformer_hidden"] % cfg.qformer_heads:
        import math

        values["qformer_heads"] = math.gcd(values["qformer_hidden"], cfg.qformer_heads)
        why["qformer_heads"] = (f"no shape fixes it; {cfg.qformer_heads} does not divide width "
                                f"{values['qformer_hidden']}, so the largest count dividing both")
    if values.get("fusion") == "none" and "multi" in cfg.modalities:
        values["modalities"] = tuple(m for m in cfg.modalities if m != "multi")
        why["modalities"] = "no pre-fusion weights, so no multi token"
    changed = {k: v for k, v in values.items() if getattr(cfg, k) != v}
    notes = [f"inferred {k}={_shown(v)} ({why[k]}; the config said {_shown(getattr(cfg, k))})"
             for k, v in changed.items()]
    try:
        return replace(cfg, **changed), notes
    except InputError as exc:
        raise InputError(f"the checkpoint's tensors fit no configuration ({exc.what})", path=source,
                         field=exc.field, fix="pass the run's configuration with --config") from exc


def _shown(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def import_original(model: Any, state: dict[str, Any], *, source: str = "<checkpoint>") -> ImportReport:
    """Copy an original checkpoint's weights into `model` (an AffectGPT); report what could not be placed."""
    torch = require("torch", extra="model")
    updates, report = plan_import(model, state, source=source)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for target, tensor in updates.items():
            params[target].copy_(tensor)
    return report


def convert_original(path: str | Path, cfg: Any, output: str | Path, *, base: dict[str, Any] | None = None,
                     infer: bool = True) -> ImportReport:
    """An original checkpoint -> our checkpoint folder, checked against `cfg` without loading any base model.

    Where the checkpoint's tensors disagree with `cfg` on what they show (LoRA rank and targets, Q-Former sizes,
    layers and query tokens, position tables, pooling and fusion kinds), the checkpoint wins: `infer_config`, one
    line per field in the report's `inferred`. The model is laid out on the meta device from that config (its
    llm_config gives the LLM's shapes), so converting a 7B checkpoint needs neither the LLM's weights nor its
    memory. `base` is config.json's base record (model/download.py records where the downloads are).
    With `infer=False` (a configuration the user wrote out) nothing is changed: a checkpoint that does not fit is
    refused, and the refusal lists what the checkpoint's tensors say.
    """
    torch = require("torch", extra="model")
    from affectgpt.model.affectgpt import AffectGPT
    from affectgpt.model.lm import build_llm_from_config

    state = read_original_state(path)
    inferred_cfg, inferred = infer_config(state, cfg, source=str(path))
    if infer:
        cfg = inferred_cfg
    with torch.device("meta"):
        skeleton = AffectGPT(cfg, build_llm_from_config(cfg, device="meta"), {})
    try:
        updates, report = plan_import(skeleton, state, source=str(path))
    except InputError as exc:
        if infer or not inferred:
            raise
        said = "; ".join(line.removeprefix("inferred ").split(" (")[0] for line in inferred)
        raise InputError(exc.what, path=exc.path, field=exc.field,
                         fix=f"{exc.fix}; the checkpoint's tensors say {said}") from exc
    report.inferred = inferred if infer else []
    write(output, updates, cfg, base or {})
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


def read_config(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """The ModelConfig and base-model locations stored in our checkpoint folder.

    Raises:
        InputError: naming config.json: unreadable, not JSON, not an object, another format, an unknown key (at
            the top level, in `config` or in `base`, with the closest known key), a value of the wrong type.
    """
    from affectgpt.model.config import ModelConfig

    path = Path(folder) / CONFIG
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split())[:200]
        raise InputError(f"not a readable checkpoint config ({reason})", path=path,
                         fix="pass a folder written by affectgpt (model.safetensors + config.json)") from exc
    if not isinstance(meta, dict):
        raise InputError(f"expected a JSON object, got {type(meta).__name__}", path=path,
                         fix="pass a folder written by affectgpt (model.safetensors + config.json)")
    _known_keys(meta, TOP_KEYS, "", path)
    if meta.get("format") != FORMAT:
        raise InputError(f"unknown checkpoint format {meta.get('format')!r}", path=path, field="format",
                         fix="re-save the checkpoint with this version")
    config, base = meta.get("config"), meta.get("base", {})
    if not isinstance(config, dict):
        raise InputError(f"expected the model config as an object, got {type(config).__name__}", path=path,
                         field="config", fix="re-save the checkpoint with this version")
    if not isinstance(base, dict) or not all((isinstance(v, str | int) and not isinstance(v, bool)) or v is None
                                             for v in base.values()):
        raise InputError("expected an object of names and paths", path=path, field="base",
                         fix="re-save the checkpoint with this version")
    _known_keys(config, sorted(ModelConfig.__dataclass_fields__), "config.", path)
    _known_keys(base, BASE_KEYS, "base.", path)
    try:
        return ModelConfig.from_json(config), base
    except InputError as exc:
        key = (exc.field or "").removeprefix("model.")
        raise InputError(exc.what, path=path, field=f"config.{key}" if key else "config", fix=exc.fix) from exc
    except (TypeError, ValueError) as exc:
        raise InputError(f"a value has the wrong type ({' '.join(str(exc).split())[:200]})", path=path,
                         field="config", fix="re-save the checkpoint with this version") from exc


def _known_keys(record: dict[str, Any], known: Any, prefix: str, path: Path) -> None:
    """An InputError for the first key of `record` that is not `known`, with the closest known key."""
    from affectgpt.registry import unknown_name

    for key in record:
        if key not in known:
            error = unknown_name("key", str(key), list(known))
            fix = error.fix or ""
            if len(known) > 8 and "(did you mean" in fix:  # the hint alone, not the 30 ModelConfig fields
                fix = fix[fix.index("(did you mean") + 1:-1]
            raise InputError(error.what, path=path, field=f"{prefix}{key}", fix=f"{fix}; or remove the key")


def load_weights(model: Any, folder: str | Path) -> None:
    """Load our checkpoint's trainable weights into `model`; a mismatch names the keys, a damaged file or a
    non-finite weight names the file (and the tensor)."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise InputError("no model.safetensors in the checkpoint folder", path=folder, fix="check the path")
    tensors = read_safetensors(path)
    expected = model.trainable_state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    wrong = [k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}" for label, keys in
                           (("missing", missing), ("unexpected", unexpected), ("wrong shape", sorted(wrong))) if keys)
        raise InputError(f"the checkpoint does not fit this model ({detail})", path=path,
                         fix="load it with the config stored beside it (config.json)")
    check_finite(tensors, source=path)
    model.load_state_dict(tensors, strict=False)
