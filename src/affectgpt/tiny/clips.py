"""The synthetic clips of the tiny recipe: short generated videos with tone audio and targets that follow from them.

`make_synthetic_dataset(folder, n)` writes the clips and their manifest (configs/tiny-cpu.yaml, the tests and the
benchmarks train on it); nothing is downloaded.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.errors import InputError

SYNTHETIC = (
    # emotion, secondary label, background RGB, intense tone Hz, subtitle
    ("happy", "excited", (230, 200, 60), 660.0, "This is the best day ever, I can't stop smiling."),
    ("sad", "disappointed", (60, 80, 160), 220.0, "I really thought it would work out this time."),
    ("angry", "annoyed", (200, 40, 40), 770.0, "How many times do I have to tell you?"),
    ("worried", "nervous", (120, 120, 90), 260.0, "What if they never call back?"),
    ("surprise", "curious", (60, 190, 190), 880.0, "Wait, you did all of this for me?"),
    ("neutral", None, (128, 128, 128), 550.0, "The meeting is at three, in the usual room."),
)
CALM_TONE = 440.0  # a "middle" voice: the emotion without its secondary label


def make_synthetic_dataset(folder: str | Path, n: int, *, seed: int = 0, size: int = 64, fps: int = 10) -> Path:
    """Write `n` tiny clips and `<folder>/manifest.jsonl`; returns the manifest path.

    Clip i (`synth_0000i`) is 1-2 s of `size`x`size` video at `fps` (a background colour and a moving square per
    emotion) with an AAC tone. Each run of 12 clips holds every emotion once with each voice, in an order
    shuffled by `seed`; length and pitch jitter are drawn from (seed, i). The targets are a function of what the
    model is shown, so identical inputs never have different answers: the emotion follows from the subtitle and
    the background colour; the voice is either the emotion's intense tone (high or low pitch, +-2%) and then the
    labels add the emotion's secondary label, or a calm middle tone (440 Hz +-2%) and then they do not, so the
    secondary label can only be read from the audio. The description names the cues and the labels (a reason,
    then "Therefore, the person may feel ..."). Existing clips are rewritten.
    """
    import av

    if n < 1:
        raise InputError(f"n must be >= 1, got {n}", field="n", fix="ask for at least one clip")
    folder = Path(folder)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    kinds = [(row, calm) for row in SYNTHETIC for calm in (False, True)]
    random.Random(f"affectgpt-synthetic:{seed}").shuffle(kinds)
    lines = []
    for i in range(n):
        rng = random.Random(f"affectgpt-synthetic:{seed}:{i}")
        (emotion, secondary, colour, intense, subtitle), calm = kinds[i % len(kinds)]
        pitch = CALM_TONE if calm else intense
        seconds = round(1.0 + rng.random(), 1)
        name = f"synth_{i:05d}"
        video = folder / "clips" / f"{name}.mp4"
        _write_clip(av, video, colour, pitch * (1 + 0.02 * rng.uniform(-1, 1)), seconds, size, fps)
        labels = [emotion] + ([secondary] if secondary and _pitch_word(pitch) != "middle" else [])
        description = (f"The background is {_colour_word(colour)} and the voice holds a {_pitch_word(pitch)} tone. "
                       f"The subtitle says \"{subtitle}\" Therefore, the person may feel {' and '.join(labels)}.")
        lines.append(json.dumps({"name": name, "video": f"clips/{name}.mp4", "subtitle": subtitle,
                                 "description": description, "labels": labels}, ensure_ascii=False))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def _colour_word(colour: tuple[int, int, int]) -> str:
    return {(230, 200, 60): "bright yellow", (60, 80, 160): "dark blue", (200, 40, 40): "red",
            (120, 120, 90): "murky olive", (60, 190, 190): "light cyan"}.get(colour, "grey")


def _pitch_word(pitch: float) -> str:
    return "high" if pitch > 600 else "low" if pitch < 300 else "middle"


def _write_clip(av: Any, path: Path, colour: tuple[int, int, int], pitch: float, seconds: float, size: int,
                fps: int) -> None:
    n_frames = max(1, round(seconds * fps))
    rate = 16000
    t = np.arange(round(seconds * rate)) / rate
    audio = (0.4 * np.sin(2 * np.pi * pitch * t)).astype(np.float32)[None]
    side = max(2, size // 4)
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "18"})
        stream.height = stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        sound = container.add_stream("aac", rate=rate)
        sound.layout = "mono"
        for i in range(n_frames):
            image = np.empty((size, size, 3), np.uint8)
            image[:] = colour
            x = (3 * i) % max(1, size - side)
            image[size // 2 - side // 2: size // 2 + side // 2, x:x + side] = (250, 250, 250)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round(Fraction(i, fps) / time_base)
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        frame = av.AudioFrame.from_ndarray(audio, format="fltp", layout="mono")
        frame.sample_rate = rate
        container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
