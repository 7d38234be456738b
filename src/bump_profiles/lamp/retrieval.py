"""The retrieval baseline: a question's top-k items from its own user's history.

The query and each item's text are LaMP's (``TaskSpec.query``, ``TaskSpec.item_text``). Two
retrievers: BM25 (bm25s, English stopwords, no stemming) and dense cosine similarity of sentence
embeddings (the bundled MiniLM by default). Both index a user's items once and reuse the index for
all of that user's questions. Ties keep the earlier item, so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from bump_profiles.data.schema import Interaction, User
from bump_profiles.errors import ConfigError
from bump_profiles.lamp.tasks import TaskSpec

RETRIEVERS = ("bm25", "dense")


class Retriever(Protocol):
    def scores(self, query: str, corpus: Sequence[str], *, key: str) -> np.ndarray:
        """One relevance score per corpus text; ``key`` names the corpus (a user id) for caching."""
        ...


class BM25Retriever:
    """BM25 via bm25s over one index per user."""

    def __init__(self) -> None:
        self._indexes: dict[str, Any] = {}

    def scores(self, query: str, corpus: Sequence[str], *, key: str) -> np.ndarray:
        import bm25s

        if key not in self._indexes:
            index = bm25s.BM25()
            index.index(bm25s.tokenize(list(corpus), stopwords="en", return_ids=False, show_progress=False), show_progress=False)
            self._indexes[key] = index
        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        if not tokens:  # bm25s fails on an empty query; nothing matches it
            return np.zeros(len(corpus))
        return np.asarray(self._indexes[key].get_scores(tokens), dtype=np.float64)


class DenseRetriever:
    """Cosine similarity of sentence embeddings; a user's item embeddings are computed once."""

    def __init__(self, model: Any = None, *, batch_size: int = 64) -> None:
        if model is None:
            from bump_profiles.engines.models import load_sentence_transformer

            model = load_sentence_transformer("minilm")
        self.model = model
        self.batch_size = batch_size
        self._embeddings: dict[str, np.ndarray] = {}

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(
            self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False),
            dtype=np.float64,
        )

    def scores(self, query: str, corpus: Sequence[str], *, key: str) -> np.ndarray:
        if key not in self._embeddings:
            self._embeddings[key] = self._encode(corpus)
        return self._embeddings[key] @ self._encode([query])[0]


def make_retriever(kind: str, *, model: Any = None) -> Retriever:
    """``bm25`` or ``dense`` (``model``: a sentence-transformers model, default the bundled MiniLM)."""
    if kind == "bm25":
        return BM25Retriever()
    if kind == "dense":
        return DenseRetriever(model)
    raise ConfigError(f"unknown retriever '{kind}' (use {' or '.join(RETRIEVERS)})")


def top_k(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` best scores, best first; ties keep the earlier index."""
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def retrieve(task: TaskSpec, user: User, question: dict, retriever: Retriever, k: int) -> list[Interaction]:
    """The ``k`` items of ``user`` most relevant to ``question`` (``{"id", "input"}``), best first."""
    if k <= 0 or not user.interactions:
        return []
    corpus = [task.item_text(it) for it in user.interactions]
    query = task.query(question["input"], record=question["id"])
    return [user.interactions[i] for i in top_k(retriever.scores(query, corpus, key=f"{task.name}/{user.id}"), k)]
