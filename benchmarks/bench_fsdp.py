"""What FSDP saves per process: DDP vs FSDP on 2 CPU processes (gloo), the same model and data, in one run.

Trains the multimodal tiny recipe (configs/tiny-cpu.yaml: generated clips, random frozen CLIP + HuBERT, feature
cache) with its LLM widened to a mid-size random Qwen2 (default 1024 wide, 12 layers: ~190M frozen parameters,
so the weights dominate each process's memory), once with `distributed: auto` (DDP) and once with
`distributed: fsdp`, each under torchrun with 2 processes. Prints, per process: the parameter memory it holds
after training (its shards under FSDP), its resident memory after training and at peak, and samples/s.
Timings never go into tests.

    .venv/bin/python benchmarks/bench_fsdp.py [--hidden 1024] [--layers 12] [--steps 6]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(args: argparse.Namespace) -> None:
    """One process of one run: trains, then writes a JSON file about itself (<output>/rank<N>.json)."""
    import torch
    from torch.distributed.tensor import DTensor

    from affectgpt.config import load_config
    from affectgpt.io.atomic import write_text
    from affectgpt.train.build import prepare
    from affectgpt.train.config import TrainConfig
    from affectgpt.train.loop import train

    torch.set_num_threads(1)
    llm = {"hidden_size": args.hidden, "intermediate_size": args.hidden * 11 // 4, "num_hidden_layers": args.layers,
           "num_attention_heads": 16, "num_key_value_heads": 4}
    overrides = [f"model.config.llm_config.{k}={v}" for k, v in llm.items()]
    overrides += [f"distributed={args.distributed}", f"schedule.total_steps={args.steps}", "schedule.warmup_steps=1",
                  "batch_size=2", "save_every=0", f"log_every={args.steps}", "progress=false"]
    cfg = load_config(ROOT / "configs" / "tiny-cpu.yaml", TrainConfig, overrides)
    kept = []

    def build(cfg: TrainConfig, output: Path):  # keep the parts: the trained model is sharded in place
        kept.append(prepare(cfg, output))
        return kept[-1]

    result = train(cfg, Path(args.output), parts=build)
    params = list(kept[0].model.parameters())
    local = sum((p.to_local() if isinstance(p, DTensor) else p).nbytes for p in params)
    gc.collect()
    with open("/proc/self/statm") as handle:
        rss_now = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    rank = int(os.environ.get("RANK", 0))
    row = {"rank": rank, "distributed": args.distributed,
           "params_whole_mib": sum(p.numel() * p.element_size() for p in params) / 2**20,
           "params_held_mib": local / 2**20, "rss_after_mib": rss_now / 2**20,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "samples_per_s": result.samples_per_second}
    # a file per rank: the processes share stdout, where two lines written at once can interleave
    write_text(Path(args.output) / f"rank{rank}.json", json.dumps(row))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args: argparse.Namespace, distributed: str, output: Path) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), __file__, "--child",
               "--distributed", distributed, "--output", str(output), "--hidden", str(args.hidden),
               "--layers", str(args.layers), "--steps", str(args.steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{distributed} run failed:\n{done.stderr[-3000:]}")
    return [json.loads((output / f"rank{rank}.json").read_text(encoding="utf-8")) for rank in (0, 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--distributed", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for mode in ("auto", "fsdp") for row in run(args, mode, Path(tmp) / mode)]
    whole = rows[0]["params_whole_mib"]
    print(f"2 CPU processes (gloo), LLM {args.hidden} wide x {args.layers} layers, model parameters "
          f"{whole:.0f} MiB (fp32), {args.steps} steps of global batch 4")
    print(f"{'run':<6}{'rank':>5}{'params held MiB':>17}{'RSS after MiB':>15}{'peak RSS MiB':>14}{'samples/s':>11}")
    for row in rows:
        name = "DDP" if row["distributed"] == "auto" else "FSDP"
        print(f"{name:<6}{row['rank']:>5}{row['params_held_mib']:>17.0f}{row['rss_after_mib']:>15.0f}"
              f"{row['peak_rss_mib']:>14.0f}{row['samples_per_s']:>11.2f}")
    ddp = sum(r["rss_after_mib"] for r in rows if r["distributed"] == "auto")
    fsdp = sum(r["rss_after_mib"] for r in rows if r["distributed"] == "fsdp")
    print(f"resident memory after training, both processes: DDP {ddp:.0f} MiB, FSDP {fsdp:.0f} MiB "
          f"({fsdp / ddp:.2f}x); peak RSS includes building the whole model before sharding")


if __name__ == "__main__":
    main()
