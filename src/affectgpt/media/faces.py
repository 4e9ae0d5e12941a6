"""Faces: find the clip's main face in its sampled frames and cut one square crop of it per frame.

`track_faces(frames)` takes the clip's sampled frames ([T, H, W, 3] uint8 RGB at source resolution) and
returns a FaceTrack: crops [T, size, size, 3] uint8 RGB, the crop boxes, which frames had the face, and
whether it fell back to centre crops. The steps:

1. **Detect** in every frame with a FaceDetector (any callable: RGB image -> [(x0, y0, x1, y1, score)] in that
   image's pixels; DETECTORS names the built-in ones). The default, "haar", uses only the Haar cascades that
   ship inside opencv-python-headless (no download, no model file of ours): frontal (alt2), and where that
   finds nothing, the profile cascade on the image and on its mirror image (for the other side). It scans a
   grey copy downscaled to a short side of 160 px, contrast-stretched (1st-99th percentile to 0-255: this
   lifts dark frames; full histogram equalisation blew background texture up and lost faces in our tests),
   so faces smaller than about 1/8 of the frame's short side (90 px at 720p) are not found; "haar-fine"
   scans at 320 px (down to 1/16, about 3x slower). The profile passes scan a coarser copy (short side
   120 px). Measured on this project's 2-core machine, one thread, 8 frames of 720p: 20-35 ms per frame
   with a frontal face (0.17-0.28 s a clip; one full decode of a 5 s 720p clip took 0.40 s there), 65-70 ms
   per frame on a textured frame with no face (the profile passes run), about 10 ms on a flat one.
2. **Link** detections into tracks: frame by frame, biggest first, a detection joins the track whose latest box
   has a similar size (ratio <= 1.6) and a centre within one face side per frame of gap (at most two).
3. **Choose one track**, the main face: the one with the largest sum of box sides over its frames (size x
   number of frames), so a small or one-frame spurious detection loses to the face that stays.
4. **Smooth**: the track's box centre and side are interpolated linearly over frames where it was missed
   (held at the first/last detection at the ends), then median-filtered over 3 frames (edges repeated), which
   removes one-frame jitter but keeps steady motion exactly.
5. **Crop** a square of side `box side x (1 + 2 x margin)` around the smoothed centre. Where it passes the
   image border the crop is padded with black rather than shifted, so the face stays centred (`boxes` may
   then extend past the image). Crops are resized to size x size (INTER_AREA when shrinking, linear when
   enlarging).

When no face is found in any frame, the crops are the centre squares of the frames (side = the frame's
short side), `fallback` is True and `detected` all False; load_clip then flags the clip `no_face`.

The crops match the layout of the original release's `openface_face/<name>.npy` ([T, H, W, 3] uint8) but are
**RGB**, where OpenFace wrote BGR (`track.crops[..., ::-1]` gives the original channel order). To write one
in that layout: `np.save(path, track.crops)` (the batch writes safetensors, or .npy with `--faces-npy`).
The default margin (0.2: crop side = 1.4 x the detector's box) gives a crop close to OpenFace's aligned
faces (face scale 0.7 of the image), without their rotation alignment.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.registry import Registry

Detection = tuple[float, float, float, float, float]  # x0, y0, x1, y1, score

DETECTORS = Registry("face detector", {
    "haar": "affectgpt.media.faces:HaarFaceDetector",  # OpenCV's shipped cascades; needs affectgpt[media]
    "haar-fine": "affectgpt.media.faces:fine_haar_detector",  # the same on a 2x finer copy: smaller faces
})
DEFAULT_DETECTOR = "haar"

DEFAULT_MARGIN = 0.2
LINK_SIZE_RATIO = 1.6  # a box more than 1.6x bigger or smaller than the track's latest is another face
LINK_DISTANCE = 1.0  # centre distance allowed per frame of gap, in face sides (gap counted up to 2)


class FaceDetector(Protocol):
    """Finds faces in one RGB image ([H, W, 3] uint8); boxes in that image's pixels, any score scale."""

    def __call__(self, rgb: np.ndarray) -> list[Detection]: ...


@dataclass(frozen=True)
class FaceTrack:
    """The main face of a clip, one crop per sampled frame.

    Attributes:
        crops: [T, size, size, 3] uint8 RGB.
        boxes: [T, 4] float32 (x0, y0, x1, y1) in source pixels: the square each crop was cut from, after
            smoothing and margin; it may extend past the image, where the crop is black.
        detected: [T] bool: the track's face was found in that frame (others are interpolated or held).
        fallback: no face was found in any frame; the crops are then the frames' centre squares.
    """

    crops: np.ndarray
    boxes: np.ndarray
    detected: np.ndarray
    fallback: bool


def track_faces(frames: np.ndarray, *, size: int = 224, margin: float = DEFAULT_MARGIN,
                detector: FaceDetector | str | None = None) -> FaceTrack:
    """Detect, keep the main face track, smooth it and crop it (see the module docstring).

    Args:
        frames: [T, H, W, 3] uint8 RGB, the clip's sampled frames at source resolution.
        size: side of the output crops in pixels.
        margin: space added on each side of the detector's box, as a fraction of its side.
        detector: a FaceDetector, a name in DETECTORS, or None for DEFAULT_DETECTOR.

    Returns:
        FaceTrack with T crops.

    Raises:
        InputError: frames of the wrong shape or type, a bad size or margin, an unknown detector name.
    """
    _check(frames, size, margin)
    find = _resolve(detector)
    detections = [[d for d in find(frame) if d[2] > d[0] and d[3] > d[1]] for frame in frames]
    track = _main_track(detections)
    if track is None:
        return _fallback(frames, size)
    detected = np.array([t in track for t in range(len(frames))], dtype=bool)
    centres, sides = _smooth(track, len(frames))
    sides = sides * (1.0 + 2.0 * margin)
    boxes = np.empty((len(frames), 4), dtype=np.float32)
    crops = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        boxes[t] = _square(centres[t], sides[t])
        crops[t] = _crop(frame, boxes[t], size)
    return FaceTrack(crops, boxes, detected, fallback=False)


def _check(frames: Any, size: int, margin: float) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or not frames.size:
        shape = getattr(frames, "shape", type(frames).__name__)
        raise InputError(f"frames must be a [T, H, W, 3] array with T, H, W >= 1, got {shape}", field="frames",
                         fix="pass the clip's sampled RGB frames as one numpy array")
    if frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8, got {frames.dtype}", field="frames",
                         fix="pass 8-bit RGB frames")
    if size < 1:
        raise InputError(f"size must be a positive number of pixels, got {size}", field="size")
    if not margin >= 0:
        raise InputError(f"margin must be >= 0, got {margin}", field="margin")


def _resolve(detector: FaceDetector | str | None) -> FaceDetector:
    if detector is None:
        detector = DEFAULT_DETECTOR
    return _named_detector(detector) if isinstance(detector, str) else detector


@functools.cache
def _named_detector(name: str) -> FaceDetector:
    return DETECTORS.get(name)()


# ---- linking and choosing the main track ----

def _side(box: Detection) -> float:
    return max(box[2] - box[0], box[3] - box[1])


def _centre(box: Detection) -> tuple[float, float]:
    return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0


def _links(last: Detection, box: Detection, gap: int) -> float | None:
    """How far `box` is from a track whose latest box is `last`, `gap` frames earlier; None: no link."""
    side_a, side_b = _side(last), _side(box)
    if max(side_a, side_b) > LINK_SIZE_RATIO * min(side_a, side_b):
        return None
    (ax, ay), (bx, by) = _centre(last), _centre(box)
    distance = float(np.hypot(ax - bx, ay - by)) / max(side_a, side_b)
    return distance if distance <= LINK_DISTANCE * min(gap, 2) else None


def _main_track(detections: list[list[Detection]]) -> dict[int, Detection] | None:
    """Link detections frame by frame into tracks ({frame: box}); return the one with the largest sum of sides."""
    tracks: list[dict[int, Detection]] = []
    for t, boxes in enumerate(detections):
        taken: set[int] = set()
        for box in sorted(boxes, key=_side, reverse=True):
            best, best_distance = None, float("inf")
            for i, track in enumerate(tracks):
                latest = max(track)
                if i in taken or latest == t:
                    continue
                distance = _links(track[latest], box, t - latest)
                if distance is not None and distance < best_distance:
                    best, best_distance = i, distance
            if best is None:
                tracks.append({})
                best = len(tracks) - 1
            tracks[best][t] = box
            taken.add(best)
    if not tracks:
        return None
    return max(tracks, key=lambda track: (sum(_side(b) for b in track.values()), -min(track)))


def _smooth(track: dict[int, Detection], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres [T, 2] and sides [T]: interpolated over missed frames (held at the ends), then median of 3."""
    known = np.array(sorted(track), dtype=np.float64)
    values = np.array([[*_centre(track[t]), _side(track[t])] for t in sorted(track)], dtype=np.float64)
    frames = np.arange(n_frames, dtype=np.float64)
    filled = np.stack([np.interp(frames, known, values[:, k]) for k in range(3)], axis=1)
    if n_frames >= 3:
        padded = np.concatenate([filled[:1], filled, filled[-1:]])
        filled = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    return filled[:, :2], filled[:, 2]


# ---- cropping ----

def _square(centre: np.ndarray, side: float) -> np.ndarray:
    """The integer square of about `side` pixels centred on `centre`, as (x0, y0, x1, y1)."""
    whole = max(1, round(float(side)))
    x0 = round(float(centre[0]) - whole / 2.0)
    y0 = round(float(centre[1]) - whole / 2.0)
    return np.array([x0, y0, x0 + whole, y0 + whole], dtype=np.float32)


def _crop(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Cut `box` out of `frame`, black where it passes the border, resized to size x size."""
    cv2 = _cv2()
    x0, y0, x1, y1 = (int(v) for v in box)
    height, width = frame.shape[:2]
    patch = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    if patch.shape[0] == size:
        return patch
    interpolation = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def _fallback(frames: np.ndarray, size: int) -> FaceTrack:
    """No face anywhere: the centre square of each frame."""
    height, width = frames.shape[1:3]
    side = min(height, width)
    x0, y0 = (width - side) // 2, (height - side) // 2
    box = np.array([x0, y0, x0 + side, y0 + side], dtype=np.float32)
    crops = np.stack([_crop(frame, box, size) for frame in frames])
    boxes = np.repeat(box[None], len(frames), axis=0)
    return FaceTrack(crops, boxes, np.zeros(len(frames), dtype=bool), fallback=True)


# ---- the default detector: OpenCV's shipped Haar cascades ----

@functools.cache
def _cv2() -> Any:
    return require("cv2", extra="media")


@functools.cache
def _cascade(filename: str, thread: int) -> Any:
    """One loaded cascade per file and thread (a CascadeClassifier is not shared across threads)."""
    cv2 = _cv2()
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + filename)
    if cascade.empty():
        raise InputError("OpenCV's shipped cascade could not be loaded", path=cv2.data.haarcascades + filename,
                         fix="reinstall opencv-python-headless (pip install --force-reinstall 'affectgpt[media]')")
    return cascade


@dataclass(frozen=True)
class HaarFaceDetector:
    """OpenCV's shipped Haar cascades: frontal, then profile both ways where no frontal face was found.

    Attributes:
        short_side: the short side of the grey copy the cascades scan; faces smaller than about
            20/short_side of the frame's short side are not found (1/8 with the default 160).
        scale_factor, min_neighbors: the cascades' detectMultiScale settings.
        profile_short_side: the same for the profile passes (coarser: they are the costly fallback).
        profile: also look for profile faces where no frontal face was found.
    """

    short_side: int = 160
    profile_short_side: int = 120
    scale_factor: float = 1.15  # 1.1 is about 30% slower; 1.2 misses faces the tests hold (tests/media/test_faces.py)
    min_neighbors: int = 3
    profile: bool = True

    FRONTAL = "haarcascade_frontalface_alt2.xml"
    PROFILE = "haarcascade_profileface.xml"
    WINDOW = 20  # both cascades' smallest face, in scanned pixels

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        cv2 = _cv2()
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, self.short_side / min(grey.shape))
        small = _stretch(_shrink(grey, scale))
        found = [_scaled(box, 1.0 / scale) for box in self._detect(small, self.FRONTAL)]
        if not found and self.profile:
            scale = min(1.0, self.profile_short_side / min(grey.shape))
            small = _stretch(_shrink(grey, scale))
            width = small.shape[1]
            mirrored = self._detect(np.ascontiguousarray(small[:, ::-1]), self.PROFILE)
            boxes = self._detect(small, self.PROFILE) + [(width - x1, y0, width - x0, y1, score)
                                                         for x0, y0, x1, y1, score in mirrored]
            found = [_scaled(box, 1.0 / scale) for box in boxes]
        return _suppress(found)

    def _detect(self, grey: np.ndarray, filename: str) -> list[Detection]:
        cascade = _cascade(filename, threading.get_ident())
        boxes, neighbours = cascade.detectMultiScale2(grey, self.scale_factor, self.min_neighbors,
                                                      minSize=(self.WINDOW, self.WINDOW))
        return [(float(x), float(y), float(x + w), float(y + h), float(n))
                for (x, y, w, h), n in zip(boxes, neighbours, strict=True)]


def fine_haar_detector() -> HaarFaceDetector:
    """The Haar detector on a twice finer copy: finds faces down to 1/16 of the short side, about 3x slower."""
    return HaarFaceDetector(short_side=320, profile_short_side=240)


def _shrink(grey: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return grey
    return _cv2().resize(grey, None, fx=scale, fy=scale, interpolation=_cv2().INTER_AREA)


def _scaled(box: Detection, factor: float) -> Detection:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor, box[4])


def _stretch(grey: np.ndarray) -> np.ndarray:
    """Linear contrast stretch of the 1st-99th percentile to 0-255 (lifts dark frames, unlike full
    histogram equalisation it does not blow background texture up into false negatives)."""
    low, high = np.percentile(grey, (1, 99))
    if high - low < 8:
        return grey
    gain = 255.0 / (high - low)
    return _cv2().convertScaleAbs(grey, alpha=gain, beta=-low * gain)


def _iou(a: Detection, b: Detection) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _suppress(found: list[Detection], threshold: float = 0.3) -> list[Detection]:
    """Keep the best-scored of overlapping boxes (a face seen by both profile passes is one face)."""
    kept: list[Detection] = []
    for box in sorted(found, key=lambda b: b[4], reverse=True):
        if all(_iou(box, other) < threshold for other in kept):
            kept.append(box)
    return kept
