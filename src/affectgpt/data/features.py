"""The feature cache: each sample's frozen-encoder features computed once, stored as `<out>/<name>.safetensors`.

Training with frozen encoders recomputes the same CLIP and HuBERT features every epoch; `extract_features`
computes them once. Each file holds `visual` [8, dv] and `audio` [8, da] float32, and metadata: the format, the
sample name, the encoder ids (`config._name_or_path` of each encoder's model), their widths, the dtype the
encoders ran in (`encoder_dtype`), `visual_input` (face/frame) and `hubert_normalization` ("sample": the file
never depends on which samples shared a batch; with an encoder set to "batch" each sample is encoded alone, which
is the same thing). Files are written atomically; an existing file made with the same encoders, dtype and visual
input is kept (a killed run resumes), one made otherwise is recomputed and reported as such, never reused
silently. Samples whose media cannot be read are listed in the report and in `<out>/failures.json`, never
replaced. Each sample's media is read through media/inputs.py (`load_inputs`: the preprocess cache, the face
track, or the video).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectgpt.data.sample import Sample
from affectgpt.errors import InputError
from affectgpt.io.atomic import write_bytes, write_text
from affectgpt.io.names import check_name

FEATURE_FORMAT = "affectgpt-features/1"
N_STEPS = 8  # frames and audio clips per sample
# The metadata an existing file must share with a new extraction to be kept.
SAME_RUN_KEYS = ("format", "visual_encoder", "audio_encoder", "visual_dim", "audio_dim", "encoder_dtype",
                 "visual_input", "hubert_normalization", "n_steps")


@dataclass
class FeatureReport:
    """What extract_features did: files written, skipped (already there), recomputed (an existing file had been
    made with other encoders, dtype or visual input; also in `written`), failures (name and reason)."""

    out_dir: str
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    recomputed: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)


# -- the cache -------------------------------------------------------------------------------------------------------
def feature_file(out_dir: str | Path, name: str) -> Path:
    """Where sample `name`'s features live in `out_dir`; InputError unless `name` is a plain file name."""
    return Path(out_dir) / f"{check_name(name, field='sample name')}.safetensors"


def encoder_id(encoder: Any) -> str:
    """An encoder's identity for the cache: its model's `config._name_or_path` (folder or hub id)."""
    model = getattr(encoder, "model", None)
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None)
    return str(name) if name else type(encoder).__name__


def encoder_dtype(encoder: Any) -> str:
    """The dtype an encoder computes in ("float32", "bfloat16", ...): that of its first parameter."""
    parameters = getattr(encoder, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    return str(first.dtype).removeprefix("torch.") if first is not None else "float32"


def extract_features(samples: Sequence[Sample], visual_encoder: Any, audio_encoder: Any, out_dir: str | Path, *,
                     visual_input: str = "face", batch_size: int = 4, media_cache: str | Path | None = None,
                     force: bool = False, on_progress: Callable[[int, int], None] | None = None) -> FeatureReport:
    """Write `<out_dir>/<name>.safetensors` (visual [8, dv], audio [8, da] float32) for every sample.

    Args:
        samples: the samples (unique names).
        visual_encoder, audio_encoder: model/encoders.py ClipVisualEncoder and HubertAudioEncoder (any module
            with their call signature and a `model.config`).
        out_dir: the cache folder (created).
        visual_input: "face" or "frame": which images the visual features are of.
        batch_size: samples per encoder call.
        media_cache: a preprocess cache folder tried first for each sample's media.
        force: recompute files that exist.
        on_progress: called with (samples done, samples to compute) after each batch.

    Returns:
        FeatureReport (also written, failures only, as `<out_dir>/failures.json`).
    """
    from affectgpt.data.manifests import check_unique

    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}", field="batch_size", fix="pass 1 or more")
    check_unique(samples)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = FeatureReport(str(out))
    metadata = {"format": FEATURE_FORMAT, "visual_encoder": encoder_id(visual_encoder),
                "audio_encoder": encoder_id(audio_encoder), "visual_dim": str(int(visual_encoder.dim)),
                "audio_dim": str(int(audio_encoder.dim)), "encoder_dtype": encoder_dtype(visual_encoder),
                "visual_input": visual_input, "hubert_normalization": "sample", "n_steps": str(N_STEPS)}
    todo = _to_compute(samples, out, metadata, force, report)
    per_sample_audio = getattr(audio_encoder, "normalization", "sample") != "sample"
    for start in range(0, len(todo), batch_size):
        loaded = [item for sample in todo[start:start + batch_size]
                  if (item := _media(sample, visual_input, media_cache, report)) is not None]
        if loaded:
            _encode_and_save(loaded, visual_encoder, audio_encoder, out, metadata, per_sample_audio, report)
        if on_progress:
            on_progress(min(start + batch_size, len(todo)), len(todo))
    write_text(out / "failures.json", json.dumps({"failures": report.failures}, indent=2, ensure_ascii=False))
    return report


def _to_compute(samples: Sequence[Sample], out: Path, metadata: dict[str, str], force: bool,
                report: FeatureReport) -> list[Sample]:
    """The samples without a file made the way `metadata` says; those with a file made otherwise are noted."""
    todo = []
    for sample in samples:
        if not force and feature_file(out, sample.name).is_file():
            try:
                existing = read_feature_metadata(out, sample.name)
            except InputError:
                existing = {}
            if _same_run(existing, metadata):
                report.skipped.append(sample.name)
                continue
            report.recomputed.append(sample.name)
        todo.append(sample)
    return todo


def _same_run(existing: dict[str, str], metadata: dict[str, str]) -> bool:
    for key in SAME_RUN_KEYS:
        same = same_encoder if key.endswith("_encoder") else str.__eq__
        if key not in existing or not same(existing[key], metadata[key]):
            return False
    return True


def _media(sample: Sample, visual_input: str, media_cache: str | Path | None,
           report: FeatureReport) -> tuple[Sample, np.ndarray, np.ndarray] | None:
    from affectgpt.media.inputs import load_inputs

    try:
        inputs = load_inputs(sample.name, video=sample.video, audio=sample.audio, faces=sample.faces,
                             cache=media_cache, visual_input=visual_input)
        return sample, inputs.visual, inputs.audio_clips
    except InputError as exc:
        report.failures.append({"name": sample.name, "reason": exc.message()})
    except Exception as exc:  # one odd file must not stop the extraction
        report.failures.append({"name": sample.name, "reason": f"{type(exc).__name__}: {exc}"})
    return None


def _encode_and_save(loaded: list[tuple[Sample, np.ndarray, np.ndarray]], visual_encoder: Any, audio_encoder: Any,
                     out: Path, metadata: dict[str, str], per_sample_audio: bool, report: FeatureReport) -> None:
    from safetensors.torch import save

    frames = torch.from_numpy(np.stack([item[1] for item in loaded]))
    clips = torch.from_numpy(np.stack([item[2] for item in loaded]).astype(np.float32, copy=False))
    with torch.no_grad():
        visual = visual_encoder(frames).float().cpu()
        if per_sample_audio:  # "batch" normalisation over one sample is per-sample normalisation
            audio = torch.cat([audio_encoder(clips[i:i + 1]) for i in range(len(loaded))]).float().cpu()
        else:
            audio = audio_encoder(clips).float().cpu()
    for row, (sample, _, _) in enumerate(loaded):
        tensors = {"visual": visual[row].contiguous(), "audio": audio[row].contiguous()}
        write_bytes(feature_file(out, sample.name), save(tensors, metadata={**metadata, "name": sample.name}))
        report.written.append(sample.name)


def read_feature_metadata(out_dir: str | Path, name: str) -> dict[str, str]:
    """The metadata of one cache file (InputError when missing or unreadable)."""
    from safetensors import safe_open

    path = feature_file(out_dir, name)
    if not path.is_file():
        raise InputError(f"no cached features for sample {name!r}", path=path,
                         fix="run the feature extraction (extract_features) for these samples first")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:
        raise InputError(f"not a readable feature file ({exc})", path=path,
                         fix="delete it and extract the features again") from exc


def load_features(out_dir: str | Path, name: str, *, visual_encoder: str | None = None,
                  audio_encoder: str | None = None, visual_input: str | None = None,
                  encoder_dtype: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(visual [8, dv], audio [8, da]) float32 of one sample.

    The optional arguments are checked against the file's metadata: an encoder id (a folder or hub id; equal
    when the strings, the resolved folders or the last path components agree), visual input or encoder dtype
    ("float32", "bfloat16", ...; files made before the dtype was recorded have none) other than the file's is an
    InputError, so features of another encoder or precision are never used silently.
    """
    from safetensors import safe_open

    path = feature_file(out_dir, name)
    meta = read_feature_metadata(out_dir, name)
    if meta.get("format") != FEATURE_FORMAT:
        raise InputError(f"unknown feature file format {meta.get('format')!r}", path=path, field="format",
                         fix="extract the features again with this version")
    for key, wanted in (("visual_encoder", visual_encoder), ("audio_encoder", audio_encoder)):
        if wanted is not None and not same_encoder(meta.get(key, ""), str(wanted)):
            raise InputError(f"features of sample {name!r} were made with {meta.get(key)!r}, not {wanted!r}",
                             path=path, field=key, fix="extract the features again into another folder")
    if visual_input is not None and meta.get("visual_input") != visual_input:
        raise InputError(f"features of sample {name!r} are of {meta.get('visual_input')} images, not {visual_input}",
                         path=path, field="visual_input", fix="extract features with the model's visual input")
    if encoder_dtype is not None and meta.get("encoder_dtype") != encoder_dtype:
        made = meta.get("encoder_dtype", "an unrecorded dtype")
        raise InputError(f"features of sample {name!r} were computed in {made}, not {encoder_dtype}", path=path,
                         field="encoder_dtype",
                         fix="extract the features again (they are recomputed in the encoders' dtype)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            visual, audio = handle.get_tensor("visual"), handle.get_tensor("audio")
    except Exception as exc:
        raise InputError(f"not a readable feature file ({exc})", path=path,
                         fix="delete it and extract the features again") from exc
    return visual, audio


def same_encoder(a: str, b: str) -> bool:
    """Two encoder ids name one model: equal strings, the same resolved folder, or the same last component."""
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return bool(pa.name) and pa.name == pb.name
