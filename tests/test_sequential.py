"""Sequential update training (``prompt.previous_from: policy``): the previous profile is written by the
policy itself, refreshed as it trains, and never from a file; a GRPO step runs on the tiny model."""

from __future__ import annotations

import json

import pytest
from fakes import save_tiny, varied_tiny_lm
from test_train import REPO, BigramJudge, tiny_config

from bump_profiles.config import load_config
from bump_profiles.engines.backends import TransformersBackend
from bump_profiles.errors import ConfigError
from bump_profiles.profiles.prompts import ProfilePrompt
from bump_profiles.train.data import build_dataset, prepare_data
from bump_profiles.train.sequential import policy_prompt


def test_config_refuses_mixed_or_incomplete_sequential_settings():
    with pytest.raises(ConfigError, match="policy needs prompt.mode=update"):
        load_config(None, ["prompt.previous_from=policy"])
    with pytest.raises(ConfigError, match="no prompt.previous_profiles"):
        load_config(None, ["prompt.mode=update", "prompt.previous_from=policy", "prompt.previous_profiles=x.jsonl"])
    with pytest.raises(ConfigError, match="'cache': 'file' or 'policy'"):
        load_config(None, ["prompt.mode=update", "prompt.previous_from=cache"])
    with pytest.raises(ConfigError, match="previous_refresh_steps"):
        load_config(None, ["prompt.mode=update", "prompt.previous_from=policy", "prompt.previous_refresh_steps=0"])
    assert load_config(None, []).prompt.previous_from == "file"  # off by default


def _sequential(tiny_model, tmp_path, *extra):
    return tiny_config(tiny_model, tmp_path / "run", "prompt.mode=update", "prompt.previous_from=policy",
                       "prompt.update_recent=2", "data.k=2", *extra)


def test_previous_profiles_are_the_policys_own_and_refresh_with_its_steps(tiny_lm, tiny_model, tmp_path):
    _, tok = tiny_lm
    model = varied_tiny_lm(tok)
    config = _sequential(tiny_model, tmp_path, "prompt.previous_refresh_steps=2")
    data = prepare_data(config)
    prompt = policy_prompt(config, data.train)
    ds = build_dataset(data.train, prompt)
    with pytest.raises(ConfigError, match="not bound"):
        ds[0]  # noqa: B018  (reading a row is what writes its previous profile)
    step = [0]
    prompt.bind(lambda: model, tok, lambda: step[0])
    row = ds[0]
    split = data.train[0]
    # the previous profile is the policy's greedy profile of the older history (nothing recent, nothing held out)
    older = split.history[:-2]
    expect = TransformersBackend(model, tok).complete([ProfilePrompt(config.prompt.template, max_words=config.prompt.max_words,
                                                                     history_items=config.prompt.history_items,
                                                                     history_tokens=config.prompt.history_tokens).messages(older)],
                                                      max_new_tokens=config.grpo.max_completion_length)[0].text
    assert expect.strip() and row["previous_profile"] == expect and prompt.generations == 1
    content = row["prompt"][0]["content"]
    assert all(it.text in content for it in split.history[-2:])
    assert not any(it.text in content for it in [*older, *split.heldout])
    rows = ds[0:4]  # a batch: one generation for the users not yet written, the first one reused
    assert prompt.generations == 4 and rows["previous_profile"][0] == expect
    step[0] = 1
    ds[0]  # noqa: B018
    assert prompt.generations == 4  # within previous_refresh_steps: a cached earlier policy's profile
    step[0] = 2
    ds[0]  # noqa: B018
    assert prompt.generations == 5 and prompt.written[split.user.id][0] == 2  # rewritten by the policy at step 2


@pytest.mark.filterwarnings("ignore")
def test_grpo_step_in_sequential_update_mode(tmp_path, monkeypatch):
    """Two GRPO steps: the prompts' previous profiles were written by the policy inside training (the
    policy at step 0 is the base model: LoRA starts as the identity), and the BUMP reward trains it."""
    import bump_profiles.train.run as run_module

    tiny = save_tiny(tmp_path / "tiny")
    made = []
    real = run_module.policy_prompt
    monkeypatch.setattr(run_module, "policy_prompt", lambda *a: made.append(real(*a)) or made[-1])
    config = _sequential(tiny, tmp_path, "grpo.max_steps=2")
    result = run_module.train(config, judge=BigramJudge(), progress=False)
    assert result.global_step == 2
    prompt = made[0]
    assert prompt.generations >= config.reward.users_per_call
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "rewards/bump/mean" in row["trl"]
    # the profiles written at step 0 are exactly the base model's greedy profiles of the older history
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    base = TransformersBackend(load_causal_lm(str(tiny)), load_tokenizer(str(tiny)))
    at_start = {u: text for u, (step, text) in prompt.written.items() if step == 0}
    assert at_start
    for u, text in at_start.items():
        msgs = prompt.scratch.messages(prompt.older(u), count_tokens=prompt.count_tokens)
        assert base.complete([msgs], max_new_tokens=config.grpo.max_completion_length)[0].text == text


def test_users_without_older_history_are_refused_before_any_run_directory(tmp_path, capsys):
    """``train --check`` and ``train`` both refuse a round too long for the users' histories, naming the
    users, and the refused run writes nothing (no run directory to clear before the fixed rerun)."""
    from bump_profiles.cli import main
    from bump_profiles.train.run import train

    run = tmp_path / "run"
    overrides = [f"output_dir={run}", "prompt.mode=update", "prompt.previous_from=policy", "prompt.update_recent=500"]
    tiny = str(REPO / "configs" / "test-tiny.yaml")
    args = ["train", "--config", tiny, *sum((["--set", o] for o in overrides), []), "--check"]
    assert main(args) == 2
    assert "no older history for the policy to profile" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="leave those users out of data.path"):
        train(load_config(tiny, overrides), judge=object(), progress=False)
    assert not run.exists()


def test_a_deeper_previous_chain_is_the_policys_scratch_then_its_own_updates(tiny_lm, tiny_model, tmp_path):
    """``prompt.previous_rounds: 3``: the previous profile is written as a served one is, scratch over the
    oldest part, then updated twice with the next rounds of ``update_recent`` items, each time from its own text."""
    _, tok = tiny_lm
    model = varied_tiny_lm(tok)
    config = _sequential(tiny_model, tmp_path, "prompt.previous_rounds=3")
    data = prepare_data(config)
    prompt = policy_prompt(config, data.train)
    split = data.train[0]
    rounds = prompt.chain(split.user.id)
    older = split.history[:-2]
    assert [len(r) for r in rounds[1:]] == [2, 2] and sum(rounds, []) == older  # every older item once, in order
    prompt.bind(lambda: model, tok, lambda: 0)
    row = build_dataset(data.train, prompt)[0]
    backend = TransformersBackend(model, tok)
    n = config.grpo.max_completion_length
    text = backend.complete([prompt.scratch.messages(rounds[0], count_tokens=prompt.count_tokens)], max_new_tokens=n)[0].text
    for r in rounds[1:]:
        text = backend.complete([prompt.update.messages(text, r, count_tokens=prompt.count_tokens)], max_new_tokens=n)[0].text
    scratch_only = backend.complete([prompt.scratch.messages(older, count_tokens=prompt.count_tokens)], max_new_tokens=n)[0].text
    assert row["previous_profile"] == text != scratch_only and prompt.generations == 3
    # the chain needs the rounds: too few older items are refused before any model loads
    deep = _sequential(tiny_model, tmp_path, "prompt.previous_rounds=50")
    with pytest.raises(ConfigError, match="previous_rounds=50"):
        policy_prompt(deep, prepare_data(deep).train)
