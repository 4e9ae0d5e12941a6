"""The demo clip `make demo` describes when the real sample is absent: a real smiling face and a spoken sentence.

The face is scikit-image's astronaut photograph (Eileen Collins, public domain, shipped inside scikit-image); the
voice is espeak-ng (a Debian package; the Makefile installs it). Both are real signals, not drawings: the face
detector, the expression model and the speech recogniser all have something true to read. Run as
`python -m affectgpt.perception.demo_clip OUT.mp4`; it writes nothing but OUT.mp4 (atomically).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from affectgpt.errors import InputError

SENTENCE = "I can't believe it, we won! This is the best day of my life."
FPS = 10
SIZE = 384


def speak(sentence: str, folder: Path) -> tuple[np.ndarray, int]:
    """`sentence` spoken by espeak-ng: float32 mono samples and their rate."""
    import wave

    if shutil.which("espeak-ng") is None:
        raise InputError("espeak-ng is not installed", field="espeak-ng",
                         fix="apt-get install espeak-ng (the Makefile's `speech` target does it as root)")
    wav = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), sentence], check=True,
                   capture_output=True)
    with wave.open(str(wav), "rb") as reader:  # espeak-ng writes 16-bit PCM mono
        rate, raw = reader.getframerate(), reader.readframes(reader.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0, int(rate)


def face_frames(seconds: float) -> np.ndarray:
    """The astronaut photograph, resized to SIZE, as `seconds * FPS` frames with a slow zoom (a moving camera)."""
    import cv2
    from skimage import data

    image = data.astronaut()
    frames = []
    count = max(1, round(seconds * FPS))
    for i in range(count):
        crop = int(image.shape[0] * (1.0 - 0.1 * i / count))
        frame = image[:crop, (image.shape[1] - crop) // 2:(image.shape[1] + crop) // 2]
        frames.append(cv2.resize(frame, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
    return np.stack(frames)


def make_demo_clip(path: str | Path, sentence: str = SENTENCE) -> Path:
    """Write the demo clip (H.264 video of the face, AAC audio of the sentence) to `path` and return it."""
    import av

    from affectgpt.io.atomic import atomic_write

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        samples, rate = speak(sentence, Path(tmp))
        seconds = len(samples) / rate + 0.5
        frames = face_frames(seconds)
        with atomic_write(path, "wb", encoding=None) as handle, av.open(handle, "w", format="mp4") as container:
            video = container.add_stream("libx264", rate=FPS)
            video.width = video.height = SIZE
            video.pix_fmt = "yuv420p"
            audio = container.add_stream("aac", rate=rate)
            audio.layout = "mono"
            for frame in frames:
                for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in video.encode():
                container.mux(packet)
            step = 1024
            for start in range(0, len(samples), step):
                chunk = samples[start:start + step].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate = rate
                frame.pts = start
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


if __name__ == "__main__":
    make_demo_clip(sys.argv[1] if len(sys.argv) > 1 else "demo-out/demo_clip.mp4")
