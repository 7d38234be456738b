"""The generator flags that ``serve`` and ``refresh`` share: both write profile versions into one store,
so they take the same model, prompt style and budgets."""

from __future__ import annotations

import argparse


def add_store_generator_arguments(p: argparse.ArgumentParser) -> None:
    """The backend, model and prompt of the profiles a store's refreshes write (as ``bump-profiles profile``)."""
    p.add_argument("--backend", choices=["transformers", "vllm", "openai"], default="transformers")
    p.add_argument("--model", help="generator: bundled name, local path (a training run's final/) or hub id "
                                   "(default for --backend transformers: the bundled smollm2-135m)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (openai backend)")
    p.add_argument("--api-model", help="model name sent to the endpoint (default: --model)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--max-retries", type=int, default=4)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--prompt", choices=["subjects", "portrait"], default="subjects",
                   help="subjects: recurring subjects as short phrases (chosen on the news authors); portrait: a "
                        "profile in prose (the training default)")
    p.add_argument("--max-words", type=int, default=40)
    p.add_argument("--history-items", type=int, default=20)
    p.add_argument("--history-tokens", type=int, default=400)
    p.set_defaults(top_p=1.0)  # the transformers backend's nucleus sampling (profile's --top-p): off


def add_refresh_mode_arguments(p: argparse.ArgumentParser) -> None:
    """How a refresh builds the next version (the choices are :data:`bump_profiles.profiles.refresh.MODES`)."""
    p.add_argument("--mode", choices=["update", "scratch", "notes"], default="update",
                   help="update: the previous profile plus the new interactions; scratch: the newest interactions "
                        "alone; notes (rolling notes): a note on each round of new interactions, written once and "
                        "kept, and the profile merged from the user's latest notes (how many: --notes-kept), so it "
                        "follows interests that move (docs/serving.md; measured in docs/drift.md, Rolling notes)")
    p.add_argument("--notes-kept", type=int, default=3,
                   help="--mode notes: the profile merges the user's latest this many notes (1: the profile is "
                        "the newest note)")
