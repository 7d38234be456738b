"""The copy-masked judge: copied spans are invisible to it, everything else scores as under
its base judge; and ``judge eval --references`` scores the history references beside the profiles."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from bump_profiles.cli import main
from bump_profiles.data import split_users, write_users_jsonl
from bump_profiles.data.atomic import atomic_write_text
from bump_profiles.data.synthetic import interests_profile, make_users
from bump_profiles.errors import ConfigError
from bump_profiles.evaluation.intrinsic import evaluate_profiles
from bump_profiles.judges import JUDGES, JudgeConfig, make_judge
from bump_profiles.judges.calibration import DEFAULT_CALIBRATION
from bump_profiles.judges.copymask import CopyMaskedJudge, mask_copied
from bump_profiles.judges.embedding import EmbeddingJudge
from bump_profiles.profiles.baselines import reference_profiles
from bump_profiles.profiles.stats import copied_span_share, history_ngrams, words

HISTORY = ["Reviewed a guide on oven and flour; loved the part on yeast.", "Shared photos of nebula with orbit, mostly eclipse."]


class BagOfWords:
    """A stand-in sentence encoder: normalised hashed word counts, so cosines are exact and instant."""

    def __init__(self, dim: int = 256):
        self.dim = dim

    def encode(self, texts, **_):
        out = np.zeros((len(texts), self.dim))
        for i, text in enumerate(texts):
            for w in words(text):
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)

    def tokenizer(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


@pytest.fixture
def judge() -> CopyMaskedJudge:
    return CopyMaskedJudge(EmbeddingJudge(BagOfWords()), HISTORY)


# --- masking ---------------------------------------------------------------------------------------


def test_span_of_n_words_is_removed_shorter_one_kept():
    seen = history_ngrams(HISTORY, 4)
    assert mask_copied("They REVIEWED a Guide on baking.", seen, 4) == "They baking."
    assert mask_copied("A guide on sourdough.", seen, 4) == "A guide on sourdough."  # 3 copied words: kept


def test_profile_without_copy_is_returned_unchanged():
    text = "Bakes  bread;\nwatches comets!"
    assert mask_copied(text, history_ngrams(HISTORY, 4), 4) == text


@pytest.mark.parametrize("profile", [
    "Likes baking. Reviewed a guide on oven and flour, and astronomy: nebula with orbit, mostly eclipse",
    "shared photos of nebula with orbit mostly eclipse",
    "nothing copied at all here",
])
def test_masked_words_are_exactly_the_copied_span_share(profile):
    n_words = len(words(profile))
    removed = n_words - len(words(mask_copied(profile, history_ngrams(HISTORY, 4), 4)))
    assert removed == round(copied_span_share(profile, HISTORY, max_words=3) * n_words)


# --- the judge -------------------------------------------------------------------------------------


def test_uncopied_profiles_score_exactly_as_under_the_base_judge(judge):
    profiles, items = ["bakes sourdough with yeast", "astronomy: comets and telescopes"], ["oven yeast dough", "comet orbit"]
    np.testing.assert_array_equal(judge.score(profiles, items, "A"), judge.base.score(profiles, items, "A"))


def test_pasted_history_scores_zero_where_the_plain_judge_rewards_it(judge):
    items = ["oven flour yeast", "nebula orbit eclipse"]
    m = judge.score([HISTORY[0], "likes baking with flour and yeast"], items, "A")
    assert m[0].tolist() == [0.0, 0.0]
    assert m[1, 0] > 0.0
    plain = judge.base.score([HISTORY[0]], items, "A")[0]
    assert plain[0] > plain[1]  # the plain judge ranks the copied user's item first


def test_direction_b_is_the_transpose_and_judge_stays_symmetric(judge):
    profiles, items = [HISTORY[1], "eclipse chaser with a telescope"], ["nebula orbit", "flour"]
    assert judge.symmetric
    np.testing.assert_array_equal(judge.score(items, profiles, "B"), judge.score(profiles, items, "A").T)


def test_without_history_it_refuses_rather_than_acting_plain():
    bare = CopyMaskedJudge(EmbeddingJudge(BagOfWords()))
    with pytest.raises(ConfigError, match="with_history"):
        bare.score(["a profile"], ["an item"], "A")
    bound = bare.with_history(HISTORY)
    assert bound.score(["a profile"], ["an item"], "A").shape == (1, 1)
    assert bare.seen is None


def test_bad_span_length_and_direction_are_config_errors(judge):
    with pytest.raises(ConfigError, match="at least 2"):
        CopyMaskedJudge(judge.base, HISTORY, n=1)
    with pytest.raises(ConfigError, match="direction"):
        judge.score(["p"], ["i"], "C")


def test_registered_and_built_by_make_judge():
    assert JUDGES["copymask"].default_model == "minilm"
    built = make_judge(JudgeConfig(kind="copymask"), model=BagOfWords())
    assert isinstance(built, CopyMaskedJudge) and isinstance(built.base, EmbeddingJudge)


def test_on_synthetic_users_truth_beats_pasted_history_only_under_the_masked_judge():
    splits = split_users(make_users(12, seed=3), 2).users
    truth = {s.user.id: interests_profile(s.user) for s in splits}
    pasted = reference_profiles(splits, {u: "w " * 64 for u in truth})["history@budget"]  # history cut to 64 words
    plain = EmbeddingJudge(BagOfWords())
    masked = CopyMaskedJudge(plain, [it.text for s in splits for it in s.history])
    ndcg = {
        (name, kind): evaluate_profiles(splits, profiles, j)["metrics"][DEFAULT_CALIBRATION]["ndcg_a"]
        for name, profiles in (("truth", truth), ("pasted", pasted))
        for kind, j in (("plain", plain), ("masked", masked))
    }
    assert ndcg["truth", "masked"] == ndcg["truth", "plain"]  # nothing copied, nothing changed
    assert ndcg["pasted", "masked"] < ndcg["pasted", "plain"]
    assert ndcg["pasted", "masked"] < ndcg["truth", "masked"]


# --- judge eval --references -----------------------------------------------------------------------


def test_judge_eval_references_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bump_profiles.engines.models.load_sentence_transformer", lambda name, device=None: BagOfWords())
    users = make_users(8, seed=5)
    write_users_jsonl(users, tmp_path / "users.jsonl")
    # each user gets the next user's interests: the profiles row and the true-interests row must differ
    shifted = users[1:] + users[:1]
    profiles = "".join(json.dumps({"user_id": u.id, "profile": interests_profile(v)}) + "\n" for u, v in zip(users, shifted, strict=True))
    atomic_write_text(tmp_path / "profiles.jsonl", profiles)
    out = tmp_path / "eval.json"
    code = main(["judge", "eval", "--data", str(tmp_path / "users.jsonl"), "--profiles", str(tmp_path / "profiles.jsonl"),
                 "--judge", "copymask", "--references", "--calibration", "center-transductive", "none", "--out", str(out)])
    assert code == 0
    fold = json.loads(out.read_text())["folds"][0]
    refs = fold["references"]
    assert set(refs) == {"history@budget", "full history", "true interests"}
    assert refs["history@budget"]["profile_stats"]["copy_rate_4"] > 0.5  # n-grams across two pasted items count as new
    assert refs["history@budget"]["profile_stats"]["tokens_mean"] <= fold["profile_stats"]["tokens_mean"]
    # the true interests (computed from the users, not read from the profiles file) beat someone else's
    truth, given = refs["true interests"]["metrics"]["none"], fold["metrics"]["none"]
    assert truth["ndcg_a"] > given["ndcg_a_random"] > given["ndcg_a"]
    assert truth["ndcg_b"] > given["ndcg_b"]
    # the whole history earns less than random under the copy-masked judge
    assert refs["full history"]["metrics"]["none"]["ndcg_a"] < fold["metrics"]["none"]["ndcg_a_random"]
    printed = capsys.readouterr().out
    assert "history@budget" in printed and "copy4" in printed and "random" in printed
