"""``bump-profiles judge eval``: intrinsic, label-free evaluation of profiles (or of a judge).

Ranks each user's held-out interactions against the other users' with a judge, in both directions,
and prints NDCG, MRR and Recall@1 beside their random expectation. Profiles come from a JSONL file or
are built from each user's own history (a pseudo-profile), which evaluates the judge itself.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bump_profiles.commands import Choices

if TYPE_CHECKING:
    from bump_profiles.data import UserSplit
    from bump_profiles.judges import Judge

from bump_profiles.judges.calibration import CALIBRATIONS, DEFAULT_CALIBRATION


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="evaluate profiles and judges without labels")
    jsub = p.add_subparsers(dest="judge_command", metavar="ACTION", required=True)

    ev = jsub.add_parser("eval", help="NDCG/MRR/Recall@1 of profiles vs held-out items, both directions, beside random")
    ev.add_argument("--data", required=True, nargs="+", action="extend", help="LaMP questions .json or JSONL log(s); users are pooled")
    ev.add_argument("--format", choices=Choices("bump_profiles.data", "FORMATS"), help="default: from each file's extension")
    ev.add_argument("--k", type=int, default=2, help="held-out interactions per user (default 2)")
    ev.add_argument("--offset", type=int, nargs="+", default=[0],
                    help="folds: skip this many most recent items before the held-out ones (e.g. 0 2); results are averaged")
    ev.add_argument("--judge", choices=Choices("bump_profiles.judges", "JUDGES"), default="embedding",
                    help="copymask: the embedding judge blind to text copied from the histories (default: embedding)")
    ev.add_argument("--judge-model", help="hub id, local path or bundled name (default per judge kind)")
    ev.add_argument("--judge-dtype", choices=Choices("bump_profiles.judges", "DTYPES"), default="auto",
                    help="LLM judges; auto = bfloat16 where the CPU/GPU has it natively (default: auto)")
    ev.add_argument("--batch-tokens", type=int, default=4096, help="LLM judges: padded tokens per forward batch")
    ev.add_argument("--calibration", nargs="+", choices=list(CALIBRATIONS), default=[DEFAULT_CALIBRATION],
                    help="one or more; one judge pass serves all. empty and none are leak-free; center-transductive "
                         "(batch double-centring) uses the other users and is for comparison only")
    ev.add_argument("--group-size", type=int, help="rank users in groups of this size, like a training batch (default: all at once)")
    src = ev.add_mutually_exclusive_group(required=True)
    src.add_argument("--profiles", help="JSONL with user_id and profile per line")
    src.add_argument("--pseudo-profile", choices=["history-titles", "history"],
                     help="build each user's profile from their own most recent history items")
    ev.add_argument("--pseudo-items", type=int, default=8, help="history items in a pseudo-profile (default 8)")
    ev.add_argument("--references", action="store_true",
                    help="also score the user's history cut to each profile's token count, the full history and, for "
                         "synthetic users, the true interests; one table with length and copy rate per row")
    ev.add_argument("--budget-tokenizer", help="tokenizer that counts profile tokens for --references (default: the judge's)")
    ev.add_argument("--out", help="also save the results as JSON here")
    ev.set_defaults(func=cmd_eval)


def _load_all(paths: list[str], fmt: str | None):
    from bump_profiles.data import load_users
    from bump_profiles.errors import DataError

    users, seen = [], {}
    for path in paths:
        for user in load_users(path, fmt):
            if user.id in seen:
                raise DataError(f"user id {user.id} also appears in {seen[user.id]}", path=path)
            seen[user.id] = path
            users.append(user)
    return users


def _table(metrics: dict[str, float]) -> str:
    lines = [f"{'':12}{'NDCG':>8}{'MRR':>8}{'R@1':>8}   random:{'NDCG':>7}{'MRR':>7}{'R@1':>7}"]
    for d, name in (("a", "A prof->item"), ("b", "B item->prof")):
        got = "".join(f"{metrics[f'{m}_{d}']:8.3f}" for m in ("ndcg", "mrr", "recall1"))
        rnd = "".join(f"{metrics[f'{m}_{d}_random']:7.3f}" for m in ("ndcg", "mrr", "recall1"))
        lines.append(f"{name:12}{got}   {'':7}{rnd}")
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from bump_profiles.data import split_users
    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.data.profiles import load_profiles
    from bump_profiles.errors import ConfigError
    from bump_profiles.evaluation.intrinsic import evaluate_profiles, pseudo_profiles
    from bump_profiles.judges import JudgeConfig, make_judge

    users = _load_all(args.data, args.format)
    fixed = load_profiles(args.profiles) if args.profiles else None
    if fixed is not None:  # refuse profiles that read an item they are about to be judged on
        from bump_profiles.profiles.provenance import load_reads, refuse_seen

        reads = load_reads(args.profiles)
        for offset in args.offset:
            held = split_users(users, args.k, strategy="recent", offset=offset).users
            refuse_seen(args.profiles, reads, {s.user.id: s.heldout for s in held})
    config = JudgeConfig(kind=args.judge, model=args.judge_model, dtype=args.judge_dtype, batch_tokens=args.batch_tokens)
    if len(set(args.offset)) != len(args.offset):
        raise ConfigError(f"repeated --offset values: {args.offset}")
    t0 = time.perf_counter()
    judge = make_judge(config)
    load_s = time.perf_counter() - t0
    count = _token_counter(judge, args.budget_tokenizer) if args.references else None

    folds = []
    for offset in args.offset:
        split = split_users(users, args.k, strategy="recent", offset=offset)
        profiles = fixed if fixed is not None else pseudo_profiles(split.users, args.pseudo_profile, args.pseudo_items)
        t1 = time.perf_counter()
        fold_judge = _bind_history(judge, split.users)
        result = evaluate_profiles(split.users, profiles, fold_judge, calibrations=args.calibration,
                                   group_size=args.group_size, count_tokens=count, references=args.references)
        result.update(offset=offset, skipped_users=split.skipped, seconds=round(time.perf_counter() - t1, 2))
        folds.append(result)
        print(f"fold offset={offset}: {result['users']} users, {result['items']} held-out items, "
              f"{len(split.skipped)} skipped, {len(result['missing_profiles'])} without a profile, {result['seconds']} s")
        for calibration, metrics in result["metrics"].items():
            print(f"  calibration={calibration}\n" + "\n".join("  " + line for line in _table(metrics).splitlines()))
        if args.references:
            print("\n".join("  " + line for line in _reference_table(result, args.calibration).splitlines()))

    mean = {
        c: {key: sum(f["metrics"][c][key] for f in folds) / len(folds) for key in folds[0]["metrics"][c]}
        for c in args.calibration
    }
    if len(folds) > 1:
        print(f"mean of {len(folds)} folds")
        for calibration, metrics in mean.items():
            print(f"  calibration={calibration}\n" + "\n".join("  " + line for line in _table(metrics).splitlines()))
    stats = folds[0]["profile_stats"]
    print("profile stats (fold offset={}): ".format(folds[0]["offset"]) + json.dumps(stats))
    out = {
        "data": args.data,
        "k": args.k,
        "judge": {"kind": config.kind, "model": config.model_name, "dtype": config.dtype},
        "profiles": args.profiles or {"pseudo_profile": args.pseudo_profile, "items": args.pseudo_items},
        "group_size": args.group_size,
        "judge_load_seconds": round(load_s, 2),
        "folds": folds,
        "mean": mean,
    }
    if args.out:
        atomic_write_json(args.out, out)
        print(f"wrote {args.out}")
    return 0


# --- references beside the profiles, and the copy-masked judge's histories ----------------------------


def _bind_history(judge: Judge, splits: list[UserSplit]) -> Judge:
    """The copy-masked judge masks copies of the evaluated users' histories: give it this fold's."""
    from bump_profiles.judges.copymask import CopyMaskedJudge

    if isinstance(judge, CopyMaskedJudge):
        return judge.with_history(it.text for s in splits for it in s.history)
    return judge


def _token_counter(judge: Judge, name: str | None) -> Callable[[str], int]:
    """Token count with the named tokenizer, else the judge's own (LLM judges hold one, embedding models too)."""
    if name:
        from bump_profiles.engines.models import load_tokenizer

        tok = load_tokenizer(name)
    else:
        inner = getattr(judge, "base", judge)  # a wrapping judge reads with its base judge's tokenizer
        tok = getattr(inner, "tokenizer", None) or inner.model.tokenizer
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def _reference_table(result: dict, calibrations: list[str]) -> str:
    """One row per profile set: mean tokens, 4-/8-gram copy rates, NDCG A/B per calibration, then random."""
    rows = {"profiles": result, **result["references"]}
    width = {c: max(10, len(c) + 3) for c in calibrations}
    head = f"{'(NDCG)':16}{'tokens':>8}{'copy4':>7}{'copy8':>7}" + "".join(
        f"{'A ' + c:>{width[c]}}{'B ' + c:>{width[c]}}" for c in calibrations)
    lines = [head]
    for name, r in rows.items():
        st = r["profile_stats"]
        ndcg = "".join(f"{r['metrics'][c]['ndcg_a']:{width[c]}.3f}{r['metrics'][c]['ndcg_b']:{width[c]}.3f}" for c in calibrations)
        lines.append(f"{name:16}{st['tokens_mean']:8.1f}{st['copy_rate_4']:7.2f}{st['copy_rate_8']:7.2f}{ndcg}")
    m = result["metrics"][calibrations[0]]
    lines.append(f"{'random':16}{'':22}" + "".join(
        f"{m['ndcg_a_random']:{width[c]}.3f}{m['ndcg_b_random']:{width[c]}.3f}" for c in calibrations))
    return "\n".join(lines)
