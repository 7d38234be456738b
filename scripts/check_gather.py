"""Check that the in-batch BUMP reward is the same whether one process or several compute it.

Under ``accelerate launch --num_processes N`` each process holds a contiguous slice of one reward
batch (as TRL's RepeatSampler gives it; here a user's rollouts are split across processes on
purpose), calls ``BumpReward`` on its slice, and the slices' rewards are gathered. The main process
then scores the whole batch in one single-process computation (``BumpReward.score_rows``) and
compares. Run it once per setting:

    accelerate launch --config_file configs/accelerate/cpu-2proc.yaml scripts/check_gather.py
    python scripts/check_gather.py          # one process: the trivial case

Prints one JSON line; exits 1 when the rewards differ by more than 1e-9.
"""

from __future__ import annotations

import argparse
import json
import sys

from bump_profiles.data import split_users
from bump_profiles.data.synthetic import interests_profile, make_users
from bump_profiles.rewards.bump import BumpReward
from bump_profiles.rewards.rows import RewardRow


def batch(users: int, rollouts: int, seed: int) -> list[dict]:
    """Rows of one reward call: ``rollouts`` different profiles of each of ``users`` synthetic users."""
    rows = []
    for s in split_users(make_users(users, seed=seed), 2).users:
        history = [it.text for it in s.history]
        candidates = [interests_profile(s.user), *history[-rollouts:], "Likes many things."]
        for r in range(rollouts):
            rows.append({"user_id": s.user.id, "heldout": [it.text for it in s.heldout], "history": history,
                         "completion": [{"role": "assistant", "content": candidates[r % len(candidates)]}]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=3, help="B distinct users in the batch")
    parser.add_argument("--rollouts", type=int, default=4, help="G profiles per user (3 x 4 splits user 2 over 2 processes)")
    parser.add_argument("--judge", default="embedding", help="judge kind (embedding = the bundled MiniLM)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from accelerate import PartialState
    from accelerate.utils import gather_object

    from bump_profiles.judges import JudgeConfig, make_judge

    state = PartialState(cpu=True)  # gloo on the CPU, as train() does without a GPU
    rows = batch(args.users, args.rollouts, args.seed)
    if len(rows) % state.num_processes:
        raise SystemExit(f"{len(rows)} rows do not split evenly over {state.num_processes} processes")
    size = len(rows) // state.num_processes
    mine = rows[state.process_index * size : (state.process_index + 1) * size]
    reward = BumpReward(make_judge(JudgeConfig(kind=args.judge)), min_users=2, copy_penalty=0.5)
    logged: dict[str, float] = {}
    local = reward(prompts=[None] * len(mine), completions=[r["completion"] for r in mine],
                   user_id=[r["user_id"] for r in mine], heldout=[r["heldout"] for r in mine],
                   history=[r["history"] for r in mine], log_metric=logged.__setitem__)
    gathered = gather_object(local) if state.num_processes > 1 else local
    if not state.is_main_process:
        return 0
    single, _ = reward.score_rows([RewardRow(r["user_id"], r["heldout"], r["history"], r["completion"][0]["content"])
                                   for r in rows])
    diff = max(abs(a - b) for a, b in zip(gathered, single, strict=True))
    split_users_ = sorted({r["user_id"] for r in rows[size - 1 : size + 1]}) if state.num_processes > 1 else []
    print(json.dumps({
        "processes": state.num_processes, "backend": str(getattr(state, "backend", None)), "rows": len(rows),
        "rows_per_process": size, "users_split_across_processes": split_users_ if len(split_users_) == 1 else [],
        "distinct_users_logged": logged.get("distinct_users"), "max_abs_diff": diff,
        "rewards_distributed": [round(x, 6) for x in gathered], "rewards_single": [round(x, 6) for x in single],
    }))
    return 0 if diff <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
