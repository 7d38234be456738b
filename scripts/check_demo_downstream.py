"""The demo's downstream stage on its own, without GRPO: the demo's users and split, zero-shot
SmolLM2 profiles of the evaluation users, then :func:`bump_profiles.evaluation.demo.downstream_table` (the probe
reader; none, retrieval, the zero-shot profile, history@budget and the true interests).

Run: ``PYTHONPATH=src .venv/bin/python scripts/check_demo_downstream.py OUT_DIR``; prints the table
as JSON and the seconds spent generating profiles and reading.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bump_profiles.data.profiles import load_profiles
from bump_profiles.engines.backends import TransformersBackend
from bump_profiles.engines.models import load_causal_lm, load_tokenizer
from bump_profiles.evaluation.demo import DemoConfig, downstream_table, train_config
from bump_profiles.profiles.generate import generate_profiles
from bump_profiles.train.data import prepare_data


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cfg = DemoConfig(out=str(out))
    tcfg = train_config(cfg)
    data = prepare_data(tcfg)
    tokenizer = load_tokenizer(tcfg.policy.model)
    t0 = time.perf_counter()
    prompt = tcfg.prompt  # a ProfilePrompt
    backend = TransformersBackend(load_causal_lm(tcfg.policy.model), tokenizer, name="zero-shot")
    generate_profiles(data.eval, backend, prompt, out / "profiles_before.jsonl", max_new_tokens=cfg.profile_tokens, progress=False)
    t1 = time.perf_counter()

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    table = downstream_table(data.eval, {"zero-shot profile": load_profiles(out / "profiles_before.jsonl")}, count, seed=cfg.seed)
    t2 = time.perf_counter()
    print(json.dumps(table, indent=1))
    print(f"profiles {t1 - t0:.1f} s, downstream table {t2 - t1:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo-downstream"))
