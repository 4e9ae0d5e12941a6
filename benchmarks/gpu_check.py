"""Full-size figures on a GPU in one run: bf16 training step, batched generation as `predict` runs it, FSDP over NCCL.

Everything runs on random weights of the released architecture built from configs (Qwen2.5-7B shapes with LoRA r 16,
CLIP ViT-L/14 and HuBERT-large for generation); nothing is downloaded. Sections:

- training: the trainer's own step (train/loop.py `train_step`, with make_accelerator / make_optimizer /
  make_scheduler, dtypes set by train/build.py `set_dtypes`: frozen weights bfloat16, trained float32, AdamW, bf16
  autocast) on feature-cache batches (random [8, 768] / [8, 1024] features, collated by data/collate.py) at a few
  batch sizes (the released recipe trains 3 per GPU): step time, tokens/s, MFU, peak memory. Each sample is
  --seq tokens (default 512: the prompt, ~120 Qwen tokens with a subtitle, plus the hybrid target; a batch is
  padded to its longest sample, a description of a few hundred tokens; an estimate, not measured on MER-Caption+).
- generation: infer/describe.py `answer` (what `predict` calls per batch: prompts built and left-padded, frozen
  encoders on raw [8, 224, 224, 3] faces and [8, 32000] audio, greedy generate) on the whole model in bfloat16, with
  exactly --new-tokens new tokens per clip (min = max new tokens), at a few batch sizes; tokens/s and the projected
  time of predicting all nine MER-UniBench test sets (bench/datasets.py sizes) with both prompts (TASKS).
- fsdp: with 2 or more GPUs, 2 processes (torchrun, NCCL) train the released architecture with `distributed: fsdp`
  through train/loop.py `train`: parameters held per rank vs whole, and save/resume equality (3 steps straight vs
  2 steps, a checkpoint, a resume and the 3rd step: same loss, same trained weights). Otherwise skipped, saying why.

MFU = (tokens per step x FLOPs per token) / step time / peak bf16 FLOP/s. FLOPs per token (model/summary.py
`train_flops_per_token`): 6 N_trained + 4 N_frozen + 12 L S d, where N_trained = LoRA weights (forward, gradient
wrt activations, gradient wrt weights: 3 matmuls of 2 FLOPs per weight), N_frozen = the other Linear weights of the
LLM, lm_head included (forward and gradient wrt activations, needed down to the first layer because LoRA and the
fusion modules below need it), L layers, S tokens, d = heads x head_dim (attention scores QK^T and AV: 4 L S d
forward, twice that backward, over the full S, no causal halving). Embedding lookup, norms, elementwise ops and the
per-sample poolers/fusion are left out. The peak comes from PEAK_TFLOPS by GPU name, or --peak-tflops.

Prints a table, then ONE JSON object as the last line of stdout (also written to --json PATH). Each section stops
at its time budget and says so, and an out-of-memory at one batch size is recorded and the next one tried; the whole
run takes a few minutes on one H100 (under 8). --quick runs the same code on CPU with tiny configs (FSDP over gloo).

    .venv/bin/python benchmarks/gpu_check.py [--quick] [--json out.json] [--peak-tflops 989] [--seq 512]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from affectgpt.model.config import PRESETS, ModelConfig

ROOT = Path(__file__).resolve().parents[1]
PEAK_TFLOPS = (("GH200", 989.0), ("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0),
               ("H800", 989.0), ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0),
               ("L40", 181.0), ("A6000", 155.0), ("L4", 121.0), ("A10", 125.0))
"""Dense bf16 tensor-core peak, TFLOP/s, by a part of torch.cuda.get_device_name() (first match wins)."""
TINY_LLM = {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 1024,
            "tie_word_embeddings": False}
TINY_CLIP = {"model_type": "clip", "projection_dim": 16,
             "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                               "num_attention_heads": 4, "image_size": 224, "patch_size": 32},
             "text_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                             "num_attention_heads": 2, "vocab_size": 64, "max_position_embeddings": 16,
                             "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}}
TINY_HUBERT = {"model_type": "hubert", "hidden_size": 24, "intermediate_size": 48, "num_hidden_layers": 1,
               "num_attention_heads": 2, "feat_extract_norm": "layer", "do_stable_layer_norm": True,
               "conv_bias": True, "conv_dim": [8] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2],
               "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}
PROMPT_TOKENS = 120  # training samples: [bos] + prompt (placeholders at 5, 10, 15), then the target
FULL = {"train_batches": (1, 3, 6), "gen_batches": (1, 4, 16, 64), "warmup": 2, "steps": 5, "seq": 512,
        "new_tokens": 256, "budgets": {"training": 120, "generation": 150, "fsdp": 150}}
QUICK = {"train_batches": (1, 3), "gen_batches": (1, 3), "warmup": 1, "steps": 2, "seq": 64,
         "new_tokens": 6, "budgets": {"training": 30, "generation": 30, "fsdp": 60}}


def model_config(quick: bool) -> ModelConfig:
    """The released configuration; with `quick` its LLM and encoders shrunk (widths read off the tiny encoders)."""
    if not quick:
        return PRESETS["released"]
    return replace(PRESETS["released"], llm_config=TINY_LLM, llm_dim=64, visual_dim=16, audio_dim=24, fusion_dim=24,
                   visual_config=TINY_CLIP, audio_config=TINY_HUBERT)


def build_model(cfg: ModelConfig, device: torch.device, ids: dict[str, int], *, encoders: bool = False):
    """AffectGPT with a random LLM (LoRA) built on `device`, frozen weights bfloat16 and trained ones float32 as
    train/build.py sets them; with `encoders`, the random frozen CLIP and HuBERT of tiny/random_init.py."""
    from affectgpt.model.affectgpt import AffectGPT
    from affectgpt.model.lm import build_llm_from_config
    from affectgpt.tiny.random_init import random_audio_encoder, random_visual_encoder
    from affectgpt.train.build import set_dtypes

    with torch.device(device):
        llm = build_llm_from_config(cfg, device=device, dtype=torch.bfloat16)
        visual = random_visual_encoder(cfg, 0) if encoders else None
        audio = random_audio_encoder(cfg, 0) if encoders else None
        model = AffectGPT(cfg, llm, ids, visual_encoder=visual, audio_encoder=audio)
    set_dtypes(model, torch.bfloat16)
    return model


def placeholder_ids(cfg: ModelConfig) -> dict[str, int]:
    vocab = cfg.llm_config["vocab_size"]
    return {name: vocab - 5 + i for i, name in enumerate(("image", "audio", "frame", "face", "multi"))}


class FeatureSamples:
    """Training items as affectgpt.data's TrainingDataset gives them from a feature cache: `seq` ids with the
    placeholders in the prompt, labels on the target, random visual / audio features; item i is always the same."""

    def __init__(self, cfg: ModelConfig, n: int, seq: int) -> None:
        self.cfg, self.n, self.seq, self.ids = cfg, n, seq, placeholder_ids(cfg)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from affectgpt.model.prompt import IGNORE

        gen = torch.Generator().manual_seed(index)
        ids = torch.randint(10, self.cfg.llm_config["vocab_size"] - 10, (self.seq,), generator=gen)
        ids[0] = 1
        for position, kind in ((5, "multi"), (10, "audio"), (15, self.cfg.visual_input)):
            ids[position] = self.ids[kind]
        labels = ids.clone()
        labels[:min(PROMPT_TOKENS, self.seq // 2)] = IGNORE
        return {"input_ids": ids, "labels": labels,
                "visual_features": torch.randn(self.cfg.n_frames, self.cfg.visual_dim, generator=gen),
                "audio_features": torch.randn(self.cfg.n_audio_clips, self.cfg.audio_dim, generator=gen)}


def train_config(**top):
    """A TrainConfig as configs/released.yaml (bf16, base_dtype bfloat16, AdamW, clipping) with `top` replaced."""
    from affectgpt.config import build_config
    from affectgpt.train.config import TrainConfig

    data = {"model": {"preset": "released", "base_dtype": "bfloat16"}, "precision": "bf16", "batch_size": 3,
            "schedule": {"warmup_steps": 0, "total_steps": 1000, "min_lr_ratio": 1.0}, "max_grad_norm": 1.0,
            "optimiser": {"lr": 1e-5, "weight_decay": 0.05}, "seed": 0, "progress": False, "save_every": 0}
    return build_config(TrainConfig, data, overrides=[f"{k}={v}" for k, v in top.items()])


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Memory:
    """Peak memory of a measured part: CUDA's max allocated (reset per part), or the process's peak RSS on CPU."""

    kind = "cuda max_memory_allocated" if torch.cuda.is_available() else "CPU peak RSS of the process so far"

    @staticmethod
    def reset() -> None:
        if torch.cuda.is_available():
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    @staticmethod
    def peak_gib() -> float:
        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 2**30
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_training(cfg: ModelConfig, plan: dict, seq: int, peak_tflops: float | None, deadline: float) -> dict:
    """The trainer's step at each batch size: warm-up steps, then timed steps."""
    from affectgpt.data.collate import collate_batch
    from affectgpt.model.summary import train_flops_per_token
    from affectgpt.train.accelerator import make_accelerator
    from affectgpt.train.loop import train_step
    from affectgpt.train.optim import make_optimizer, make_scheduler

    train_cfg = train_config()
    accelerator = make_accelerator(train_cfg)
    model = build_model(cfg, accelerator.device, placeholder_ids(cfg)).train()
    optimizer = make_optimizer(model, train_cfg.optimiser)
    scheduler = make_scheduler(optimizer, train_cfg.schedule, train_cfg.schedule.total_steps)
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    flops = train_flops_per_token(cfg, seq)
    data = FeatureSamples(cfg, max(plan["train_batches"]), seq)
    section = {"seq_len": seq, "prompt_tokens": min(PROMPT_TOKENS, seq // 2), "precision": train_cfg.precision,
               "frozen_dtype": "bfloat16", "trained_dtype": "float32", "optimizer": "AdamW (train/optim.py)",
               "flops_per_token": flops, "memory": Memory.kind, "runs": []}
    for size in plan["train_batches"]:
        if time.monotonic() > deadline:
            section["stopped"] = f"time budget reached before batch {size}"
            break
        Memory.reset()
        batch = collate_batch([data[i] for i in range(size)], pad_id=0)
        try:
            losses = [train_step(wrapped, [batch], optimizer, scheduler, accelerator, train_cfg.max_grad_norm)
                      for _ in range(plan["warmup"])]
            sync()
            start = time.perf_counter()
            losses += [train_step(wrapped, [batch], optimizer, scheduler, accelerator, train_cfg.max_grad_norm)
                       for _ in range(plan["steps"])]
            sync()
            step_s = (time.perf_counter() - start) / plan["steps"]
        except Exception as exc:  # an out-of-memory at one size is a figure too; anything else is a failure
            if not is_oom(exc):
                raise
            optimizer.zero_grad(set_to_none=True)
            section["runs"].append({"batch": size, "error": "out of memory"})
            Memory.reset()
            continue
        tokens = size * seq
        mfu = tokens * flops["total"] / step_s / (peak_tflops * 1e12) if peak_tflops else None
        section["runs"].append({"batch": size, "tokens_per_step": tokens, "steps_timed": plan["steps"],
                                "step_s": step_s, "tokens_per_s": tokens / step_s, "samples_per_s": size / step_s,
                                "mfu": mfu, "peak_memory_gib": Memory.peak_gib(),
                                "losses_finite": all(math.isfinite(x) for x in losses)})
    del wrapped, optimizer, model
    accelerator.free_memory()
    return section


def bench_generation(cfg: ModelConfig, plan: dict, deadline: float) -> dict:
    """infer/describe.py `answer` on random clips at each batch size, exactly plan["new_tokens"] new tokens each."""
    import numpy as np

    from affectgpt.bench.datasets import DATASETS
    from affectgpt.infer.describe import TASKS, Generation, answer
    from affectgpt.media.inputs import ModelInputs
    from affectgpt.model.lm import placeholder_ids as tokenizer_ids
    from affectgpt.model.prompt import PLACEHOLDER_NAMES, QUESTIONS, prompt_for
    from affectgpt.tiny.tokenizer import build_word_tokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(200)]
    subtitle = " ".join(rng.choice(words, 30))  # ~ a MER subtitle
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = build_word_tokenizer([prompt_for(cfg, q, " ".join(words)) for q in QUESTIONS.values()], folder)
    ids = {PLACEHOLDER_NAMES[token]: i for token, i in tokenizer_ids(tokenizer).items()}
    model = build_model(cfg, device, ids, encoders=True).to(torch.bfloat16).eval()  # as load_model(dtype=bf16)
    new_tokens, made = plan["new_tokens"], []
    generate = model.generate

    def fixed_length(batch, **options):  # min = max new tokens, so every clip gets exactly that many
        out = generate(batch, **{**options, "min_new_tokens": options["max_new_tokens"]})
        made.append(tuple(out.shape))
        return out

    model.generate = fixed_length
    total = sum(spec.size for spec in DATASETS.values())
    section = {"new_tokens": new_tokens, "dtype": "bfloat16", "decoding": "greedy", "memory": Memory.kind,
               "prompt_tokens": len(tokenizer(prompt_for(cfg, QUESTIONS["description"], subtitle))["input_ids"]) + 1,
               "runs": []}
    for size in plan["gen_batches"]:
        if time.monotonic() > deadline:
            section["stopped"] = f"time budget reached before batch {size}"
            break
        clips = [ModelInputs(f"c{i}", rng.integers(0, 256, (cfg.n_frames, 224, 224, 3), dtype=np.uint8),
                             rng.standard_normal((cfg.n_audio_clips, 32000)).astype(np.float32), subtitle, "random")
                 for i in range(size)]
        Memory.reset()
        try:
            answer(model, tokenizer, clips, generation=Generation(max_new_tokens=2))  # warm-up
            sync()
            made.clear()
            start = time.perf_counter()
            texts = answer(model, tokenizer, clips, generation=Generation(max_new_tokens=new_tokens))
            sync()
            seconds = time.perf_counter() - start
        except Exception as exc:
            if not is_oom(exc):
                raise
            section["runs"].append({"batch": size, "error": "out of memory"})
            Memory.reset()
            continue
        tokens = made[0][0] * made[0][1]
        section["runs"].append({"batch": size, "answers": len(texts), "new_tokens_shape": list(made[0]),
                                "seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
                                "clips_per_s": size / seconds, "peak_memory_gib": Memory.peak_gib()})
    done = [run for run in section["runs"] if "tokens_per_s" in run]
    if done:
        best = max(done, key=lambda run: run["tokens_per_s"])
        tokens = total * len(TASKS) * new_tokens
        seconds = tokens / best["tokens_per_s"]
        section["projection"] = {"clips": total, "prompts": list(TASKS), "new_tokens": new_tokens,
                                 "batch": best["batch"], "tokens": tokens, "tokens_per_s": best["tokens_per_s"],
                                 "seconds": seconds, "hours": seconds / 3600}
    del model
    return section


def bench_fsdp(quick: bool, seq: int, budget: float) -> dict:
    """2 processes under torchrun (NCCL on 2 GPUs, gloo on CPU with --quick) running `fsdp_child`."""
    gpus = torch.cuda.device_count()
    if gpus < 2 and not quick:
        return {"skipped": f"{gpus} GPU{'s' if gpus != 1 else ''}: FSDP needs 2"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    if quick:
        env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                   "127.0.0.1", "--master-port", str(port), __file__, "--fsdp-child", tmp, "--seq", str(seq)]
        if quick:
            command.append("--quick")
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=budget, check=False)
        except subprocess.TimeoutExpired:
            return {"error": f"stopped at its time budget of {budget:.0f} s"}
        if done.returncode != 0:
            return {"error": f"exit {done.returncode}", "stderr_tail": done.stderr[-2000:]}
        # one file per rank: the two processes share stdout, where their lines could interleave
        rows = [json.loads((Path(tmp) / f"rank{rank}.json").read_text(encoding="utf-8")) for rank in (0, 1)]
    result = {"processes": 2, "backend": "gloo" if quick else "nccl", "params_whole": rows[0]["whole"],
              "params_per_rank": [row["local"] for row in rows]}
    result.update({k: v for k, v in rows[0].items() if k not in ("rank", "local", "whole")})
    return result


def fsdp_child(folder: Path, quick: bool, seq: int) -> None:
    """One process: 3 steps straight; 2 steps, checkpoint, resume, 3rd step; compare (rank 0 prints the verdict)."""
    from safetensors.torch import load_file
    from torch.distributed.tensor import DTensor

    from affectgpt.data.collate import collate_batch
    from affectgpt.train.build import TrainParts
    from affectgpt.train.loop import train

    cfg = model_config(quick)
    held = []

    def parts(train_cfg, output):  # the trainer seeds torch first: every process builds the same weights
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if torch.cuda.is_available() else "cpu"
        held[:] = [build_model(cfg, device, placeholder_ids(cfg))]
        return TrainParts(held[0], None, FeatureSamples(cfg, 8, seq), lambda items: collate_batch(items, pad_id=0))

    train_cfg = train_config(distributed="fsdp", batch_size=1, **{"schedule.total_steps": 3, "optimiser.lr": 1e-4})
    straight = train(train_cfg, folder / "straight", parts=parts)
    train(train_cfg, folder / "resumed", parts=parts, until=2)
    resumed = train(train_cfg, folder / "resumed", parts=parts, resume=True)
    rank = torch.distributed.get_rank()
    params = list(held[0].parameters())
    row = {"rank": rank, "whole": sum(p.numel() for p in params),
           "local": sum((p.to_local() if isinstance(p, DTensor) else p).numel() for p in params)}
    if rank == 0:
        a, b = (load_file(str(folder / run / "checkpoint_000003" / "model.safetensors"))
                for run in ("straight", "resumed"))
        same_keys = a.keys() == b.keys()
        diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a) if same_keys else None
        loss_diff = abs(straight.losses[-1] - resumed.losses[-1])
        # Exact on CPU; GPU kernels (attention backward, reductions) need not be bit-exact run to run, so there the
        # weights may differ by 1e-6 (the step moves them by ~lr = 1e-4) and the loss by 1e-4 of itself.
        weight_tol, loss_tol = (1e-6, 1e-4 * abs(straight.losses[-1])) if torch.cuda.is_available() else (0.0, 0.0)
        row.update(steps=3, resumed_after=2, loss_straight=straight.losses[-1], loss_resumed=resumed.losses[-1],
                   weights_max_abs_diff=diff, trained_tensors=len(a), same_keys=same_keys,
                   exact=same_keys and diff == 0.0 and loss_diff == 0.0, tolerances=[weight_tol, loss_tol],
                   resume_equal=same_keys and diff <= weight_tol and loss_diff <= loss_tol)
    from affectgpt.io.atomic import write_text

    write_text(folder / f"rank{rank}.json", json.dumps(row))


def device_info(peak_override: float | None) -> dict:
    import transformers

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__,
            "gpu_count": torch.cuda.device_count(), "gpu": None, "gpu_memory_gib": None}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30)
    if peak_override:
        info.update(peak_tflops=peak_override, peak_source="--peak-tflops")
    elif info["gpu"] is None:
        info.update(peak_tflops=None, peak_source="no GPU: MFU not computed (give --peak-tflops for one)")
    else:
        peak, source = peak_for(info["gpu"])
        info.update(peak_tflops=peak, peak_source=source)
    return info


def peak_for(gpu: str) -> tuple[float | None, str]:
    """(dense bf16 peak TFLOP/s, where it comes from) of a GPU name; (None, why) for a GPU not in PEAK_TFLOPS."""
    for part, value in PEAK_TFLOPS:
        if part.lower() in gpu.lower():
            return value, f"table: {part}"
    return None, "GPU not in the table: MFU not computed (give --peak-tflops)"


def table(result: dict) -> str:
    lines = [f"device: {result['device']['gpu'] or 'CPU'}; peak {result['device']['peak_tflops']} TFLOP/s "
             f"({result['device']['peak_source']}); mode {result['mode']}"]
    train = result["training"]
    lines.append(f"training (seq {train.get('seq_len')}, bf16, LoRA r16): batch  step s  tokens/s   MFU  peak GiB")
    for run in train.get("runs", []):
        lines.append(f"  {run['batch']:>5}  " + (run["error"] if "error" in run else
                     f"{run['step_s']:>6.3f}  {run['tokens_per_s']:>8.0f}  "
                     f"{'-' if run['mfu'] is None else format(run['mfu'], '5.1%'):>5}  {run['peak_memory_gib']:>7.1f}"))
    gen = result["generation"]
    lines.append(f"generation ({gen.get('new_tokens')} new tokens each): batch  seconds  tokens/s  peak GiB")
    for run in gen.get("runs", []):
        lines.append(f"  {run['batch']:>5}  " + (run["error"] if "error" in run else
                     f"{run['seconds']:>7.2f}  {run['tokens_per_s']:>8.1f}  {run['peak_memory_gib']:>7.1f}"))
    if "projection" in gen:
        p = gen["projection"]
        lines.append(f"  all 9 MER-UniBench sets ({p['clips']} clips x {len(p['prompts'])} prompts): "
                     f"{p['hours']:.2f} h at batch {p['batch']}")
    lines.append(f"fsdp: {json.dumps(result['fsdp'])}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the same code on CPU with tiny configs (seconds)")
    parser.add_argument("--json", type=Path, help="also write the JSON object here")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, replacing the table's")
    parser.add_argument("--seq", type=int, help="tokens per training sample (default 512; 64 with --quick)")
    parser.add_argument("--fsdp-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    seq = args.seq or plan["seq"]
    if args.fsdp_child:
        fsdp_child(args.fsdp_child, args.quick, seq)
        return 0
    if not args.quick and not torch.cuda.is_available():
        sys.exit("no GPU visible to torch: run with --quick for the CPU check of this script")
    began = time.monotonic()
    torch.manual_seed(0)
    cfg = model_config(args.quick)
    result = {"mode": "quick" if args.quick else "full", "device": device_info(args.peak_tflops),
              "budgets_s": plan["budgets"]}
    for name in ("training", "generation", "fsdp"):
        started = time.monotonic()
        deadline = started + plan["budgets"][name]
        if name == "training":
            section = bench_training(cfg, plan, seq, result["device"]["peak_tflops"], deadline)
        elif name == "generation":
            section = bench_generation(cfg, plan, deadline)
        else:
            section = bench_fsdp(args.quick, seq, plan["budgets"][name])
        section["seconds"] = time.monotonic() - started
        result[name] = section
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    result["total_seconds"] = time.monotonic() - began
    text = json.dumps(result, allow_nan=False)
    print(table(result), flush=True)
    if args.json:
        from affectgpt.io.atomic import write_text

        write_text(args.json, text + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
