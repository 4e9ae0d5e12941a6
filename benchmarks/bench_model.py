"""Training-step speed of a small AffectGPT on CPU with random weights (no download).

A small configuration (LLM width 256, 4 layers, LoRA r 16, attention pooling and pre-fusion, precomputed encoder
features): forward + backward samples/s and the process's peak resident memory. CPU only: the full-size figures on
a GPU (bf16 training step, MFU, batched generation, FSDP over NCCL) are benchmarks/gpu_check.py's. Prints what it
measured; timings never go into tests.

    .venv/bin/python benchmarks/bench_model.py [--steps 10]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from affectgpt.model.affectgpt import AffectGPT, Batch
from affectgpt.model.config import ModelConfig
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    bench_cpu(args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
