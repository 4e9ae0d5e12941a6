"""Training-step and generation speed of AffectGPT with random weights (no download).

CPU (always): a small configuration (LLM width 256, 4 layers, LoRA r 16, attention pooling and pre-fusion,
precomputed encoder features), forward + backward samples/s and the process's peak resident memory.
GPU (when torch sees one): the full-size released architecture (Qwen2.5-7B shapes, bf16) with random weights:
training step time, tokens/s, MFU (6 x trainable-path FLOPs estimate: 6 * N_params * tokens / time / peak),
and generation tokens/s. Prints what it measured and where; timings never go into tests.

    .venv/bin/python benchmarks/bench_model.py [--steps 10] [--gpu-peak-tflops 989]
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

import torch

from affectgpt.model.affectgpt import AffectGPT, Batch
from affectgpt.model.config import PRESETS, ModelConfig
from affectgpt.model.lm import build_llm_from_config

SMALL_LLM = {"model_type": "qwen2", "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
             "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 4096, "max_position_embeddings": 2048,
             "tie_word_embeddings": False}
SMALL = ModelConfig(visual_dim=768, audio_dim=1024, llm_dim=256, fusion_dim=1024, lora_r=16, llm_config=SMALL_LLM)
IDS = {"image": 4000, "audio": 4001, "frame": 4002, "face": 4003, "multi": 4004}


def make_batch(cfg: ModelConfig, batch: int, seq: int, device: str, vocab: int) -> Batch:
    ids = torch.randint(10, 3000, (batch, seq), device=device)
    ids[:, 3], ids[:, 5], ids[:, 7] = IDS["multi"], IDS["audio"], IDS["face"]
    labels = ids.clone()
    labels[:, : seq // 2] = -100
    return Batch(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels,
                 visual_features=torch.randn(batch, 8, cfg.visual_dim, device=device),
                 audio_features=torch.randn(batch, 8, cfg.audio_dim, device=device))


def bench_cpu(steps: int) -> None:
    torch.manual_seed(0)
    model = AffectGPT(SMALL, build_llm_from_config(SMALL, device="cpu"), IDS).train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    batch_size, seq = 2, 256
    batch = make_batch(SMALL, batch_size, seq, "cpu", 4096)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model(batch).loss.backward()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        optimiser.zero_grad()
        model(batch).loss.backward()
        optimiser.step()
    seconds = (time.perf_counter() - start) / steps
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"CPU ({torch.get_num_threads()} threads), small config (LLM 256x4, seq {seq}, batch {batch_size}): "
          f"{batch_size / seconds:.2f} samples/s, {batch_size * seq / seconds:,.0f} tokens/s, "
          f"step {seconds * 1e3:.0f} ms; peak RSS {peak / 1024:.0f} MiB (+{(peak - before) / 1024:.0f} MiB in steps)")


def bench_gpu(steps: int, peak_tflops: float) -> None:
    if not torch.cuda.is_available():
        print("GPU: none visible to torch here: full-size figures not measured")
        return
    torch.manual_seed(0)
    cfg = replace(PRESETS["released"], llm_dim=3584)
    with torch.device("cuda"):
        llm = build_llm_from_config(cfg, device="cuda", dtype=torch.bfloat16)
        model = AffectGPT(cfg, llm, IDS).to(torch.bfloat16).train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    batch_size, seq = 3, 1024
    batch = make_batch(cfg, batch_size, seq, "cuda", 150000)
    batch.visual_features, batch.audio_features = (batch.visual_features.bfloat16(), batch.audio_features.bfloat16())
    model(batch).loss.backward()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        optimiser.zero_grad()
        model(batch).loss.backward()
        optimiser.step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    n_params = sum(p.numel() for p in model.parameters())
    tokens = batch_size * seq
    mfu = 6 * n_params * tokens / seconds / (peak_tflops * 1e12)
    print(f"GPU {torch.cuda.get_device_name()}: full size bf16, batch {batch_size} x {seq}: step {seconds:.3f} s, "
          f"{tokens / seconds:,.0f} tokens/s, MFU ~{100 * mfu:.1f}% (peak {peak_tflops} TFLOP/s), "
          f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    model.eval()
    prompt = make_batch(cfg, 1, 256, "cuda", 150000)
    prompt.labels = None
    prompt.visual_features, prompt.audio_features = (prompt.visual_features.bfloat16(),
                                                     prompt.audio_features.bfloat16())
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = model.generate(prompt, max_new_tokens=128, min_new_tokens=128)
    torch.cuda.synchronize()
    print(f"GPU generation (greedy, batch 1): {out.shape[1] / (time.perf_counter() - start):.1f} tokens/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--gpu-peak-tflops", type=float, default=989.0, help="bf16 dense peak of the GPU")
    args = parser.parse_args()
    bench_cpu(args.steps)
    bench_gpu(args.steps, args.gpu_peak_tflops)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
