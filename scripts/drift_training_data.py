"""Write training users for the update writer that the drift benchmark never judges.

The drift benchmark (benchmarks/bench_drift.py) samples ``--authors`` of the authors with at least
``first_round + (rounds - 1) * per_round`` articles with ``--seed``; an update writer judged there must
not have trained on them. This writes every other author with at least ``--min-articles`` (all their
records, as the source has them) to a JSONL the training config reads: an update writer's training user
needs an older part to profile, this round's items and the next round's.

    PYTHONPATH=src python scripts/drift_training_data.py --authors 16 --rounds 6 --per-round 5 \
        --min-articles 15 --out runs/update-writer/authors-train.jsonl

With ``--synthetic N`` it writes N synthetic drift users instead (``--kinds``, cycled), drawn with
``--synthetic-seed``, which must not be the benchmark's (9101) or its IDF corpus's (9102): three rounds,
a first of ``--first-round`` items, then ``--per-round`` (this round's new items) and ``--per-round``
(the next round's, which the reward ranks), so a ``switch`` user's older part holds only the topics
it has left.

    PYTHONPATH=src python scripts/drift_training_data.py --synthetic 64 --kinds switch keep \
        --first-round 20 --per-round 6 --out runs/update-writer/switch-train.jsonl

With ``--spliced N`` it writes N spliced authors (``splice_authors``: one author's ``--train-first``
articles, then another's 2 x ``--per-round``) from the authors that neither the natural draw
(``--authors``) nor ``bench_drift.py --spliced --benchmark-spliced`` uses, so a writer trained on real
text with a made switch can be judged on both.

    PYTHONPATH=src python scripts/drift_training_data.py --authors 32 --first-round 30 --per-round 5 \
        --spliced 24 --train-first 20 --out runs/update-writer/spliced-train.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUTHORS = REPO.parent / "shared" / "data" / "huffpost-authors" / "interactions.jsonl"
BENCHMARK_SEEDS = (9101, 9102)  # bench_drift.py's synthetic users and the IDF corpus drawn beside them


def main(argv: list[str] | None = None) -> int:
    from bump_profiles.authors.data import load_authors
    from bump_profiles.data.atomic import atomic_write_text
    from bump_profiles.data.jsonl import write_users_jsonl
    from bump_profiles.errors import DataError
    from bump_profiles.evaluation.drift import (
        ALL_KINDS,
        authors_used,
        items_needed,
        make_drift_users,
        sample_authors,
        splice_authors,
        spliced_population,
    )

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=AUTHORS)
    p.add_argument("--authors", type=int, default=16, help="as bench_drift.py --authors")
    p.add_argument("--rounds", type=int, default=6, help="as bench_drift.py --rounds")
    p.add_argument("--per-round", type=int, default=5, help="as bench_drift.py --per-round")
    p.add_argument("--first-round", type=int, help="as bench_drift.py --first-round (default --per-round)")
    p.add_argument("--seed", type=int, default=0, help="as bench_drift.py --seed")
    p.add_argument("--min-articles", type=int, default=15, help="older part + this round + the next (5 + 5 + 5)")
    p.add_argument("--synthetic", type=int, metavar="N", help="write N synthetic drift users instead of authors")
    p.add_argument("--kinds", nargs="+", default=["switch", "keep"], choices=ALL_KINDS, help="with --synthetic")
    p.add_argument("--synthetic-seed", type=int, default=7301, help="with --synthetic; not the benchmark's 9101/9102")
    p.add_argument("--spliced", type=int, metavar="N", help="write N spliced authors outside both benchmarks instead")
    p.add_argument("--benchmark-spliced", type=int, default=16, help="with --spliced: as bench_drift.py --spliced")
    p.add_argument("--train-first", type=int, default=20, help="with --spliced: the first author's articles")
    p.add_argument("--min-splice-shift", type=float, default=0.5, help="as bench_drift.py --min-splice-shift")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    if args.synthetic:
        if args.synthetic_seed in BENCHMARK_SEEDS:
            p.error(f"--synthetic-seed {args.synthetic_seed} draws the drift benchmark's own users; pick another")
        users = make_drift_users(args.synthetic, rounds=3, per_round=args.per_round, seed=args.synthetic_seed,
                                 kinds=args.kinds, first_round=args.first_round, distinct=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_users_jsonl(users, args.out)
        print(f"wrote {args.out}: {len(users)} synthetic users ({', '.join(args.kinds)}), seed {args.synthetic_seed}",
              file=sys.stderr)
        return 0

    every = load_authors(args.data)
    need = items_needed(args.rounds, args.per_round, args.first_round)
    sampled, _ = sample_authors(every, args.authors, min_items=need, seed=args.seed)
    held = {u.id for u in sampled}  # the authors bench_drift.py judges on
    if args.spliced:
        try:
            judged, _ = spliced_population(every, args.benchmark_spliced, rounds=args.rounds, per_round=args.per_round,
                                           first=args.first_round, min_shift=args.min_splice_shift, seed=args.seed)
            held |= authors_used(judged)
            users = splice_authors(every, args.spliced, first=args.train_first, later=2 * args.per_round,
                                   min_shift=args.min_splice_shift, seed=args.seed, exclude=sorted(held))
        except DataError as e:
            print(f"error: {args.data}: {e}", file=sys.stderr)
            return 2
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_users_jsonl(users, args.out)
        print(f"wrote {args.out}: {len(users)} spliced authors; left out the {len(held)} the drift benchmarks use",
              file=sys.stderr)
        return 0
    keep = {u.id for u in every if u.id not in held and len(u.interactions) >= args.min_articles}
    lines = [line for line in args.data.read_text().splitlines() if line.strip() and json.loads(line)["user_id"] in keep]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}: {len(keep)} authors ({len(lines)} records); left out the {len(held)} the drift "
          f"benchmark samples and {len(every) - len(held) - len(keep)} with under {args.min_articles} articles", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
