"""The lexical (TF-IDF) judge and the keyword-profile reference."""

from __future__ import annotations

import numpy as np
import pytest
from authors_fixture import write_authors

from bump_profiles.authors.data import load_authors, split_authors
from bump_profiles.authors.keywords import keyword_profiles
from bump_profiles.errors import ConfigError
from bump_profiles.judges import JudgeConfig, make_judge
from bump_profiles.judges.lexical import LexicalJudge

CORPUS = ["senate vote on the bill", "the match went to extra time", "a recipe for pasta", "hotel on the beach",
          "the senate and the governor", "striker scores in the match"]


def test_lexical_judge_ranks_by_shared_content_words_and_is_symmetric():
    judge = LexicalJudge.fitted(CORPUS)
    profiles = ["writes about the senate and votes", "covers the striker and every match"]
    items = ["senate vote delayed", "striker wins the match", "pasta recipe"]
    a = judge.score(profiles, items, "A")
    assert a.shape == (2, 3) and a[0, 0] > a[0, 1] and a[1, 1] > a[1, 0] and a[0, 2] == a[1, 2] == 0
    assert np.allclose(judge.score(items, profiles, "B"), a.T)


def test_lexical_scores_do_not_depend_on_the_batch():
    judge = LexicalJudge.fitted(CORPUS)
    alone = judge.score(["senate governor"], ["senate vote"], "A")
    batched = judge.score(["senate governor", "pasta"], ["senate vote", "senate senate senate", "beach"], "A")
    assert alone[0, 0] == pytest.approx(batched[0, 0])


def test_lexical_judge_is_registered_and_needs_its_corpus(tmp_path):
    with pytest.raises(ConfigError, match="corpus"):
        make_judge(JudgeConfig(kind="lexical"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS))
    judge = make_judge(JudgeConfig(kind="lexical", model=str(corpus)))
    assert judge.score(["senate"], ["senate vote", "beach"], "A")[0].argmax() == 0


def test_keyword_profiles_use_the_own_history_and_training_authors_only(tmp_path):
    split = split_authors(load_authors(write_authors(tmp_path / "a.jsonl")), eval_authors=3, k=2, seed=0, cap=10)
    profiles = keyword_profiles(split.eval, split.train, n_words=5)
    assert set(profiles) == {s.user.id for s in split.eval}
    for s in split.eval:
        words = profiles[s.user.id].split(", ")
        assert len(words) == 5
        history = " ".join(" ".join(it.fields.values()) for it in s.history).lower()
        assert all(w in history for w in words)
        # built from this author alone: the other evaluation authors change nothing
        assert keyword_profiles([s], split.train, n_words=5)[s.user.id] == profiles[s.user.id]
    # a word only in held-out articles never appears
    heldout_only = {w for s in split.eval for it in s.heldout for w in it.fields["title"].lower().split()} - {
        w for s in split.eval for it in s.history for w in " ".join(it.fields.values()).lower().split()}
    assert not heldout_only & {w for p in profiles.values() for w in p.split(", ")}
