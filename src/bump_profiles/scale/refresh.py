"""``refresh --engine ray``: the store's stale users, a page at a time, through the Ray engines.

Per page (``page_size`` stale users, in id order) the driver reads what each user's next version is
built from (:meth:`bump_profiles.profiles.refresh.Refresher.prepare`: the same update/scratch choice, the
same interactions shown, counted with the generator's tokenizer, as the service), generates them in
one Ray Data pass through any engine of :mod:`bump_profiles.scale.engines`, and writes each version
with :meth:`Refresher.write`, on top of the version it was built on; a backlog longer than the
update prompt holds is chained (one more pass for those users, on the version just written).
Idempotent under retries: a user written before a crash is not stale at the rerun, and a version
written meanwhile by another refresh makes the write a StaleWriteError, counted as ``superseded``,
never a second version. Mode ``notes`` (rolling notes) is not run here: it runs with the local engine.
With ``update_spec`` (a trained update writer) the updates go through that engine and the first profiles
through ``spec``: one pass per engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bump_profiles.errors import ConfigError
from bump_profiles.profiles.refresh import EmptyProfileError, PendingRefresh, Refresher, as_interaction
from bump_profiles.scale import require_ray
from bump_profiles.scale.engines import EngineSpec, generate
from bump_profiles.scale.users import dump_interactions
from bump_profiles.store import ProfileStore, StaleWriteError


@dataclass
class RefreshSummary:
    pages: int
    written: int  # versions written (a chained backlog writes several for one user)
    superseded: int  # a newer version appeared while generating: nothing written
    failed: int  # empty generations
    seconds: float


def refresh_store(store: ProfileStore, spec: EngineSpec, *, mode: str = "update", min_new: int = 1,
                  max_age_s: float | None = None, page_size: int = 10_000, max_pages: int | None = None,
                  address: str | None = None, update_spec: EngineSpec | None = None) -> RefreshSummary:
    """Refresh every stale user of ``store`` (see the module docstring)."""
    if mode == "notes":
        raise ConfigError("refresh --mode notes runs with the local engine (--engine local), not on Ray")
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    refresher = Refresher(store, _Counter(spec), mode=mode, scratch_prompt=spec.scratch, update_prompt=spec.update,
                          update_backend=None if update_spec is None else _Counter(update_spec))
    start = time.perf_counter()
    s = RefreshSummary(0, 0, 0, 0, 0.0)
    after: str | None = None
    while max_pages is None or s.pages < max_pages:
        users = store.stale_users(after_user=after, limit=page_size, min_new=min_new, max_age_s=max_age_s)
        if not users:
            break
        after, s.pages = users[-1], s.pages + 1
        todo = [p for p in map(refresher.prepare, users) if p is not None]
        while todo:
            chained = [c for part, engine in _by_engine(todo, spec, update_spec)
                       for c in _generate_and_write(refresher, part, engine, s)]
            todo = [p for p in (refresher.prepare(u, target=t) for u, t in chained) if p is not None]
    s.seconds = time.perf_counter() - start
    return s


def _by_engine(todo: list[PendingRefresh], spec: EngineSpec,
               update_spec: EngineSpec | None) -> list[tuple[list[PendingRefresh], EngineSpec]]:
    """The pending refreshes per engine, one Ray Data pass each: all on ``spec`` unless an update writer
    takes the updates."""
    if update_spec is None:
        return [(todo, spec)]
    parts = (([p for p in todo if p.mode != "update"], spec), ([p for p in todo if p.mode == "update"], update_spec))
    return [(part, engine) for part, engine in parts if part]


def _generate_and_write(refresher: Refresher, todo: list[PendingRefresh], spec: EngineSpec,
                        s: RefreshSummary) -> list[tuple[str, int]]:
    """One Ray Data pass over ``todo``; the (user, target) of the chained backlogs left to read."""
    import ray.data

    pending = {p.user_id: p for p in todo}
    rows = [{"user_id": p.user_id, "kind": p.mode, "previous": p.previous, "read": "null",
             "history": dump_interactions([as_interaction(i) for i in p.shown])} for p in todo]
    chained = []
    for out in generate(ray.data.from_items(rows), spec).iter_rows():
        p = pending[out["user_id"]]
        try:
            written = refresher.write(p, out["profile"] or "", out["prompt_tokens"])
        except StaleWriteError:
            s.superseded += 1
            continue
        except EmptyProfileError:
            s.failed += 1
            continue
        s.written += 1
        if p.mode == "update" and written.through_seq < p.target:
            chained.append((p.user_id, p.target))
    return chained


class _Counter:
    """The generator as the driver sees it: its name (recorded on each version) and its tokenizer's
    count (which interactions fit the prompt: the same as the service), without loading the model."""

    def __init__(self, spec: EngineSpec):
        self.name = spec.name
        self._tok = None
        if spec.backend != "openai":  # an endpoint's tokenizer is not at hand: word budgets, as OpenAIBackend
            from bump_profiles.engines.models import load_tokenizer

            self._tok = load_tokenizer(spec.model)

    def count_tokens(self, text: str) -> int | None:
        return None if self._tok is None else len(self._tok(text, add_special_tokens=False)["input_ids"])
