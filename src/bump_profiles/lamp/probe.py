"""The probe reader: can a profile help a small linear model answer the user's question?

A 135M chat model cannot read a profile (its downstream table measures noise), so the question
"does this profile carry the user?" needs a reader that certainly can use one. The probe embeds
the question input and the question's context (its profile, its retrieved items, or nothing) with
the bundled MiniLM, and a logistic regression (scikit-learn) reads ``[x, c, x*c, x.c]``: the input,
the context, their interaction and their cosine. For tasks whose labels stand for choices in the
input (LaMP-1, the synthetic task) ``x`` is the difference of the two choices' embeddings, so
``x.c`` is how much closer the context is to choice 1 than to choice 2.

It is trained on the training users' questions with the same method's contexts and scored on
held-out users: either given training questions, or cross-fitted over users (``GroupKFold``: every
user is predicted by a model that never saw any of their questions). Label tasks only (LaMP-1,
LaMP-2 news and movies, LaMP-3 as five classes, the synthetic task, any labelled task).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bump_profiles.errors import ConfigError, DataError
from bump_profiles.lamp.tasks import TaskSpec

FOLDS = 5


class ProbeReader:
    """A MiniLM-features + logistic-regression reader (``eval run --reader probe``).

    ``train``: ``(examples, golds)`` of training users, built with the same method as the questions
    it answers; None cross-fits over the users it is asked about.
    """

    name = "probe"

    def __init__(self, model: Any = None, *, train: tuple[Sequence[Any], Mapping[str, str]] | None = None,
                 folds: int = FOLDS, seed: int = 0, batch_size: int = 64):
        if model is None:
            from bump_profiles.engines.models import load_sentence_transformer

            model = load_sentence_transformer("minilm")
        self.model = model
        self.train = train
        self.folds = folds
        self.seed = seed
        self.batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}

    # --- features ---------------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            vecs = self.model.encode(todo, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
            self._cache.update(zip(todo, np.asarray(vecs, dtype=np.float64), strict=True))
        return np.stack([self._cache[t] for t in texts])

    def features(self, task: TaskSpec, examples: Sequence[Any]) -> np.ndarray:
        """One row per example (``.question`` the input, ``.context`` the profile/items text or None)."""
        if task.kind == "generation":
            raise ConfigError(f"the probe reader answers label tasks only; {task.name} generates text")
        if task.choice_fields:
            parts = [task.parse_input(e.question, record=e.id) for e in examples]
            if len(task.choice_fields) != 2:
                raise ConfigError(f"{task.name}: the probe compares two choices")
            x = self._embed([p[task.choice_fields[0]] for p in parts]) - self._embed([p[task.choice_fields[1]] for p in parts])
        else:
            x = self._embed([task.query(e.question, record=e.id) for e in examples])
        has = np.array([bool(e.context) for e in examples])
        c = np.zeros_like(x)
        if has.any():
            c[has] = self._embed([e.context for e, h in zip(examples, has, strict=True) if h])
        inter = x * c
        return np.hstack([x, c, inter, inter.sum(axis=1, keepdims=True)])

    # --- fitting and answering --------------------------------------------------------------------

    def _fit(self, X: np.ndarray, y: Sequence[str]):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if len(set(y)) < 2:
            raise DataError(f"the probe needs training questions with at least two different golds, got {sorted(set(y))}")
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=self.seed)).fit(X, list(y))

    def answer_examples(self, task: TaskSpec, examples: Sequence[Any], golds: Mapping[str, str]) -> list[str]:
        """One predicted label per example; ``golds`` are used only for training users' questions."""
        X = self.features(task, examples)
        if self.train is not None:
            train_examples, train_golds = self.train
            missing = [e.id for e in train_examples if e.id not in train_golds]
            if missing:
                raise DataError(f"{len(missing)} training question(s) have no gold, e.g. {missing[0]}", field="golds")
            model = self._fit(self.features(task, train_examples), [train_golds[e.id] for e in train_examples])
            return [str(p) for p in model.predict(X)]
        return self._cross_fit(X, examples, golds)

    def _cross_fit(self, X: np.ndarray, examples: Sequence[Any], golds: Mapping[str, str]) -> list[str]:
        from sklearn.model_selection import GroupKFold

        missing = [e.id for e in examples if e.id not in golds]
        if missing:
            raise DataError(f"the probe cross-fits over users and needs every gold: {len(missing)} missing "
                            f"(e.g. {missing[0]}); or give it training questions", field="golds")
        groups = np.array([e.user_id for e in examples])
        n = min(self.folds, len(set(groups)))
        if n < 2:
            raise DataError("the probe cross-fits over users and needs at least two users")
        y = np.array([golds[e.id] for e in examples])
        preds = np.empty(len(examples), dtype=object)
        for train_idx, test_idx in GroupKFold(n_splits=n).split(X, y, groups):
            preds[test_idx] = self._fit(X[train_idx], y[train_idx]).predict(X[test_idx])
        return [str(p) for p in preds]

    def answer(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        raise ConfigError("the probe reader answers structured questions: use it through run_eval")
