"""The generator flags that ``serve`` and ``refresh`` share: both write profile versions into one store,
so they take the same model, prompt style and budgets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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
    p.add_argument("--update-model",
                   help="--mode update: another model writes the updates (a trained update writer, a training "
                        "run's final/; docs/drift.md), the --model the first profile; same backend settings")


def update_writer(args: argparse.Namespace) -> Any:
    """The backend of ``--update-model`` (the ``--backend`` settings with that model), or None without one."""
    from bump_profiles.commands.profile import _backend

    if not args.update_model:
        return None
    check_update_writer(args)
    return _backend(argparse.Namespace(**{**vars(args), "model": args.update_model, "api_model": None}))


def check_update_writer(args: argparse.Namespace) -> None:
    """``--update-model`` is refused outside update mode; a warning when the writer was trained on another
    update prompt than it will be shown (its run's config.yaml says which)."""
    import sys

    from bump_profiles.errors import ConfigError

    if args.mode != "update":
        raise ConfigError(f"--update-model writes updates: it needs --mode update, not --mode {args.mode}")
    problem = trained_prompt_mismatch(args.update_model, args.prompt, args.max_words)
    if problem:
        print(f"warning: --update-model {args.update_model}: {problem}", file=sys.stderr)


def trained_prompt_mismatch(model_dir: str, style: str, max_words: int) -> str | None:
    """What differs between the update prompt a training run's writer learned (``model_dir/config.yaml``) and
    the ``style`` and ``max_words`` it will be shown; None when they agree or the folder holds no config."""
    import yaml

    from bump_profiles.profiles.prompts import PROMPT_STYLES

    config = Path(model_dir) / "config.yaml"
    if not config.is_file():
        return None
    trained = (yaml.safe_load(config.read_text()) or {}).get("prompt") or {}
    if trained.get("mode") != "update":
        return f"{config} trained a writer from scratch (prompt.mode: {trained.get('mode')}), not an update writer"
    learned = [name for name, (_, update) in PROMPT_STYLES.items() if update == trained.get("update_template")]
    if style not in learned:
        return (f"it learned {'the --prompt ' + learned[0] if learned else 'another'} update prompt, not "
                f"--prompt {style}")
    if trained.get("max_words") != max_words:
        return f"it learned --max-words {trained.get('max_words')}, not {max_words}"
    return None
