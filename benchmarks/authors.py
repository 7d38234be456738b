"""The news-authors benchmark, end to end and resumable (docs/benchmark-authors.md).

    PYTHONPATH=src OMP_NUM_THREADS=2 python benchmarks/authors.py --config configs/authors-cpu.yaml \
        --docs docs/benchmark-authors.md

Stages: split, train-bump, train-task, profiles, references, judges, downstream, report; each skips
when its output exists, so re-running the same command resumes. ``--stages`` runs a subset.
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
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = load_bench_config(args.config, args.set)
    bench = run(config, args.stages.split(",") if args.stages else None, docs=args.docs, beside=args.beside)
    print(f"done: {bench.out} (report: {bench.path('report.md')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
