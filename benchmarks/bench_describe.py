"""Latency of the perception pipeline: one clip end to end on ONE CPU core, each stage timed, peak memory printed.

    python benchmarks/bench_describe.py [--runs 5] [CLIP ...]

Default clips: the real MER sample (../shared/reference/media/sample_00000000.mp4, 3.5 s, Chinese speech) when
present, and the demo clip (scikit-image's astronaut + espeak-ng, ~4.6 s; made here when espeak-ng is
installed). The process pins itself to one core and one thread per library before numpy loads. After one
warm-up run (models loaded, caches filled) each clip is described `--runs` times; the median per stage is
printed. Target (issue 15): <= 2 s end to end after warm-up.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "reference" / "media" / "sample_00000000.mp4"
TARGET_SECONDS = 2.0


def default_clips(folder: Path) -> list[Path]:
    clips = [SAMPLE] if SAMPLE.is_file() else []
    try:
        from affectgpt.perception.demo_clip import make_demo_clip

        clips.append(make_demo_clip(folder / "demo_clip.mp4"))
    except Exception as exc:  # espeak-ng or scikit-image missing: say so, measure what there is
        print(f"(demo clip not made: {exc})")
    return clips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from affectgpt.perception.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        clips = args.clips or default_clips(Path(tmp))
        if not clips:
            print("no clip to measure")
            return 1
        began = time.perf_counter()
        pipeline = Pipeline(threads=1)
        print(f"cores: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}, "
              f"pipeline built in {time.perf_counter() - began:.2f} s (models loaded)")
        for clip in clips:
            began = time.perf_counter()
            pipeline.describe(clip)  # warm-up (the first clip also loads the models that load on first use)
            print(f"\n{clip.name}: warm-up call {time.perf_counter() - began:.2f} s")
            runs = [pipeline.describe(clip) for _ in range(args.runs)]
            stages = list(runs[0].timings)
            medians = {s: statistics.median(r.timings[s] for r in runs) for s in stages}
            answer = runs[-1]
            print(f"{clip.name}: labels {answer.labels}, sentiment {answer.sentiment}, flags {answer.flags}")
            print("  " + "  ".join(f"{s} {medians[s]:.3f} s" for s in stages))
            verdict = "PASS" if medians["total"] <= TARGET_SECONDS else "MISS"
            print(f"  end to end (median of {args.runs}): {medians['total']:.2f} s  [target <= {TARGET_SECONDS} s: "
                  f"{verdict}]")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS): {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
