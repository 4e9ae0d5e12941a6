"""`affectgpt serve` throughput: requests/s and latency p50/p95 of POST /v1/describe (perception backend) with
1, 4 and 16 concurrent clients on loopback; each level sends a bounded number of requests.

Run: python benchmarks/bench_serve.py [--requests 32] [--workers 1] [--clip FILE]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def _clip(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
    from media_clips import tone, write_video

    return write_video(folder / "bench.mp4", n_frames=30, fps=10, audio=tone([220.0], 3.0, 16000),
                       video_options={"crf": "28", "preset": "ultrafast"})


def _serve(workers: int, queue: int):
    import uvicorn

    from affectgpt.serve.app import create_app
    from affectgpt.serve.settings import Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(workers=workers, queue_size=queue, port=port)),
                                           host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=32, help="requests per concurrency level")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clip", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clip = args.clip or _clip(Path(folder))
        data = clip.read_bytes()
        url, server = _serve(args.workers, queue=64)
        with httpx.Client(timeout=300) as warm:
            warm.post(url + "/v1/describe", files={"video": ("c.mp4", data)}, data={"subtitle": "warm up"})
        print(f"clip {clip.name} ({len(data) / 1024:.0f} KiB), workers {args.workers}, {args.requests} requests "
              "per level")
        print(f"{'clients':>7} {'req/s':>7} {'p50 s':>7} {'p95 s':>7} {'errors':>6}")
        for clients in (1, 4, 16):
            latencies, errors = [], 0

            def one(i: int, latencies=latencies) -> None:
                nonlocal errors
                began = time.perf_counter()
                with httpx.Client(timeout=300) as client:
                    r = client.post(url + "/v1/describe", files={"video": ("c.mp4", data)},
                                    data={"subtitle": f"request {i}"})
                latencies.append(time.perf_counter() - began)
                errors += r.status_code != 200

            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(one, range(args.requests)))
            wall = time.perf_counter() - start
            p50, p95 = np.percentile(latencies, [50, 95])
            print(f"{clients:>7} {args.requests / wall:>7.2f} {p50:>7.3f} {p95:>7.3f} {errors:>6}")
        server.should_exit = True


if __name__ == "__main__":
    main()
