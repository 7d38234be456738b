"""Incremental profiles: the update prompt, ``profile --update`` on files, and update mode in training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_stub import OpenAIStub

from bump_profiles.cli import main
from bump_profiles.config import load_config
from bump_profiles.data import split_users
from bump_profiles.data.schema import Interaction, User
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt
from bump_profiles.profiles.provenance import record
from bump_profiles.profiles.update import new_since, training_prompt
from bump_profiles.train.data import build_dataset


def it(i: int, text: str, date: str | None = None) -> Interaction:
    return Interaction(id=str(i), fields={"text": text}, date=date)


def test_update_prompt_shows_the_previous_profile_and_only_new_items():
    msg = UpdatePrompt(max_words=40).messages("Loves baking bread.", [it(1, "posted a brioche"), it(2, "asked about rye")])
    content = msg[0]["content"]
    assert "Loves baking bread." in content and "40 words" in content
    assert content.index("asked about rye") < content.index("posted a brioche")  # most recent first


def test_new_since_by_read_hashes_date_or_since():
    hist = [it(0, "a", "2024-01-01"), it(1, "b", "2024-02-01"), it(2, "c", "2024-03-01")]
    read = record(hist[:2])
    assert [x.text for x in new_since(hist, {"user_id": "u", "read": read}, path="p", lineno=1)] == ["c"]
    # the hashes are of the texts, not positions: an old item edited in the log counts as new
    assert [x.text for x in new_since([it(0, "a2", "2024-01-01"), *hist[1:]], {"user_id": "u", "read": read},
                                      path="p", lineno=1)] == ["a2", "c"]
    assert [x.text for x in new_since(hist, {"user_id": "u", "through_date": "2024-01-15"}, path="p", lineno=1)] == ["b", "c"]
    assert [x.text for x in new_since(hist, {"user_id": "u"}, path="p", lineno=1, since="2024-02-01")] == ["c"]
    with pytest.raises(DataError, match=r"p: record line 3: no provenance"):
        new_since(hist, {"user_id": "u"}, path="p", lineno=3)
    with pytest.raises(DataError, match="'read' must be"):
        new_since(hist, {"user_id": "u", "read": ["x"]}, path="p", lineno=1)


def _log(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("".join(json.dumps({"user_id": u, "text": t, "timestamp": d}) + "\n" for u, t, d in rows))
    return path


def test_profile_update_cli_updates_carries_and_starts_fresh(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    old = [("ana", "baked sourdough", "2024-01-01"), ("ana", "asked about crumb", "2024-01-02"),
           ("ben", "rode 100 km", "2024-01-03")]
    new = old + [("ana", "posted a brioche braid", "2024-02-01"), ("cy", "painted a fox", "2024-02-02")]
    _log(tmp_path / "old.jsonl", old)
    _log(tmp_path / "new.jsonl", new)
    with OpenAIStub(["ok"]) as stub:
        api = ["--backend", "openai", "--base-url", stub.base_url, "--api-model", "m", "--no-progress"]
        # first generation (from scratch, through --update with an empty previous file)
        (tmp_path / "none.jsonl").write_text("")
        assert main(["profile", "--data", str(tmp_path / "old.jsonl"), "--out", str(tmp_path / "v1.jsonl"),
                     "--update", str(tmp_path / "none.jsonl"), *api]) == 0
        v1 = {r["user_id"]: r for r in map(json.loads, (tmp_path / "v1.jsonl").read_text().splitlines())}
        assert {u: (r["mode"], r["read"]["n"]) for u, r in v1.items()} == {"ana": ("scratch", 2), "ben": ("scratch", 1)}
        n_before = len(stub.requests)
        assert main(["profile", "--data", str(tmp_path / "new.jsonl"), "--out", str(tmp_path / "v2.jsonl"),
                     "--update", str(tmp_path / "v1.jsonl"), *api]) == 0
        prompts = [r["body"]["messages"][-1]["content"] for r in stub.requests[n_before:]]
    v2 = {r["user_id"]: r for r in map(json.loads, (tmp_path / "v2.jsonl").read_text().splitlines())}
    assert {u: (r["mode"], r["read"]["n"], r["new_interactions"]) for u, r in v2.items()} == {
        "ana": ("update", 3, 1), "ben": ("carried", 1, 0), "cy": ("scratch", 1, 1)}
    assert v2["ben"]["profile"] == v1["ben"]["profile"]
    assert len(prompts) == 2  # ben needed no generation
    ana = next(p for p in prompts if "brioche" in p)
    assert v1["ana"]["profile"] in ana and "sourdough" not in ana  # previous profile + only the new item


def test_profile_update_without_provenance_needs_since(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    _log(tmp_path / "log.jsonl", [("ana", "a", "2024-01-01"), ("ana", "b", "2024-03-01")])
    (tmp_path / "prev.jsonl").write_text(json.dumps({"user_id": "ana", "profile": "likes a", "model": "m"}) + "\n")
    with OpenAIStub(["ok"]) as stub:
        api = ["--backend", "openai", "--base-url", stub.base_url, "--api-model", "m", "--no-progress"]
        args = ["profile", "--data", str(tmp_path / "log.jsonl"), "--update", str(tmp_path / "prev.jsonl"), *api]
        assert main([*args, "--out", str(tmp_path / "a.jsonl")]) == 2
        assert "prev.jsonl: record line 1: no provenance" in capsys.readouterr().err
        assert main([*args, "--out", str(tmp_path / "b.jsonl"), "--since", "2024-02-01"]) == 0
    row = json.loads((tmp_path / "b.jsonl").read_text())
    assert (row["mode"], row["new_interactions"]) == ("update", 1)


def _users(n: int = 3, m: int = 8) -> list[User]:
    return [User(f"u{u}", [it(i, f"user {u} item {i}") for i in range(m)]) for u in range(n)]


def test_training_update_mode_prompts_previous_profile_and_recent_items(tmp_path):
    prev = tmp_path / "prev.jsonl"
    prev.write_text("".join(json.dumps({"user_id": f"u{u}", "profile": f"PREVIOUS OF u{u}"}) + "\n" for u in range(3)))
    cfg = load_config(None, ["prompt.mode=update", f"prompt.previous_profiles={prev}", "prompt.update_recent=2"])
    splits = split_users(_users(), 2, strategy="recent").users
    ds = build_dataset(splits, training_prompt(cfg.prompt, splits))
    text = ds[0]["prompt"][0]["content"]
    assert "PREVIOUS OF u0" in text and "item 5" in text and "item 4" in text
    assert "item 3" not in text  # older history: only through the previous profile
    assert "item 6" not in text and "item 7" not in text  # held out: never shown


def test_training_update_mode_refuses_previous_profiles_that_read_the_recent_part(tmp_path):
    splits = split_users(_users(), 2, strategy="recent").users
    prev = tmp_path / "prev.jsonl"
    # u1's previous profile was written from its whole history: it read the 2 recent items the update
    # is meant to add (and the reward would pay it for them)
    prev.write_text("".join(json.dumps({"user_id": s.user.id, "profile": "p",
                                        "read": record(s.history if s.user.id == "u1" else s.history[:-2])}) + "\n"
                            for s in splits))
    cfg = load_config(None, ["prompt.mode=update", f"prompt.previous_profiles={prev}", "prompt.update_recent=2"])
    with pytest.raises(DataError, match="user 'u1' read 2 of the items"):
        training_prompt(cfg.prompt, splits)


def test_training_update_mode_checks_before_any_model(tmp_path):
    with pytest.raises(ConfigError, match="previous_profiles"):
        load_config(None, ["prompt.mode=update"])
    prev = tmp_path / "prev.jsonl"
    prev.write_text(json.dumps({"user_id": "u0", "profile": "p"}) + "\n")
    cfg = load_config(None, ["prompt.mode=update", f"prompt.previous_profiles={prev}"])
    splits = split_users(_users(), 2, strategy="recent").users
    with pytest.raises(ConfigError, match="no profile for 2 training user"):
        training_prompt(cfg.prompt, splits)


def test_grpo_trains_in_update_mode(tmp_path):
    """One GRPO step with update prompts on a tiny model: the BUMP reward trains it as in scratch mode."""
    from fakes import save_tiny
    from test_train import BigramJudge, tiny_config

    from bump_profiles.train import train
    from bump_profiles.train.data import prepare_data

    tiny = save_tiny(tmp_path / "tiny")
    base = tiny_config(tiny, tmp_path / "run", "grpo.max_steps=1")
    prev = tmp_path / "previous.jsonl"
    prev.write_text("".join(json.dumps({"user_id": s.user.id, "profile": f"Earlier profile of {s.user.id}."}) + "\n"
                            for s in prepare_data(base).train))
    config = tiny_config(tiny, tmp_path / "run", "grpo.max_steps=1", "prompt.mode=update",
                         f"prompt.previous_profiles={prev}", "prompt.update_recent=2")
    result = train(config, judge=BigramJudge())
    assert result.global_step == 1
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "rewards/bump/mean" in row["trl"]


def test_item_and_token_budgets_must_be_positive(tmp_path, monkeypatch, capsys):
    """``--history-items 0`` showed the generator nothing (and the service recorded
    every item as read); a budget below 1 is now an error naming it, in the prompts and the CLI."""
    for cls in (ProfilePrompt, UpdatePrompt):
        for bad in ({"history_items": 0}, {"history_items": -3}, {"history_tokens": 0}):
            with pytest.raises(ConfigError, match=next(iter(bad))):
                cls(**bad)
        cls(history_items=None, history_tokens=None)  # None: no budget of that kind
    with pytest.raises(ConfigError, match="prompt.history_items"):
        load_config(None, ["prompt.history_items=0"])
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    _log(tmp_path / "log.jsonl", [("ana", "a", "2024-01-01"), ("ana", "b", "2024-03-01")])
    assert main(["profile", "--data", str(tmp_path / "log.jsonl"), "--out", str(tmp_path / "o.jsonl"),
                 "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--api-model", "m",
                 "--history-items", "0"]) == 2
    assert "history_items" in capsys.readouterr().err and not (tmp_path / "o.jsonl").exists()


def test_profile_update_refuses_a_second_writer_of_the_same_file(tmp_path):
    """``update_profiles`` holds the same ``<out>.lock`` as ``generate_profiles``."""
    from filelock import FileLock

    from bump_profiles.profiles.update import update_profiles

    (tmp_path / "prev.jsonl").write_text("")
    out = tmp_path / "next.jsonl"
    users = [User("ana", [it(0, "a", "2024-01-01")])]
    with FileLock(f"{out}.lock", timeout=0), pytest.raises(ConfigError, match="another run is writing"):
        update_profiles(users, tmp_path / "prev.jsonl", object(), out, update_prompt=UpdatePrompt(),
                        scratch_prompt=ProfilePrompt())
    assert not out.exists()


def test_profile_update_records_only_what_the_prompt_showed(tmp_path):
    """Files: 30 new items, a prompt that shows 5. The line's ``read`` is the previous
    profile's plus the 5 oldest new items (the ones shown), ``unread`` counts the rest, and the next
    ``--update`` reads the next 5: a backlog is read over successive updates, never marked read unseen."""
    from serving.fakes import EchoBackend

    from bump_profiles.profiles.update import update_profiles

    history = [it(i, f"item number {i}") for i in range(31)]
    (tmp_path / "v1.jsonl").write_text(json.dumps({"user_id": "ana", "profile": "p", "read": record(history[:1])}) + "\n")
    backend = EchoBackend()
    kw = dict(update_prompt=UpdatePrompt(history_items=5), scratch_prompt=ProfilePrompt())
    update_profiles([User("ana", history)], tmp_path / "v1.jsonl", backend, tmp_path / "v2.jsonl", **kw)
    v2 = json.loads((tmp_path / "v2.jsonl").read_text())
    assert (v2["mode"], v2["new_interactions"], v2["unread"]) == ("update", 30, 25)
    assert sorted(v2["read"]["items"]) == sorted(record(history[:6])["items"]) and v2["read"]["n"] == 6
    assert "item number 5" in backend.prompts[-1] and "item number 6" not in backend.prompts[-1]
    update_profiles([User("ana", history)], tmp_path / "v2.jsonl", backend, tmp_path / "v3.jsonl", **kw)
    v3 = json.loads((tmp_path / "v3.jsonl").read_text())
    assert sorted(v3["read"]["items"]) == sorted(record(history[:11])["items"]) and v3["unread"] == 20
    assert "item number 10" in backend.prompts[-1] and "item number 5" not in backend.prompts[-1]
