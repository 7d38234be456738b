"""Which calibration should the reward use? The evidence behind ``ranking.DEFAULT_CALIBRATION``.

On the 12 real LaMP_1 sample users (the protocol of docs/judges.md: k=2, folds offset 0 and 2, the
pseudo-profile = the titles of the 8 papers before the held-out pair, all users ranked at once) with
the MiniLM embedding judge, for every calibration in ``calibration.CALIBRATIONS``:

- **honest**: NDCG A/B of the pseudo-profiles (mean of the two folds);
- **adversaries**: one user's profile replaced by a fixed text (each of the 12 users in turn, both
  folds), that user's NDCG A/B. A constant text carries no information about its user, so a fair
  reward pays it what a random ranking earns in A (its items are any 2 of the 24); a calibration that
  pays it more in A leaks. In B a text can still earn more than random by resembling every item
  (the "broad" topic list): that is a judge weakness a calibration can widen or narrow.

Run: ``PYTHONPATH=src python benchmarks/bench_calibration.py [--out benchmarks/results/calibration.json]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from bump_profiles.judges.calibration import CALIBRATIONS

REPO = Path(__file__).resolve().parents[1]
LAMP_1 = REPO.parent / "shared" / "data" / "lamp-samples" / "LaMP_1"
ADVERSARIES = {
    "broad topic list": "Research papers on machine learning, neural networks, data mining, algorithms, optimization, "
                        "computer systems, networks, and applications.",
    "generic": "This user likes many things.",
    "short": "A researcher.",
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="benchmarks/results/calibration.json")
    args = p.parse_args(argv)

    from bump_profiles.data import load_users, split_users
    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.engines.models import load_sentence_transformer
    from bump_profiles.evaluation.intrinsic import ScoredGroup, pseudo_profiles, rank_groups
    from bump_profiles.judges.ranking import random_ndcg
    from bump_profiles.rewards.scoring import NULL_TEXT, RawScores

    t0 = time.perf_counter()
    model = load_sentence_transformer("minilm")

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False).astype(np.float64)

    users = [u for part in ("train", "dev", "test") for u in load_users(LAMP_1 / f"{part}_questions.json")]
    null = encode([NULL_TEXT])[0]
    honest: dict[str, list] = {c: [] for c in CALIBRATIONS}
    attack: dict[str, dict[str, list]] = {a: {c: [] for c in CALIBRATIONS} for a in ADVERSARIES}
    for offset in (0, 2):
        splits = split_users(users, 2, strategy="recent", offset=offset).users
        ids = [s.user.id for s in splits]
        item_users = [s.user.id for s in splits for _ in s.heldout]
        items = encode([it.text for s in splits for it in s.heldout])
        profiles = pseudo_profiles(splits, "history-titles", 8)

        def group(texts: dict[str, str], ids=ids, item_users=item_users, items=items) -> list[ScoredGroup]:
            p = encode([texts[u] for u in ids])
            return [ScoredGroup(ids, item_users, RawScores(p @ items.T, items @ p.T, items @ null, p @ null))]

        for c in CALIBRATIONS:
            m = rank_groups(group(profiles), c)[0]
            honest[c].append((m["ndcg_a"], m["ndcg_b"]))
        for name, text in ADVERSARIES.items():
            for u in ids:
                g = group({**profiles, u: text})
                for c in CALIBRATIONS:
                    per_user = rank_groups(g, c)[1][u]
                    attack[name][c].append((per_user["ndcg_a"], per_user["ndcg_b"]))
        n_users, n_items = len(ids), len(item_users)

    random_ab = (random_ndcg(n_items, 2), random_ndcg(n_users, 1))
    print(f"LaMP_1, {len(users)} users, k=2, folds 0 and 2, MiniLM; NDCG A / B (random {random_ab[0]:.3f} / {random_ab[1]:.3f})")
    print(f"{'profiles':34}" + "".join(f"{c:>22}" for c in CALIBRATIONS))
    rows = {"honest (8 titles)": honest} | {f"one user: {a}": attack[a] for a in ADVERSARIES}
    table = {}
    for row, per_c in rows.items():
        means = {c: np.mean(v, axis=0).tolist() for c, v in per_c.items()}
        table[row] = means
        print(f"{row:34}" + "".join(f"{means[c][0]:>14.3f} / {means[c][1]:.3f}" for c in CALIBRATIONS))
    out = REPO / args.out if not Path(args.out).is_absolute() else Path(args.out)
    atomic_write_json(out, {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "random": random_ab, "table": table, "adversaries": ADVERSARIES,
        "seconds": round(time.perf_counter() - t0, 1),
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
