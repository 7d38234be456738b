"""Profiles at scale: users/s of single-process ``profile`` against the Ray engine with 1 and 2
actors on the same users, peak memory of the driver and of a worker, and the driver's memory as the
number of users grows.

Two parts, each mode in its own subprocess (so that each peak RSS is its own):

- ``speed`` (real model, default the bundled SmolLM2-135M): the same ``--users`` synthetic users,
  greedy, ``--max-new-tokens``, 1 torch thread per process/actor, through (a) single-process
  ``generate_profiles`` (b) ``run_profiles`` with 1 actor (c) with 2 actors. Wall time end to end,
  model loading included for every mode (Ray also pays its start, the read, the grouping shuffle);
  the generation-only seconds of (a) are recorded beside. Peak RSS: the driver (its ru_maxrss) and
  the largest actor process (sampled every 0.2 s).
- ``memory`` (a FAKE generator, clearly not a model: each profile is the first words of the prompt,
  made in microseconds): synthetic logs of ``--sizes`` users (about 10 interactions each) go through
  the real reader, grouping, shards and driver of ``run_profiles``; the driver's peak RSS per size
  shows whether it grows with the users (the "worker" figure there is the largest ``ray::`` process,
  and CPU seconds sum every ``ray::`` process with the driver). Sizes run smallest first and stop
  when ``--budget-s`` is spent.

Run: ``PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_scale.py [--part speed|memory|both]``
Writes benchmarks/results/scale.json (every figure with the machine's load before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["speed", "memory", "both"], default="both")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--users", type=int, default=12, help="speed: users profiled by every mode")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--sizes", default="1000,10000,100000", help="memory: users per synthetic log")
    p.add_argument("--budget-s", type=float, default=1500, help="memory: stop starting new sizes after this")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scale.json")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one mode in this process, print JSON
    return p.parse_args(argv)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def write_log(path: Path, n_users: int, seed: int = 0) -> Path:
    """A synthetic interaction log: per user 6-14 short posts on 2 topics, lines shuffled in chunks."""
    from bump_profiles.data.synthetic import TOPICS

    rng = random.Random(seed)
    topics = list(TOPICS)
    with path.open("w") as out:
        for start in range(0, n_users, 1000):
            lines = []
            for u in range(start, min(n_users, start + 1000)):
                mine = rng.sample(topics, 2)
                for j in range(rng.randint(6, 14)):
                    words = rng.sample(TOPICS[mine[j % 2]], 3)
                    lines.append(json.dumps({"user_id": f"user-{u:07d}", "text": f"Posted about {', '.join(words)}.",
                                             "timestamp": f"2024-{1 + j % 12:02d}-{1 + j:02d}"}))
            rng.shuffle(lines)
            out.write("\n".join(lines) + "\n")
    return path


class PeakSampler:
    """The largest RSS seen among this process's descendants whose command line holds ``marker``."""

    def __init__(self, marker: str):
        self.marker, self.peak, self._stop = marker, 0, threading.Event()
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds (user + system) at its last sample
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            for p in me.children(recursive=True):
                try:
                    if self.marker in " ".join(p.cmdline()):
                        self.peak = max(self.peak, p.memory_info().rss)
                        t = p.cpu_times()
                        self.cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            time.sleep(0.2)

    def __enter__(self) -> PeakSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()


def fake_engine(rows, spec):
    """NOT A MODEL: a profile made of the first 12 words of the history, for the memory part only."""
    import pyarrow as pa

    def fake(batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        texts = [" ".join(json.loads(r["history"])[-1]["fields"]["text"].split()[:12]) if r["kind"] != "skipped" else None
                 for r in rows]
        n = len(rows)
        return pa.table({"user_id": [r["user_id"] for r in rows], "profile": pa.array(texts, pa.string()),
                         "model": ["fake"] * n, "prompt_tokens": pa.array([0] * n, pa.int64()),
                         "profile_tokens": pa.array([12] * n, pa.int64()), "hit_limit": [False] * n,
                         "read": [r["read"] for r in rows], "kind": [r["kind"] for r in rows]})

    return rows.map_batches(fake, batch_format="pyarrow")


def one(mode: str, args: argparse.Namespace, log: Path, out: Path) -> dict:
    """Run one mode here; its figures."""
    start = time.perf_counter()
    if mode == "single":
        import torch

        from bump_profiles.data import load_users
        from bump_profiles.engines.backends import TransformersBackend
        from bump_profiles.engines.models import load_causal_lm, load_tokenizer
        from bump_profiles.profiles.generate import generate_profiles
        from bump_profiles.profiles.prompts import ProfilePrompt

        torch.set_num_threads(1)
        backend = TransformersBackend(load_causal_lm(args.model), load_tokenizer(args.model), batch_size=args.batch_size,
                                      name=args.model)
        s = generate_profiles(load_users(log), backend, ProfilePrompt(), out, batch_size=args.batch_size,
                              max_new_tokens=args.max_new_tokens, progress=False)
        result = {"written": s.written, "generation_s": round(s.seconds, 2)}
        worker, worker_cpu = 0, 0.0
    else:
        import ray

        from bump_profiles.scale.engines import EngineSpec
        from bump_profiles.scale.run import run_profiles

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        if mode == "fake":
            spec = EngineSpec(model="fake")
            with PeakSampler("ray::") as sampler:
                s = run_profiles(str(log), str(out), spec, shard_rows=5000, engine=fake_engine)
        else:
            actors = int(mode.split("-")[1])
            spec = EngineSpec(model=args.model, actors=actors, threads=1, batch_size=args.batch_size,
                              max_new_tokens=args.max_new_tokens)
            with PeakSampler("TransformersProfiler") as sampler:
                s = run_profiles(str(log), str(out), spec, shard_rows=max(1, args.users // 4))
        result = {"written": s.written, "shards": s.shards}
        worker, worker_cpu = sampler.peak, sum(sampler.cpu.values())
        ray.shutdown()
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime + worker_cpu  # this process (the driver) + the sampled actors
    return {**result, "cpu_s": round(cpu, 1), "cpu_s_per_user": round(cpu / max(1, result["written"]), 3), "wall_s": round(wall, 2), "users_per_s": round(result["written"] / wall, 4),
            "driver_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "worker_peak_mib": round(worker / 2**20, 1) if worker else None}


def spawn(mode: str, args: argparse.Namespace, log: Path, out: Path) -> dict:
    before = load()
    cmd = [sys.executable, __file__, "--one", f"{mode}|{log}|{out}", "--model", args.model, "--users", str(args.users),
           "--max-new-tokens", str(args.max_new_tokens), "--batch-size", str(args.batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed: {proc.stderr[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{mode:>10}: {figures}  load before {before}, after {load()}", flush=True)
    return {"mode": mode, **figures, "load_before": before, "load_after": load()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        mode, log, out = args.one.split("|")
        print(json.dumps(one(mode, args, Path(log), Path(out))))
        return 0
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "note": "shared by 5 engineers; load averages beside each figure"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.part in ("speed", "both"):
            log = write_log(tmp / "speed.jsonl", args.users)
            rows = [spawn("single", args, log, tmp / "single.jsonl")]
            for actors in (1, 2):
                rows.append(spawn(f"ray-{actors}", args, log, tmp / f"ray-{actors}"))
            base = rows[0]["users_per_s"]
            for r in rows:
                r["ratio_to_single"] = round(r["users_per_s"] / base, 3) if base else None
            results["speed"] = {"model": args.model, "users": args.users, "max_new_tokens": args.max_new_tokens,
                                "batch_size": args.batch_size, "threads_per_process": 1, "runs": rows}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        if args.part in ("memory", "both"):
            start, runs = time.monotonic(), []
            for n in (int(x) for x in args.sizes.split(",")):
                if time.monotonic() - start > args.budget_s:
                    print(f"budget of {args.budget_s:.0f} s spent: {n} users not run", flush=True)
                    break
                log = write_log(tmp / f"mem-{n}.jsonl", n, seed=n)
                runs.append({"users": n, **spawn("fake", args, log, tmp / f"mem-{n}")})
                (tmp / f"mem-{n}.jsonl").unlink()
                results["memory"] = {"generator": "FAKE (first words of the history, no model)", "runs": runs}
                args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
