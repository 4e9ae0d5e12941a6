"""Pre-fusion ("multi" tokens): unpooled video and audio features become N joint LLM tokens `[B, N, L]`.

The fusions follow the original exactly (fidelity README, step 6), quirks included. `FUSIONS` is the table of
them (architecture.md 7.3); `build_fusion` builds one from a `ModelConfig`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from affectgpt.errors import InputError
from affectgpt.model.config import ModelConfig
from affectgpt.model.pooling import position_rows
from affectgpt.model.qformer import QFormer
from affectgpt.registry import unknown_name


class FusionOutput(NamedTuple):
    """tokens: `[B, N, L]`, what replaces `<MultiHere>`. video_emb, audio_emb: the stream projections
    (`[B, F]` for attention, per time step `[B, T, F]` for qformer). weights: the two raw fusion weights
    `[B, 2]` (attention only, else None). pooled: the input of the final projection (`[B, F]`, or the Q-Former
    output `[B, N, H]`)."""

    tokens: torch.Tensor
    video_emb: torch.Tensor
    audio_emb: torch.Tensor
    weights: torch.Tensor | None
    pooled: torch.Tensor


def _check(video: torch.Tensor, audio: torch.Tensor, dv: int, da: int) -> None:
    for name, x, d in (("video", video, dv), ("audio", audio, da)):
        if x.dim() != 3 or x.shape[-1] != d:
            raise InputError(f"pre-fusion expects {name} features [B, T, {d}], got {list(x.shape)}",
                             field=f"{name} features", fix="pass the unpooled encoder output")
    if video.shape[0] != audio.shape[0]:
        raise InputError(f"video batch {video.shape[0]} != audio batch {audio.shape[0]}", field="features",
                         fix="pass the same samples for both modalities")


class AttentionFusion(nn.Module):
    """Time-means of both streams, projected to F; two learned weights mix them; `proj` repeated N times."""

    def __init__(self, dv: int, da: int, fusion_dim: int, llm_dim: int, n_tokens: int) -> None:
        super().__init__()
        self.n_tokens = n_tokens
        self.video_in = nn.Linear(dv, fusion_dim)
        self.audio_in = nn.Linear(da, fusion_dim)
        self.hidden = nn.Linear(2 * fusion_dim, fusion_dim)
        self.weights = nn.Linear(fusion_dim, 2)
        self.proj = nn.Linear(fusion_dim, llm_dim)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> AttentionFusion:
        return cls(cfg.visual_dim, cfg.audio_dim, cfg.fusion_dim, cfg.llm_dim, cfg.multi_tokens)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> FusionOutput:
        _check(video, audio, self.video_in.in_features, self.audio_in.in_features)
        v = self.video_in(video.mean(dim=1))
        a = self.audio_in(audio.mean(dim=1))
        # no activation between the two layers and no softmax on the weights: the original omits both
        # (README step 6), so the two weights are raw and unnormalised
        w = self.weights(self.hidden(torch.cat([v, a], dim=-1)))
        fused = w[:, :1] * v + w[:, 1:] * a
        tokens = self.proj(fused).unsqueeze(1).expand(-1, self.n_tokens, -1)
        return FusionOutput(tokens, v, a, w, fused)


class QFormerFusion(nn.Module):
    """Both streams projected to F per time step, concatenated along time (video first), positions added,
    then N learned queries read them through a Q-Former, then `proj`: N distinct tokens."""

    def __init__(self, dv: int, da: int, fusion_dim: int, llm_dim: int, n_tokens: int, positions: int,
                 hidden: int, heads: int, intermediate: int, layers: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.video_in = nn.Linear(dv, fusion_dim)
        self.audio_in = nn.Linear(da, fusion_dim)
        self.positions = nn.Embedding(positions, fusion_dim)
        self.queries = nn.Parameter(torch.zeros(1, n_tokens, hidden))
        nn.init.normal_(self.queries, std=0.02)  # the original's init; checkpoints overwrite it
        self.qformer = QFormer(hidden, heads, intermediate, layers, encoder_width=fusion_dim, eps=eps)
        self.proj = nn.Linear(hidden, llm_dim)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> QFormerFusion:
        return cls(cfg.visual_dim, cfg.audio_dim, cfg.fusion_dim, cfg.llm_dim, cfg.multi_tokens, cfg.multi_positions,
                   cfg.qformer_hidden, cfg.qformer_heads, cfg.qformer_intermediate, cfg.qformer_layers,
                   cfg.qformer_eps)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> FusionOutput:
        _check(video, audio, self.video_in.in_features, self.audio_in.in_features)
        v = self.video_in(video)
        a = self.audio_in(audio)
        # video first, then audio: positions 0..T_v-1 are video (README step 6 and "spec is wrong" 8)
        states = torch.cat([v, a], dim=1)
        states = states + position_rows(self.positions, states.shape[1])
        pooled = self.qformer(self.queries.expand(states.shape[0], -1, -1), states)
        return FusionOutput(self.proj(pooled), v, a, None, pooled)


class NoFusion(nn.Module):
    """No pre-fusion: no parameters, and `forward` returns None. The composing model checks `uses_multi` and
    never puts a `<MultiHere>` in the prompt. (The original has no such type: it drops `<MultiHere>` from the
    prompt instead and still builds untrained multi modules; README "spec is wrong" 6.)"""

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> NoFusion:
        return cls()

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> None:
        return None


FUSIONS: dict[str, type[AttentionFusion | QFormerFusion | NoFusion]] = {
    "attention": AttentionFusion,
    "qformer": QFormerFusion,
    "none": NoFusion,
}
"""Fusion name -> class; every class has `from_config(cfg)`."""


def build_fusion(cfg: ModelConfig) -> nn.Module:
    """The pre-fusion module `cfg.fusion` at the config's dimensions."""
    if cfg.fusion not in FUSIONS:
        raise InputError(f"{cfg.fusion!r} is not a fusion", field="model.fusion",
                         fix=unknown_name("fusion", cfg.fusion, sorted(FUSIONS)).fix)
    return FUSIONS[cfg.fusion].from_config(cfg)
