"""``bump-profiles train``: GRPO training of the profile generator from a YAML config."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the profile generator with GRPO (BUMP or task reward)")
    p.add_argument("--config", help="run config YAML (see configs/ and docs/training.md)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set grpo.max_steps=10 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in output_dir")
    p.add_argument("--check", action="store_true", help="validate the config and data, print the plan, load no model")
    p.add_argument("--help-config", action="store_true", help="list every config key with its default and help")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from bump_profiles.config import describe, load_config
    from bump_profiles.errors import ConfigError

    if args.help_config:
        print("\n".join(describe()))
        return 0
    if not args.config:
        raise ConfigError("train needs --config CONFIG.yaml (e.g. configs/demo-cpu.yaml)")
    config = load_config(args.config, args.overrides)
    if args.check:
        from bump_profiles.train.data import prepare_data
        from bump_profiles.train.run import run_prompt

        data = prepare_data(config)
        run_prompt(config, data.train)
        print(json.dumps({"output_dir": config.output_dir, "train_users": len(data.train),
                          "eval_users": len(data.eval), "skipped": len(data.skipped),
                          "users_per_call": config.reward.users_per_call,
                          "num_generations": config.grpo.num_generations, "max_steps": config.grpo.max_steps}))
        return 0
    from bump_profiles.train import train

    result = train(config, resume=args.resume, overwrite=args.overwrite)
    print(json.dumps(result.__dict__))
    if result.interrupted:
        print(f"interrupted at step {result.global_step}: checkpoint saved in {result.output_dir}; "
              "continue with --resume", file=sys.stderr)
        return 130
    return 0
