"""``refresh --engine ray``: the store's stale users, a page at a time, through the Ray engines.

Per page (``page_size`` stale users, in id order) the driver reads what each user's next version is
built from (:meth:`bump_profiles.refresh.Refresher.prepare`: the same update/scratch choice and
provenance as the service), generates them in one Ray Data pass through any engine of
:mod:`bump_profiles.scale.engines`, and writes each version with :meth:`Refresher.write`, on top of
the version it was built on. Idempotent under retries: a user written before a crash is not stale at
the rerun, and a version written meanwhile by another refresh makes the write a StaleWriteError,
counted as ``superseded``, never a second version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bump_profiles.refresh import EmptyProfileError, Refresher
from bump_profiles.scale import require_ray
from bump_profiles.scale.engines import EngineSpec, generate
from bump_profiles.scale.users import dump_interactions
from bump_profiles.store import ProfileStore, StaleWriteError


@dataclass
class RefreshSummary:
    pages: int
    written: int
    superseded: int  # a newer version appeared while generating: nothing written
    failed: int  # empty generations
    seconds: float


def refresh_store(store: ProfileStore, spec: EngineSpec, *, mode: str = "update", min_new: int = 1,
                  max_age_s: float | None = None, page_size: int = 10_000, max_pages: int | None = None,
                  address: str | None = None) -> RefreshSummary:
    """Refresh every stale user of ``store`` (see the module docstring)."""
    from bump_profiles.refresh import as_interaction

    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    refresher = Refresher(store, _NamedBackend(spec.name), mode=mode, scratch_prompt=spec.scratch,
                          update_prompt=spec.update)
    start = time.perf_counter()
    pages = written = superseded = failed = 0
    after: str | None = None
    while max_pages is None or pages < max_pages:
        users = store.stale_users_page(after=after, limit=page_size, min_new=min_new, max_age_s=max_age_s)
        if not users:
            break
        after, pages = users[-1], pages + 1
        pending = {p.user_id: p for p in map(refresher.prepare, users) if p is not None}
        rows = [{"user_id": p.user_id, "kind": p.mode, "previous": p.previous, "read": "null",
                 "history": dump_interactions([as_interaction(i) for i in p.shown])} for p in pending.values()]
        if not rows:
            continue
        import ray.data

        for out in generate(ray.data.from_items(rows), spec).iter_rows():
            try:
                refresher.write(pending[out["user_id"]], out["profile"] or "", out["prompt_tokens"])
                written += 1
            except StaleWriteError:
                superseded += 1
            except EmptyProfileError:
                failed += 1
    return RefreshSummary(pages, written, superseded, failed, time.perf_counter() - start)


class _NamedBackend:
    """The generator's name, as each stored version records it (generation itself runs in Ray)."""

    def __init__(self, name: str):
        self.name = name

    def count_tokens(self, text: str) -> None:
        return None


