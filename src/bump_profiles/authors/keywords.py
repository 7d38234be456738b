"""The keyword-profile reference: an author's most distinctive words, with no generator at all.

Distinctive = highest TF-IDF in the author's own history, the IDF counted over the training
authors' histories plus this author's (one document each). No other evaluation author and no
held-out article enters it, so each keyword profile is built from its own author's history alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from bump_profiles.data.split import UserSplit

TOKEN_PATTERN = r"(?u)\b[a-zA-Z][a-zA-Z'\-]+\b"  # words, not numbers


def history_document(split: UserSplit) -> str:
    """An author's history as one text: the articles' own words (no rendering boilerplate)."""
    return "\n".join(" ".join(it.fields.values()) for it in split.history)


def keyword_profiles(targets: Sequence[UserSplit], background: Sequence[UserSplit], n_words: int = 20) -> dict[str, str]:
    """``{author: "w1, w2, ..."}``: each target's ``n_words`` top TF-IDF words (ties: alphabetical)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    base = [history_document(s) for s in background]
    out = {}
    for s in targets:
        vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english", lowercase=True, token_pattern=TOKEN_PATTERN)
        matrix = vectorizer.fit_transform([*base, history_document(s)])
        row = matrix[len(base)].toarray()[0]
        vocab = vectorizer.get_feature_names_out()
        order = sorted(np.flatnonzero(row), key=lambda j: (-row[j], vocab[j]))[:n_words]
        out[s.user.id] = ", ".join(vocab[j] for j in order)
    return out


def cut_keywords(profiles: dict[str, str], budgets: dict[str, int], count: Callable[[str], int]) -> dict[str, str]:
    """Each keyword profile cut to its author's token budget, whole keywords only (``keywords@budget``:
    the keyword reference at the length of the profile it is compared with)."""
    out = {}
    for u, text in profiles.items():
        words, kept = text.split(", "), 0
        while kept < len(words) and count(", ".join(words[: kept + 1])) <= budgets[u]:
            kept += 1
        out[u] = ", ".join(words[:kept])
    return out
