"""``bump-profiles serve`` refuses to open an unauthenticated service on a network."""

from __future__ import annotations

import pytest

from bump_profiles.cli import main
from bump_profiles.commands.serve import check_auth
from bump_profiles.errors import ConfigError


def test_refuses_to_start_without_a_token(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("BUMP_API_TOKEN", raising=False)
    assert main(["serve", "--store", str(tmp_path / "s.db"), "--backend", "openai"]) == 2
    assert "no bearer token" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()  # refused before touching anything


def test_no_auth_only_on_loopback():
    assert check_auth("127.0.0.1", None, True, "T") is None
    assert check_auth("0.0.0.0", "tok", False, "T") == "tok"
    with pytest.raises(ConfigError, match="loopback"):
        check_auth("0.0.0.0", None, True, "T")
    with pytest.raises(ConfigError, match="no bearer token"):
        check_auth("127.0.0.1", "", False, "T")


@pytest.mark.parametrize("flags, phrase", [([], "short phrases separated by semicolons"),
                                           (["--prompt", "portrait"], "Write a concise profile")])
def test_serve_writes_subjects_by_default(monkeypatch, tmp_path, flags, phrase):
    """The untrained generator writes usable profiles only from the subjects prompt: serve's default."""
    import uvicorn

    import bump_profiles.commands.profile as profile_command
    import bump_profiles.serve as serve

    built = {}
    monkeypatch.setattr(profile_command, "_backend", lambda args: type("B", (), {"name": "fake"})())
    monkeypatch.setattr(serve, "create_app", lambda store, refresher, settings: built.setdefault("refresher", refresher))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    assert main(["serve", "--store", str(tmp_path / "s.db"), "--no-auth", *flags]) == 0
    refresher = built["refresher"]
    assert phrase in refresher.scratch_prompt.template and refresher.scratch_prompt.max_words == 40
    assert "{previous_profile}" in refresher.update_prompt.template
    assert ("semicolons" in refresher.update_prompt.template) == (not flags)


def test_an_unknown_prompt_style_is_refused():
    from bump_profiles.profiles.prompts import prompt_pair

    with pytest.raises(ConfigError, match="not one of subjects, portrait"):
        prompt_pair("haiku", max_words=10)


def test_serve_in_notes_mode(monkeypatch, tmp_path):
    import uvicorn

    import bump_profiles.commands.profile as profile_command
    import bump_profiles.serve as serve

    built = {}
    monkeypatch.setattr(profile_command, "_backend", lambda args: type("B", (), {"name": "fake"})())
    monkeypatch.setattr(serve, "create_app", lambda store, refresher, settings: built.setdefault("refresher", refresher))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    assert main(["serve", "--store", str(tmp_path / "s.db"), "--no-auth", "--mode", "notes", "--notes-kept", "5"]) == 0
    assert (built["refresher"].mode, built["refresher"].notes_kept) == ("notes", 5)
    assert main(["serve", "--store", str(tmp_path / "s.db"), "--no-auth", "--mode", "notes", "--notes-kept", "0"]) != 0
