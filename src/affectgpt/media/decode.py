"""PyAV: a video file (and an optional separate audio file) -> the sampled frames and the decoded audio samples.

Each file is opened once and demuxed once; each stream is decoded once, in order, with FFmpeg's threading.
The video's packets come first, so the frame count T and the stream's time span are known before any frame is
decoded: that is what sampling.target_times needs (the original's decord reader built the same index). Frames are
then chosen by time (sampling.NearestPicker: exact for a constant frame rate, even in time for a variable one).
The decoder skips the unchosen frames that no other frame references (skip_frame NONREF), only the chosen
frames are converted to RGB, and decoding stops at the last target.

Frames come out in display orientation: the display matrix (`VideoFrame.rotation`, counter-clockwise degrees),
or else an old-style "rotate" stream tag (clockwise degrees), turns them by a multiple of 90 degrees (flag
`rotated`). Model frames are scaled straight from the decoded picture to size x size in one swscale pass
(bicubic, FFmpeg's default scaler, as decord's resize was): `stretch` ignores the aspect ratio like the original;
`pad` keeps it and centres the picture on black. The source-resolution frames handed to face tracking are capped
at MAX_SIDE on their longest side in that same conversion (flag `downscaled`), so a 4K clip never produces 4K RGB
arrays. The pixel aspect ratio (anamorphic video) and display-matrix flips are not applied.

Bad files raise InputError naming the file and the fix: missing, a folder, empty, not a media file, truncated
(fewer packets than the container lists, or a span far shorter than it declares), no video stream (an audio-only
file included: the model needs frames), a codec FFmpeg cannot decode, or no decodable frame at all.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.media.sampling import NearestPicker, nearest_indices, target_times

av = require("av", extra="media")

MAX_SIDE = 1280  # longest side of the source-resolution frames (face tracking input)
RESIZE_POLICIES = ("stretch", "pad")
REENCODE = "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4`"
_TRUNCATED_FIX = "the file is incomplete: download or export it again"


@dataclass(frozen=True)
class VideoSamples:
    """The sampled frames of a video stream.

    Attributes:
        frames: [n, size, size, 3] uint8 RGB, display orientation, resized by the policy.
        source: [n, H, W, 3] uint8 RGB at source resolution (longest side <= MAX_SIDE), or None if not asked.
        times: timestamp of each sampled frame, seconds after the first frame.
        duration: the stream's span in seconds (last timestamp - first + the last frame's duration).
        n_total: T, the number of frames in the stream.
        flags: short_video, variable_frame_rate, rotated, downscaled, decode_errors.
    """

    frames: np.ndarray
    source: np.ndarray | None
    times: tuple[float, ...]
    duration: float
    n_total: int
    flags: frozenset[str]


@dataclass(frozen=True)
class AudioSamples:
    """Decoded audio: [channels, n] float32 in [-1, 1] at `rate` Hz."""

    samples: np.ndarray
    rate: int
    flags: frozenset[str] = frozenset()


@dataclass
class Media:
    """The opened file(s), demuxed once: the video stream, the audio stream (or None) and their packets."""

    video_path: Path
    audio_path: Path | None
    video_stream: Any
    video_packets: list[Any]
    audio_stream: Any | None
    audio_packets: list[Any]
    containers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for container in self.containers:
            container.close()

    def __enter__(self) -> Media:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Timeline:
    """Presentation timestamps of the video stream, in stream ticks, sorted; see sampling.target_times."""

    stamps: list[int]
    span: Fraction
    time_base: Fraction
    by_order: bool  # the packets carry no timestamps: frame j of the decoder output is stamps[j]
    variable: bool


def open_media(video: str | Path, audio: str | Path | None = None) -> Media:
    """Open the video file (and the separate audio file) and demux the streams that will be decoded.

    Args:
        video: the video file; its audio stream is used unless `audio` is given.
        audio: a separate audio file (wav, flac, m4a...) to use instead of the video's audio stream.

    Returns:
        Media, a context manager that closes the files.

    Raises:
        InputError: a missing, empty, unreadable or truncated file, no video stream, an undecodable codec.
    """
    video_path = Path(video)
    audio_path = None if audio is None else Path(audio)
    containers: list[Any] = []
    try:
        container = _open(video_path, "video")
        containers.append(container)
        video_stream = _video_stream(container, video_path)
        if audio_path is None:
            audio_stream = _audio_stream(container, video_path, required=False)
            wanted = [video_stream] + ([audio_stream] if audio_stream is not None else [])
            demuxed = _demux(container, video_path, wanted)
            video_packets, audio_packets = demuxed[0], (demuxed[1] if audio_stream is not None else [])
        else:
            (video_packets,) = _demux(container, video_path, [video_stream])
            audio_container = _open(audio_path, "audio")
            containers.append(audio_container)
            audio_stream = _audio_stream(audio_container, audio_path, required=True)
            (audio_packets,) = _demux(audio_container, audio_path, [audio_stream])
    except BaseException:
        for opened in containers:
            opened.close()
        raise
    return Media(video_path=video_path, audio_path=audio_path, video_stream=video_stream,
                 video_packets=video_packets, audio_stream=audio_stream, audio_packets=audio_packets,
                 containers=containers)


def _open(path: Path, role: str) -> Any:
    if not path.exists():
        raise InputError(f"{role} file not found", path=path, fix="check the path")
    if path.is_dir():
        raise InputError(f"expected a {role} file, got a folder", path=path, fix=f"pass the {role} file itself")
    if path.stat().st_size == 0:
        raise InputError(f"the {role} file is empty", path=path, fix=_TRUNCATED_FIX)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise InputError(f"not a readable media file, or a truncated one (FFmpeg: {_reason(exc)})", path=path,
                         fix=f"check that it is a {role} file and complete; if it plays elsewhere, {REENCODE}") from exc


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _video_stream(container: Any, path: Path) -> Any:
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        what = "it holds audio only" if container.streams.audio else "it holds no audio or video"
        raise InputError(f"no video stream ({what}); the model needs frames", path=path,
                         fix="pass a video file; an audio track can be given next to its video (audio=, --audio-dir)")
    stream = streams[0]
    if stream.codec_context is None:
        raise InputError("FFmpeg cannot decode this video codec", path=path, fix=REENCODE)
    stream.codec_context.thread_type = "AUTO"
    return stream


def _audio_stream(container: Any, path: Path, *, required: bool) -> Any | None:
    if not container.streams.audio:
        if required:
            raise InputError("no audio stream", path=path, fix="pass an audio file (wav, flac, m4a...) or leave it out")
        return None
    stream = container.streams.audio[0]
    if stream.codec_context is None:
        raise InputError("FFmpeg cannot decode this audio codec", path=path,
                         fix=f"{REENCODE}, or pass a separate audio file")
    return stream


def _demux(container: Any, path: Path, streams: list[Any]) -> list[list[Any]]:
    """The non-empty packets of each stream, in file order (one pass over the file for all of them)."""
    packets: dict[int, list[Any]] = {s.index: [] for s in streams}
    try:
        for packet in container.demux(*streams):
            if packet.size:  # the empty packet at the end of each stream only flushes
                packets[packet.stream.index].append(packet)
    except av.error.FFmpegError as exc:
        raise InputError(f"damaged or truncated file (FFmpeg: {_reason(exc)})", path=path, fix=_TRUNCATED_FIX) from exc
    return [packets[s.index] for s in streams]


def _timeline(media: Media) -> _Timeline:
    """Sorted timestamps, span and frame-rate regularity of the video stream; refuses a truncated stream."""
    stream, packets, path = media.video_stream, media.video_packets, media.video_path
    kept = [p for p in packets if not p.is_discard]  # packets an edit list cuts decode but are never shown
    if not kept:
        raise InputError("the video stream holds no frames", path=path, fix=_TRUNCATED_FIX)
    raw = [p.pts if p.pts is not None else p.dts for p in kept]
    time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1000)
    rate = stream.average_rate or stream.guessed_rate
    by_order = any(t is None for t in raw)
    if by_order:  # no timestamps: count frames, one tick per frame, like the original
        stamps, last = list(range(len(kept))), 1
        time_base = 1 / Fraction(rate) if rate else Fraction(1, 25)
    else:
        order = sorted(range(len(kept)), key=raw.__getitem__)
        stamps, last = [raw[i] for i in order], kept[order[-1]].duration or 0
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    step = statistics.median_low(steps) if steps else 0
    if not last:  # the last frame lasts as long as a typical frame, or 1 / frame rate
        last = step or (round(1 / (Fraction(rate) * time_base)) if rate else 0)
    span = Fraction(stamps[-1] - stamps[0] + last)
    _refuse_truncated(stream, len(packets), float(span * time_base), path)
    variable = bool(steps) and max(abs(s - step) for s in steps) > max(2, step / 20)
    return _Timeline(stamps=stamps, span=span, time_base=time_base, by_order=by_order, variable=variable)


def _refuse_truncated(stream: Any, n_packets: int, span_seconds: float, path: Path) -> None:
    listed = stream.frames or 0
    if listed and n_packets < listed:
        raise InputError(f"truncated: the container lists {listed} video frames but only {n_packets} are there",
                         path=path, fix=_TRUNCATED_FIX)
    declared = _declared_seconds(stream)
    if declared and span_seconds < declared - max(0.5, 0.1 * declared):
        raise InputError(f"truncated: the video stream should last {declared:.2f} s but only {span_seconds:.2f} s "
                         "of it is there", path=path, fix=_TRUNCATED_FIX)


def _declared_seconds(stream: Any) -> float | None:
    """The stream's own declared duration: its header field, or Matroska's DURATION tag (hh:mm:ss.frac)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = next((v for k, v in stream.metadata.items() if k.upper() == "DURATION"), None)
    match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag.strip()) if tag else None
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def read_video(media: Media, *, n_frames: int = 8, size: int = 224, resize: str = "stretch",
               keep_source: bool = True, max_side: int = MAX_SIDE) -> VideoSamples:
    """Decode the video stream once and return the n frames the sampling rule picks, in display orientation.

    Args:
        media: from open_media.
        n_frames: frames to sample (the last one repeats when the video has fewer).
        size: side of the square model frames.
        resize: "stretch" (the original: squash to size x size) or "pad" (keep the aspect, centre on black).
        keep_source: also return the frames at source resolution (capped at max_side) for face tracking.
        max_side: the cap on the longest side of the source-resolution frames.

    Returns:
        VideoSamples.

    Raises:
        InputError: truncated stream, or no frame could be decoded.
    """
    if resize not in RESIZE_POLICIES:
        raise InputError(f"unknown resize policy {resize!r}", field="resize", fix=f"use one of {RESIZE_POLICIES}")
    timeline = _timeline(media)
    n_total = len(timeline.stamps)
    targets = target_times(timeline.stamps[0], timeline.span, n_total, n_frames)
    picked, errors = _pick_frames(media, timeline, targets)
    tag_rotation = _rotate_tag(media.video_stream)
    rendered: dict[int, tuple[np.ndarray, np.ndarray | None, int, bool]] = {}
    for frame, _ in picked:  # a frame picked for several targets (short videos) is converted once
        if id(frame) not in rendered:
            rendered[id(frame)] = _render(frame, tag_rotation, size, resize, keep_source, max_side)
    outputs = [rendered[id(frame)] for frame, _ in picked]
    flags = {"short_video"} if n_total < n_frames else set()
    flags |= {"variable_frame_rate"} if timeline.variable else set()
    flags |= {"rotated"} if any(quarter for _, _, quarter, _ in outputs) else set()
    flags |= {"downscaled"} if any(small for *_, small in outputs) else set()
    flags |= {"decode_errors"} if errors else set()
    first = timeline.stamps[0]
    return VideoSamples(
        frames=np.stack([model for model, *_ in outputs]),
        source=np.stack([source for _, source, *_ in outputs]) if keep_source else None,
        times=tuple(float((t - first) * timeline.time_base) for _, t in picked),
        duration=float(timeline.span * timeline.time_base), n_total=n_total, flags=frozenset(flags))


def _pick_frames(media: Media, timeline: _Timeline, targets: list[Fraction]) -> tuple[list[tuple[Any, Fraction]], int]:
    """Decode in order, keeping only the current nearest frame of each target; stop after the last target.

    The packets' timestamps already tell which frames are nearest (sampling.nearest_indices), so the decoder
    is told to skip the other frames that no frame depends on (FFmpeg's skip_frame = NONREF: the unreferenced
    B-frames, a third to a half of x264's frames); the picker still runs over what is decoded, so a frame
    that fails to decode is replaced by its nearest neighbour rather than lost.
    """
    wanted = None if timeline.by_order else {timeline.stamps[i] for i in nearest_indices(timeline.stamps, targets)}
    decoder = _Decoder(media.video_stream, media.video_packets, wanted)
    picker = NearestPicker(targets)
    kept: dict[int, tuple[Any, Fraction]] = {}
    count = 0
    for frame in decoder.frames():
        time = _frame_time(frame, count, timeline)
        if picker.offer(time):
            kept[count] = (frame, time)
            best = set(picker.best)
            kept = {j: v for j, v in kept.items() if j in best}
        count += 1
        if picker.done(time):
            break
    if not count:
        raise InputError("no video frame could be decoded", path=media.video_path, fix=REENCODE)
    return [kept[j] for j in picker.chosen()], decoder.errors


def _frame_time(frame: Any, j: int, timeline: _Timeline) -> Fraction:
    """A decoded frame's timestamp in ticks: its own pts, or the j-th sorted packet stamp without one."""
    if frame.pts is None or timeline.by_order:
        return Fraction(timeline.stamps[min(j, len(timeline.stamps) - 1)])
    return Fraction(frame.pts)


class _Decoder:
    """Decodes `packets` in order, then flushes. Packets FFmpeg rejects are skipped and counted in `errors`
    (as the ffmpeg command line skips them). With `wanted` (presentation timestamps), every other packet is
    decoded with skip_frame NONREF: its frame is dropped unless another frame needs it as a reference."""

    def __init__(self, stream: Any, packets: list[Any], wanted: set[int] | None = None) -> None:
        self.codec = stream.codec_context
        self.packets = packets
        self.wanted = wanted
        self.errors = 0

    def frames(self) -> Iterator[Any]:
        skipping = False
        for packet in [*self.packets, None]:
            if self.wanted is not None and packet is not None:
                skip = packet.pts not in self.wanted
                if skip != skipping:
                    self.codec.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
            try:
                decoded = self.codec.decode(packet)
            except av.error.FFmpegError:
                self.errors += 1
                continue
            yield from decoded


def _rotate_tag(stream: Any) -> int:
    """Counter-clockwise degrees from an old-style "rotate" stream tag (which holds clockwise degrees), or 0."""
    tag = next((v for k, v in stream.metadata.items() if k.lower() == "rotate"), None)
    try:
        return -int(float(tag)) if tag else 0
    except ValueError:
        return 0


def _render(frame: Any, tag_rotation: int, size: int, resize: str, keep_source: bool,
            max_side: int) -> tuple[np.ndarray, np.ndarray | None, int, bool]:
    """One decoded frame -> (model frame [size, size, 3], source frame or None, quarter turns, capped?)."""
    rotation = frame.rotation or tag_rotation  # counter-clockwise degrees; the display matrix wins
    quarter = round(rotation / 90) % 4
    width, height = frame.width, frame.height
    shown_w, shown_h = (height, width) if quarter % 2 else (width, height)
    if resize == "stretch":
        model = _rotate(_rgb(frame, size, size), quarter)
    else:
        scale = size / max(shown_w, shown_h)
        fit_w, fit_h = max(1, round(shown_w * scale)), max(1, round(shown_h * scale))
        stored = (fit_h, fit_w) if quarter % 2 else (fit_w, fit_h)
        model = np.zeros((size, size, 3), np.uint8)
        top, left = (size - fit_h) // 2, (size - fit_w) // 2
        model[top : top + fit_h, left : left + fit_w] = _rotate(_rgb(frame, *stored), quarter)
    capped = max(width, height) > max_side
    source = None
    if keep_source:
        cap = min(1.0, max_side / max(width, height))
        source = _rotate(_rgb(frame, max(1, round(width * cap)), max(1, round(height * cap))), quarter)
    return model, source, quarter, capped and keep_source


def _rgb(frame: Any, width: int, height: int) -> np.ndarray:
    """The frame as [height, width, 3] uint8 RGB: colour conversion and scaling in one swscale pass."""
    return frame.reformat(width=width, height=height, format="rgb24", interpolation="BICUBIC", threads=1).to_ndarray()


def _rotate(image: np.ndarray, quarter: int) -> np.ndarray:
    """Turn an [H, W, 3] image counter-clockwise by quarter x 90 degrees (contiguous result)."""
    return np.ascontiguousarray(np.rot90(image, quarter)) if quarter else image


def read_audio(media: Media) -> AudioSamples | None:
    """Decode the audio stream once: [channels, n] float32 at its own rate, or None without audio samples."""
    if media.audio_stream is None:
        return None
    decoder = _Decoder(media.audio_stream, media.audio_packets)
    chunks, rate = [], 0
    for frame in decoder.frames():
        chunk = _planar_float(frame)
        if chunk.shape[1]:
            chunks.append(chunk)
            rate = rate or frame.sample_rate
    if not chunks:
        return None
    if len({c.shape[0] for c in chunks}) > 1:  # the channel layout changed mid-stream: mix each part to mono
        chunks = [c.mean(axis=0, keepdims=True) for c in chunks]
    flags = frozenset({"decode_errors"}) if decoder.errors else frozenset()
    return AudioSamples(samples=np.concatenate(chunks, axis=1), rate=rate, flags=flags)


_INT_SCALE = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31, np.dtype(np.int64): 2.0**63}


def _planar_float(frame: Any) -> np.ndarray:
    """An audio frame of any sample format -> [channels, samples] float32 in [-1, 1]."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed: [1, samples * channels], interleaved
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype in _INT_SCALE:
        return (data / _INT_SCALE[data.dtype]).astype(np.float32)
    return data.astype(np.float32, copy=False)
