"""The BLIP-2 style Q-Former: learned queries attend to encoder states through a small post-LN BERT.

This is exactly the part of the original's `Qformer.BertModel` that AffectGPT runs (fidelity README, step 5):
the queries go through `embeddings.LayerNorm` (no word or position embeddings), then every layer runs
self-attention, cross-attention to the encoder states and the *query* FFN, each as `LN(dense(...) + h)`.
No attention masks: the original passes all-ones masks. Dropout (BERT's 0.1 on attention probabilities and
before each residual add) is active in training only, as in the original. Parameter names mirror BERT, so the
original's `<x>_Qformer.bert.<name>` keys map 1:1 onto this module's `<name>`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from affectgpt.model.keymap import QFORMER_UNUSED

# Original checkpoint keys (suffixes after `<x>_Qformer.bert.`, as regular expressions) that this module has no
# parameter for, each with why the original never uses it in the forward: the position_ids buffer, and the text
# embeddings / text FFN / pooler that the original deletes. The importer skips them and reports them. The table
# lives in the torch-free keymap so that key mapping needs no torch.
UNUSED_ORIGINAL_KEYS: dict[str, str] = QFORMER_UNUSED


class _Attention(nn.Module):
    """BERT `BertSelfAttention` without masks: standard scaled dot-product attention over heads."""

    def __init__(self, hidden: int, heads: int, kv_width: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"Q-Former hidden size {hidden} is not a multiple of {heads} heads")
        self.heads = heads
        self.dropout = nn.Dropout(dropout)
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(kv_width, hidden)
        self.value = nn.Linear(kv_width, hidden)

    def forward(self, h: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        batch, n, hidden = h.shape
        head_dim = hidden // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, -1, self.heads, head_dim).transpose(1, 2)

        q, k, v = split(self.query(h)), split(self.key(kv)), split(self.value(kv))
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
        out = self.dropout(scores.softmax(dim=-1)) @ v
        return out.transpose(1, 2).reshape(batch, n, hidden)


class _Output(nn.Module):
    """BERT's post-LN residual block: `LayerNorm(dense(x) + residual)`."""

    def __init__(self, width_in: int, hidden: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)  # BERT's name, kept for the key mapping
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _AttentionBlock(nn.Module):
    def __init__(self, hidden: int, heads: int, kv_width: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.self = _Attention(hidden, heads, kv_width, dropout)
        self.output = _Output(hidden, hidden, eps, dropout)

    def forward(self, h: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(h, kv), h)


class _Dense(nn.Module):
    def __init__(self, width_in: int, width_out: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, width_out)


class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int, encoder_width: int, eps: float,
                 dropout: float) -> None:
        super().__init__()
        self.attention = _AttentionBlock(hidden, heads, hidden, eps, dropout)
        self.crossattention = _AttentionBlock(hidden, heads, encoder_width, eps, dropout)
        self.intermediate_query = _Dense(hidden, intermediate)
        self.output_query = _Output(intermediate, hidden, eps, dropout)

    def forward(self, h: torch.Tensor, encoder_states: torch.Tensor) -> torch.Tensor:
        h = self.attention(h, h)
        h = self.crossattention(h, encoder_states)
        # exact (erf) gelu: BERT's "gelu", not the tanh approximation
        return self.output_query(F.gelu(self.intermediate_query.dense(h)), h)


class _Encoder(nn.Module):
    def __init__(self, layers: list[_Layer]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(layers)


class _Embeddings(nn.Module):
    def __init__(self, hidden: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)


class QFormer(nn.Module):
    """Queries `[B, N, hidden]` cross-attend to `encoder_states [B, T, encoder_width]`; returns `[B, N, hidden]`.

    Args:
        hidden, heads, intermediate: BERT width, attention heads and query-FFN width.
        layers: number of layers (the original forces 2).
        encoder_width: width of the states the cross-attention reads.
        eps: LayerNorm epsilon (the BERT config's `layer_norm_eps`, 1e-12).
        dropout: BERT's hidden and attention dropout (0.1 in the original); active in training only.
    """

    def __init__(self, hidden: int, heads: int, intermediate: int, layers: int, encoder_width: int,
                 eps: float = 1e-12, dropout: float = 0.1) -> None:
        super().__init__()
        self.embeddings = _Embeddings(hidden, eps, dropout)
        self.encoder = _Encoder([_Layer(hidden, heads, intermediate, encoder_width, eps, dropout)
                                 for _ in range(layers)])

    def forward(self, queries: torch.Tensor, encoder_states: torch.Tensor) -> torch.Tensor:
        h = self.embeddings.dropout(self.embeddings.LayerNorm(queries))
        for layer in self.encoder.layer:
            h = layer(h, encoder_states)
        return h
