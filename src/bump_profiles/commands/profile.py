"""``bump-profiles profile``: write a profile for every user with a local model, vLLM or an API model."""

from __future__ import annotations

import argparse
import json

from bump_profiles.commands import Choices


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="generate a profile per user (resumable JSONL)")
    p.add_argument("--model", help="generator: bundled name (smollm2-135m), local path or hub id; "
                   "for --backend openai, the served model name unless --api-model is given")
    p.add_argument("--data", required=True, help="a LaMP questions .json (one profile per question, from that "
                   "question's own profile, keyed by question id) or a JSONL log")
    p.add_argument("--format", choices=Choices("bump_profiles.data", "FORMATS"), help="default: from the extension")
    p.add_argument("--per-person", action="store_true", help="LaMP files: one profile per person (their questions "
                   "grouped), from the items all their questions share, for judge eval; default: one per question, "
                   "for eval run")
    p.add_argument("--k", type=int, default=0, help="hold out the k most recent interactions of each user "
                   "first, so profiles only see the history (default 0: use everything)")
    p.add_argument("--out", required=True, help="profiles JSONL; users already in it are skipped (--engine ray: "
                   "a folder or bucket URI of shards; users in finished shards are skipped)")
    p.add_argument("--backend", choices=["transformers", "vllm", "openai"], default="transformers")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    p.add_argument("--api-model", help="model name sent to the endpoint (default: --model)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="environment variable that holds the API key (the key itself is never written anywhere)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request (openai backend)")
    p.add_argument("--max-retries", type=int, default=4, help="retries per HTTP request (openai backend)")
    p.add_argument("--batch-size", type=int, default=8, help="users per batch (requests in flight for openai)")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--temperature", type=float, help="0 = greedy (the default; with --best-of the default is 1.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32", help="local model weights")
    p.add_argument("--max-words", type=int, default=60, help="profile length asked for in the prompt")
    p.add_argument("--history-items", type=int, default=20, help="most recent interactions shown to the generator")
    p.add_argument("--history-tokens", type=int, default=400, help="token budget of the history in the prompt")
    p.add_argument("--chunks", type=int, metavar="C", help="read C chunks of --history-items items: a greedy note on "
                   "each (kept in <out>.notes.jsonl), then the profile merged from the notes (docs/alignment.md)")
    p.add_argument("--update", metavar="PREVIOUS.jsonl",
                   help="update these profiles from the interactions each one has not seen (its 'read' or "
                        "'through_date', or --since); users without one are profiled from scratch")
    p.add_argument("--since", help="with --update: the previous profiles cover every interaction up to this date")
    p.add_argument("--best-of", type=int, metavar="N", help="sample N profiles per user and keep the one the BUMP "
                   "reward scores best on the user's last --reward-items history items, which the generator then does "
                   "not read (all candidates and scores are recorded in the profile line's 'best_of')")
    p.add_argument("--reward-items", type=int, default=4, metavar="M", help="--best-of: the reward's items per user")
    p.add_argument("--reward-judge", choices=["embedding", "lexical"], default="embedding", help="--best-of: the reward's judge")
    p.add_argument("--reward-corpus", help="--best-of with --reward-judge lexical: the IDF corpus file (one document a line)")
    p.add_argument("--reward-users", type=int, help="--best-of: users per reward call (default: all at once)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (transformers backend)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    scale = p.add_argument_group("--engine ray (Ray Data; needs the extra: pip install -e '.[scale]'; docs/scale.md)")
    scale.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local: this process, one JSONL file; ray: Ray Data (--data: a JSONL/Parquet log, a "
                            "folder of them or a bucket URI), shards under --out")
    scale.add_argument("--actors", type=int, default=1, help="transformers: model copies (Ray actors); vllm: engine "
                       "replicas, one GPU each; openai: request workers")
    scale.add_argument("--threads", type=int, default=1, help="transformers: CPU threads per actor")
    scale.add_argument("--shard-rows", type=int, default=1000, help="users per output shard")
    scale.add_argument("--out-format", choices=["parquet", "jsonl"], default="parquet", help="shard format")
    scale.add_argument("--ray-address", help="a running Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    scale.add_argument("--qps", type=int, help="openai: requests per second per worker (default: no limit)")
    scale.add_argument("--lora", help="vllm: a training run's LoRA adapter folder, served on top of --model (its base)")
    p.set_defaults(func=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    from bump_profiles.data import load_users, split_users
    from bump_profiles.data.lamp import question_users
    from bump_profiles.errors import ConfigError
    from bump_profiles.profiles.generate import generate_profiles
    from bump_profiles.profiles.prompts import ProfilePrompt

    if args.k < 0:
        raise ConfigError("--k must be 0 or more")
    if args.temperature is None:
        args.temperature = 1.0 if args.best_of else 0.0
    if args.engine == "ray":
        return _cmd_profile_ray(args)
    users = load_users(args.data, args.format)
    if not args.per_person:
        users = question_users(users)  # LaMP: one profile per question, from its own profile
    skipped: list[str] = []
    items = users
    if args.k > 0:
        split = split_users(users, args.k, strategy="recent")
        items, skipped = split.users, split.skipped
    if args.since and not args.update:
        raise ConfigError("--since goes with --update")
    if args.best_of is not None and (args.best_of < 1 or args.update):
        raise ConfigError("--best-of takes N >= 1 and does not go with --update")
    if args.chunks is not None and (args.chunks < 1 or args.update or args.best_of):
        raise ConfigError("--chunks takes C >= 1 and goes with neither --update nor --best-of")
    backend = _backend(args)
    prompt = ProfilePrompt(max_words=args.max_words, history_items=args.history_items, history_tokens=args.history_tokens)
    if args.chunks:  # the same model notes each chunk, then merges the notes
        from bump_profiles.profiles.chunked import ChunkedPrompt, write_notes
        from bump_profiles.profiles.generate import history_of

        prompt = ChunkedPrompt(prompt, chunks=args.chunks, per_chunk=args.history_items)
        write_notes(backend, prompt, dict(map(history_of, items)), max_new_tokens=args.max_new_tokens,
                    path=f"{args.out}.notes.jsonl", progress=not args.no_progress)
    if args.best_of:
        from bump_profiles.rewards.bestof import best_of_profiles

        result = best_of_profiles(items, backend, prompt, _best_of_reward(args), args.out, n=args.best_of,
                                  m=args.reward_items, seed=args.seed, temperature=args.temperature, top_p=args.top_p,
                                  max_new_tokens=args.max_new_tokens, group=args.reward_users,
                                  reward_name=f"bump:{args.reward_judge}")
        print(json.dumps({**result, "model": backend.name, "skipped_too_short": len(skipped)}))
        return 0
    if args.update:
        from bump_profiles.profiles.prompts import UpdatePrompt
        from bump_profiles.profiles.update import update_profiles

        update = UpdatePrompt(max_words=args.max_words, history_items=args.history_items, history_tokens=args.history_tokens)
        summary = update_profiles(items, args.update, backend, args.out, update_prompt=update, scratch_prompt=prompt,
                                  since=args.since, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                                  temperature=args.temperature)
    else:
        summary = generate_profiles(
            items, backend, prompt, args.out, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
            temperature=args.temperature, progress=not args.no_progress,
        )
    print(json.dumps({
        "out": summary.out, "model": backend.name, "backend": args.backend, "users": summary.users,
        "skipped_too_short": len(skipped), "already_done": summary.already_done, "written": summary.written,
        "hit_limit": summary.hit_limit, "seconds": round(summary.seconds, 2),
        "users_per_second": round(summary.users_per_second, 3),
    }))
    return 0


def _best_of_reward(args: argparse.Namespace):
    """The BUMP reward that picks among candidates (no shaping: the pick is by ranking alone)."""
    from bump_profiles.errors import ConfigError
    from bump_profiles.judges import JudgeConfig, make_judge
    from bump_profiles.rewards.bump import BumpReward

    if args.reward_judge == "lexical" and not args.reward_corpus:
        raise ConfigError("--reward-judge lexical needs --reward-corpus (an IDF corpus file, one document a line)")
    model = args.reward_corpus if args.reward_judge == "lexical" else None
    return BumpReward(make_judge(JudgeConfig(kind=args.reward_judge, model=model)), min_users=2)


def _cmd_profile_ray(args: argparse.Namespace) -> int:
    from bump_profiles.errors import ConfigError
    from bump_profiles.profiles.prompts import ProfilePrompt
    from bump_profiles.scale.engines import EngineSpec
    from bump_profiles.scale.run import run_profiles

    if args.update or args.best_of or args.chunks or args.per_person or args.format == "lamp" or str(args.data).endswith(".json"):
        raise ConfigError("--engine ray reads JSONL or Parquet logs and profiles from scratch: --update, --best-of, "
                          "--chunks, --per-person and LaMP files go with the default --engine local")
    prompt = ProfilePrompt(max_words=args.max_words, history_items=args.history_items, history_tokens=args.history_tokens)
    spec = EngineSpec(backend=args.backend, model=args.api_model or args.model if args.backend == "openai" else args.model,
                      actors=args.actors, threads=args.threads, batch_size=args.batch_size, dtype=args.dtype,
                      max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed, scratch=prompt,
                      lora=args.lora, base_url=args.base_url, api_key_env=args.api_key_env, qps=args.qps,
                      max_retries=args.max_retries)
    s = run_profiles(args.data, args.out, spec, k=args.k, shard_rows=args.shard_rows, fmt=args.out_format,
                     address=args.ray_address)
    print(json.dumps({
        "out": s.out, "model": spec.name, "backend": args.backend, "engine": "ray", "actors": args.actors,
        "threads": args.threads, "skipped_too_short": s.skipped_too_short, "already_done": s.already_done,
        "written": s.written, "shards": s.shards, "hit_limit": s.hit_limit, "seconds": round(s.seconds, 2),
        "users_per_second": round(s.users_per_second, 3),
    }))
    return 0


def _backend(args: argparse.Namespace):
    from bump_profiles.errors import ConfigError

    if args.backend == "openai":
        from bump_profiles.engines.backends import OpenAIBackend
        from bump_profiles.engines.openai_client import OpenAIClient

        name = args.api_model or args.model
        if not args.base_url or not name:
            raise ConfigError("--backend openai needs --base-url and --api-model (or --model)")
        client = OpenAIClient(args.base_url, name, api_key_env=args.api_key_env, timeout=args.timeout,
                              max_retries=args.max_retries)
        return OpenAIBackend(client, concurrency=args.batch_size, seed=args.seed)
    if not args.model:
        raise ConfigError(f"--backend {args.backend} needs --model")
    if args.backend == "vllm":
        from bump_profiles.engines.backends import VLLMBackend

        return VLLMBackend(args.model, dtype=args.dtype, seed=args.seed)

    import torch

    from bump_profiles.engines.backends import TransformersBackend
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(args.model, dtype=args.dtype, device=device)
    return TransformersBackend(model, load_tokenizer(args.model), batch_size=args.batch_size, name=args.model, top_p=args.top_p)
