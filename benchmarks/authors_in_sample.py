"""The training judge on the TRAINING authors' greedy profiles of a finished authors-benchmark run.

BUMP was trained on exactly these authors, so this is in-sample: it asks whether the reward the
policy climbed shows up in its greedy profiles where it was earned, in groups of the training B and
all at once, against the untrained policy and the references (docs/benchmark-authors.md).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/authors_in_sample.py --config configs/authors-cpu.yaml
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    from bump_profiles.authors.bench import TRAIN_PART, Bench
    from bump_profiles.authors.config import load_bench_config
    from bump_profiles.authors.evaluate import make_eval_judge
    from bump_profiles.authors.stats import paired_difference, resamples
    from bump_profiles.data.profiles import load_profiles
    from bump_profiles.evaluation.intrinsic import evaluate_profiles

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="the benchmark YAML the run used")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the run's overrides (out=...)")
    args = p.parse_args(argv)
    b = Bench.open(load_bench_config(args.config, args.set))
    judge = make_eval_judge(b, "training")
    group = b.config.eval.group_size or b.train_config("bump").reward.users_per_call
    units = [s.user.id for s in b.split.train]
    draws = resamples(len(units), b.config.eval.bootstrap, seed=b.config.data.seed)
    print(f"{len(units)} training authors, training judge, calibration none; NDCG A / B; BUMP minus the set, paired "
          f"over authors, 95% interval")
    files = {name: b.profile_file(name, "train") for name in TRAIN_PART if b.profile_file(name, "train").exists()}
    for size in (group, None):
        results = {name: evaluate_profiles(b.split.train, load_profiles(path), judge, group_size=size)
                   for name, path in files.items()}
        per = {name: res["per_user"]["none"] for name, res in results.items()}
        random = results["BUMP"]["metrics"]["none"]
        print(f"-- {'groups of ' + str(size) if size else 'all at once'} (random ranking: A {random['ndcg_a_random']:.3f}, "
              f"B {random['ndcg_b_random']:.3f})")
        for name, scores in per.items():
            cells = []
            for d in ("a", "b"):
                mean = sum(scores[u][f"ndcg_{d}"] for u in units) / len(units)
                diff = paired_difference({u: per["BUMP"][u][f"ndcg_{d}"] for u in units},
                                         {u: scores[u][f"ndcg_{d}"] for u in units}, units, draws)
                cells.append(f"{d.upper()} {mean:.3f}" + ("" if name == "BUMP" else f" (BUMP - it {diff['mean']:+.3f} "
                                                                              f"[{diff['lo']:+.3f}, {diff['hi']:+.3f}])"))
            print(f"{name:>15}: " + "; ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
