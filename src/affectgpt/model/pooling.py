"""Per-modality pooling: encoder features `[B, T, d]` become N LLM tokens `[B, N, L]`.

The three poolers follow the original exactly (fidelity README, step 5), quirks included. `POOLERS` is the
table of them (architecture.md 7.3); `build_pooler` builds one from a `ModelConfig`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from affectgpt.errors import InputError
from affectgpt.model.config import ModelConfig
from affectgpt.model.qformer import QFormer
from affectgpt.registry import unknown_name


class PoolOutput(NamedTuple):
    """tokens: `[B, N, L]`, what replaces the placeholders. pooled: the input of the projection (`[B, d]`, or
    the Q-Former output `[B, N, H]`), the README's `{vis}_pooled`. scores: `[B, T, 1]` for attention, else None."""

    tokens: torch.Tensor
    pooled: torch.Tensor
    scores: torch.Tensor | None = None


def _check_features(x: torch.Tensor, d: int, name: str) -> None:
    if x.dim() != 3 or x.shape[-1] != d:
        raise InputError(f"{name} expects features [B, T, {d}], got {list(x.shape)}", field="features",
                         fix="pass the encoder output with its time axis")


class AttentionPooling(nn.Module):
    """`pooled = Σ_t s_t·x_t` with `s = score(x)`, then `proj(pooled)` repeated N times."""

    def __init__(self, d: int, llm_dim: int, n_tokens: int) -> None:
        super().__init__()
        self.n_tokens = n_tokens
        self.score = nn.Linear(d, 1)
        self.proj = nn.Linear(d, llm_dim)

    @classmethod
    def from_config(cls, d: int, cfg: ModelConfig, n_tokens: int, positions: int) -> AttentionPooling:
        return cls(d, cfg.llm_dim, n_tokens)

    def forward(self, x: torch.Tensor) -> PoolOutput:
        _check_features(x, self.score.in_features, "attention pooling")
        # no softmax here: the original omits it, so the scores are raw and unnormalised (README step 5)
        scores = self.score(x)
        pooled = (x * scores).sum(dim=1)
        # the same token repeated N times, as the original does (README step 5)
        tokens = self.proj(pooled).unsqueeze(1).expand(-1, self.n_tokens, -1)
        return PoolOutput(tokens, pooled, scores)


class MeanPooling(nn.Module):
    """`pooled = mean_t x`, then `proj(pooled)` repeated N times."""

    def __init__(self, d: int, llm_dim: int, n_tokens: int) -> None:
        super().__init__()
        self.n_tokens = n_tokens
        self.proj = nn.Linear(d, llm_dim)

    @classmethod
    def from_config(cls, d: int, cfg: ModelConfig, n_tokens: int, positions: int) -> MeanPooling:
        return cls(d, cfg.llm_dim, n_tokens)

    def forward(self, x: torch.Tensor) -> PoolOutput:
        _check_features(x, self.proj.in_features, "mean pooling")
        pooled = x.mean(dim=1)
        tokens = self.proj(pooled).unsqueeze(1).expand(-1, self.n_tokens, -1)
        return PoolOutput(tokens, pooled)


class QFormerPooling(nn.Module):
    """`x + positions[:T]`, then N learned queries read it through a Q-Former, then `proj`: N distinct tokens.

    Args:
        d, llm_dim, n_tokens: feature width, LLM width, number of tokens (= queries).
        positions: rows of the position table (video 32, audio 8 in the original); T must not exceed it.
        hidden, heads, intermediate, layers, eps: the Q-Former (see `QFormer`).
    """

    def __init__(self, d: int, llm_dim: int, n_tokens: int, positions: int, hidden: int, heads: int,
                 intermediate: int, layers: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.positions = nn.Embedding(positions, d)
        self.queries = nn.Parameter(torch.zeros(1, n_tokens, hidden))
        nn.init.normal_(self.queries, std=0.02)  # the original's init; checkpoints overwrite it
        self.qformer = QFormer(hidden, heads, intermediate, layers, encoder_width=d, eps=eps)
        self.proj = nn.Linear(hidden, llm_dim)

    @classmethod
    def from_config(cls, d: int, cfg: ModelConfig, n_tokens: int, positions: int) -> QFormerPooling:
        return cls(d, cfg.llm_dim, n_tokens, positions, cfg.qformer_hidden, cfg.qformer_heads,
                   cfg.qformer_intermediate, cfg.qformer_layers, cfg.qformer_eps)

    def forward(self, x: torch.Tensor) -> PoolOutput:
        _check_features(x, self.positions.embedding_dim, "Q-Former pooling")
        x = x + position_rows(self.positions, x.shape[1])
        pooled = self.qformer(self.queries.expand(x.shape[0], -1, -1), x)
        return PoolOutput(self.proj(pooled), pooled)


def position_rows(table: nn.Embedding, length: int) -> torch.Tensor:
    """Rows 0..length-1 of a position table, `[length, d]`; too long a sequence is an input error."""
    if length > table.num_embeddings:
        raise InputError(f"{length} time steps but the position table has {table.num_embeddings} rows",
                         field="features", fix=f"pass at most {table.num_embeddings} frames or clips")
    return table.weight[:length]


POOLERS: dict[str, type[AttentionPooling | MeanPooling | QFormerPooling]] = {
    "attention": AttentionPooling,
    "mean": MeanPooling,
    "qformer": QFormerPooling,
}
"""Pooling name -> class; every class has `from_config(d, cfg, n_tokens, positions)`."""


def build_pooler(kind: str, d: int, cfg: ModelConfig, n_tokens: int, positions: int) -> nn.Module:
    """The pooler `kind` for features of width d, with n_tokens output tokens and a position table of
    `positions` rows (used by the Q-Former only)."""
    if kind not in POOLERS:
        raise InputError(f"{kind!r} is not a pooling", field="model.pooling",
                         fix=unknown_name("pooling", kind, sorted(POOLERS)).fix)
    return POOLERS[kind].from_config(d, cfg, n_tokens, positions)
