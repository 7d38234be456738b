"""``bump-profiles serve``: the profile store behind an HTTP API (FastAPI + uvicorn; docs at /docs)."""

from __future__ import annotations

import argparse

from bump_profiles.commands.store_generator import (
    add_refresh_mode_arguments,
    add_store_generator_arguments,
    update_writer,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve stored profiles over HTTP: interactions in, versioned profiles out")
    p.add_argument("--store", default="bump-profiles.db",
                   help="a SQLite file (created on first use) or a URL, e.g. postgresql://user@host/db "
                        "(default: bump-profiles.db; $BUMP_STORE_URL overrides the default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token-env", default="BUMP_API_TOKEN", help="environment variable holding the bearer token")
    p.add_argument("--no-auth", action="store_true", help="serve without a token (refused unless --host is loopback)")
    add_refresh_mode_arguments(p)
    p.add_argument("--rate", type=float, default=200.0, help="requests/s per client (0: unlimited)")
    p.add_argument("--burst", type=int, default=400, help="requests a client may send at once before --rate applies")
    p.add_argument("--max-batch", type=int, default=1000, help="interactions per batch request")
    p.add_argument("--max-body-bytes", type=int, default=4_000_000)
    p.add_argument("--max-refresh-users", type=int, default=100_000,
                   help="users in one refresh job; POST /v1/refresh takes the first ones and says more_stale")
    p.add_argument("--replica", help="this replica's name, kept on its refresh jobs: at start-up it interrupts only "
                                     "its own unfinished jobs (and stale ones). Default: the host name")
    add_store_generator_arguments(p)
    p.set_defaults(func=cmd_serve, batch_size=1)


def check_auth(host: str, token: str | None, no_auth: bool, token_env: str) -> str | None:
    """The token to require, or None; a ConfigError when the service would be open on a network."""
    from bump_profiles.errors import ConfigError
    from bump_profiles.serve.guards import LOOPBACK

    if no_auth:
        if host not in LOOPBACK:
            raise ConfigError(f"--no-auth is allowed on a loopback address only, not --host {host}")
        return None
    if not token:
        raise ConfigError(f"no bearer token: set ${token_env} (or --no-auth with --host 127.0.0.1 for local use)")
    return token


def cmd_serve(args: argparse.Namespace) -> int:
    import logging
    import os

    import uvicorn

    from bump_profiles.commands.profile import _backend
    from bump_profiles.profiles.prompts import prompt_pair
    from bump_profiles.profiles.refresh import Refresher
    from bump_profiles.serve import ServeSettings, create_app
    from bump_profiles.store import ProfileStore

    token = check_auth(args.host, os.environ.get(args.token_env), args.no_auth, args.token_env)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin at INFO; migrations still log warnings
    target = os.environ.get("BUMP_STORE_URL", args.store) if args.store == "bump-profiles.db" else args.store
    if args.backend == "transformers" and not args.model:
        args.model = "smollm2-135m"
    store = ProfileStore(target)
    backend = _backend(args)
    scratch, update = prompt_pair(args.prompt, max_words=args.max_words, history_items=args.history_items,
                                  history_tokens=args.history_tokens)
    refresher = Refresher(store, backend, mode=args.mode, scratch_prompt=scratch, update_prompt=update,
                          max_new_tokens=args.max_new_tokens, notes_kept=args.notes_kept,
                          update_backend=update_writer(args))
    settings = ServeSettings(token=token, max_batch=args.max_batch, max_body_bytes=args.max_body_bytes,
                             rate=args.rate, burst=args.burst, max_refresh_users=args.max_refresh_users,
                             **({"replica": args.replica} if args.replica else {}))
    app = create_app(store, refresher, settings)
    logging.getLogger(__name__).info("serving store %s with generator %s%s (%s prompt) on http://%s:%d (docs: /docs)",
                                     store.engine.url.render_as_string(hide_password=True), backend.name,
                                     f", updates by {refresher.update_backend.name}" if refresher.update_backend else "",
                                     args.prompt, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
