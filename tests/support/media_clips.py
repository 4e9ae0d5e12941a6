"""Test clips made with PyAV, small and fast, whose every frame and sample is known from how it was made.

Frames: `frame_image(i)` draws frame i with its number in binary across the top quarter (8 black/white blocks,
most significant bit on the left) and a red square that moves 5 px right per frame below it, so any sampled
frame can be identified after scaling (`read_frame_number`). Video is libx264 at qp 0 (lossless luma), so the
blocks come back as pure black and white.

Audio: `tone()` writes sines; PCM (in .mkv or .wav) keeps samples exact, AAC (.mp4) keeps frequencies.

Timestamps: `write_video(times=...)` gives each frame its own time (variable frame rate). FFmpeg's muxers give
the last frame a duration of 1 / rate (the `fps` argument), which the expected spans in the tests rely on.

Fixtures are session-scoped and lazy: a clip is written the first time a test asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

WIDTH, HEIGHT = 128, 96
BITS = 8
SQUARE = (220, 30, 30)  # RGB of the moving square
MARKER = (230, 20, 20)  # RGB of the corner marker of the orientation clips


def frame_image(i: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Frame i: [height, width, 3] uint8 RGB. Top quarter: i in binary (white = 1); below: a red square."""
    image = np.full((height, width, 3), 96, np.uint8)
    band = max(1, height // 4)
    for bit in range(BITS):
        x0, x1 = bit * width // BITS, (bit + 1) * width // BITS
        image[:band, x0:x1] = 255 if (i >> (BITS - 1 - bit)) & 1 else 0
    side = max(2, height // 6)
    x = (5 * i) % max(1, width - side)
    y = band + (height - band - side) // 2
    image[y : y + side, x : x + side] = SQUARE
    return image


def read_frame_number(image: np.ndarray) -> int:
    """The number `frame_image` wrote into `image`, read at the block centres (any size: stretched frames too)."""
    height, width = image.shape[:2]
    y = height // 8
    value = 0
    for bit in range(BITS):
        x = int((bit + 0.5) * width / BITS)
        value = (value << 1) | int(image[y, x].mean() > 128)
    return value


def marker_image(width: int = 64, height: int = 48) -> np.ndarray:
    """A grey frame with a red marker in its top-left quarter: shows how a picture was turned."""
    image = np.full((height, width, 3), 128, np.uint8)
    image[: height // 2, : width // 2] = MARKER
    return image


def tone(frequencies: Sequence[float], seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """[channels, n] float32: channel c is a sine at frequencies[c] (0 for silence)."""
    t = np.arange(round(seconds * rate)) / rate
    return np.stack([amplitude * np.sin(2 * np.pi * f * t) for f in frequencies]).astype(np.float32)


def _audio_frame(av, samples: np.ndarray, rate: int):
    layout = {1: "mono", 2: "stereo"}[samples.shape[0]]
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=layout)
    frame.sample_rate = rate
    return frame


def write_video(path: Path, *, n_frames: int = 20, fps: int = 10, images: Sequence[np.ndarray] | None = None,
                times: Sequence[Fraction] | None = None, audio: np.ndarray | None = None, audio_rate: int = 16000,
                audio_codec: str = "aac", rotation: int | None = None, rotate_tag: str | None = None,
                pix_fmt: str = "yuv420p", container_options: dict[str, str] | None = None,
                video_options: dict[str, str] | None = None) -> Path:
    """Write a clip: frames `images` (default frame_image(i)), at `fps` or at `times` (seconds), with audio.

    Args:
        path: output file; the suffix picks the container (.mp4, .mkv...).
        n_frames: number of frames when `images` is None.
        fps: the stream rate (also the last frame's duration, 1 / fps, when `times` is given).
        images: the frames, [H, W, 3] uint8 RGB each.
        times: presentation time of each frame in seconds (variable frame rate); default i / fps.
        audio: [channels, n] float32 samples, or None for no audio stream.
        audio_rate: their rate.
        audio_codec: "aac" (lossy, .mp4) or "pcm_s16le" (exact, .mkv).
        rotation: display matrix rotation, counter-clockwise degrees (FFmpeg's convention).
        rotate_tag: an old-style "rotate" stream tag (clockwise degrees), e.g. for .mkv.
        pix_fmt: yuv420p, or yuv444p for odd sizes.
        container_options: muxer options, e.g. {"movflags": "faststart"} (index at the start of an .mp4).
        video_options: libx264 options; default lossless ({"qp": "0"}), which uses no B-frames.
    """
    import av

    images = list(images) if images is not None else [frame_image(i) for i in range(n_frames)]
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w", options=container_options or {}) as container:
        options = video_options or {"qp": "0", "preset": "ultrafast"}
        video = container.add_stream("libx264", rate=fps, options=options)
        video.height, video.width = images[0].shape[:2]
        video.pix_fmt = pix_fmt
        video.codec_context.time_base = time_base
        if rotation is not None:
            video.set_display_rotation(rotation)
        if rotate_tag is not None:
            video.metadata["rotate"] = rotate_tag
        sound = None
        if audio is not None:
            sound = container.add_stream(audio_codec, rate=audio_rate)
            sound.layout = {1: "mono", 2: "stereo"}[audio.shape[0]]
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round((times[i] if times is not None else Fraction(i, fps)) / time_base)
            frame.time_base = time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(_audio_frame(av, audio, audio_rate)))
            container.mux(sound.encode(None))
    return path


def write_audio(path: Path, samples: np.ndarray, rate: int, codec: str = "pcm_s16le") -> Path:
    """Write an audio-only file (.wav with PCM by default)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = {1: "mono", 2: "stereo"}[samples.shape[0]]
        container.mux(stream.encode(_audio_frame(av, samples, rate)))
        container.mux(stream.encode(None))
    return path


# Variable frame rate: 11 frames 0.5 s apart, then 9 frames 0.05 s apart (the last lasts 1/20 s).
VFR_TIMES = tuple([Fraction(i, 2) for i in range(11)] + [Fraction(11, 2) + Fraction(i, 20) for i in range(9)])
VFR_FPS = 20


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for generated clips, shared by the session."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def square_clip(media_dir: Path) -> Path:
    """37 frames at 10 fps (3.7 s), 128x96, numbered; AAC mono 16 kHz 440 Hz tone of 3.7 s."""
    return write_video(media_dir / "square.mp4", n_frames=37, fps=10, audio=tone([440], 3.7, 16000))


@pytest.fixture(scope="session")
def bframes_clip(media_dir: Path) -> Path:
    """40 numbered frames at 10 fps, lossy (crf 10) with B-frames that nothing references (I B B B P B B B P...)."""
    options = {"crf": "10", "x264-params": "bframes=3:b-adapt=0:b-pyramid=none"}
    return write_video(media_dir / "bframes.mp4", n_frames=40, video_options=options)


@pytest.fixture(scope="session")
def tone_clip(media_dir: Path) -> Path:
    """20 frames at 10 fps; PCM mono 44.1 kHz, 1 kHz tone of 2.5 s (.mkv)."""
    return write_video(media_dir / "tone.mkv", audio=tone([1000], 2.5, 44100), audio_rate=44100,
                       audio_codec="pcm_s16le")


@pytest.fixture(scope="session")
def stereo_clip(media_dir: Path) -> Path:
    """20 frames; PCM stereo 48 kHz, 2.0 s: left 0.5 sin(440 Hz), right 0.5 sin(440 Hz) + 0.4 sin(1500 Hz)."""
    left = tone([440], 2.0, 48000)[0]
    right = left + tone([1500], 2.0, 48000, amplitude=0.4)[0]
    return write_video(media_dir / "stereo.mkv", audio=np.stack([left, right]), audio_rate=48000,
                       audio_codec="pcm_s16le")


@pytest.fixture(scope="session")
def silent_clip(media_dir: Path) -> Path:
    """20 frames; an AAC audio stream of 2 s of digital silence."""
    return write_video(media_dir / "silent.mp4", audio=np.zeros((1, 32000), np.float32))


@pytest.fixture(scope="session")
def no_audio_clip(media_dir: Path) -> Path:
    """20 frames at 10 fps, no audio stream."""
    return write_video(media_dir / "no_audio.mp4")


@pytest.fixture(scope="session")
def one_frame_clip(media_dir: Path) -> Path:
    """A single frame (frame 0), no audio."""
    return write_video(media_dir / "one_frame.mp4", n_frames=1)


@pytest.fixture(scope="session")
def short_clip(media_dir: Path) -> Path:
    """0.3 s: 3 frames at 10 fps and 0.3 s of PCM 16 kHz 440 Hz tone (.mkv)."""
    return write_video(media_dir / "short.mkv", n_frames=3, audio=tone([440], 0.3, 16000), audio_codec="pcm_s16le")


@pytest.fixture(scope="session")
def rotated_clip(media_dir: Path) -> Path:
    """64x48 stored frames with the marker top-left, display matrix rotation +90 (counter-clockwise)."""
    return write_video(media_dir / "rotated.mp4", images=[marker_image()] * 5, rotation=90)


@pytest.fixture(scope="session")
def rotate_tag_clip(media_dir: Path) -> Path:
    """64x48 stored frames with the marker top-left, an old-style rotate=90 tag (clockwise), .mkv."""
    return write_video(media_dir / "rotate_tag.mkv", images=[marker_image()] * 5, rotate_tag="90")


@pytest.fixture(scope="session")
def vfr_clip(media_dir: Path) -> Path:
    """20 numbered frames at VFR_TIMES (uneven), 128x96."""
    return write_video(media_dir / "vfr.mp4", n_frames=len(VFR_TIMES), fps=VFR_FPS, times=VFR_TIMES)


@pytest.fixture(scope="session")
def odd_clip(media_dir: Path) -> Path:
    """10 numbered frames of 321x179 (odd sizes need yuv444p)."""
    images = [frame_image(i, 321, 179) for i in range(10)]
    return write_video(media_dir / "odd.mp4", images=images, pix_fmt="yuv444p")


@pytest.fixture(scope="session")
def wide_clip(media_dir: Path) -> Path:
    """4 numbered frames of 1600x96: wider than the 1280 cap."""
    return write_video(media_dir / "wide.mp4", images=[frame_image(i, 1600, 96) for i in range(4)])


@pytest.fixture(scope="session")
def wav_file(media_dir: Path) -> Path:
    """A separate audio file: PCM mono 16 kHz, 3.0 s, 660 Hz (.wav)."""
    return write_audio(media_dir / "separate.wav", tone([660], 3.0, 16000), 16000)
