"""Load test of ``bump-profiles serve`` on 127.0.0.1: concurrent writers and readers for a fixed time.

Starts the real service (uvicorn, a fresh SQLite file or ``--store URL``) in a child process, then
``--writers`` threads post interactions (half single, half batches of ``--batch``, each with a
unique client id) while ``--readers`` threads read users' interactions and profiles, and a refresh
of all stale users is requested every ``--refresh-every`` seconds when a generator endpoint is given
(``--base-url``: any OpenAI-compatible server). Afterwards every user's interactions are read back:
the ids stored must equal the ids acknowledged (nothing lost, nothing stored twice). Prints and saves
requests/s and latency percentiles (writes, reads, all). The rate limit is off (``--rate 0``): every
client shares one token, and the limit is not what is measured.

    python benchmarks/bench_serve.py --seconds 60 --writers 8 --readers 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TOKEN = "bench-serve-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RESULTS = Path(__file__).resolve().parent / "results"


def start_service(store: str, base_url: str, log: Path) -> tuple[subprocess.Popen, str]:
    """The service in a child process on 127.0.0.1 (rate limit off), once /health answers."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the launcher is a test helper
    from serving.launch import start_service as launch

    return launch(["--store", store, "--rate", "0", "--backend", "openai", "--base-url", base_url,
                   "--api-model", "bench-model", "--max-retries", "0"], token=TOKEN, log=log)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run_load(url: str, *, seconds: float, writers: int, readers: int, users: int = 50, batch: int = 20,
             refresh_every: float | None = None) -> dict[str, Any]:
    """Drive the service for ``seconds``; verify every acknowledged interaction reads back exactly once."""
    import httpx

    stop = threading.Event()
    lock = threading.Lock()
    acked: dict[str, set[str]] = {}
    write_lat: list[float] = []
    read_lat: list[float] = []
    errors: list[str] = []
    jobs: list[str] = []

    def writer(w: int) -> None:
        k = 0
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as c:
            while not stop.is_set():
                if k % 2 == 0:
                    uid = f"user{(w * 7 + k) % users}"
                    items = [{"text": f"w{w} k{k} single", "id": f"w{w}-{k}"}]
                    t0 = time.perf_counter()
                    r = c.post(f"/v1/users/{uid}/interactions", json=items[0])
                    pairs = [(uid, f"w{w}-{k}")]
                else:
                    body = [{"user_id": f"user{(w + k + j) % users}", "text": f"w{w} k{k} j{j}", "id": f"w{w}-{k}-{j}"}
                            for j in range(batch)]
                    t0 = time.perf_counter()
                    r = c.post("/v1/interactions", json={"interactions": body})
                    pairs = [(b["user_id"], b["id"]) for b in body]
                dt = time.perf_counter() - t0
                with lock:
                    if r.status_code == 201:
                        write_lat.append(dt)
                        for uid, ext in pairs:
                            acked.setdefault(uid, set()).add(ext)
                    else:
                        errors.append(f"write {r.status_code}: {r.text[:200]}")
                k += 1

    def reader(r_: int) -> None:
        k = 0
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as c:
            while not stop.is_set():
                uid = f"user{(r_ * 13 + k) % users}"
                path = f"/v1/users/{uid}/interactions?limit=50" if k % 2 == 0 else f"/v1/users/{uid}/profile"
                t0 = time.perf_counter()
                resp = c.get(path)
                dt = time.perf_counter() - t0
                with lock:
                    if resp.status_code in (200, 404):  # 404: the user or its profile does not exist yet
                        read_lat.append(dt)
                    else:
                        errors.append(f"read {resp.status_code}: {resp.text[:200]}")
                k += 1

    def refresher() -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as c:
            while not stop.wait(refresh_every):
                r = c.post("/v1/refresh", json={"min_new": 5})
                if r.status_code == 202:
                    with lock:
                        jobs.append(r.json()["id"])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(readers)]
    if refresh_every:
        threads.append(threading.Thread(target=refresher))
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start

    # read everything back, page by page
    lost = dup = extra = 0
    stored_total = 0
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as c:
        for uid, ids in acked.items():
            got: list[str] = []
            after = 0
            while True:
                page = c.get(f"/v1/users/{uid}/interactions", params={"after_seq": after, "limit": 1000}).json()
                if not page:
                    break
                got += [i["id"] for i in page]
                after = page[-1]["seq"]
            stored_total += len(got)
            dup += len(got) - len(set(got))
            lost += len(ids - set(got))
            extra += len(set(got) - ids)
        job_states = [c.get(f"/v1/jobs/{j}").json()["status"] for j in jobs]
    n_write, n_read = len(write_lat), len(read_lat)
    return {
        "seconds": round(wall, 2), "writers": writers, "readers": readers, "batch": batch,
        "requests": n_write + n_read, "requests_per_s": round((n_write + n_read) / wall, 1),
        "writes": n_write, "reads": n_read, "errors": len(errors), "first_errors": errors[:3],
        "interactions_acknowledged": sum(len(v) for v in acked.values()), "interactions_read_back": stored_total,
        "lost": lost, "duplicated": dup, "unexpected": extra,
        "latency_ms": {name: {"p50": round(_pct(v, 0.5) * 1000, 1), "p95": round(_pct(v, 0.95) * 1000, 1),
                              "max": round(max(v) * 1000, 1) if v else None}
                       for name, v in (("write", write_lat), ("read", read_lat), ("all", write_lat + read_lat))},
        "refresh_jobs": len(jobs), "refresh_job_states": sorted(set(job_states)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--readers", type=int, default=8)
    p.add_argument("--batch", type=int, default=20, help="interactions per batch request")
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--store", help="database URL (default: a fresh SQLite file in a temp dir)")
    p.add_argument("--base-url", default="http://127.0.0.1:9/v1",
                   help="generator endpoint for refresh jobs (default: none reachable, so no refresh runs)")
    p.add_argument("--refresh-every", type=float, help="request a refresh of stale users every N seconds")
    p.add_argument("--out", type=Path, default=RESULTS / "serve.json")
    args = p.parse_args(argv)
    if args.seconds > 600:
        p.error("--seconds: at most 600 (a bounded load test)")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        store = args.store or str(Path(tmp) / "store.db")
        proc, url = start_service(store, args.base_url, Path(tmp) / "service.log")
        try:
            result = run_load(url, seconds=args.seconds, writers=args.writers, readers=args.readers,
                              users=args.users, batch=args.batch, refresh_every=args.refresh_every)
        finally:
            proc.terminate()
            proc.wait(30)
    result["store"] = "sqlite" if not args.store else args.store.split(":", 1)[0]
    result["machine"] = {"cpu_count": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
                         "python": sys.version.split()[0]}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    ok = result["lost"] == result["duplicated"] == result["unexpected"] == result["errors"] == 0
    print("OK: interactions written = interactions read back" if ok else "FAILED: see lost/duplicated/errors")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
