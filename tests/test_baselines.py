"""The budget-matched history really has the profile's token count."""

from __future__ import annotations

from fakes import tiny_tokenizer

from bump_profiles.data import split_users
from bump_profiles.data.synthetic import make_users
from bump_profiles.profiles.baselines import budget_history, reference_profiles


def test_budget_history_matches_the_profile_length_within_one_interaction():
    tok = tiny_tokenizer()

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    splits = split_users(make_users(6, seed=2), 2).users
    budgets = {s.user.id: 10 + 7 * i for i, s in enumerate(splits)}
    cut = budget_history(splits, budgets, count)
    for s in splits:
        longest_item = max(count(it.text) for it in s.history)
        n = count(cut[s.user.id])
        assert budgets[s.user.id] - longest_item <= n <= budgets[s.user.id] + 1, (n, budgets[s.user.id])
        assert s.history[-1].text.startswith(cut[s.user.id].split("\n")[0])  # most recent first


def test_reference_profiles_for_synthetic_users_include_the_truth():
    splits = split_users(make_users(3, seed=0), 2).users
    profiles = {s.user.id: "likes many things " * (i + 1) for i, s in enumerate(splits)}
    refs = reference_profiles(splits, profiles)
    assert set(refs) == {"history@budget", "full history", "true interests"}
    for s in splits:
        assert len(refs["history@budget"][s.user.id].split()) <= len(profiles[s.user.id].split())
        assert s.user.extra["interests"][0] in refs["true interests"][s.user.id]


def test_central_history_shows_the_items_most_typical_of_the_user_first_within_the_budget():
    from bump_profiles.data.schema import Interaction, User
    from bump_profiles.data.split import UserSplit
    from bump_profiles.profiles.baselines import central_history

    texts = ["garden roses pruning", "garden tomatoes soil", "election results tonight", "garden roses soil compost",
             "stock market crash"]  # oldest first: the newest two are off-topic, the garden items recur
    items = [Interaction(str(i), {"text": t}) for i, t in enumerate(texts)]
    split = UserSplit(User("u", items), items, [])
    shown = central_history([split], {"u": 8}).get("u").split("\n")
    assert shown[0] == "garden roses soil compost" and "market" not in " ".join(shown) and "election" not in " ".join(shown)
    assert len(" ".join(shown).split()) <= 8
    recent = budget_history([split], {"u": 8})["u"]
    assert recent.startswith("stock market crash")  # the rival it is built against: the newest items first
    bare = [Interaction(str(i), {"text": t}) for i, t in enumerate(["the and", "of the"])]
    assert central_history([UserSplit(User("v", bare), bare, [])], {"v": 8}) == {"v": "of the\nthe and"}  # stop words only


def test_cut_keywords_keeps_whole_keywords_within_each_budget():
    from bump_profiles.authors.keywords import cut_keywords

    def count(text: str) -> int:
        return len(text.split())

    cut = cut_keywords({"a": "red, green blue, yellow", "b": "one, two"}, {"a": 3, "b": 0}, count)
    assert cut == {"a": "red, green blue", "b": ""}
