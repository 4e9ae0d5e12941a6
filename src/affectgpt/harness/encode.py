"""ClipInputs + an instruction -> the llm content parts of one user message (JPEG frames or one MP4, WAV, text).

Parts come in the order images (or the video), audio, text, which is how the Qwen chat templates lay them out.

Defaults: 8 frames (sampled uniformly from what the clip holds when it holds more), each a `size` x `size` JPEG of
quality 90 (336 px: the tile of Qwen2-VL / Qwen2.5-Omni's 14 px patches, merged 2 x 2, with no rounding), the
audio as one 16-bit PCM mono WAV at 16 kHz (what Whisper-style audio encoders resample to anyway), then the text.
`video_as="video"` sends the frames as one H.264 MP4 instead (`fps` frames per second, made with PyAV), for
servers that take `video_url`.

Servers differ in what they accept, so the media are optional (`modalities`): Qwen2.5-Omni takes images (or
video), audio and text; Qwen2-Audio audio and text only; Qwen2-VL images or video and text. The instruction is
always sent, as the last part; the "text" modality means the clip's subtitle is part of it, which the caller
decides when it renders the prompt (harness.prompts.render), so here "text" only travels with the other options.
A clip without an audio stream sends no audio part. Encoding is deterministic (same clip, same options -> same
bytes), so the LLM cache (keyed by the parts' bytes) hits on a rerun.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence
from typing import Any

import numpy as np

from affectgpt.errors import InputError
from affectgpt.harness.base import ClipInputs
from affectgpt.llm.base import AudioPart, ImagePart, Part, TextPart, VideoPart

MODALITIES = ("image", "audio", "text")
VIDEO_AS = ("images", "video")
SAMPLE_RATE = 16000
DEFAULTS: dict[str, Any] = {"modalities": MODALITIES, "n_frames": 8, "size": 336, "video_as": "images",
                            "quality": 90, "fps": 2.0}


def check_options(modalities: Sequence[str], n_frames: int, size: int, video_as: str, quality: int = 90,
                  fps: float = 2.0) -> tuple[str, ...]:
    """The modalities as a tuple in MODALITIES order; InputError for an option out of range."""
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        from affectgpt.registry import unknown_name

        raise unknown_name("modality", unknown[0], list(MODALITIES))
    if not modalities:
        raise InputError("no modality to send", field="modalities", fix=f"choose among {', '.join(MODALITIES)}")
    if video_as not in VIDEO_AS:
        raise InputError(f"{video_as!r} is not one of {', '.join(VIDEO_AS)}", field="video_as",
                         fix="send frames as images, or as one video for servers that take video_url")
    for name, value, low, high in (("n_frames", n_frames, 1, 256), ("size", size, 16, 4096),
                                   ("quality", quality, 1, 100)):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InputError(f"{name} must be a whole number in [{low}, {high}], got {value!r}", field=name)
    if not 0 < fps <= 120:
        raise InputError(f"fps must be in (0, 120], got {fps!r}", field="fps")
    return tuple(m for m in MODALITIES if m in modalities)


def options_tag(modalities: Sequence[str] = MODALITIES, n_frames: int = 8, size: int = 336,
                video_as: str = "images", quality: int = 90, fps: float = 2.0) -> str:
    """The encode options as a short text (part of a request's cache tag), e.g. "image+audio+text/8f/336px/jpeg90"."""
    kept = check_options(modalities, n_frames, size, video_as, quality, fps)
    visual = f"mp4@{fps:g}fps" if video_as == "video" else f"jpeg{quality}"
    return f"{'+'.join(kept)}/{n_frames}f/{size}px/{visual}"


def content_parts(clip: ClipInputs, instruction: str, *, modalities: Sequence[str] = MODALITIES, n_frames: int = 8,
                  size: int = 336, video_as: str = "images", quality: int = 90, fps: float = 2.0,
                  visual: str = "frames") -> tuple[Part, ...]:
    """The parts of one user message: the clip's frames (or face crops, `visual="faces"`), its audio, then the
    instruction (always; render the subtitle into it when "text" is among the modalities).

    Raises:
        InputError: an option out of range, or a clip without the frames the options ask to send.
    """
    kept = check_options(modalities, n_frames, size, video_as, quality, fps)
    parts: list[Part] = []
    if "image" in kept:
        frames = clip.faces if visual == "faces" else clip.frames
        if frames is None or len(frames) == 0:
            raise InputError(f"the clip has no {visual} to send", path=clip.video, field="modalities",
                             fix=f"read the clip with {visual!r} among the backend's needs")
        picked = [_resized(frame, size) for frame in _pick(np.asarray(frames), n_frames)]
        if video_as == "video":
            parts.append(VideoPart(mp4_bytes(picked, fps=fps)))
        else:
            parts.extend(ImagePart(jpeg_bytes(frame, quality=quality)) for frame in picked)
    if "audio" in kept and clip.audio is not None and len(clip.audio):
        parts.append(AudioPart(wav_bytes(clip.audio)))
    parts.append(TextPart(instruction))
    return tuple(parts)


def _pick(frames: np.ndarray, n_frames: int) -> np.ndarray:
    if len(frames) <= n_frames:
        return frames
    from affectgpt.media.sampling import frame_indices

    return frames[frame_indices(len(frames), n_frames)]


def _resized(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.shape[:2] == (size, size):
        return frame
    import cv2

    shrink = frame.shape[0] > size or frame.shape[1] > size
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def jpeg_bytes(frame: np.ndarray, *, quality: int = 90) -> bytes:
    """One [H, W, 3] uint8 RGB frame as a baseline JPEG file's bytes (OpenCV)."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError("OpenCV could not encode a frame as JPEG", field="frames")
    return data.tobytes()


def wav_bytes(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """A float mono waveform in [-1, 1] as a 16-bit PCM mono WAV file's bytes (stdlib `wave`); louder samples clip."""
    samples = np.clip(np.rint(np.asarray(audio, np.float64) * 32767), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as track:
        track.setnchannels(1)
        track.setsampwidth(2)
        track.setframerate(rate)
        track.writeframes(samples.tobytes())
    return buffer.getvalue()


def mp4_bytes(frames: Sequence[np.ndarray], *, fps: float = 2.0) -> bytes:
    """RGB frames of one size as an H.264 MP4 (yuv420p, one thread and bit-exact flags, so the bytes are the same
    every time); an odd side is cut by one pixel, as yuv420p needs even sides."""
    from fractions import Fraction

    import av

    height, width = (side - side % 2 for side in frames[0].shape[:2])
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.thread_count = 1
        stream.options = {"crf": "18", "preset": "veryfast", "flags": "+bitexact"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()
