"""Statistics of profiles that say whether a score was earned by summarising or by copying.

A profile exists to carry a user in fewer tokens than their history; a policy trained against a judge
can instead learn to paste the history. These pure functions measure that, for every set of profiles
the tool scores or writes: length (tokens and words), copy rate (share of the profile's word n-grams
found verbatim in the user's history), verbatim spans, repetition within the profile (repeated word
3-grams and sentences), and the share of profiles cut by the length limit.

Words, for copying, are lower-cased runs of letters and digits (``\\w+``), so a change of case or
punctuation does not hide a copy. N-grams never cross the boundary between two history interactions.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens used for copy detection."""
    return _WORD.findall(text.lower())


def whitespace_tokens(text: str) -> int:
    """Default token count: whitespace-separated words (pass a tokenizer's count for real tokens)."""
    return len(text.split())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All contiguous n-grams of ``tokens``, in order (empty when there are fewer than n tokens)."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def history_ngrams(history: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """Every word n-gram of every history text (none spanning two texts)."""
    found: set[tuple[str, ...]] = set()
    for text in history:
        found.update(ngrams(words(text), n))
    return found


def copy_rate(profile: str, history: Sequence[str], n: int = 4) -> float:
    """Share of the profile's word n-grams found verbatim in the history.

    A profile with fewer than n words has no n-gram and so copies none at that length: 0.0.
    """
    grams = ngrams(words(profile), n)
    if not grams:
        return 0.0
    seen = history_ngrams(history, n)
    return sum(g in seen for g in grams) / len(grams)


def copied_span_share(profile: str, history: Sequence[str], max_words: int) -> float:
    """Share of the profile's words inside a verbatim history span longer than ``max_words`` words.

    A span longer than N words is exactly a run covered by (N+1)-grams found in the history, so the
    words covered by those n-grams are the words of such spans.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be at least 1, got {max_words}")
    toks = words(profile)
    if not toks:
        return 0.0
    n = max_words + 1
    seen = history_ngrams(history, n)
    covered = [False] * len(toks)
    for i, gram in enumerate(ngrams(toks, n)):
        if gram in seen:
            covered[i : i + n] = [True] * n
    return sum(covered) / len(toks)


def repeated_ngram_share(profile: str, n: int = 3) -> float:
    """Share of the profile's word n-grams that repeat an n-gram seen earlier in the same profile.

    "espresso beans. espresso beans. espresso beans." -> most 3-grams are repeats; 0.0 below n words.
    """
    grams = ngrams(words(profile), n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


_SENTENCE = re.compile(r"[^.!?\n]+")


def repeated_sentence_share(profile: str) -> float:
    """Share of the profile's sentences (split at . ! ? and newlines) that repeat an earlier one.

    Sentences are compared by their words (case and punctuation ignored); 0.0 with no sentence.
    """
    sentences = [tuple(words(s)) for s in _SENTENCE.findall(profile)]
    sentences = [s for s in sentences if s]
    if not sentences:
        return 0.0
    return 1.0 - len(set(sentences)) / len(sentences)


def profile_stats(
    profiles: Sequence[str],
    histories: Sequence[Sequence[str]] | None = None,
    *,
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int | None = None,
    truncated: Sequence[bool] | None = None,
) -> dict[str, float | int | None]:
    """Summary statistics of a set of profiles (means over profiles).

    ``histories[i]`` holds the history texts of profile i's user (copy rates are None without them).
    The share cut by the length limit comes from ``truncated`` (whether generation stopped at the
    limit) when given, else from ``count_tokens(profile) >= max_tokens`` when ``max_tokens`` is given.
    """
    if histories is not None and len(histories) != len(profiles):
        raise ValueError(f"{len(profiles)} profiles but {len(histories)} histories")
    if truncated is not None and len(truncated) != len(profiles):
        raise ValueError(f"{len(profiles)} profiles but {len(truncated)} truncation flags")
    count = count_tokens or whitespace_tokens
    n = len(profiles)
    tokens = [count(p) for p in profiles]
    out: dict[str, float | int | None] = {
        "profiles": n,
        "tokens_mean": statistics.fmean(tokens) if n else None,
        "tokens_max": max(tokens) if n else None,
        "words_mean": statistics.fmean(len(p.split()) for p in profiles) if n else None,
        "empty_share": sum(not p.strip() for p in profiles) / n if n else None,
        "repeated_3gram_share": statistics.fmean(repeated_ngram_share(p, 3) for p in profiles) if n else None,
        "repeated_sentence_share": statistics.fmean(repeated_sentence_share(p) for p in profiles) if n else None,
        "copy_rate_4": None,
        "copy_rate_8": None,
        "truncated_share": None,
    }
    if histories is not None and n:
        out["copy_rate_4"] = statistics.fmean(copy_rate(p, h, 4) for p, h in zip(profiles, histories, strict=True))
        out["copy_rate_8"] = statistics.fmean(copy_rate(p, h, 8) for p, h in zip(profiles, histories, strict=True))
    if truncated is not None and n:
        out["truncated_share"] = sum(bool(t) for t in truncated) / n
    elif max_tokens is not None and n:
        out["truncated_share"] = sum(t >= max_tokens for t in tokens) / n
    return out
