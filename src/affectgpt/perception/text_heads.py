"""The text perceiver's trained heads: linear softmax classifiers on sentence vectors, read from safetensors.

A head is a weight matrix [classes, dim], a bias [classes] and its class names; probabilities are the softmax
of `W x + b`. The shipped file (data/text_heads.safetensors) holds the heads `emotion` (base.EMOTIONS) and
`sentiment` (negative, positive), and its metadata names the encoder the heads were trained on, their class
orders and the hashes of the training data. Torch-free: numpy and safetensors.numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.errors import InputError

SHIPPED_HEADS = Path(__file__).with_name("data") / "text_heads.safetensors"
HEADS_FORMAT = "affectgpt-text-heads/2"
HEADER_KEY = "affectgpt"  # the one safetensors metadata entry: the JSON of format, classes and training metadata


@dataclass(frozen=True)
class Head:
    """One linear softmax classifier."""

    classes: tuple[str, ...]
    weight: np.ndarray  # [len(classes), dim] float32
    bias: np.ndarray  # [len(classes)] float32

    def proba(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per vector ([n, dim] -> [n, classes])."""
        logits = np.asarray(vectors, dtype=np.float64) @ self.weight.T.astype(np.float64) + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        expd = np.exp(logits)
        return expd / expd.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class HeadSet:
    """The heads of one file and its metadata (encoder id, class orders, data hashes, scores...)."""

    heads: dict[str, Head]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def encoder(self) -> str:
        return str(self.metadata.get("encoder", ""))


def save_heads(path: str | Path, heads: dict[str, Head], metadata: dict[str, Any]) -> None:
    """Write `heads` to a safetensors file atomically; `metadata` (JSON-able) goes into its header."""
    from safetensors.numpy import save

    from affectgpt.io.atomic import write_bytes

    tensors: dict[str, np.ndarray] = {}
    for name, head in heads.items():
        tensors[f"{name}.weight"] = np.ascontiguousarray(head.weight, dtype=np.float32)
        tensors[f"{name}.bias"] = np.ascontiguousarray(head.bias, dtype=np.float32)
    meta = {**metadata, "format": HEADS_FORMAT, "classes": {n: list(h.classes) for n, h in heads.items()}}
    # one header entry: safetensors writes several in no fixed order, and the same heads must give the same bytes
    write_bytes(path, save(tensors, metadata={HEADER_KEY: json.dumps(meta, sort_keys=True, ensure_ascii=False)}))


def load_heads(path: str | Path | None = None) -> HeadSet:
    """The heads in `path` (default: the shipped file); InputError naming the file when it is unusable."""
    path = Path(path) if path is not None else SHIPPED_HEADS
    if not path.is_file():
        raise InputError("text heads not found", path=path,
                         fix="pass a file written by scripts/train_text_heads.py, or drop --text-heads")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            raw_meta = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (not a dict)
    except Exception as error:  # safetensors raises its own error types for a damaged header
        raise InputError(f"cannot read text heads: {error}", path=path,
                         fix="pass a file written by scripts/train_text_heads.py") from None
    try:
        metadata: dict[str, Any] = json.loads(raw_meta.get(HEADER_KEY, "{}"))
    except ValueError:
        metadata = {}
    if not isinstance(metadata, dict) or metadata.get("format") != HEADS_FORMAT \
            or not isinstance(metadata.get("classes"), dict):
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise InputError(f"not a text-heads file (format {found!r}, expected {HEADS_FORMAT})", path=path,
                         field="format", fix="pass a file written by scripts/train_text_heads.py")
    heads = {}
    for name, classes in metadata["classes"].items():
        weight, bias = tensors.get(f"{name}.weight"), tensors.get(f"{name}.bias")
        if weight is None or bias is None or weight.ndim != 2 or weight.shape[0] != len(classes) \
                or bias.shape != (len(classes),):
            raise InputError(f"head {name!r} is damaged (weight/bias missing or of the wrong shape)", path=path,
                             field=name, fix="retrain with scripts/train_text_heads.py")
        heads[name] = Head(tuple(classes), weight.astype(np.float32), bias.astype(np.float32))
    return HeadSet(heads, metadata)
