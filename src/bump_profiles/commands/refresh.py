"""``bump-profiles refresh``: refresh every stale profile of a store, in pages, in batches; locally or on Ray."""

from __future__ import annotations

import argparse
import json

from bump_profiles.commands.store_generator import (
    add_refresh_mode_arguments,
    add_store_generator_arguments,
    check_update_writer,
    update_writer,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refresh", help="refresh the stale profiles of a store (the service's) in pages and batches")
    p.add_argument("--store", required=True, help="a SQLite file or a URL (postgresql://...), as for serve")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process, --batch-size users per generation call; ray: Ray Data engines "
                        "(needs pip install -e '.[scale]'; docs/scale.md)")
    add_refresh_mode_arguments(p)
    p.add_argument("--min-new", type=int, default=1, help="stale when at least this many interactions are new")
    p.add_argument("--max-age-s", type=float, help="or when the profile is older than this (with anything new)")
    p.add_argument("--page-size", type=int, default=10_000, help="stale users read from the store at a time")
    p.add_argument("--max-pages", type=int, help="stop after this many pages (default: every stale user)")
    add_store_generator_arguments(p)
    p.add_argument("--batch-size", type=int, default=8, help="users per generation call")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--actors", type=int, default=1, help="--engine ray: model copies / replicas / request workers")
    p.add_argument("--threads", type=int, default=1, help="--engine ray, transformers: CPU threads per actor")
    p.add_argument("--ray-address", help="a running Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--qps", type=int, help="--engine ray, openai: requests per second per worker")
    p.add_argument("--lora", help="--engine ray, vllm: a training run's LoRA adapter folder on top of --model")
    p.set_defaults(func=cmd_refresh)


def cmd_refresh(args: argparse.Namespace) -> int:
    import time

    from bump_profiles.errors import ConfigError
    from bump_profiles.profiles.prompts import prompt_pair
    from bump_profiles.store import ProfileStore

    if min(args.page_size, args.batch_size, args.min_new) < 1:
        raise ConfigError("--page-size, --batch-size and --min-new must be at least 1")
    if args.backend == "transformers" and not args.model:
        args.model = "smollm2-135m"
    scratch, update = prompt_pair(args.prompt, max_words=args.max_words, history_items=args.history_items,
                                  history_tokens=args.history_tokens)
    store = ProfileStore(args.store)
    stale = dict(min_new=args.min_new, max_age_s=args.max_age_s)
    if args.engine == "ray":
        from dataclasses import replace

        from bump_profiles.scale.engines import EngineSpec
        from bump_profiles.scale.refresh import refresh_store

        spec = EngineSpec(backend=args.backend, model=(args.api_model or args.model) if args.backend == "openai"
                          else args.model, actors=args.actors, threads=args.threads, batch_size=args.batch_size,
                          dtype=args.dtype, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                          seed=args.seed, scratch=scratch, update=update,
                          lora=args.lora, base_url=args.base_url, api_key_env=args.api_key_env, qps=args.qps,
                          max_retries=args.max_retries)
        update_spec = None  # --update-model: a vLLM engine serves it as a LoRA adapter on --model
        if args.update_model:
            check_update_writer(args)
            update_spec = replace(spec, lora=args.update_model) if args.backend == "vllm" else \
                replace(spec, model=args.update_model, lora=None)
        s = refresh_store(store, spec, mode=args.mode, page_size=args.page_size, max_pages=args.max_pages,
                          address=args.ray_address, update_spec=update_spec, **stale)
        summary = {"engine": "ray", "model": spec.name, **({"update_model": update_spec.name} if update_spec else {}),
                   "pages": s.pages, "written": s.written, "superseded": s.superseded, "failed": s.failed,
                   "seconds": round(s.seconds, 2)}
    else:
        from bump_profiles.commands.profile import _backend
        from bump_profiles.profiles.refresh import Refresher

        start = time.perf_counter()
        backend = _backend(args)
        refresher = Refresher(store, backend, mode=args.mode, scratch_prompt=scratch,
                              update_prompt=update, max_new_tokens=args.max_new_tokens,
                              temperature=args.temperature, notes_kept=args.notes_kept,
                              update_backend=update_writer(args))
        pages = written = failed = 0
        after = None
        while args.max_pages is None or pages < args.max_pages:
            users = store.stale_users(after_user=after, limit=args.page_size, **stale)
            if not users:
                break
            after, pages = users[-1], pages + 1
            for b in range(0, len(users), args.batch_size):
                results = refresher.refresh_many(users[b : b + args.batch_size])
                written += sum(r is not None and not isinstance(r, Exception) for r in results)
                failed += sum(isinstance(r, Exception) for r in results)
        writer = refresher.update_backend
        summary = {"engine": "local", "model": backend.name, **({"update_model": writer.name} if writer else {}),
                   "pages": pages, "written": written, "failed": failed, "seconds": round(time.perf_counter() - start, 2)}
    store.close()
    print(json.dumps(summary))
    return 0
