"""Benchmark `affectgpt caption run` with the offline config: clips/s per stage, local and Ray, 1 and 2 workers.

Clips: `--clips` generated ones (PyAV, 3 s at 320x240 with a 220 Hz tone; no face, so the visual stage reads no
crops) plus `--sample-copies` copies of the real sample (../shared/reference/media/sample_00000000.mp4, a face
and speech) when it is there. Each configuration runs from an empty output folder (model loading per worker is
part of the first clip's stage time; Ray's start-up is part of the wall time).

Per stage it prints `s/clip` (stage seconds per clip, inside a worker), `clips/s` (clips over the stage's wall
time: the wall of its segment shared by busy time, engine.RunSummary.wall_seconds), and the end-to-end clips/s.

The filters (`--filters`, on by default): one more local x1 run with every filter on (length tails, the
speaker-mismatch `sync` detector, the high-level vote with the perception `text` and `face` voters, checks E+S;
generated clips get subtitles so the text voter reads something), whose lowlevel and highlevel stage rows are
printed, then each filter alone: the sync detector per clip (generated clips and sample copies apart; the first
call builds the detector and is left out), the high-level stage per clip on the run's records, and the length tails
(prepare over every record, then the per-record decision).

    .venv/bin/python benchmarks/bench_caption.py [--clips 8] [--sample-copies 4] [--executors local ray]
        [--no-filters]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
SAMPLE = ROOT.parent / "shared" / "reference" / "media" / "sample_00000000.mp4"


def make_clips(folder: Path, n: int, copies: int) -> list[tuple[str, Path]]:
    from media_clips import frame_image, tone, write_video

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    clips = []
    for k in range(n):
        images = [np.clip(frame_image(i, 320, 240).astype(int) + rng.integers(-20, 20, (240, 320, 3)), 0, 255)
                  .astype(np.uint8) for i in range(30)]
        path = write_video(folder / f"gen_{k:04d}.mp4", images=images, fps=10,
                           audio=tone([220.0 + 20 * k], 3.0, 16000))
        clips.append((path.stem, path))
    if SAMPLE.is_file():
        for k in range(copies):
            path = folder / f"sample_{k:04d}.mp4"
            shutil.copy(SAMPLE, path)
            clips.append((path.stem, path))
    return clips


def run_one(clips, executor: str, workers: int, root: Path):
    from affectgpt.caption.config import load_caption_config
    from affectgpt.caption.engine import run_caption

    config = load_caption_config(None, [f"executor={executor}", f"workers={workers}"])
    out = root / f"{executor}-{workers}"
    start = time.perf_counter()
    summary = run_caption(clips, config, out)
    return summary, time.perf_counter() - start


FILTERS = {"executor": "local", "workers": 1, "stages": {
    "lowlevel": {"length_tails": {"enabled": True, "mode": "zscore", "k": 2.0},
                 "speaker_mismatch": {"enabled": True, "detector": "sync", "threshold": 0.35}},
    "highlevel": {"enabled": True, "checks": "E+S", "voters": [{"kind": "text"}, {"kind": "face"}]}}}
LINES = ("I am so happy today, this is wonderful news!", "This is terrible, I hate it and I am furious with you.",
         "I do not know, maybe we can talk about it tomorrow.")


def _rate(n: int, seconds: float) -> str:
    return f"{n:>4} clips {seconds:>8.3f} s {seconds / n if n else float('nan'):>8.4f} s/clip " \
           f"{n / seconds if seconds > 0 else float('nan'):>8.1f} clips/s"


def bench_filters(clips, root: Path) -> None:
    """The filters' clips/s: in a run with all of them on, then each alone (see the module docstring)."""
    import json

    from affectgpt.caption.base import StageContext
    from affectgpt.caption.config import load_caption_config
    from affectgpt.caption.engine import run_caption
    from affectgpt.caption.speaker import DETECTORS
    from affectgpt.caption.stages import STAGES
    from affectgpt.caption.store import read_records

    (root / "filters.yaml").write_text(json.dumps(FILTERS))  # JSON is YAML
    subtitles = root / "subtitles.csv"
    subtitles.write_text("name,chinese,english\n" + "".join(
        f'{name},,"{LINES[k % len(LINES)]}"\n' for k, (name, _) in enumerate(clips) if name.startswith("gen_")))
    config = load_caption_config(root / "filters.yaml", [f"stages.subtitle.subtitles={subtitles}"])
    out = root / "filters"
    start = time.perf_counter()
    summary = run_caption(clips, config, out)
    wall = time.perf_counter() - start
    reasons = {}
    for record in read_records(out):
        if record["dropped"]:
            key = f"{record['dropped']['stage']}:{record['dropped']['reason'].split(':')[0]}"
            reasons[key] = reasons.get(key, 0) + 1
    print(f"\nfilters: local x1 run with every filter on: {len(clips)} clips in {wall:.1f} s "
          f"({len(clips) / wall:.2f} clips/s end-to-end), {summary.kept} kept; dropped {reasons}")
    for stage in ("lowlevel", "highlevel"):
        stats = summary.stages[stage]
        print(f"  {stage + ' stage (in the run)':<40} {_rate(stats.ran, stats.seconds)}")

    detector = DETECTORS.get("sync")()
    detector(clips[0][1])  # builds the face and speech models once
    for kind in ("gen_", "sample_"):
        chosen = [path for name, path in clips if name.startswith(kind)]
        if not chosen:
            continue
        start = time.perf_counter()
        decisions = [detector(path).decision for path in chosen]
        label = f"speaker sync ({'generated' if kind == 'gen_' else 'real sample copies'})"
        print(f"  {label:<40} {_rate(len(chosen), time.perf_counter() - start)}  "
              f"{dict(sorted({d: decisions.count(d) for d in decisions}.items()))}")

    records = read_records(out)
    fields = [{**r["fields"], "name": r["name"]} for r in records]
    high = STAGES.get("highlevel")()
    section = config.section("highlevel")
    reached = [f for f, r in zip(fields, records, strict=True) if "highlevel" in r["stages"]]
    context = StageContext(config=section, output=out, params={})
    if reached:
        high(reached[0], context)  # loads the voters and the extractor once
        start = time.perf_counter()
        for item in reached:
            high(item, context)
        print(f"  {'highlevel (text + face voters), alone':<40} {_rate(len(reached), time.perf_counter() - start)}")

    low = STAGES.get("lowlevel")()
    tails = {"length_tails": {"enabled": True, "k": 2.0}, "speaker_mismatch": {"enabled": False}}
    many = fields * max(1, 1000 // max(1, len(fields)))  # enough records to time
    start = time.perf_counter()
    params = low.prepare(many, tails)
    context = StageContext(config=tails, output=out, params=params)
    dropped = sum(1 for item in many if low(item, context).dropped)
    print(f"  {'length tails (zscore k=2), alone':<40} {_rate(len(many), time.perf_counter() - start)}  "
          f"{dropped} dropped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="generated clips (default 8)")
    parser.add_argument("--sample-copies", type=int, default=4, help="copies of the real sample (default 4)")
    parser.add_argument("--executors", nargs="+", default=["local", "ray"], choices=("local", "ray"))
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--filters", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the filters (default on)")
    args = parser.parse_args()
    if "ray" in args.executors and importlib.util.find_spec("ray") is None:
        print("ray is not installed: local only (pip install 'affectgpt[caption-ray]')")
        args.executors = [e for e in args.executors if e != "ray"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = make_clips(root / "clips", args.clips, args.sample_copies)
        print(f"{len(clips)} clips ({args.clips} generated, {len(clips) - args.clips} copies of the real sample)")
        results = []
        for executor in args.executors:
            for workers in args.workers:
                summary, wall = run_one(clips, executor, workers, root)
                results.append((executor, workers, summary, wall))
                print(f"  {executor} x{workers}: {wall:.1f} s, {summary.kept} kept", flush=True)
        header = f"{'stage':<10}" + "".join(f"{f'{e} x{w}':>22}" for e, w, _, _ in results)
        print("\nper stage: s/clip inside a worker | clips/s over the stage's wall time")
        print(header)
        for stage in results[0][2].stages:
            cells = []
            for _, _, summary, _ in results:
                stats = summary.stages[stage]
                per_clip = stats.seconds / stats.ran if stats.ran else float("nan")
                wall = summary.wall_seconds.get(stage) or 0.0
                rate = stats.ran / wall if wall > 0 else float("nan")
                cells.append(f"{per_clip:>9.3f} | {rate:>9.1f}")
            print(f"{stage:<10}" + "".join(f"{c:>22}" for c in cells))
        print(f"{'end-to-end':<10}" + "".join(f"{f'{len(clips) / wall:.2f} clips/s':>22}"
                                              for _, _, _, wall in results))
        if args.filters:
            bench_filters(clips, root)


if __name__ == "__main__":
    main()
