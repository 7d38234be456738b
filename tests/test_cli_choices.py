"""CLI choices come from the library's registries, and building the parser loads no heavy library."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from bump_profiles import data, judges
from bump_profiles.cli import build_parser
from bump_profiles.data import split
from bump_profiles.evaluation.intrinsic import PSEUDO_PROFILES
from bump_profiles.lamp.retrieval import RETRIEVERS
from bump_profiles.lamp.runner import METHODS
from bump_profiles.profiles.refresh import MODES


def _choices(argv_prefix: list[str], flag: str) -> list[str]:
    parser = build_parser()
    for name in argv_prefix:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    action = next(a for a in parser._actions if flag in a.option_strings)
    return list(action.choices)


@pytest.mark.parametrize("path, flag, registry", [
    (["judge", "eval"], "--judge", list(judges.JUDGES)),
    (["judge", "eval"], "--judge-dtype", list(judges.DTYPES)),
    (["judge", "eval"], "--format", list(data.FORMATS)),
    (["judge", "eval"], "--pseudo-profile", list(PSEUDO_PROFILES)),
    (["data", "split"], "--format", list(data.FORMATS)),
    (["data", "split"], "--strategy", list(split.STRATEGIES)),
    (["profile"], "--format", list(data.FORMATS)),
    (["eval", "run"], "--method", list(METHODS)),
    (["eval", "run"], "--retriever", list(RETRIEVERS)),
    (["refresh"], "--mode", list(MODES)),
    (["serve"], "--mode", list(MODES)),
])
def test_cli_choices_are_the_registries(path, flag, registry):
    assert _choices(path, flag) == registry


def test_a_judge_added_to_the_registry_is_a_cli_choice(monkeypatch):
    monkeypatch.setitem(judges.JUDGES, "oracle", judges.JUDGES["embedding"])
    args = build_parser().parse_args(["judge", "eval", "--data", "u.jsonl", "--profiles", "p.jsonl", "--judge", "oracle"])
    assert args.judge == "oracle"


def test_building_the_parser_loads_no_numpy_or_torch():
    code = "import sys; from bump_profiles.cli import build_parser; build_parser(); print(sorted({'numpy', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
