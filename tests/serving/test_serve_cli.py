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
