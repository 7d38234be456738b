"""The embedding judge: cosine similarity of sentence-transformers embeddings.

Cheapest judge (linear in the number of texts, not pairs) and the CPU default. Each distinct text in
a call is encoded once; cosine is symmetric, so one matrix serves both reward directions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bump_profiles.judges import JudgeConfig, check_direction

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class EmbeddingJudge:
    """Cosine of normalised embeddings; ``score(q, d, "B")`` equals ``score(d, q, "A").T``."""

    symmetric = True

    def __init__(self, model: SentenceTransformer, *, batch_size: int = 64, cache_size: int = 0):
        self.model = model
        self.batch_size = batch_size
        # texts whose vectors are kept (0: none, every call encodes its texts afresh, as before); with a
        # population bank the bank's items are then encoded once, not at every call
        self.cache_size = cache_size
        self._cache: dict[str, np.ndarray] = {}

    def score(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        check_direction(direction)
        if not queries or not documents:
            return np.zeros((len(queries), len(documents)), dtype=np.float64)
        texts = list(dict.fromkeys([*queries, *documents]))  # each distinct text once, order kept
        if not self.cache_size:
            self._cache = {}
        new = [t for t in texts if t not in self._cache]
        if new:
            vectors = self.model.encode(
                new, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            ).astype(np.float64)
            if self.cache_size and len(self._cache) + len(new) > self.cache_size:
                self._cache.clear()
            self._cache.update(zip(new, vectors, strict=True))
        q = np.stack([self._cache[t] for t in queries])
        d = np.stack([self._cache[t] for t in documents])
        return q @ d.T


def from_config(config: JudgeConfig, *, model: Any = None, tokenizer: Any = None) -> EmbeddingJudge:
    """An embedding judge on the configured sentence-transformers model (bundled MiniLM by default)."""
    if model is None:
        from bump_profiles.engines.models import load_sentence_transformer

        model = load_sentence_transformer(config.model_name, device=config.device)
    return EmbeddingJudge(model)
