"""The news-authors benchmark, end to end and resumable (docs/benchmark-authors.md).

    PYTHONPATH=src OMP_NUM_THREADS=2 python benchmarks/authors.py --config configs/authors-cpu.yaml \
        --docs docs/benchmark-authors.md

Stages: split, train-bump, train-task, profiles, references, judges, downstream, report; each skips
when its output exists, so re-running the same command resumes. ``--stages`` runs a subset.

Every author evaluated (cross-fitted folds, ``data.folds`` in the config):

    PYTHONPATH=src OMP_NUM_THREADS=2 python benchmarks/authors.py --config configs/authors-folds.yaml \
        --fold all --docs docs/benchmark-authors.md

runs each fold's stages in ``out/fold-N`` (``--fold 2``: one fold), then, with every fold's judges done
and ``report`` among the stages, the pooled report over all authors in ``out/pooled``.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from bump_profiles.authors.config import load_bench_config
    from bump_profiles.authors.pipeline import STAGES, run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="benchmark YAML (configs/authors-cpu.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.seed=1 out=runs/authors-s1")
    p.add_argument("--stages", help=f"comma-separated subset of {','.join(STAGES)} (default: all)")
    p.add_argument("--docs", help="also write the table and figure into this markdown file (docs/benchmark-authors.md)")
    p.add_argument("--beside", action="append", default=[], metavar="RUN_DIR",
                   help="a finished run of another training seed (same split) whose rows join this table")
    p.add_argument("--fold", default=None, help="with data.folds: 'all' (every fold, then the pooled report) or one fold's number")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = load_bench_config(args.config, args.set)
    stages = args.stages.split(",") if args.stages else None
    if config.data.folds is None:
        if args.fold is not None:
            p.error("--fold needs a config with data.folds")
        bench = run(config, stages, docs=args.docs, beside=args.beside)
        print(f"done: {bench.out} (report: {bench.path('report.md')})")
        return 0
    from bump_profiles.authors.folds import fold_config
    from bump_profiles.authors.report import write_pooled

    folds = range(config.data.folds) if args.fold in (None, "all") else [int(args.fold)]
    for i in folds:
        bench = run(fold_config(config, i), stages)  # each fold's own report, never into --docs
        print(f"fold {i} done: {bench.out}")
    if args.fold in (None, "all") and (stages is None or "report" in stages):
        print(f"pooled report: {write_pooled(config, args.docs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
