"""A clip's dense signals for speaker detection: frame times, the mouth crops and their motion, the 16 kHz audio.

`read_signals(video, audio)` decodes the video stream at up to `fps` frames a second (every frame of a 25 fps clip;
faster streams are thinned by time) at a short side of SHORT_SIDE pixels, and the audio as 16 kHz mono
(media.decode opens and demuxes, so a bad file is the same InputError as everywhere else). Then:
- **face**: media.faces tracks the main face on every `stride`-th frame (about DETECT_FPS a second; the Haar
  detector costs 20-35 ms a frame), and the box is interpolated linearly to the frames in between;
- **mouth**: the lower part of the box, centred (MOUTH: x 20-80 %, y 60-100 % of the detector's box), cut from
  the grey frame and resized to MOUTH_SIZE;
- **motion**: Farneback optical flow between consecutive mouth crops, minus its mean over the crop (so the
  head's own movement and the box's jitter cancel), as the RMS in pixels per frame: lips opening and closing
  move parts of the crop against each other; a still or frozen face gives about 0.02 px.
The display rotation is not applied (a rotated phone clip turns the face; the Haar detector then misses it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from affectgpt.errors import InputError
from affectgpt.extras import require

SHORT_SIDE = 360
DETECT_FPS = 5.0
MOUTH = (0.2, 0.6, 0.8, 1.0)  # x0, y0, x1, y1 as fractions of the face box
MOUTH_SIZE = (48, 32)  # width, height
RATE = 16000


@dataclass(frozen=True)
class ClipSignals:
    """Attributes:
        times: [T] seconds of each kept frame after the first.
        fps: the kept frames' rate (frames / second).
        mouths: [T, h, w] uint8 grey mouth crops (zeros without a face).
        motion: [T] mouth motion in pixels per frame (zeros without a face).
        face_found: the main face was found in some frame.
        face_share: the share of the detector's frames where it was found.
        audio: [n] float32 mono 16 kHz (empty without an audio stream).
        timings: seconds in "decode", "faces", "motion".
    """

    times: np.ndarray
    fps: float
    mouths: np.ndarray
    motion: np.ndarray
    face_found: bool
    face_share: float
    audio: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


def read_signals(video, audio=None, *, fps: float = 25.0, detector=None) -> ClipSignals:
    """Decode `video` (+ a separate `audio` file) densely and measure the mouth (see the module docstring)."""
    import time

    from affectgpt.media import decode
    from affectgpt.media.audio import resample, to_mono

    started = time.perf_counter()
    with decode.open_media(video, audio) as media:
        grey, rgb, times = _frames(media, fps)
        decoded = decode.read_audio(media)
    samples = np.zeros(0, np.float32) if decoded is None else resample(to_mono(decoded.samples), decoded.rate, RATE)
    marks = [started, time.perf_counter()]
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else fps
    boxes, share = _face_boxes(rgb, max(1, round(rate / DETECT_FPS)), detector)
    marks.append(time.perf_counter())
    if boxes is None:
        mouths = np.zeros((len(times), MOUTH_SIZE[1], MOUTH_SIZE[0]), np.uint8)
        motion = np.zeros(len(times), np.float32)
    else:
        mouths = np.stack([_mouth(frame, box) for frame, box in zip(grey, boxes, strict=True)])
        motion = mouth_motion(mouths)
    marks.append(time.perf_counter())
    timings = {k: round(b - a, 4) for k, a, b in zip(("decode", "faces", "motion"), marks, marks[1:], strict=False)}
    return ClipSignals(times=np.asarray(times) - times[0], fps=float(rate), mouths=mouths, motion=motion,
                       face_found=boxes is not None, face_share=share,
                       audio=np.ascontiguousarray(samples, dtype=np.float32), timings=timings)


def _frames(media, fps: float) -> tuple[list[np.ndarray], np.ndarray, list[float]]:
    """Grey frames, RGB frames (for the face detector) and their times, thinned to at most `fps` a second."""
    av = require("av", extra="media")
    codec = media.video_stream.codec_context
    grey, rgb, times = [], [], []
    step = 1.0 / fps - 1e-3
    native = float(media.video_stream.average_rate or fps)
    last = None  # the last decoded frame's time, kept or not
    for packet in [*media.video_packets, None]:
        try:
            decoded = codec.decode(packet)
        except av.error.FFmpegError:
            continue
        for frame in decoded:
            when = float(frame.time) if frame.pts is not None and frame.time is not None else float("nan")
            if not np.isfinite(when):  # flushed frames may carry no timestamp: one frame after the last
                when = 0.0 if last is None else last + 1.0 / native
            last = when
            if times and when - times[-1] < step:
                continue
            scale = min(1.0, SHORT_SIDE / min(frame.width, frame.height))
            width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
            image = frame.to_ndarray(format="rgb24", width=width, height=height)
            rgb.append(image)
            grey.append(_cv2().cvtColor(image, _cv2().COLOR_RGB2GRAY))
            times.append(when)
    if not times:
        raise InputError("no video frame could be decoded", path=media.video_path, fix=_reencode())
    order = np.argsort(times, kind="stable")
    return [grey[i] for i in order], np.stack([rgb[i] for i in order]), [times[i] for i in order]


def _reencode() -> str:
    from affectgpt.media.decode import REENCODE

    return REENCODE


def _face_boxes(rgb: np.ndarray, stride: int, detector) -> tuple[np.ndarray | None, float]:
    """The main face's detector box [T, 4] on every frame (tracked on every stride-th, interpolated), or None."""
    from affectgpt.media.faces import track_faces

    picked = np.arange(0, len(rgb), stride)
    if picked[-1] != len(rgb) - 1:
        picked = np.append(picked, len(rgb) - 1)
    track = track_faces(rgb[picked], size=8, margin=0.0, detector=detector)
    if track.fallback:
        return None, 0.0
    every = np.arange(len(rgb))
    boxes = np.stack([np.interp(every, picked, track.boxes[:, k]) for k in range(4)], axis=1)
    return boxes, round(float(np.mean(track.detected)), 4)


def _mouth(grey: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The mouth region of the face `box` in a grey frame, resized to MOUTH_SIZE (black past the border)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    left, top = round(x0 + MOUTH[0] * w), round(y0 + MOUTH[1] * h)
    right, bottom = round(x0 + MOUTH[2] * w), round(y0 + MOUTH[3] * h)
    patch = np.zeros((max(1, bottom - top), max(1, right - left)), np.uint8)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(right, grey.shape[1]), min(bottom, grey.shape[0])
    if sx1 > sx0 and sy1 > sy0:
        patch[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = grey[sy0:sy1, sx0:sx1]
    return _cv2().resize(patch, MOUTH_SIZE, interpolation=_cv2().INTER_AREA)


def mouth_motion(mouths: np.ndarray) -> np.ndarray:
    """[T] pixels per frame: the RMS of the optical flow between consecutive crops less its mean (frame 0 copies
    frame 1's value; a single frame gives 0)."""
    cv2 = _cv2()
    motion = np.zeros(len(mouths), np.float32)
    for t in range(1, len(mouths)):
        flow = cv2.calcOpticalFlowFarneback(mouths[t - 1], mouths[t], None, 0.5, 2, 9, 3, 5, 1.1, 0)
        flow -= flow.reshape(-1, 2).mean(axis=0)
        motion[t] = float(np.sqrt((flow**2).sum(axis=-1).mean()))
    if len(mouths) > 1:
        motion[0] = motion[1]
    return motion


def envelope(audio: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    """[T] log RMS of the 16 kHz audio over each frame's interval [t, t + 1/fps) (log(1e-3) where silent)."""
    hop = max(1, round(RATE / fps))
    out = np.full(len(times), np.log(1e-3), np.float32)
    for t, when in enumerate(times):
        start = round(when * RATE)
        part = audio[start:start + hop]
        if part.size:
            out[t] = np.log(np.sqrt(np.mean(part.astype(np.float64) ** 2)) + 1e-3)
    return out


def _cv2():
    return require("cv2", extra="media")
