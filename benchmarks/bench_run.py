"""Benchmark `bench run`'s generation: preprocessing and the network overlap, so the total is near the slower stage.

A loopback OpenAI-compatible server (tests/support/llm_server.py) answers every request after a fixed latency
(`--latency`, default 0.2 s). Generated clips (PyAV, `--clips` of them, 3 s at 320x240, no audio) are decoded to
8 frames of 336 px and sent as JPEG images by the openai backend (no answer cache, no clip cache carried over).
For 1, 4 and 16 concurrent requests it measures, each alone and then together:

- `preprocess`: decoding every clip (harness.clips.load_clip_inputs, `--workers` threads), nothing sent;
- `network`: answering the already decoded clips (backend.answer, all at once);
- `run`: harness.generate.generate, the producer/consumer of `bench run` (decode into a bounded queue while the
  backend answers batches), wall time of the generation stage;

and prints clips/s of each, max(preprocess, network), preprocess + network, and run / max. Timings only.

    .venv/bin/python benchmarks/bench_run.py [--clips 48] [--latency 0.2] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))


def make_clips(folder: Path, n: int) -> list[Path]:
    from media_clips import frame_image, write_video

    rng = np.random.default_rng(0)
    clips = []
    for k in range(n):
        images = [np.clip(frame_image(i, 320, 240).astype(int) + rng.integers(-20, 20, (240, 320, 3)), 0, 255)
                  .astype(np.uint8) for i in range(30)]
        clips.append(write_video(folder / f"clip_{k:04d}.mp4", images=images, fps=10,
                                 video_options={"preset": "ultrafast", "crf": "23"}))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()

    from llm_server import FakeChatServer

    from affectgpt.harness.backends.openai import OpenAIMultimodal
    from affectgpt.harness.base import Job
    from affectgpt.harness.clips import load_clip_inputs
    from affectgpt.harness.generate import generate
    from affectgpt.harness.layout import Clip
    from affectgpt.harness.prompts import get_prompt

    prompt = get_prompt("emotion/v1")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        files = make_clips(folder, args.clips)
        print(f"{args.clips} clips written in {time.perf_counter() - began:.1f} s; latency {args.latency} s; "
              f"{args.workers} decode workers")
        server = FakeChatServer().start()
        server.add_fault("slow", delay=args.latency)
        try:
            print(f"{'concurrency':>11} {'preprocess':>12} {'network':>12} {'run':>12} {'max':>8} {'sum':>8} "
                  f"{'run/max':>8}")
            for concurrency in args.concurrency:
                backend = OpenAIMultimodal(server.base_url, "m", modalities=("image", "text"), n_frames=8, size=336,
                                           concurrency=concurrency, cache=False)
                def load(clip: Clip, needs: frozenset[str] = backend.needs):
                    return load_clip_inputs(clip.video, needs=needs, n_frames=8, size=336)

                clips = [Clip(p.stem, p) for p in files]
                began = time.perf_counter()
                with ThreadPoolExecutor(args.workers) as pool:
                    inputs = list(pool.map(load, clips))
                preprocess = time.perf_counter() - began
                began = time.perf_counter()
                backend.answer([Job(i, prompt) for i in inputs])
                network = time.perf_counter() - began
                out = folder / f"out-{concurrency}"
                _, report = generate(backend, clips, prompt, "description", out, load=load,
                                     batch_size=max(16, 2 * concurrency), queue_size=64, workers=args.workers)
                run = report.wall_seconds
                slower = max(preprocess, network)
                n = len(clips)
                print(f"{concurrency:>11} {n / preprocess:>8.1f} c/s {n / network:>8.1f} c/s {n / run:>8.1f} c/s "
                      f"{slower:>7.2f}s {preprocess + network:>7.2f}s {run / slower:>8.2f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
