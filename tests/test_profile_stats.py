"""Profile statistics on hand-made examples."""

from __future__ import annotations

import pytest

from bump_profiles.profiles.stats import (
    copied_span_share,
    copy_rate,
    ngrams,
    profile_stats,
    repeated_ngram_share,
    repeated_sentence_share,
    words,
)

HISTORY = ["Paper: Deep learning for graph matching at scale.", "Paper: Sparse attention in transformers."]


def test_words_ignore_case_and_punctuation():
    assert words("Deep-Learning, for GRAPHS!") == ["deep", "learning", "for", "graphs"]
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]
    assert ngrams(["a"], 2) == []


def test_copy_rate_hand_worked():
    # profile words: likes deep learning for graph matching -> 4-grams:
    # (likes deep learning for) no, (deep learning for graph) yes, (learning for graph matching) yes -> 2/3.
    assert copy_rate("Likes deep learning for graph matching", HISTORY, 4) == pytest.approx(2 / 3)
    # nothing copied
    assert copy_rate("enjoys hiking in the alps every summer", HISTORY, 4) == 0.0
    # the whole profile is a history phrase -> 1
    assert copy_rate("sparse attention in transformers", HISTORY, 4) == 1.0
    # fewer words than n: no n-gram, nothing copied at that length
    assert copy_rate("graph matching", HISTORY, 4) == 0.0


def test_ngrams_do_not_cross_history_items():
    # "scale paper sparse attention" spans the end of item 1 and the start of item 2: not a copy.
    assert copy_rate("scale paper sparse attention", HISTORY, 4) == 0.0


def test_copy_rate_8_grams():
    # 8 words, all from item 1 -> one 8-gram, found -> 1.0; one new word appended -> 2 8-grams, 1 found.
    copied = "paper deep learning for graph matching at scale"
    assert copy_rate(copied, HISTORY, 8) == 1.0
    assert copy_rate(copied + " yesterday", HISTORY, 8) == pytest.approx(1 / 2)


def test_copied_span_share_hand_worked():
    # profile: "he studies deep learning for graph matching today" = 8 words; the span
    # "deep learning for graph matching" (5 words) is verbatim. max_words=4 -> spans longer than 4 count:
    # 5 of 8 words covered. max_words=5 -> the span is not longer than 5 -> 0.
    profile = "He studies deep learning for graph matching today"
    assert copied_span_share(profile, HISTORY, 4) == pytest.approx(5 / 8)
    assert copied_span_share(profile, HISTORY, 5) == 0.0
    assert copied_span_share("", HISTORY, 4) == 0.0
    with pytest.raises(ValueError):
        copied_span_share(profile, HISTORY, 0)


def test_profile_stats_hand_worked():
    profiles = ["sparse attention in transformers", "likes hiking", "   "]
    histories = [HISTORY, HISTORY, HISTORY]
    stats = profile_stats(profiles, histories, max_tokens=4)
    assert stats["profiles"] == 3
    assert stats["tokens_mean"] == pytest.approx((4 + 2 + 0) / 3)
    assert stats["tokens_max"] == 4
    assert stats["empty_share"] == pytest.approx(1 / 3)
    assert stats["copy_rate_4"] == pytest.approx((1 + 0 + 0) / 3)
    assert stats["copy_rate_8"] == 0.0
    # at or past the limit of 4 tokens: only the first profile
    assert stats["truncated_share"] == pytest.approx(1 / 3)
    # explicit flags from generation win over the count
    assert profile_stats(profiles, histories, max_tokens=4, truncated=[False, True, True])["truncated_share"] == pytest.approx(2 / 3)


def test_profile_stats_custom_count_and_no_histories():
    stats = profile_stats(["abcd", "ab"], count_tokens=len)
    assert stats["tokens_mean"] == 3.0 and stats["words_mean"] == 1.0
    assert stats["copy_rate_4"] is None and stats["truncated_share"] is None
    with pytest.raises(ValueError):
        profile_stats(["a"], [HISTORY, HISTORY])


def test_repetition_shares_hand_worked():
    loop = "I read an article on espresso and beans. I read an article on espresso and beans. I like tea."
    # 3 sentences, the second repeats the first -> 1/3
    assert repeated_sentence_share(loop) == pytest.approx(1 / 3)
    # 19 words -> 17 3-grams. Repeats of an earlier one: the 6 inside the second sentence and
    # (and beans i), which follows both "beans"; (beans i read) is new, (beans i like), (i like tea) new -> 7/17
    assert repeated_ngram_share(loop, 3) == pytest.approx(7 / 17)
    assert repeated_ngram_share("no repeats in this one at all", 3) == 0.0
    assert repeated_ngram_share("two words", 3) == 0.0 and repeated_sentence_share("  ") == 0.0
    # case and punctuation do not hide a repeated sentence
    assert repeated_sentence_share("Likes tea!\nlikes TEA.") == pytest.approx(1 / 2)
    stats = profile_stats([loop, "no repeats in this one at all"])
    assert stats["repeated_3gram_share"] == pytest.approx(7 / 17 / 2)
    assert stats["repeated_sentence_share"] == pytest.approx(1 / 3 / 2)
