"""Chunked-mode training (``prompt.mode: chunked``): the notes are the base model's (the adapter off),
written once per chunk and kept for a resumed run; the merge prompt holds no held-out item; GRPO runs."""

from __future__ import annotations

import json

import pytest
from fakes import save_tiny, tiny_causal_lm
from test_train import BigramJudge, tiny_config

from bump_profiles.config import load_config
from bump_profiles.engines.backends import TransformersBackend
from bump_profiles.errors import ConfigError
from bump_profiles.profiles.chunked import chunk_key, chunked_prompt
from bump_profiles.train.data import build_dataset, prepare_data
from bump_profiles.train.notes import notes_prompt


def _chunked(tiny_model, tmp_path, *extra):
    return tiny_config(tiny_model, tmp_path / "run", "prompt.mode=chunked", "prompt.chunks=2", *extra)


def test_config_refuses_chunked_mode_it_cannot_run(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="'scratch', 'update' or 'chunked'"):
        load_config(None, ["prompt.mode=chunks"])
    with pytest.raises(ConfigError, match="prompt.chunks >= 1"):
        load_config(None, ["prompt.mode=chunked", "prompt.chunks=0"])
    with pytest.raises(ConfigError, match="merge_template"):
        load_config(None, ["prompt.mode=chunked", "prompt.merge_template=no field"])
    config = _chunked(tiny_model, tmp_path, "policy.lora=false")
    with pytest.raises(ConfigError, match="LoRA"):
        notes_prompt(config, prepare_data(config).train)
    assert load_config(None, []).prompt.mode == "scratch"  # off by default


def test_notes_are_the_base_models_kept_once_and_the_merge_hides_the_heldout_items(tiny_lm, tiny_model, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    _, tok = tiny_lm
    base = tiny_causal_lm(tok)
    noise = torch.Generator().manual_seed(1)
    for weight in base.parameters():  # the tiny random model alone writes blanks: no note to tell apart
        weight.data += torch.randn(weight.shape, generator=noise) * 0.5
    expect_backend = TransformersBackend(base, tok)
    config = _chunked(tiny_model, tmp_path)
    data = prepare_data(config)
    split = data.train[0]
    chunked = chunked_prompt(config.prompt)
    notes_by_base = [expect_backend.complete([m], max_new_tokens=config.grpo.max_completion_length)[0].text
                     for m in chunked.note_messages(split.history, count_tokens=expect_backend.count_tokens)]
    # an adapter that changes the outputs: the notes must still be the base model's
    policy = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules="all-linear", init_lora_weights=False))
    policy_note = TransformersBackend(policy, tok).complete(
        [chunked.note_messages(split.history, count_tokens=expect_backend.count_tokens)[0]],
        max_new_tokens=config.grpo.max_completion_length)[0].text
    assert all(n.strip() for n in notes_by_base) and policy_note != notes_by_base[0]  # the checks below can fail

    prompt = notes_prompt(config, data.train)
    ds = build_dataset(data.train, prompt)
    with pytest.raises(ConfigError, match="not bound"):
        ds[0]  # noqa: B018  (reading a row is what writes its notes)
    path = tmp_path / "notes.jsonl"
    prompt.bind(lambda: policy, tok, path)
    policy.train()
    row = ds[0]
    assert policy.training  # the transform restores the mode it found
    assert row["user_id"] == split.user.id
    content = row["prompt"][0]["content"]
    assert all(f"period {i}: {' '.join(n.split())}" in content for i, n in enumerate(notes_by_base, 1))
    assert not any(it.text in content for it in split.heldout)
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    mine = [r for r in kept if r["chunk"] in {chunk_key(c) for c in chunked.chunked(split.history)}]
    assert [r["note"] for r in mine] == notes_by_base

    # a resumed run reads the kept notes and writes none again, even with another model bound
    again = notes_prompt(config, data.train)
    again.bind(lambda: None, tok, path)
    assert build_dataset(data.train, again)[0]["prompt"] == row["prompt"]
    assert len(path.read_text().splitlines()) == len(kept)


@pytest.mark.filterwarnings("ignore")
def test_grpo_steps_in_chunked_mode_train_the_merge_over_base_notes(tmp_path, monkeypatch):
    import bump_profiles.train.run as run_module
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    tiny = save_tiny(tmp_path / "tiny", varied=True)  # notes that differ, so the comparison below can fail
    config = _chunked(tiny, tmp_path, "grpo.max_steps=2")
    result = run_module.train(config, judge=BigramJudge(), progress=False)
    assert result.global_step == 2 and result.final_dir
    notes = [json.loads(line) for line in (tmp_path / "run" / "notes.jsonl").read_text().splitlines()]
    assert len(notes) >= config.reward.users_per_call * config.prompt.chunks  # every drawn user's chunks
    # each kept note is the untrained model's greedy note on its chunk
    data = prepare_data(config)
    chunked = chunked_prompt(config.prompt)
    base = TransformersBackend(load_causal_lm(str(tiny)), load_tokenizer(str(tiny)))
    chunks = {chunk_key(c): c for s in data.train for c in chunked.chunked(s.history)}
    assert any(row["note"].strip() for row in notes)
    for row in notes[:4]:
        msgs = chunked.note.messages(chunks[row["chunk"]], count_tokens=base.count_tokens)
        assert base.complete([msgs], max_new_tokens=config.grpo.max_completion_length)[0].text == row["note"]
