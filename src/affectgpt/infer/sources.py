"""Where a checkpoint's model comes from: its config.json's `base.init` -> a loader of (model, tokenizer).

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

from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.registry import Registry

MODEL_SOURCES = Registry("base.init", {
    "pretrained": "affectgpt.infer.sources:pretrained",
    "random": "affectgpt.tiny.random_init:from_checkpoint",
})
DEFAULT = "pretrained"


def pretrained(cfg: Any, base: dict[str, Any], folder: str | Path, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) from the base-model folders cfg names, in `dtype` (model/build.py: build_model)."""
    from affectgpt.model.build import build_model

    return build_model(cfg, dtype=dtype)


def model_source(base: dict[str, Any], folder: str | Path) -> Any:
    """The loader of a checkpoint whose config.json has this base record; an unknown `init` is an InputError
    naming the config.json (with the closest known value)."""
    from affectgpt.model.checkpoint import CONFIG

    try:
        return MODEL_SOURCES.get(str(base.get("init", DEFAULT)))
    except InputError as exc:
        raise InputError(exc.what, path=Path(folder) / CONFIG, field=exc.field, fix=exc.fix) from exc
