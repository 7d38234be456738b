"""The driver of ``profile --engine ray``: log in, shards out, resumable, one writer at a time.

The driver holds the output's lock for the whole run, lists the users already in finished shards,
streams the remaining users through Ray Data (read, group, generate) and writes the profile rows
that come back in shards of ``shard_rows`` users, each atomically. Its memory is one shard plus Ray's
bounded streaming buffers, whatever the number of users (measured: benchmarks/bench_scale.py).
Killed at any point (driver or worker), the same command resumes: finished shards are kept, the
users of the shard in flight are generated again, none twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bump_profiles.errors import ConfigError
from bump_profiles.scale import require_ray
from bump_profiles.scale.engines import OUT_COLUMNS, EngineSpec, generate
from bump_profiles.scale.shards import ShardDir, is_uri

if TYPE_CHECKING:
    import ray.data


@dataclass
class ScaleSummary:
    out: str
    already_done: int  # users found in finished shards and skipped
    written: int  # profiles written by this run
    skipped_too_short: int | None  # users with too few interactions for --k (None: not counted by this engine)
    hit_limit: int
    shards: int  # shards written by this run
    seconds: float

    @property
    def users_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def lock_path(out: str) -> Path:
    """``<out>.lock`` beside a local output; for a bucket, a local file named after the URI (so two
    runs on one machine refuse each other; runs on two machines are the operator's to keep apart)."""
    if not is_uri(out):
        return Path(f"{Path(out).resolve()}.lock")
    from bump_profiles.engines.models import cache_dir

    return cache_dir() / "locks" / f"{hashlib.sha256(out.encode()).hexdigest()[:16]}.lock"


MAX_BLOCK_USERS = 256  # users per block: > Ray's 100 KiB inline-object size, < an hour of CPU generation


def _grouped(users: ray.data.Dataset, spec: EngineSpec) -> ray.data.Dataset:
    """The grouped users, materialised in blocks sized for the actors.

    Grouping is a shuffle, a barrier that holds every record anyway: materialising its output (in
    Ray's object store, spilled to disk when large) lets it finish before the generator actors take
    the CPUs, which would otherwise starve it. Then blocks of at least ``batch_size`` users, about
    four per actor, at most :data:`MAX_BLOCK_USERS`: every actor gets work, a lost task costs little,
    and blocks stay large enough to live in the object store rather than inline in the driver's heap
    (Ray keeps task outputs under 100 KiB in their owner's memory: tiny blocks of a million users
    would fill the driver)."""
    users = users.materialize()
    per_block = min(MAX_BLOCK_USERS, max(spec.batch_size, -(-users.count() // (4 * spec.actors))))
    return users.repartition(target_num_rows_per_block=per_block, strict=True).materialize()  # (strict: combines small blocks too)


def run_profiles(data: str | list[str], out: str, spec: EngineSpec, *, k: int = 0, shard_rows: int = 1000,
                 fmt: str = "parquet", address: str | None = None,
                 engine: Callable[[ray.data.Dataset, EngineSpec], ray.data.Dataset] = generate) -> ScaleSummary:
    """Profile every user of the log ``data`` not yet in ``out`` (see the module docstring).

    ``engine`` maps user rows to profile rows (default: the engine ``spec`` names; the benchmark
    passes a fake one to measure the driver's memory on 100,000 users without a model)."""
    from bump_profiles.profiles.generate import writer_lock

    if k < 0 or shard_rows < 1:
        raise ConfigError("--k must be 0 or more and --shard-rows at least 1")
    ray = require_ray()
    start = time.perf_counter()
    lock = lock_path(out)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(lock.with_suffix("")):
        shards = ShardDir(out, fmt)
        shards.remove_temps()
        done = shards.done(model=spec.name)
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        from bump_profiles.scale.logs import read_log, user_rows

        users = _grouped(user_rows(read_log(data), k=k, done=done), spec)
        rows = engine(users, spec)
        written = hit = skipped = n_shards = 0
        for batch in rows.iter_batches(batch_size=shard_rows, batch_format="pyarrow"):
            if "kind" in batch.column_names:
                import pyarrow.compute as pc

                keep = pc.not_equal(batch["kind"], "skipped")
                skipped += len(batch) - pc.sum(keep.cast("int64")).as_py()
                batch = batch.filter(keep)
            if not len(batch):
                continue
            shards.write(batch.select([c for c in OUT_COLUMNS if c != "kind"]))
            written += len(batch)
            hit += sum(bool(h) for h in batch["hit_limit"].to_pylist())
            n_shards += 1
    return ScaleSummary(shards.uri, len(done), written, skipped if spec.backend == "transformers" else None, hit,
                        n_shards, time.perf_counter() - start)
