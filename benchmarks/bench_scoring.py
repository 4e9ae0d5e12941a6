"""Time the whole scoring job on the reference data: every dataset x epoch, from the original files.

Runs `affectgpt bench suite` in a fresh process (start-up, imports, reading the wheel data, labels and
35 prediction files, scoring, rendering JSON) several times and prints wall time and samples/s.
Target (issue 2): <= 0.25 s for the whole job with the compiled wheel cache warm. The first run after a
cache wipe also compiles the spreadsheets; it is timed separately.

    .venv/bin/python benchmarks/bench_scoring.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def run_once(env: dict[str, str], out: Path) -> float:
    command = [sys.executable, "-m", "affectgpt", "bench", "suite",
               "--predictions-root", str(REFERENCE / "affectgpt-outputs"),
               "--labels-root", str(REFERENCE / "labels"),
               "--wheel-dir", str(REFERENCE / "emotion_wheel"), "--format", "json", "--output", str(out)]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if not REFERENCE.is_dir():
        print(f"skipped: reference data not found at {REFERENCE}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "AFFECTGPT_CACHE_DIR": str(Path(tmp) / "cache")}
        out = Path(tmp) / "suite.json"
        cold = run_once(env, out)
        warm = [run_once(env, out) for _ in range(args.repeat)]
        startup = [_time([sys.executable, "-c", "pass"], env) for _ in range(5)]
        suite = json.loads(out.read_text())
    results = suite["results"]
    samples = sum(e["diagnostics"]["samples"] for r in results.values() for e in r["epochs"])
    files = sum(len(r["epochs"]) for r in results.values())
    best, median = min(warm), statistics.median(warm)
    print(f"datasets scored: {len(results)} ({', '.join(results)}); prediction files: {files}; "
          f"samples scored: {samples}")
    print(f"cold run (compiles the wheel spreadsheets into the cache): {cold:.3f} s")
    print(f"warm runs x{len(warm)}: best {best:.3f} s, median {median:.3f} s "
          f"(target <= 0.250 s) -> {'OK' if median <= 0.25 else 'ABOVE TARGET'}")
    print(f"throughput (median): {samples / median:,.0f} samples/s including start-up")
    print(f"bare interpreter start-up for comparison: {min(startup):.3f} s")
    return 0


def _time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
