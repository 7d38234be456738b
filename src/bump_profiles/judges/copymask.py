"""The copy-masked judge: an evaluation judge that cannot be won by pasting the history.

Under a plain judge a profile can score well by pasting its user's history: held-out items resemble
past ones, so copied items rank them high (measured cases: docs/honest-profiles.md). This judge
scores a profile only on the words it wrote itself: before scoring, every word inside a verbatim
span of ``n`` or more words found in a history text (the n-gram test of the copy rate in
``bump_profiles.profiles.stats``) is removed from the profile, and the rest is scored by the base
judge. A profile that copies nothing scores exactly as under the base judge; a pasted
history is left with nothing and scores 0 against every item (no evidence): in direction A it ties
every item, which earns the minimum (ties are pessimistic). Held-out items are never masked.

The histories are those of all users being evaluated, pooled: pasting another user's history is
copying too. Give them with ``with_history`` before scoring; scoring without them is an error, never
a silent fall-back to the plain judge. Known limit: a copy edited every ``n - 1`` words escapes the
mask, as it escapes the n-gram copy rate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from bump_profiles.errors import ConfigError
from bump_profiles.judges import Judge, JudgeConfig, check_direction
from bump_profiles.profiles.stats import history_ngrams, ngrams

_WORD = re.compile(r"\w+")  # the word of profile_stats.words, here with its position in the text


def mask_copied(text: str, seen: set[tuple[str, ...]], n: int) -> str:
    """``text`` without the words covered by an n-gram in ``seen`` (punctuation kept, spaces squeezed)."""
    spans = list(_WORD.finditer(text))
    covered = [False] * len(spans)
    for i, gram in enumerate(ngrams([m.group().lower() for m in spans], n)):
        if gram in seen:
            covered[i : i + n] = [True] * n
    if not any(covered):
        return text
    kept, start = [], 0
    for match, cut in zip(spans, covered, strict=True):
        if cut:
            kept.append(text[start : match.start()])
            start = match.end()
    kept.append(text[start:])
    return " ".join("".join(kept).split())


class CopyMaskedJudge:
    """A base judge scoring profiles with their copied spans (``n``+ words from a history) removed."""

    def __init__(self, base: Judge, history: Iterable[str] | None = None, *, n: int = 4):
        if n < 2:
            raise ConfigError(f"copy-mask span length n must be at least 2 words, got {n}")
        self.base = base
        self.n = n
        self.symmetric = base.symmetric  # masking depends on the profile alone, so symmetry is kept
        self.seen = None if history is None else history_ngrams(list(history), n)

    def with_history(self, history: Iterable[str]) -> CopyMaskedJudge:
        """The same judge masking copies of these history texts (all evaluated users', pooled)."""
        return CopyMaskedJudge(self.base, history, n=self.n)

    def mask(self, profile: str) -> str:
        """The part of ``profile`` this judge scores."""
        if self.seen is None:
            raise ConfigError("the copy-masked judge needs the users' histories: call with_history(texts) first")
        return mask_copied(profile, self.seen, self.n)

    def score(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        check_direction(direction)
        if direction == "A":
            return self._score_profiles(queries, documents, direction)
        return self._score_profiles(documents, queries, direction).T

    def _score_profiles(self, profiles: Sequence[str], items: Sequence[str], direction: str) -> np.ndarray:
        """Profiles x items; a profile with no word of its own scores 0 against every item."""
        masked = [self.mask(p) for p in profiles]
        own = [i for i, text in enumerate(masked) if _WORD.search(text)]
        out = np.zeros((len(profiles), len(items)), dtype=np.float64)
        if own and items:
            texts = [masked[i] for i in own]
            out[own] = self.base.score(texts, items, "A") if direction == "A" else self.base.score(items, texts, "B").T
        return out


def from_config(config: JudgeConfig, *, model: object = None, tokenizer: object = None) -> CopyMaskedJudge:
    """The copy-masked embedding judge (bundled MiniLM by default); bind histories with ``with_history``."""
    from bump_profiles.judges import embedding

    return CopyMaskedJudge(embedding.from_config(config, model=model, tokenizer=tokenizer))
