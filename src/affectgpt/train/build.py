"""What a run trains, built from its TrainConfig: the model (pretrained or random), its tokenizer and the dataset.

`prepare(cfg, output)` reads or generates the samples, builds the model, sets the dtypes of frozen and trained
weights, extracts the feature cache first when cfg.data.extract_features asks, and gives the TrainParts the loop
(train/loop.py) runs on. With an accelerator, files (a synthetic set, features) are written by the main process
only while the others wait, then read by all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from affectgpt.errors import InputError
from affectgpt.train.config import TrainConfig


@dataclass
class TrainParts:
    """What a run trains: the model, its tokenizer, the dataset (len, [i] -> item dict, optional set_epoch),
    `collate(items) -> Batch`, and the base-model locations recorded in checkpoints."""

    model: Any
    tokenizer: Any
    dataset: Any
    collate: Callable[[list[dict[str, Any]]], Any]
    base: dict[str, str] = field(default_factory=dict)


def prepare(cfg: TrainConfig, output: Path, accelerator: Any = None, *,
            on_note: Callable[[str], None] | None = None) -> TrainParts:
    """Model, tokenizer and dataset as cfg says (data read or generated; model pretrained or random; features
    extracted first when cfg.data.extract_features). With an accelerator, files (a synthetic set, features) are
    written by the main process only while the others wait, then read by all. `on_note` hears one-line notices
    (samples skipped for unreadable media)."""
    from affectgpt.data.collate import collate_batch
    from affectgpt.data.dataset import TrainingDataset

    samples, features_dir = _main_then_rest(accelerator, lambda: read_samples(cfg, output),
                                            lambda: read_samples(cfg, output, generate=False))
    model_cfg = cfg.model_config
    if cfg.model.init == "random":
        from affectgpt.tiny.recipe import build_random_model

        model, tokenizer, base = build_random_model(model_cfg, samples, output, seed=cfg.seed)
    else:
        from affectgpt.model.build import build_model

        model, tokenizer = build_model(model_cfg, dtype=getattr(torch, cfg.model.base_dtype))
        base = {"llm": model_cfg.llm, "visual_encoder": model_cfg.visual_encoder,
                "audio_encoder": model_cfg.audio_encoder}
    set_dtypes(model, getattr(torch, cfg.model.base_dtype))
    needs_media = set(model.cfg.modalities) != {"text"}
    if cfg.data.extract_features and needs_media:
        features_dir = features_dir or output / "features"
        samples = usable_samples(samples, model.cfg.visual_input, output, on_note=on_note)
        _main_then_rest(accelerator, lambda: extract_for_training(samples, model, features_dir), lambda: None)
    elif features_dir is None and needs_media:
        samples = usable_samples(samples, model.cfg.visual_input, output, on_note=on_note)
    dataset = TrainingDataset(samples, tokenizer, model.cfg, task=cfg.data.task, features_dir=features_dir,
                              seed=cfg.seed, max_length=model.cfg.max_length)
    return TrainParts(model, tokenizer, dataset, partial(collate_batch, pad_id=tokenizer.pad_token_id), base)


def set_dtypes(model: Any, base: torch.dtype) -> None:
    """Frozen weights in `base`, trained weights in float32 (the AdamW master weights), in place."""
    for param in model.parameters():
        wanted = torch.float32 if param.requires_grad else base
        if param.is_floating_point() and param.dtype != wanted:
            param.data = param.data.to(wanted)


def _main_then_rest(accelerator: Any, main: Callable[[], Any], rest: Callable[[], Any]) -> Any:
    """`main()` on the main process (or without an accelerator); the others wait for it, then run `rest()`."""
    if accelerator is None:
        return main()
    result = main() if accelerator.is_main_process else None
    accelerator.wait_for_everyone()
    return result if accelerator.is_main_process else rest()


def extract_for_training(samples: list[Any], model: Any, features_dir: Path) -> None:
    """The feature cache of `samples` with the model's frozen encoders (files already there are kept)."""
    from affectgpt.data.features import extract_features

    if model.visual_encoder is None or model.audio_encoder is None:
        raise InputError("data.extract_features needs the model's visual and audio encoders", field="data",
                         fix="give the model its encoders (local folders, or `random` with init random), or "
                             "extract features beforehand (affectgpt features extract) and set data.features_dir")
    report = extract_features(samples, model.visual_encoder, model.audio_encoder, features_dir,
                              visual_input=model.cfg.visual_input)
    if report.failures:
        shown = "; ".join(f"{f['name']}: {f['reason']}" for f in report.failures[:3])
        raise InputError(f"feature extraction failed for {len(report.failures)} samples ({shown})",
                         path=Path(features_dir) / "failures.json", field="data.extract_features",
                         fix="fix or drop those samples")


def usable_samples(samples: list[Any], visual_input: str, output: Path, *,
                   on_note: Callable[[str], None] | None = None) -> list[Any]:
    """Samples whose media can be read; the others are counted (a notice to `on_note`), listed in
    <output>/skipped_samples.json and never replaced by another sample. No usable sample at all is an error."""
    from affectgpt.data.manifests import check_media
    from affectgpt.io.atomic import write_text

    usable, problems = check_media(samples, visual_input=visual_input)
    if problems:
        write_text(output / "skipped_samples.json",
                   json.dumps([{"name": n, "reason": r} for n, r in problems], indent=2, ensure_ascii=False))
        if on_note is not None:
            on_note(f"skipped {len(problems)} of {len(samples)} samples whose media cannot be read "
                    f"(listed in {output / 'skipped_samples.json'})")
    if not usable:
        raise InputError("no sample has readable media", path=output / "skipped_samples.json", field="data",
                         fix="check the media paths of the manifest, or extract features first")
    return usable


def read_samples(cfg: TrainConfig, output: Path, *, generate: bool = True) -> tuple[list[Any], Path | None]:
    """The samples and feature folder of cfg.data (a synthetic set is generated into <output>/data, or only read
    back from there when `generate` is False)."""
    from affectgpt.data import manifests

    data = cfg.data
    features = Path(data.features_dir) if data.features_dir else None
    if data.manifest is not None:
        return manifests.read_manifest(data.manifest), features
    if data.mercaptionplus is not None:
        return manifests.read_mercaptionplus(data.mercaptionplus), features
    from affectgpt.tiny.clips import make_synthetic_dataset

    made = make_synthetic_dataset(output / "data", data.synthetic.n, seed=data.synthetic.seed) if generate \
        else output / "data" / "manifest.jsonl"
    return manifests.read_manifest(made), features
