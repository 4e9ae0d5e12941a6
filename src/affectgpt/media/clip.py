"""load_clip(): one video file (+ optional audio file and subtitle) -> a Clip holding exactly the model's inputs.

Wiring only: decode.py opens and demuxes the file(s) once and picks the frames, faces.py crops the main face
from the source-resolution frames, audio.py turns the decoded samples into 16 kHz mono windows. Each step is
timed. Problems that still leave a usable clip are flags, never silent substitutions:

| flag | meaning |
|---|---|
| `no_audio` | no audio stream (or it decoded to nothing): `audio` is 2 s of zeros, `audio_clips` zeros |
| `audio_padded` | the audio was shorter than one window and was zero-padded (also set with `no_audio`) |
| `no_face` | no face in any frame: `faces` holds the frames' centre squares (faces.py's fallback) |
| `faces_skipped` | `faces=False`: `faces` is all zeros, so a face-variant model cannot silently use frames |
| `short_video` | fewer frames than `n_frames`: the last frame repeats, as in the original |
| `rotated` | the display matrix / rotate tag turned the frames |
| `variable_frame_rate` | uneven frame timestamps: frames were chosen by time (sampling.py) |
| `downscaled` | the source frames were larger than decode.MAX_SIDE and were capped before face tracking |
| `decode_errors` | FFmpeg rejected some packets; they were skipped |
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.errors import InputError
from affectgpt.media import decode
from affectgpt.media.audio import prepare_audio
from affectgpt.media.sampling import window_length


@dataclass(frozen=True, eq=False)
class Clip:
    """Everything AffectGPT reads from one clip (eq=False: arrays do not compare as one truth value).

    Attributes:
        name: the video file's stem.
        source: the video path.
        frames: [n_frames, size, size, 3] uint8 RGB, display orientation.
        faces: [n_frames, size, size, 3] uint8 RGB face crops (zeros with flag faces_skipped).
        audio: [n_samples] float32 mono 16 kHz, zero-padded to >= one window (2 s).
        audio_clips: [n_audio_clips, 32000] float32, the windows of `audio` the model encodes.
        subtitle: the subtitle text ("" when none).
        flags: see the module docstring.
        timings: seconds spent in "decode" (open, demux, video), "faces", "audio", and "total".
        frame_times: timestamp of each sampled frame, seconds after the video's first frame.
        duration: the video stream's duration in seconds.
        face_detected: per sampled frame, whether the face track was found in it (not interpolated or held);
            () for a clip read back from a cache, all False without faces.
    """

    name: str
    source: str
    frames: np.ndarray
    faces: np.ndarray
    audio: np.ndarray
    audio_clips: np.ndarray
    subtitle: str
    flags: frozenset[str]
    timings: dict[str, float]
    frame_times: tuple[float, ...]
    duration: float
    face_detected: tuple[bool, ...] = ()


def load_clip(video: str | Path, audio: str | Path | None = None, subtitle: str | None = None, n_frames: int = 8,
              *, size: int = 224, resize: str = "stretch", faces: bool = True, n_audio_clips: int = 8,
              clip_seconds: float = 2.0, sample_rate: int = 16000, face_detector: Any = None) -> Clip:
    """Read one clip into the model's inputs (see the module docstring for the flags).

    Args:
        video: the video file (mp4, mkv, avi, webm, mov...).
        audio: a separate audio file to use instead of the video's own audio stream.
        subtitle: the subtitle text, used as is (media/subtitles.py reads CSVs or transcribes); None -> "".
        n_frames: frames to sample, by the original's uniform rule applied in time (sampling.py).
        size: side of the square frames and face crops.
        resize: "stretch" (the original) or "pad" (keep the aspect ratio, centre on black).
        faces: crop the main face with faces.track_faces; False gives zeros and the flag faces_skipped.
        n_audio_clips: audio windows to cut.
        clip_seconds: length of each window.
        sample_rate: the model's audio rate.
        face_detector: passed to faces.track_faces (a FaceDetector, a name, or None for its default).

    Returns:
        Clip.

    Raises:
        InputError: unreadable, truncated or frameless input, or bad arguments.
    """
    _check_arguments(subtitle, n_frames, size, n_audio_clips, sample_rate, clip_seconds)
    marks = [time.perf_counter()]
    with decode.open_media(video, audio) as media:
        video_part = decode.read_video(media, n_frames=n_frames, size=size, resize=resize, keep_source=faces)
        marks.append(time.perf_counter())
        face_crops, face_flags, detected = _faces(video_part, faces, size, face_detector)
        marks.append(time.perf_counter())
        decoded = decode.read_audio(media)
    samples, rate = (None, 0) if decoded is None else (decoded.samples, decoded.rate)
    model_audio = prepare_audio(samples, rate, sample_rate=sample_rate, n_clips=n_audio_clips,
                                clip_seconds=clip_seconds)
    marks.append(time.perf_counter())
    timings = {"decode": marks[1] - marks[0], "faces": marks[2] - marks[1], "audio": marks[3] - marks[2],
               "total": marks[3] - marks[0]}
    flags = set(video_part.flags) | face_flags
    flags |= {"no_audio"} if decoded is None else set(decoded.flags)
    flags |= {"audio_padded"} if model_audio.padded else set()
    return Clip(name=Path(video).stem, source=str(video), frames=video_part.frames, faces=face_crops,
                audio=model_audio.audio, audio_clips=model_audio.clips, subtitle=subtitle or "",
                flags=frozenset(flags), timings=timings, frame_times=video_part.times, duration=video_part.duration,
                face_detected=detected)


def _faces(video_part: decode.VideoSamples, faces: bool, size: int,
           detector: Any) -> tuple[np.ndarray, set[str], tuple[bool, ...]]:
    """Face crops, their flag and the per-frame detections: the main face track, or zeros when faces are skipped."""
    if not faces or video_part.source is None:
        return np.zeros_like(video_part.frames), {"faces_skipped"}, (False,) * len(video_part.frames)
    from affectgpt.media.faces import track_faces

    track = track_faces(video_part.source, size=size, detector=detector)
    return track.crops, ({"no_face"} if track.fallback else set()), tuple(bool(v) for v in track.detected)


def _check_arguments(subtitle: object, n_frames: int, size: int, n_audio_clips: int, sample_rate: int,
                     clip_seconds: float) -> None:
    if subtitle is not None and not isinstance(subtitle, str):
        raise InputError(f"the subtitle must be text, got {type(subtitle).__name__}", field="subtitle",
                         fix="pass the text itself; media/subtitles.py reads subtitle CSVs")
    for name, value in (("n_frames", n_frames), ("size", size), ("n_audio_clips", n_audio_clips),
                        ("sample_rate", sample_rate)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive whole number, got {value!r}", field=name,
                             fix=f"pass {name} >= 1")
    try:
        window_length(sample_rate, clip_seconds)
    except ValueError as exc:
        raise InputError(str(exc), field="clip_seconds", fix="use a window of a whole number of samples") from exc
