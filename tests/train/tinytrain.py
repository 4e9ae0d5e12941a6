"""A tiny in-test training setup: samples with unique answers, a dataset of precomputed random features, and
the TrainConfig of a random-init model small enough to train in seconds on one CPU thread.

Also imported by ddp_worker.py (run by torchrun in a subprocess), so it takes no pytest fixtures.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from affectgpt.config import build_config
from affectgpt.data.sample import Sample
from affectgpt.data.targets import draw_task, question_answer
from affectgpt.model.affectgpt import Batch
from affectgpt.model.prompt import IGNORE, encode_training, prompt_for
from affectgpt.tiny.recipe import build_random_model
from affectgpt.train.build import TrainParts, set_dtypes
from affectgpt.train.config import TrainConfig

TINY_LLM = {"model_type": "qwen2", "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
            "tie_word_embeddings": False}
TINY_MODEL = {"llm_config": TINY_LLM, "visual_dim": 16, "audio_dim": 12, "fusion_dim": 16, "lora_r": 8,
              "lora_alpha": 16, "lora_dropout": 0.0, "max_length": 256, "visual_encoder": "none",
              "audio_encoder": "none"}
EMOTIONS = ("happy", "sad", "angry", "calm", "surprised", "worried", "proud", "bored", "tired", "excited")
WORDS = ("rain", "train", "letter", "garden", "window", "music", "river", "coffee", "street", "phone")


def tiny_config(**top: Any) -> TrainConfig:
    """The tiny recipe as a TrainConfig; `top` replaces keys (dotted keys as in --set)."""
    data = {"model": {"preset": "released", "config": TINY_MODEL, "init": "random"},
            "data": {"synthetic": {"n": 8, "seed": 0}, "task": "labels"},
            "optimiser": {"lr": 3e-3, "weight_decay": 0.0},
            "schedule": {"warmup_steps": 5, "total_steps": 120, "min_lr_ratio": 0.1},
            "batch_size": 4, "precision": "no", "seed": 0, "log_every": 1, "save_every": 0, "max_grad_norm": 1.0}
    return build_config(TrainConfig, data, overrides=[f"{k}={v}" for k, v in top.items()])


def make_samples(n: int, seed: int) -> list[Sample]:
    """n samples, each with its own subtitle and its own pair of labels (so answers are learnable)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = rng.sample(WORDS, 3)
        labels = (EMOTIONS[i % len(EMOTIONS)], EMOTIONS[(3 * i + 1) % len(EMOTIONS)])
        out.append(Sample(name=f"s{i:03d}", subtitle=" ".join(words), labels=labels,
                          description=f"The {words[0]} makes the person {labels[0]}."))
    return out


class FeatureDataset:
    """Items as affectgpt.data's TrainingDataset gives them, with precomputed random features."""

    def __init__(self, samples: list[Sample], tokenizer: Any, cfg: Any, *, task: str, seed: int) -> None:
        self.samples, self.tokenizer, self.cfg, self.task, self.seed = samples, tokenizer, cfg, task, seed
        self.epoch = 0
        generator = torch.Generator().manual_seed(seed)
        self.visual = torch.randn(len(samples), cfg.n_frames, cfg.visual_dim, generator=generator)
        self.audio = torch.randn(len(samples), cfg.n_audio_clips, cfg.audio_dim, generator=generator)

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        task = draw_task(sample, self.task, random.Random(f"{self.seed}/{self.epoch}/{index}"))
        question, target = question_answer(sample, task)
        encoded = encode_training(self.tokenizer, prompt_for(self.cfg, question, sample.subtitle), target,
                                  self.cfg.max_length)
        return {"input_ids": torch.tensor(encoded.input_ids), "labels": torch.tensor(encoded.labels),
                "visual_features": self.visual[index], "audio_features": self.audio[index]}


def collate(items: list[dict[str, Any]], pad_id: int) -> Batch:
    width = max(len(item["input_ids"]) for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    for row, item in enumerate(items):
        ids[row, :len(item["input_ids"])] = item["input_ids"]
        labels[row, :len(item["labels"])] = item["labels"]
    return Batch(input_ids=ids, attention_mask=(ids != pad_id).long(), labels=labels,
                 visual_features=torch.stack([i["visual_features"] for i in items]),
                 audio_features=torch.stack([i["audio_features"] for i in items]))


def tiny_parts(cfg: TrainConfig, output: Path) -> TrainParts:
    """The parts of a tiny run: random-init model, word tokenizer, FeatureDataset over make_samples."""
    samples = make_samples(cfg.data.synthetic.n, cfg.data.synthetic.seed)
    model, tokenizer, base = build_random_model(cfg.model_config, samples, output, seed=cfg.seed)
    set_dtypes(model, getattr(torch, cfg.model.base_dtype))  # as train.build.prepare does
    dataset = FeatureDataset(samples, tokenizer, model.cfg, task=cfg.data.task, seed=cfg.seed)
    return TrainParts(model, tokenizer, dataset, lambda items: collate(items, tokenizer.pad_token_id), base)
