"""Training throughput from the feature cache vs encoding on the fly, with the same tiny model, in one run.

Generates a synthetic dataset (affectgpt.tiny.clips.make_synthetic_dataset), then trains the tiny recipe
(configs/tiny-cpu.yaml, all modalities, raw-frame input) twice, each in its own child process so that peak
memory is its own: once reading media and encoding with the frozen encoders on every step, once from features
extracted beforehand (extraction timed separately). The encoders are the tiny random CLIP and HuBERT of
../shared/reference/fidelity/models when present, else the recipe's in-process `random` ones (override with
--visual-encoder / --audio-encoder, e.g. the real ones).
Prints samples/s, the speed-up and each run's peak resident memory; timings never go into tests.

    .venv/bin/python benchmarks/bench_training.py [--samples 24] [--steps 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "reference" / "fidelity" / "models"


def overrides(args: argparse.Namespace, data: Path, features: Path | None) -> list[str]:
    items = [f"data.manifest={data / 'manifest.jsonl'}", "data.synthetic=null", "data.task=hybrid",
             "model.config.modalities=[multi, audio, video, text]", "model.config.fusion=attention",
             "model.config.visual_input=frame", f"model.config.visual_encoder={args.visual_encoder}",
             f"model.config.audio_encoder={args.audio_encoder}", f"schedule.total_steps={args.steps}",
             "schedule.warmup_steps=2", f"batch_size={args.batch_size}", "save_every=0", "log_every=1000",
             "data.extract_features=false"]
    return [*items, f"data.features_dir={features}"] if features else items


def child(args: argparse.Namespace) -> None:
    """One timed training run; prints a JSON line."""
    import torch

    from affectgpt.config import load_config
    from affectgpt.train.config import TrainConfig
    from affectgpt.train.loop import train

    torch.set_num_threads(args.threads)
    features = Path(args.features) if args.features else None
    cfg = load_config(ROOT / "configs" / "tiny-cpu.yaml", TrainConfig, overrides(args, Path(args.data), features))
    result = train(cfg, Path(args.output))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples_per_s": result.samples_per_second, "seconds": result.seconds,
                      "peak_rss_mib": peak_mib, "final_loss": result.losses[-1]}))


def extract(args: argparse.Namespace, data: Path, out: Path) -> float:
    import torch

    from affectgpt.config import load_config
    from affectgpt.data.features import extract_features
    from affectgpt.data.manifests import read_manifest
    from affectgpt.model.encoders import ClipVisualEncoder, HubertAudioEncoder
    from affectgpt.tiny.random_init import RANDOM, random_audio_encoder, random_visual_encoder
    from affectgpt.train.config import TrainConfig

    torch.set_num_threads(args.threads)
    cfg = load_config(ROOT / "configs" / "tiny-cpu.yaml", TrainConfig, overrides(args, data, None))
    began = time.perf_counter()
    visual = random_visual_encoder(cfg.model_config, cfg.seed) if args.visual_encoder == RANDOM \
        else ClipVisualEncoder(args.visual_encoder)
    audio = random_audio_encoder(cfg.model_config, cfg.seed) if args.audio_encoder == RANDOM \
        else HubertAudioEncoder(args.audio_encoder)
    report = extract_features(read_manifest(data / "manifest.jsonl"), visual, audio, out, visual_input="frame")
    if report.failures:
        raise SystemExit(f"feature extraction failed: {report.failures[:3]}")
    return time.perf_counter() - began


def run_child(args: argparse.Namespace, mode: str, data: Path, work: Path, features: Path | None) -> dict:
    command = [sys.executable, __file__, "--child", "--data", str(data), "--output", str(work / mode),
               "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--threads", str(args.threads),
               "--visual-encoder", args.visual_encoder, "--audio-encoder", args.audio_encoder]
    if features is not None:
        command += ["--features", str(features)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    found = (MODELS / "tiny-clip").is_dir() and (MODELS / "tiny-hubert").is_dir()
    parser.add_argument("--visual-encoder", default=str(MODELS / "tiny-clip") if found else "random")
    parser.add_argument("--audio-encoder", default=str(MODELS / "tiny-hubert") if found else "random")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--features", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not all(e == "random" or Path(e).is_dir() for e in (args.visual_encoder, args.audio_encoder)):
        raise SystemExit(f"encoders not found ({args.visual_encoder}, {args.audio_encoder}): pass local folders "
                         "or random")
    from affectgpt.tiny.clips import make_synthetic_dataset

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_synthetic_dataset(work / "data", args.samples, seed=0).parent
        extraction = extract(args, data, work / "features")
        media = run_child(args, "media", data, work, None)
        cache = run_child(args, "cache", data, work, work / "features")
    print(f"tiny model, {args.samples} synthetic clips, {args.steps} steps x batch {args.batch_size}, "
          f"{args.threads} thread(s), CPU")
    for name, row in (("encode on the fly", media), ("feature cache", cache)):
        print(f"  {name:18} {row['samples_per_s']:8.1f} samples/s  peak RSS {row['peak_rss_mib']:7.0f} MiB  "
              f"({row['seconds']:.1f} s)")
    print(f"  speed-up: {cache['samples_per_s'] / media['samples_per_s']:.1f}x "
          f"(feature extraction, once: {extraction:.1f} s for {args.samples} clips)")
    # The full-size step from cached features (Qwen2.5-7B shapes, bf16) is timed by benchmarks/gpu_check.py.
    import torch

    if not torch.cuda.is_available():
        print("GPU: none visible to torch here: the full-size step time with the feature cache is not measured "
              "(benchmarks/gpu_check.py times it on a GPU)")


if __name__ == "__main__":
    main()
