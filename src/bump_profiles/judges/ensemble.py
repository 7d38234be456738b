"""An ensemble judge: the mean of its members' per-row ranks (:func:`bump_profiles.judges.ranking.rank_fusion`).

Judges score on different scales (a cosine, a TF-IDF cosine, a log-probability difference), so
averaging raw scores lets the widest scale decide; averaging each query's ranks of its candidates does
not. A row's ranks depend only on that row's candidates, so the fused score obeys the reward's rule (a
rollout's reward depends only on its own scores and the candidates of its rankings). Not symmetric:
ranks are taken along the rows of each direction's own matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bump_profiles.errors import ConfigError
from bump_profiles.judges import Judge, JudgeConfig, check_direction, make_judge
from bump_profiles.judges.ranking import rank_fusion


class EnsembleJudge:
    symmetric = False

    def __init__(self, members: Sequence[Judge]):
        if len(members) < 2:
            raise ConfigError("an ensemble judge needs at least 2 member judges")
        self.members = list(members)

    def score(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        check_direction(direction)
        if not queries or not documents:
            return np.zeros((len(queries), len(documents)), dtype=np.float64)
        return rank_fusion([m.score(queries, documents, direction) for m in self.members])


def from_config(config: JudgeConfig, *, model: Any = None, tokenizer: Any = None) -> EnsembleJudge:
    """``model``: the member judges, ready (tests); else built from ``config.members``."""
    if model is not None:
        return EnsembleJudge(model)
    return EnsembleJudge([make_judge(m) for m in config.members])
