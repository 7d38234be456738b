"""A trained update writer in the service: the first profile by the scratch generator, every update by the
writer (as the drift benchmark's ``trained`` chain), each version naming the backend that wrote it."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from bump_profiles.cli import main
from bump_profiles.commands.store_generator import trained_prompt_mismatch
from bump_profiles.config import load_config, to_yaml
from bump_profiles.errors import ConfigError
from bump_profiles.profiles.prompts import UpdatePrompt
from bump_profiles.profiles.refresh import Refresher
from bump_profiles.store import NewInteraction, ProfileStore
from serving.fakes import EchoBackend


def test_the_writer_writes_updates_and_only_updates(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))
    base, writer = EchoBackend("base"), EchoBackend("writer")
    r = Refresher(store, base, update_backend=writer, update_prompt=UpdatePrompt(history_items=2, history_tokens=400))
    store.add_interactions("old", [NewInteraction("first words")])
    r.refresh("old")
    store.add_interactions("old", [NewInteraction(f"later item {k}") for k in range(5)])  # a backlog of 3 chunks
    store.add_interactions("new", [NewInteraction("a newcomer's item")])
    base.calls.clear()
    results = r.refresh_many(["old", "new"])
    assert [v.generator for v in store.profile_history("old")] == ["base", "writer", "writer", "writer"]
    assert [(v.generator, v.mode) for v in store.profile_history("new")] == [("base", "scratch")]
    assert (results[0].through_seq, results[1].version) == (store.profile_history("old")[-1].through_seq, 1)
    assert base.calls == [1] and writer.calls == [1, 1, 1]  # one call per writer per round, each its own prompts
    assert all("written earlier" in p for p in writer.prompts) and "written earlier" not in base.prompts[-1]


@pytest.mark.parametrize("mode", ["scratch", "notes"])
def test_a_writer_outside_update_mode_is_refused(tmp_path, mode):
    with pytest.raises(ConfigError, match="update mode only"):
        Refresher(ProfileStore(str(tmp_path / "s.db")), EchoBackend(), mode=mode, update_backend=EchoBackend())


def test_the_refresh_command_takes_an_update_model(tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "s.db")
    store = ProfileStore(db)
    store.add_interactions("u", [NewInteraction("first words")])
    monkeypatch.setattr("bump_profiles.commands.profile._backend", lambda args: EchoBackend(args.model))
    flags = ["refresh", "--store", db, "--update-model", "writer-dir"]
    assert main(flags) == 0
    store.add_interactions("u", [NewInteraction("new words")])
    assert main(flags) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["model"], out["update_model"], out["written"]) == ("smollm2-135m", "writer-dir", 1)
    assert [v.generator for v in store.profile_history("u")] == ["smollm2-135m", "writer-dir"]
    assert main([*flags, "--mode", "notes"]) != 0 and "needs --mode update" in capsys.readouterr().err


def test_a_writer_shown_another_prompt_than_it_learned_is_named(tmp_path):
    """The check reads the config.yaml that training writes beside the weights."""
    run = tmp_path / "final"
    run.mkdir()
    assert trained_prompt_mismatch(str(run), "subjects", 40) is None  # no config: nothing to compare
    data = tmp_path / "train.jsonl"  # the config's data file is made by a script; any file will do here
    data.write_text("")
    config = load_config(REPO / "configs" / "update-writer-switch.yaml", [f"data.path={data}"])
    (run / "config.yaml").write_text(to_yaml(config))
    assert trained_prompt_mismatch(str(run), "portrait", 40) is None
    assert "learned the --prompt portrait update prompt, not --prompt subjects" in trained_prompt_mismatch(
        str(run), "subjects", 40)
    assert "learned --max-words 40, not 60" in trained_prompt_mismatch(str(run), "portrait", 60)
    config.prompt.mode = "scratch"
    (run / "config.yaml").write_text(to_yaml(config))
    assert "not an update writer" in trained_prompt_mismatch(str(run), "portrait", 40)
