"""Every author evaluated: cross-fitted folds, and the pooled view over all of them.

With ``data.folds`` set, fold i of the shuffled authors is evaluated by generators trained on the other
folds; each fold is an ordinary benchmark run in ``out/fold-i`` (same stages, same resumption). The
pooled stage then reads every fold's per-author NDCG, so intervals are bootstrapped over all authors
(paired by author), and ranks every author's profile against all authors at once with the judges
cheap enough for it (``eval.all_at_once`` minus the likelihood judge). A trained method's profile of
an author always comes from the fold model that never saw that author.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bump_profiles.authors.bench import Bench, machine, profile_sets
from bump_profiles.authors.config import AuthorsBenchConfig
from bump_profiles.data.atomic import atomic_write_json, atomic_write_text
from bump_profiles.errors import ConfigError

log = logging.getLogger(__name__)

POOLED_ALL = "all authors at once"  # the grouping label of the pooled all-at-once ranking


def fold_config(config: AuthorsBenchConfig, fold: int) -> AuthorsBenchConfig:
    """The run of one fold: its own directory under ``out``, the same everything else."""
    if config.data.folds is None:
        raise ConfigError("data.folds is not set: this config has no folds (use the run without --fold)")
    c = copy.deepcopy(config)
    c.data.fold = fold
    c.out = str(Path(config.out) / f"fold-{fold}")
    return c


def fold_benches(config: AuthorsBenchConfig) -> list[Bench]:
    return [Bench.open(fold_config(config, i)) for i in range(config.data.folds or 0)]


def pool_judges(config: AuthorsBenchConfig, benches: list[Bench]) -> dict[str, Any]:
    """Each judge's per-author NDCG of every fold, pooled per grouping and horizon, plus the all-authors-at-once
    ranking for the judges in ``eval.all_at_once`` other than the likelihood judge (cached in ``pooled/``)."""
    from bump_profiles.authors.evaluate import summarize

    out = Path(config.out) / "pooled"
    pooled: dict[str, Any] = {}
    for judge in config.eval.judges:
        files = [b.path("intrinsic", f"{judge}.json") for b in benches]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise ConfigError(f"judge {judge}: fold results missing ({', '.join(missing)}): run every fold's judges stage first")
        runs = [json.loads(f.read_text()) for f in files]
        groupings: dict[str, Any] = {}
        for label in runs[0]["groupings"]:
            per: dict[str, dict[str, dict[str, float]]] = {}
            for r in runs:
                for method, by_author in r["groupings"][label]["per_author"].items():
                    per.setdefault(method, {}).update(by_author)
            groupings[label.replace("all at once", "each fold at once")] = summarize(per, config.eval.bootstrap, config.data.seed)
        cheap = judge != "likelihood" and (config.eval.all_at_once is None or judge in config.eval.all_at_once)
        if cheap:
            path = out / "intrinsic" / f"{judge}-all.json"
            if not path.exists():
                atomic_write_json(path, rank_all_at_once(config, benches, judge, out))
            groupings.update(json.loads(path.read_text()))
        pooled[judge] = {"judge": judge, "groupings": groupings}
    return pooled


def rank_all_at_once(config: AuthorsBenchConfig, benches: list[Bench], judge_name: str, out: Path) -> dict[str, Any]:
    """Every author's profile of each set ranked against every author's held-out articles at once, per horizon.

    The lexical judge's IDF is fitted on every author's history (no held-out article of anyone)."""
    from bump_profiles.authors.evaluate import horizon_mask, make_eval_judge, summarize
    from bump_profiles.authors.stats import per_author_ndcg
    from bump_profiles.evaluation.intrinsic import score_groups, select_items
    from bump_profiles.judges.calibration import check_calibration

    splits = [s for b in benches for s in b.split.eval]
    sets: dict[str, dict[str, str]] = {}
    for b in benches:
        for name, profiles in profile_sets(b).items():
            sets.setdefault(name, {}).update(profiles)
    first = benches[0]
    if judge_name == "lexical":
        corpus = [" ".join(" ".join(it.fields.values()).split()) for s in splits for it in s.history]
        atomic_write_text(out / "lexical_corpus.txt", "\n".join(corpus) + "\n")
        from bump_profiles.judges import JudgeConfig, make_judge

        judge = make_judge(JudgeConfig(kind="lexical", model=str(out / "lexical_corpus.txt")))
    else:
        judge = make_eval_judge(first, judge_name)
    calibration = first.train_config("bump").judge.calibration
    null = check_calibration(calibration).needs_baseline
    scored = {m: score_groups(splits, profiles, judge, None, null=null) for m, profiles in sets.items()}
    result = {}
    for h in first.split.horizons():
        per = {m: per_author_ndcg([select_items(g, horizon_mask(g, first.split.near, h)) for g in groups], calibration)
               for m, groups in scored.items()}
        result[f"{h}, {POOLED_ALL}"] = summarize(per, config.eval.bootstrap, config.data.seed)
    return result


def pooled_profiles(benches: list[Bench]) -> dict[str, dict[str, float]]:
    """Profile statistics per set, averaged over folds weighted by their authors."""
    from bump_profiles.authors.evaluate import profile_table

    totals: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for b in benches:
        n = len(b.split.eval)
        for name, stats in profile_table(b, profile_sets(b)).items():
            acc = totals.setdefault(name, {})
            for key, value in stats.items():
                if isinstance(value, (int, float)):
                    acc[key] = acc.get(key, 0.0) + value * n
            counts[name] = counts.get(name, 0) + n
    return {name: {k: v / counts[name] for k, v in acc.items()} for name, acc in totals.items()}


def trainings(benches: list[Bench]) -> dict[str, list[dict[str, Any]]]:
    """Each fold's training summary per run (steps, minutes, whether the budget stopped it)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for b in benches:
        for run in ("bump", "task"):
            summary = Path(b.train_config(run).output_dir) / "summary.json"
            if summary.exists():
                out.setdefault(run, []).append(json.loads(summary.read_text()))
    return out


def collect(config: AuthorsBenchConfig) -> dict[str, Any]:
    benches = fold_benches(config)
    return {"config": asdict(config), "machine": machine(),
            "authors": sum(len(b.split.eval) for b in benches), "folds": len(benches),
            "intrinsic": pool_judges(config, benches), "profiles": pooled_profiles(benches), "training": trainings(benches)}
