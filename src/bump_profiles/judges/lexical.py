"""The lexical judge: cosine of TF-IDF vectors (scikit-learn), a judge with no neural model at all.

A profile the policy learned to please a neural judge with (style, paraphrase) earns nothing here:
only shared content words count. Symmetric: one matrix serves both reward directions.

The IDF must not come from the batch being ranked (a statistic over other users' items would let
the batch's membership shape each pair's score), so it is fitted once on a fixed corpus: the file
named by ``JudgeConfig.model`` (one document a line; the benchmark writes the training authors'
articles there), or texts given with :meth:`LexicalJudge.fitted`. Scoring before fitting is an error.
Known limit: it rewards pasted words, as any lexical measure does (read it beside the copy rates).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bump_profiles.errors import ConfigError, DataError
from bump_profiles.judges import JudgeConfig, check_direction


class LexicalJudge:
    """TF-IDF cosine with an IDF fitted on a fixed corpus (sublinear tf, English stop words removed)."""

    symmetric = True

    def __init__(self, vectorizer: Any = None):
        self.vectorizer = vectorizer

    @classmethod
    def fitted(cls, corpus: Iterable[str]) -> LexicalJudge:
        """A judge whose vocabulary and IDF come from ``corpus`` (never from the texts it will rank)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [t for t in corpus if t and t.strip()]
        if not texts:
            raise ConfigError("lexical judge: the IDF corpus is empty")
        return cls(TfidfVectorizer(sublinear_tf=True, stop_words="english").fit(texts))

    def score(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        check_direction(direction)
        if self.vectorizer is None:
            raise ConfigError("lexical judge: no IDF corpus; set judge.model to a corpus file or use LexicalJudge.fitted")
        if not queries or not documents:
            return np.zeros((len(queries), len(documents)), dtype=np.float64)
        q = self.vectorizer.transform(list(queries))  # rows are L2-normalised: the product is the cosine
        d = self.vectorizer.transform(list(documents))
        return np.asarray((q @ d.T).toarray(), dtype=np.float64)


def read_corpus(path: str | Path) -> list[str]:
    """One document a line (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("lexical judge corpus not found (judge.model names a text file, one document a line)", path=path)
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def from_config(config: JudgeConfig, *, model: Any = None, tokenizer: Any = None) -> LexicalJudge:
    """``model`` injects a fitted vectorizer; otherwise ``config.model`` names the IDF corpus file."""
    if model is not None:
        return LexicalJudge(model)
    if config.model is None:
        raise ConfigError("judge.model: the lexical judge needs an IDF corpus file (one document a line)")
    return LexicalJudge.fitted(read_corpus(config.model))
