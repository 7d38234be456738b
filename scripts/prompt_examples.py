"""Profiles of a few real users under each ``--prompt`` style, as ``serve`` and ``refresh`` write them
from scratch (their default budgets, greedy): the examples in the README's "Serving profiles".

    PYTHONPATH=src python scripts/prompt_examples.py --data ../shared/data/huffpost-authors/interactions.jsonl
"""

from __future__ import annotations

import argparse

from bump_profiles.data import load_users
from bump_profiles.engines.backends import TransformersBackend
from bump_profiles.engines.models import load_causal_lm, load_tokenizer
from bump_profiles.profiles.prompts import PROMPT_STYLES, prompt_pair


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a JSONL log or LaMP file")
    p.add_argument("--users", type=int, default=2, help="the first N users by id")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--max-words", type=int, default=40)
    p.add_argument("--history-items", type=int, default=20)
    p.add_argument("--history-tokens", type=int, default=400)
    p.add_argument("--max-new-tokens", type=int, default=96)
    args = p.parse_args()
    users = sorted(load_users(args.data), key=lambda u: u.id)[: args.users]
    backend = TransformersBackend(load_causal_lm(args.model), load_tokenizer(args.model))
    for style in PROMPT_STYLES:
        scratch, _ = prompt_pair(style, max_words=args.max_words, history_items=args.history_items,
                                 history_tokens=args.history_tokens)
        messages = [scratch.messages(u.interactions, count_tokens=backend.count_tokens) for u in users]
        for user, text in zip(users, backend.generate(messages, max_new_tokens=args.max_new_tokens, temperature=0.0), strict=True):
            print(f"{style} | {user.id} | {text}")


if __name__ == "__main__":
    main()
