"""MERBench-style emotion/sentiment classifier: attention fusion over per-modality feature vectors, a linear head.

Each modality's vector (audio, visual, text: the mean over the steps of a frozen-encoder feature file) is
projected to `hidden` units (Linear, ReLU, Dropout); a shared scorer gives each projected modality one logit, a
softmax over the modalities turns them into attention weights, and the weighted sum goes through one Linear head
to the class logits. Any non-empty subset of MODALITIES may be used; the weights of a one-modality model are 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

MODALITIES: tuple[str, ...] = ("audio", "visual", "text")


class AttentionFusionClassifier(nn.Module):
    """Attention fusion over modality vectors (see the module docstring).

    Args:
        dims: modality -> input width, in the order the model reads them (a subset of MODALITIES).
        n_classes: the number of classes of the head.
        hidden: the projection width.
        dropout: dropout after each projection (training only).
    """

    def __init__(self, dims: Mapping[str, int], n_classes: int, hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        unknown = [m for m in dims if m not in MODALITIES]
        if not dims or unknown or n_classes < 2:
            raise ValueError(f"need modalities among {MODALITIES} (got {list(dims)}) and >= 2 classes")
        self.modalities = tuple(dims)
        self.project = nn.ModuleDict({m: nn.Sequential(nn.Linear(int(d), hidden), nn.ReLU(), nn.Dropout(dropout))
                                      for m, d in dims.items()})
        self.score = nn.Linear(hidden, 1)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, inputs: Mapping[str, torch.Tensor], return_weights: bool = False):
        """inputs: modality -> [B, dim] -> logits [B, n_classes] (and attention weights [B, M] when asked)."""
        hidden = torch.stack([self.project[m](inputs[m]) for m in self.modalities], dim=1)  # [B, M, H]
        weights = torch.softmax(self.score(hidden).squeeze(-1), dim=1)  # [B, M]
        fused = (weights.unsqueeze(-1) * hidden).sum(dim=1)
        logits = self.head(fused)
        return (logits, weights) if return_weights else logits
