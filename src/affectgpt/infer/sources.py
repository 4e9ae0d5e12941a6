"""Where a checkpoint and its model come from: `--model` -> a checkpoint folder, `base.init` -> its loader.

`resolve_checkpoint(text)` is the one reading of `describe --model` and `predict --model`: our checkpoint folder
(it holds config.json), else a training run folder (`affectgpt train --output RUN`: its latest complete
`checkpoint_<step>/`), else the name of known weights installed by `affectgpt model get NAME` (model/known.py),
else an InputError naming the value and the fix.

MODEL_SOURCES is a table, so `load_model` (infer/describe.py) has no special case per kind of model:
- "pretrained" (the default, also for checkpoints that do not say): the base LLM, tokenizer and encoders loaded
  from the folders config.json names (model/build.py);
- "random": the tiny recipe's random-init model, rebuilt from its seed and the tokenizer saved with the
  checkpoint (tiny/random_init.py).
Each entry is a function (cfg, base, folder, dtype) -> (model, tokenizer); the caller loads the trained weights.

The table lives in infer because only inference loads a checkpoint as a whole model (training resumes into the
model its recipe built, train/build.py, and reads only the weights and state): infer sits above tiny and model,
so both entries are plain imports without crossing a layer. Entries are "module:function" strings, resolved on
use, so a pretrained load never imports the tiny recipe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.registry import Registry

MODEL_SOURCES = Registry("base.init", {
    "pretrained": "affectgpt.infer.sources:pretrained",
    "random": "affectgpt.tiny.random_init:from_checkpoint",
})
DEFAULT = "pretrained"


RUN_CHECKPOINT = re.compile(r"^checkpoint_(\d{6,})$")
"""A checkpoint folder inside a training run (train/state.py writes `checkpoint_<step:06d>/`)."""
CHECKPOINT_FILES = ("config.json", "model.safetensors")
"""What a checkpoint folder needs for inference (model/checkpoint.py: CONFIG, WEIGHTS)."""


def resolve_checkpoint(text: str | Path, *, note: Callable[[str], None] | None = None) -> Path:
    """The checkpoint folder `--model TEXT` means (see the module docstring). When it is not TEXT itself (the
    latest checkpoint of a run, an installed known name), `note` is told which folder is used."""
    path = Path(text)
    if path.is_dir():
        if (path / CHECKPOINT_FILES[0]).is_file():
            return path
        latest = latest_checkpoint(path)
        if latest is not None:
            if note:
                note(f"using {latest} (the latest complete checkpoint of the run {path})")
            return latest
        raise InputError("not a checkpoint folder (no config.json) nor a training run folder (no complete "
                         "checkpoint_<step>/ inside)", path=path, field="--model",
                         fix="pass our checkpoint folder, a run folder of `affectgpt train`, or known weights "
                             "installed with `affectgpt model get NAME`")
    if path.exists():
        raise InputError("is a file, not a checkpoint folder", path=path, field="--model",
                         fix="pass the folder that holds config.json and model.safetensors")
    return _known(str(text), note)


def latest_checkpoint(run: Path) -> Path | None:
    """The complete `checkpoint_<step>/` of a training run folder with the highest step (one being written has
    a temporary name; one without config.json or weights is skipped), or None."""
    found = [(int(m.group(1)), p) for p in run.iterdir() if (m := RUN_CHECKPOINT.match(p.name)) and p.is_dir()
             and all((p / name).is_file() for name in CHECKPOINT_FILES)]
    return max(found)[1] if found else None


def _known(text: str, note: Callable[[str], None] | None) -> Path:
    """The installed folder of the known weights named `text`; an InputError with the fix otherwise."""
    import difflib

    try:  # model/known.py: the table of published weights and where `affectgpt model get` puts them
        from affectgpt.model import known
    except ImportError:
        known = None
    names = _known_names(known)
    installed = known.installed_path(text) if known is not None and text in names else None
    if installed is not None:
        if note:
            note(f"using {installed} (the installed weights {text})")
        return Path(installed)
    if text in names:
        raise InputError(f"the known weights {text!r} are not installed", field="--model",
                         fix=f"run `affectgpt model get {text}` first")
    fix = "pass our checkpoint folder or a training run folder"
    if names:
        fix += f", or known weights after `affectgpt model get NAME` (known: {', '.join(names)})"
        hint = difflib.get_close_matches(text, names, n=1)
        if hint:
            fix += f"; did you mean {hint[0]!r}?"
    raise InputError("no such folder, and no known weights are named so", path=text, field="--model", fix=fix)


def _known_names(known: Any) -> list[str]:
    """The names model/known.py lists (its `names()`, or the keys of its KNOWN table); none without it."""
    if known is None:
        return []
    if callable(getattr(known, "names", None)):
        return sorted(known.names())
    return sorted(getattr(known, "KNOWN", {}))


def load_source(cfg: Any, base: dict[str, Any], folder: str | Path, dtype: Any = None, *,
                allow_download: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) of a checkpoint, built as its `base.init` says; a pretrained model's base models may
    come from the hub only with `allow_download`."""
    source = model_source(base, folder)
    if source is pretrained:
        return pretrained(cfg, base, folder, dtype, allow_download=allow_download)
    return source(cfg, base, folder, dtype)


def pretrained(cfg: Any, base: dict[str, Any], folder: str | Path, dtype: Any = None, *,
               allow_download: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) from the base-model folders cfg names, in `dtype` (model/build.py: build_model). A base
    model named by a hub id that is neither a local folder nor in the hub cache is refused unless
    `allow_download`."""
    from affectgpt.model.build import build_model

    if not allow_download:
        for field, value in _base_models(cfg):
            if _hub_id(value) and not Path(value).exists() and not _in_hub_cache(value):
                raise InputError(f"the base model {value!r} is not a local folder and has not been downloaded",
                                 path=Path(folder) / "config.json", field=f"config.{field}",
                                 fix="pass --allow-download to fetch it from the Hugging Face hub, install it "
                                     "with `affectgpt model get NAME`, or point at a local copy with "
                                     f"--{field.replace('_', '-')} DIR")
    return build_model(cfg, dtype=dtype, local_files_only=not allow_download)


def _base_models(cfg: Any) -> list[tuple[str, str]]:
    """(field, value) of the base models the model is built from (the encoders only for the modalities used)."""
    used = set(cfg.modalities)
    fields = ["llm"] + (["visual_encoder"] if {"video", "multi"} & used else []) + \
        (["audio_encoder"] if {"audio", "multi"} & used else [])
    return [(f, str(getattr(cfg, f))) for f in fields if getattr(cfg, f, None)]


def _hub_id(value: str) -> bool:
    """Whether `value` reads as a hub id ("name" or "org/name") rather than a path (absolute, ./, ~, deeper)."""
    return not (Path(value).is_absolute() or value.startswith((".", "~")) or value.count("/") > 1 or "\\" in value)


def _in_hub_cache(value: str) -> bool:
    """Whether `value` is a hub id whose config.json is already in the local hub cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.utils import HFValidationError
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(value, "config.json"), str)
    except (HFValidationError, ValueError):
        return False


def model_source(base: dict[str, Any], folder: str | Path) -> Any:
    """The loader of a checkpoint whose config.json has this base record; an unknown `init` is an InputError
    naming the config.json (with the closest known value)."""
    from affectgpt.model.checkpoint import CONFIG

    try:
        return MODEL_SOURCES.get(str(base.get("init", DEFAULT)))
    except InputError as exc:
        raise InputError(exc.what, path=Path(folder) / CONFIG, field=exc.field, fix=exc.fix) from exc
