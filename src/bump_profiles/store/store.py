"""The profile store: users, their interactions, versioned profiles with provenance, refresh jobs.

One small interface (:class:`ProfileStore`) over SQLAlchemy Core, the same for SQLite and
PostgreSQL. Every write is one transaction: a batch of interactions is stored whole or not at all,
and a profile version appears whole or not at all. Interactions carry a store-wide increasing
``seq``; a profile records the newest ``seq`` it accounts for (``through_seq``), so "new
interactions" of a user are those with a larger ``seq``. An interaction may carry a client
``external_id``: sending it again (a retry) stores nothing new and returns the first copy's ``seq``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bump_profiles.errors import BumpError
from bump_profiles.store.engine import open_engine
from bump_profiles.store.tables import InteractionRow, JobRow, ProfileRow, UserRow

USERS, INTERACTIONS, PROFILES, JOBS = (r.__table__ for r in (UserRow, InteractionRow, ProfileRow, JobRow))


class StaleWriteError(BumpError):
    """A profile was written on top of a version that is no longer the newest (a concurrent refresh)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)  # SQLite drops the zone


@dataclass(frozen=True)
class NewInteraction:
    text: str
    timestamp: str | None = None
    external_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredInteraction:
    seq: int
    user_id: str
    text: str
    timestamp: str | None
    external_id: str | None
    meta: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class StoredProfile:
    user_id: str
    version: int
    text: str
    generator: str
    mode: str  # "scratch" or "update"
    previous_version: int | None
    through_seq: int
    source_seqs: list[int]
    prompt_tokens: int | None
    created_at: datetime


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    users: list[str]
    total: int
    done: int
    failed: int
    error: str | None
    created_at: datetime
    updated_at: datetime


def _insert_ignore(conn: Connection, table: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the connection's dialect (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing()


class ProfileStore:
    """Open (and migrate) the database at ``target``: a file path (SQLite) or a URL (postgresql://...)."""

    def __init__(self, target: str | Engine):
        self.engine = target if isinstance(target, Engine) else open_engine(target)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- interactions ---------------------------------------------------------------------------

    def add_interactions(self, user_id: str, items: Sequence[NewInteraction]) -> list[int]:
        """Store ``items`` for ``user_id`` (created if new) in one transaction; their ``seq`` in order."""
        return self.add_batch([(user_id, it) for it in items])

    def add_batch(self, items: Sequence[tuple[str, NewInteraction]]) -> list[int]:
        """Store ``(user_id, interaction)`` pairs of any users in one transaction; their ``seq`` in order."""
        for attempt in range(3):  # a concurrent insert of the same user or external_id: retry once it is visible
            try:
                return self._add(items)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _add(self, items: Sequence[tuple[str, NewInteraction]]) -> list[int]:
        now = _now()
        with self._write() as conn:
            users = sorted({uid for uid, _ in items})
            if users:  # new users: insert-or-ignore, so concurrent first writes of one user never collide
                conn.execute(_insert_ignore(conn, USERS).values([{"id": uid, "created_at": now} for uid in users]))
            known: dict[tuple[str, str], int] = {}
            for uid in users:
                wanted = [it.external_id for u, it in items if u == uid and it.external_id is not None]
                if wanted:
                    rows = conn.execute(select(INTERACTIONS.c.external_id, INTERACTIONS.c.seq).where(
                        INTERACTIONS.c.user_id == uid, INTERACTIONS.c.external_id.in_(wanted)))
                    known.update({(uid, e): s for e, s in rows})
            seqs: list[int] = []
            for uid, it in items:
                key = (uid, it.external_id) if it.external_id is not None else None
                if key is not None and key in known:
                    seqs.append(known[key])
                    continue
                seq = conn.execute(insert(INTERACTIONS).values(
                    user_id=uid, external_id=it.external_id, text=it.text, timestamp=it.timestamp,
                    meta=it.meta, created_at=now).returning(INTERACTIONS.c.seq)).scalar_one()
                if key is not None:
                    known[key] = seq
                seqs.append(seq)
            return seqs

    def interactions(self, user_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[StoredInteraction]:
        """The user's interactions with ``seq > after_seq``, oldest first."""
        q = select(INTERACTIONS).where(INTERACTIONS.c.user_id == user_id, INTERACTIONS.c.seq > after_seq).order_by(
            INTERACTIONS.c.seq)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [StoredInteraction(r.seq, r.user_id, r.text, r.timestamp, r.external_id, r.meta or {},
                                      _aware(r.created_at)) for r in conn.execute(q)]

    def user_exists(self, user_id: str) -> bool:
        with self._read() as conn:
            return conn.execute(select(USERS.c.id).where(USERS.c.id == user_id)).first() is not None

    def users(self) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(select(USERS.c.id).order_by(USERS.c.id)).scalars())

    # --- profiles -------------------------------------------------------------------------------

    def current_profile(self, user_id: str) -> StoredProfile | None:
        q = select(PROFILES).where(PROFILES.c.user_id == user_id).order_by(PROFILES.c.version.desc()).limit(1)
        with self._read() as conn:
            row = conn.execute(q).first()
        return None if row is None else _profile(row)

    def profile_history(self, user_id: str) -> list[StoredProfile]:
        """Every version of the user's profile, oldest first."""
        q = select(PROFILES).where(PROFILES.c.user_id == user_id).order_by(PROFILES.c.version)
        with self._read() as conn:
            return [_profile(r) for r in conn.execute(q)]

    def write_profile(self, user_id: str, text: str, *, generator: str, mode: str, previous_version: int | None,
                      through_seq: int, source_seqs: Sequence[int], prompt_tokens: int | None = None) -> StoredProfile:
        """Add the next version of the user's profile, in one transaction.

        ``previous_version`` is the version the new text was built on (None: there was none); if a
        newer one was written meanwhile, nothing is written and :class:`StaleWriteError` is raised.
        """
        if mode not in ("scratch", "update"):
            raise ValueError(f"mode must be 'scratch' or 'update', not {mode!r}")
        with self._write() as conn:
            newest = conn.execute(select(func.max(PROFILES.c.version)).where(PROFILES.c.user_id == user_id)).scalar()
            if newest != previous_version:
                raise StaleWriteError(f"user '{user_id}': profile v{newest} was written while v{previous_version} was refreshed")
            values = dict(user_id=user_id, version=(newest or 0) + 1, text=text, generator=generator, mode=mode,
                          previous_version=previous_version, through_seq=through_seq, source_seqs=list(source_seqs),
                          prompt_tokens=prompt_tokens, created_at=_now())
            conn.execute(insert(PROFILES).values(**values))
        return StoredProfile(**{k: v for k, v in values.items()})  # type: ignore[arg-type]

    def stale_users(self, *, min_new: int = 1, max_age_s: float | None = None, now: datetime | None = None) -> list[str]:
        """Users whose profile is missing or stale, with at least one interaction it does not cover.

        Stale: at least ``min_new`` interactions newer than the profile, or (when ``max_age_s`` is
        set) a profile older than ``max_age_s`` seconds with any newer interaction at all.
        """
        now = now or _now()
        latest = select(PROFILES.c.user_id, func.max(PROFILES.c.version).label("v")).group_by(PROFILES.c.user_id).subquery()
        lp = select(PROFILES.c.user_id, PROFILES.c.through_seq, PROFILES.c.created_at).join(
            latest, and_(PROFILES.c.user_id == latest.c.user_id, PROFILES.c.version == latest.c.v)).subquery()
        q = (select(USERS.c.id, lp.c.created_at, func.count(INTERACTIONS.c.seq))
             .select_from(USERS)
             .outerjoin(lp, lp.c.user_id == USERS.c.id)
             .join(INTERACTIONS, and_(INTERACTIONS.c.user_id == USERS.c.id,
                                      INTERACTIONS.c.seq > func.coalesce(lp.c.through_seq, 0)))
             .group_by(USERS.c.id, lp.c.created_at).order_by(USERS.c.id))
        out = []
        with self._read() as conn:
            for uid, created, n_new in conn.execute(q):
                old = max_age_s is not None and created is not None and (now - _aware(created)).total_seconds() > max_age_s
                if created is None or n_new >= min_new or old:
                    out.append(uid)
        return out

    def stale_users_page(self, *, after: str | None = None, limit: int = 10_000, min_new: int = 1,
                         max_age_s: float | None = None, now: datetime | None = None) -> list[str]:
        """The next ``limit`` stale users (as :meth:`stale_users`) with an id after ``after``, in id order:
        pages of a refresh too large to list at once, each read with bounded memory."""
        now = now or _now()
        latest = select(PROFILES.c.user_id, func.max(PROFILES.c.version).label("v")).group_by(PROFILES.c.user_id).subquery()
        lp = select(PROFILES.c.user_id, PROFILES.c.through_seq, PROFILES.c.created_at).join(
            latest, and_(PROFILES.c.user_id == latest.c.user_id, PROFILES.c.version == latest.c.v)).subquery()
        base = (select(USERS.c.id, lp.c.created_at, func.count(INTERACTIONS.c.seq))
                .select_from(USERS)
                .outerjoin(lp, lp.c.user_id == USERS.c.id)
                .join(INTERACTIONS, and_(INTERACTIONS.c.user_id == USERS.c.id,
                                         INTERACTIONS.c.seq > func.coalesce(lp.c.through_seq, 0)))
                .group_by(USERS.c.id, lp.c.created_at).order_by(USERS.c.id))
        out: list[str] = []
        with self._read() as conn:
            while len(out) < limit:  # candidates (users with anything new) in id order, filtered here
                q = base if after is None else base.where(USERS.c.id > after)
                rows = conn.execute(q.limit(limit)).all()
                for uid, created, n_new in rows:
                    old = max_age_s is not None and created is not None and (now - _aware(created)).total_seconds() > max_age_s
                    if (created is None or n_new >= min_new or old) and len(out) < limit:
                        out.append(uid)
                if len(rows) < limit:
                    break
                after = rows[-1][0]
        return out

    # --- refresh jobs ---------------------------------------------------------------------------

    def create_job(self, users: Sequence[str]) -> Job:
        now = _now()
        values = dict(id=uuid.uuid4().hex, status="queued", users=list(users), total=len(users), done=0, failed=0,
                      error=None, created_at=now, updated_at=now)
        with self._write() as conn:
            conn.execute(insert(JOBS).values(**values))
        return Job(**values)  # type: ignore[arg-type]

    def update_job(self, job_id: str, **changes: Any) -> None:
        with self._write() as conn:
            conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(**changes, updated_at=_now()))

    def job(self, job_id: str) -> Job | None:
        with self._read() as conn:
            row = conn.execute(select(JOBS).where(JOBS.c.id == job_id)).first()
        if row is None:
            return None
        return Job(row.id, row.status, list(row.users), row.total, row.done, row.failed, row.error,
                   _aware(row.created_at), _aware(row.updated_at))

    def interrupt_unfinished_jobs(self) -> int:
        """Mark jobs left queued/running by a previous process as ``interrupted``; how many there were."""
        with self._write() as conn:
            return conn.execute(update(JOBS).where(JOBS.c.status.in_(["queued", "running"])).values(
                status="interrupted", error="the service stopped before the job finished", updated_at=_now())).rowcount


def _profile(r: Any) -> StoredProfile:
    return StoredProfile(r.user_id, r.version, r.text, r.generator, r.mode, r.previous_version, r.through_seq,
                         list(r.source_seqs), r.prompt_tokens, _aware(r.created_at))
