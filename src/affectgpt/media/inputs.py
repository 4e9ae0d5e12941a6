"""One road from a clip's files to the model's arrays: its preprocess cache, its face track, or the video itself.

`load_inputs(name, video=..., audio=..., faces=..., cache=..., visual_input=...)` is what feature extraction,
training and prediction call; it takes paths, so any caller (a manifest row, a folder of clips, an upload) uses it
the same way. The first source that applies wins:

1. the clip cache `<cache>/<name>.safetensors` (`affectgpt preprocess`, media/cache.py): its faces or frames and
   its audio clips (and its subtitle);
2. for face input, a face track .npy ([T, H, W, 3] uint8, the original openface_face layout) with an audio file or
   a video to take the audio from: 8 frames at the original's uniform indices, resized to 224x224 (bicubic) when
   needed, channel order kept as stored (the original's OpenFace files are BGR and the original fed them as they
   were); the audio from the audio file, else from the video's audio stream;
3. the video through load_clip (faces tracked only for face input), with the audio file if any.

`visual_of(clip, visual_input)` is the one place where a model's visual input picks faces or frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.errors import InputError

N_STEPS = 8  # frames and audio clips per clip
SIZE = 224
VISUAL_INPUTS = ("face", "frame")


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """What the model reads of one clip (eq=False: arrays do not compare as one truth value).

    Attributes:
        name: the clip name.
        visual: [8, 224, 224, 3] uint8 faces or frames (per visual_input), or None when not asked for.
        audio_clips: [8, 32000] float32 audio windows, or None when not asked for.
        subtitle: the subtitle text the source holds ("" when it holds none).
        source: the file the arrays came from (cache file, face track or video).
    """

    name: str
    visual: np.ndarray | None
    audio_clips: np.ndarray | None
    subtitle: str
    source: str


def check_visual_input(visual_input: str) -> None:
    if visual_input not in VISUAL_INPUTS:
        raise InputError(f"{visual_input!r} is not face or frame", field="visual_input", fix="choose face or frame")


def visual_of(clip: Any, visual_input: str) -> np.ndarray:
    """The clip's faces or frames, as the model's visual input asks; faces that were skipped are an error."""
    check_visual_input(visual_input)
    if visual_input == "frame":
        return clip.frames
    if "faces_skipped" in clip.flags:
        raise InputError("the clip has no faces (read with faces off)", path=clip.source,
                         fix="read (or preprocess) the clip again with faces, or use visual_input frame")
    return clip.faces


def load_inputs(name: str, *, video: str | Path | None = None, audio: str | Path | None = None,
                faces: str | Path | None = None, cache: str | Path | None = None, visual_input: str = "face",
                need_visual: bool = True, need_audio: bool = True) -> ModelInputs:
    """The model's inputs of clip `name` from the first source that applies (see the module docstring).

    Args:
        name: the clip name (its cache file is `<cache>/<name>.safetensors`).
        video, audio, faces: the clip's video, separate audio file and face-track .npy, each optional.
        cache: a clip cache folder tried first.
        visual_input: "face" or "frame".
        need_visual, need_audio: which arrays to produce (the other is None; faces are not tracked for nothing).

    Raises:
        InputError: no usable source, or an unreadable one; the message names the clip.
    """
    check_visual_input(visual_input)
    try:
        return _load(name, video, audio, faces, cache, visual_input, need_visual, need_audio)
    except InputError as exc:  # name the clip: the file alone may not say which one it is
        field = f"sample {name!r}" + (f" {exc.field}" if exc.field else "")
        raise InputError(exc.what, path=exc.path, field=field, fix=exc.fix) from exc


def _load(name: str, video: Any, audio: Any, faces: Any, cache: Any, visual_input: str, need_visual: bool,
          need_audio: bool) -> ModelInputs:
    from affectgpt.media.cache import cache_file, load_cached_clip

    if cache is not None and (file := cache_file(cache, name)).is_file():
        clip = load_cached_clip(file)
        visual = _to_model_size(visual_of(clip, visual_input)) if need_visual else None
        return ModelInputs(name, visual, clip.audio_clips if need_audio else None, clip.subtitle, str(file))
    if visual_input == "face" and faces is not None and (audio is not None or video is not None):
        visual = read_face_track(faces) if need_visual else None
        clips = None
        if need_audio:
            clips = read_audio_file(audio) if audio is not None else _video_audio(video)
        return ModelInputs(name, visual, clips, "", str(faces))
    if video is None:
        raise InputError("no media: no video, and not both a faces .npy and an audio file", field="media",
                         fix="give the sample a video (or faces + audio), or drop it")
    from affectgpt.media.clip import load_clip

    clip = load_clip(video, audio=audio, faces=visual_input == "face" and need_visual)
    visual = _to_model_size(visual_of(clip, visual_input)) if need_visual else None
    return ModelInputs(name, visual, clip.audio_clips if need_audio else None, clip.subtitle, str(video))


def _to_model_size(visual: np.ndarray) -> np.ndarray:
    if visual.shape[0] != N_STEPS or visual.shape[1:3] != (SIZE, SIZE):
        return _resample_frames(visual)
    return visual


def _video_audio(video: Any) -> np.ndarray:
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
    """An audio-only file -> the model's 8 clips [8, 32000] float32 (16 kHz mono, as load_clip cuts them)."""
    return decode_audio_file(path).clips


def decode_audio_file(path: str | Path, **options: Any) -> Any:
    """An audio-only file -> audio.ModelAudio: the whole 16 kHz mono waveform (`audio`) and its windows (`clips`);
    `options` go to audio.prepare_audio."""
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
    return prepare_audio(samples, rate, **options)
