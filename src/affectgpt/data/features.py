"""The feature cache: each sample's frozen-encoder features computed once, stored as `<out>/<name>.safetensors`.

Training with frozen encoders recomputes the same CLIP and HuBERT features every epoch; `extract_features`
computes them once. Each file holds `visual` [8, dv] and `audio` [8, da] float32, and metadata: the format, the
sample name, the encoder ids (`config._name_or_path` of each encoder's model), their widths, `visual_input`
(face/frame) and `hubert_normalization` ("sample": the file never depends on which samples shared a batch;
with an encoder set to "batch" each sample is encoded alone, which is the same thing). Files are written
atomically, existing files are skipped (a killed run resumes), and samples whose media cannot be read are listed
in the report and in `<out>/failures.json`, never replaced.

Where a sample's media comes from (`load_media`), first match wins:

1. a preprocess cache file `<media_cache>/<name>.safetensors` (`affectgpt preprocess`, media/batch.py): its
   faces or frames and its audio clips;
2. for face input, the sample's faces .npy ([T, H, W, 3] uint8, the original openface_face layout): 8 frames at
   the original's uniform indices, resized to 224x224 (bicubic) when needed, channel order kept as stored (the
   original's OpenFace files are BGR and the original fed them as they were); the audio from the sample's audio
   file, else from its video's audio stream;
3. the video through media.load_clip (faces tracked for face input), with the sample's audio file if any.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectgpt.data.sample import Sample
from affectgpt.errors import InputError
from affectgpt.io.atomic import write_bytes, write_text

FEATURE_FORMAT = "affectgpt-features/1"
N_STEPS = 8  # frames and audio clips per sample
SIZE = 224


@dataclass
class FeatureReport:
    """What extract_features did: files written, skipped (already there), failures (name and reason)."""

    out_dir: str
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)


# -- media ---------------------------------------------------------------------------------------------------------
def load_media(sample: Sample, *, visual_input: str = "face", media_cache: str | Path | None = None,
               need_visual: bool = True, need_audio: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(visual [8, 224, 224, 3] uint8, audio_clips [8, 32000] float32) of one sample (module docstring, order).

    Raises:
        InputError: no usable source, or an unreadable one (the message names the sample).
    """
    if visual_input not in ("face", "frame"):
        raise InputError(f"{visual_input!r} is not face or frame", field="visual_input", fix="choose face or frame")
    try:
        return _load_media(sample, visual_input, media_cache, need_visual, need_audio)
    except InputError as exc:  # name the sample: the file alone may not say which one it is
        field = f"sample {sample.name!r}" + (f" {exc.field}" if exc.field else "")
        raise InputError(exc.what, path=exc.path, field=field, fix=exc.fix) from exc


def _load_media(sample: Sample, visual_input: str, media_cache: str | Path | None, need_visual: bool,
                need_audio: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    if media_cache is not None and (file := Path(media_cache) / f"{sample.name}.safetensors").is_file():
        from affectgpt.media.batch import load_cached_clip

        clip = load_cached_clip(file)
        if visual_input == "face" and need_visual and "faces_skipped" in clip.flags:
            raise InputError("the preprocess cache has no faces (made with faces off)", path=file,
                             fix="preprocess again with faces, or train with visual_input frame")
        visual = clip.faces if visual_input == "face" else clip.frames
        return _checked_visual(visual, file) if need_visual else None, clip.audio_clips if need_audio else None
    if visual_input == "face" and sample.faces is not None and (sample.audio is not None or sample.video is not None):
        visual = read_face_track(sample.faces) if need_visual else None
        audio = None
        if need_audio:
            audio = read_audio_file(sample.audio) if sample.audio is not None else _video_audio(sample.video)
        return visual, audio
    if sample.video is None:
        raise InputError("no media: no video, and not both a faces .npy and an audio file", field="media",
                         fix="give the sample a video (or faces + audio), or drop it")
    from affectgpt.media import load_clip

    clip = load_clip(sample.video, audio=sample.audio, faces=visual_input == "face" and need_visual)
    visual = clip.faces if visual_input == "face" else clip.frames
    return _checked_visual(visual, sample.video) if need_visual else None, clip.audio_clips if need_audio else None


def _checked_visual(visual: np.ndarray, source: Any) -> np.ndarray:
    if visual.shape[0] != N_STEPS or visual.shape[1:3] != (SIZE, SIZE):
        return _resample_frames(visual)
    return visual


def _video_audio(video: Path | None) -> np.ndarray:
    from affectgpt.media import decode
    from affectgpt.media.audio import prepare_audio

    with decode.open_media(video) as media:
        decoded = decode.read_audio(media)
    samples, rate = (None, 0) if decoded is None else (decoded.samples, decoded.rate)
    return prepare_audio(samples, rate).clips


def read_face_track(path: str | Path) -> np.ndarray:
    """A face-track .npy [T, H, W, 3] uint8 -> [8, 224, 224, 3]: the original's uniform indices, bicubic resize."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"not a readable .npy face track ({exc})", path=path, fix="extract the faces again") from exc
    if array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] < 1:
        raise InputError(f"face track has shape {list(array.shape)}", path=path, fix="store [T, H, W, 3] uint8")
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    return _resample_frames(array)


def _resample_frames(array: np.ndarray) -> np.ndarray:
    from affectgpt.media.sampling import frame_indices

    picked = array[frame_indices(array.shape[0], N_STEPS)]
    if picked.shape[1:3] == (SIZE, SIZE):
        return np.ascontiguousarray(picked)
    import cv2

    return np.stack([cv2.resize(frame, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC) for frame in picked])


def read_audio_file(path: str | Path) -> np.ndarray:
    """An audio-only file -> the model's 8 clips [8, 32000] float32 (16 kHz mono, as media.load_clip cuts them)."""
    import av

    from affectgpt.media.audio import prepare_audio

    path = Path(path)
    if not path.is_file():
        raise InputError("audio file not found", path=path, fix="check the path")
    chunks, rate = [], 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError("no audio stream", path=path, fix="pass an audio file")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp")  # float planar, same layout and rate
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    chunks.append(converted.to_ndarray().astype(np.float32, copy=False))
                    rate = rate or converted.sample_rate
    except InputError:
        raise
    except Exception as exc:  # PyAV's errors for corrupt files
        raise InputError(f"cannot decode the audio ({exc})", path=path, fix="convert it to 16 kHz wav") from exc
    if chunks and len({c.shape[0] for c in chunks}) > 1:
        chunks = [c.mean(axis=0, keepdims=True) for c in chunks]
    samples = np.concatenate(chunks, axis=1) if chunks else None
    return prepare_audio(samples, rate).clips


# -- the cache -------------------------------------------------------------------------------------------------------
def feature_file(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / f"{name}.safetensors"


def encoder_id(encoder: Any) -> str:
    """An encoder's identity for the cache: its model's `config._name_or_path` (folder or hub id)."""
    model = getattr(encoder, "model", None)
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None)
    return str(name) if name else type(encoder).__name__


def extract_features(samples: Sequence[Sample], visual_encoder: Any, audio_encoder: Any, out_dir: str | Path, *,
                     visual_input: str = "face", batch_size: int = 4, progress: bool = False,
                     media_cache: str | Path | None = None, force: bool = False) -> FeatureReport:
    """Write `<out_dir>/<name>.safetensors` (visual [8, dv], audio [8, da] float32) for every sample.

    Args:
        samples: the samples (unique names).
        visual_encoder, audio_encoder: model/encoders.py ClipVisualEncoder and HubertAudioEncoder (any module
            with their call signature and a `model.config`).
        out_dir: the cache folder (created).
        visual_input: "face" or "frame": which images the visual features are of.
        batch_size: samples per encoder call.
        progress: print one line per batch to stderr.
        media_cache: a preprocess cache folder tried first for each sample's media.
        force: recompute files that exist.

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
    todo = []
    for sample in samples:
        if not force and feature_file(out, sample.name).is_file():
            report.skipped.append(sample.name)
        else:
            todo.append(sample)
    metadata = {"format": FEATURE_FORMAT, "visual_encoder": encoder_id(visual_encoder),
                "audio_encoder": encoder_id(audio_encoder), "visual_dim": str(int(visual_encoder.dim)),
                "audio_dim": str(int(audio_encoder.dim)), "visual_input": visual_input,
                "hubert_normalization": "sample", "n_steps": str(N_STEPS)}
    per_sample_audio = getattr(audio_encoder, "normalization", "sample") != "sample"
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        loaded = []
        for sample in chunk:
            try:
                visual, audio = load_media(sample, visual_input=visual_input, media_cache=media_cache)
                loaded.append((sample, visual, audio))
            except InputError as exc:
                report.failures.append({"name": sample.name, "reason": exc.message()})
            except Exception as exc:  # one odd file must not stop the extraction
                report.failures.append({"name": sample.name, "reason": f"{type(exc).__name__}: {exc}"})
        if loaded:
            _encode_and_save(loaded, visual_encoder, audio_encoder, out, metadata, per_sample_audio, report)
        if progress:
            done = min(start + batch_size, len(todo))
            print(f"features: {done}/{len(todo)} ({len(report.failures)} failed, {len(report.skipped)} skipped)",
                  file=sys.stderr, flush=True)
    write_text(out / "failures.json", json.dumps({"failures": report.failures}, indent=2, ensure_ascii=False))
    return report


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
                  audio_encoder: str | None = None,
                  visual_input: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(visual [8, dv], audio [8, da]) float32 of one sample.

    The optional arguments are checked against the file's metadata: an encoder id (a folder or hub id; equal
    when the strings, the resolved folders or the last path components agree) or visual input other than the
    file's is an InputError, so features of another encoder are never used silently.
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
    try:
        with safe_open(str(path), framework="pt") as handle:
            visual, audio = handle.get_tensor("visual"), handle.get_tensor("audio")
    except Exception as exc:
        raise InputError(f"not a readable feature file ({exc})", path=path,
                         fix="delete it and extract the features again") from exc
    return visual, audio


def same_encoder(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return bool(pa.name) and pa.name == pb.name
