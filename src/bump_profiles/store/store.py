"""The profile store: users, their interactions, versioned profiles with provenance, refresh jobs.

One small interface (:class:`ProfileStore`) over SQLAlchemy Core, the same for SQLite and
PostgreSQL. Every write is one transaction: a batch of interactions is stored whole or not at all,
and a profile version appears whole or not at all. Interactions carry a store-wide increasing
``seq``; a profile records the newest ``seq`` it accounts for (``through_seq``), so "new
interactions" of a user are those with a larger ``seq``. An interaction may carry a client
``external_id``: sending it again (a retry) stores nothing new and returns the first copy's ``seq``.

For "newer than ``through_seq``" to mean "not yet read", a reader must never see a user's seq 11
while seq 10 is still uncommitted. PostgreSQL draws ``seq`` at INSERT and shows the row at COMMIT,
so the writers of one user are serialized by a transaction-scoped advisory lock per user, and a
read of a user's interactions takes the same lock shared: it waits for the user's open write and
then sees all of it. (Advisory rather than ``SELECT ... FOR UPDATE`` of the user's row: a shared row
lock writes to the row on every read, and a user's first write has no committed row to lock.)
SQLite needs nothing: ``BEGIN IMMEDIATE`` serializes every writer of the database.

A user's notes (refresh mode ``notes``) follow one another: a note is written after the newest one
it was built on, and a note writer takes the user's advisory lock, so two refreshes of one user
cannot both add a note after the same one (their ``through_seq`` may differ, so the unique
constraint alone would not catch it).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError

from bump_profiles.errors import BumpError
from bump_profiles.store.engine import open_engine
from bump_profiles.store.tables import InteractionRow, JobRow, NoteRow, ProfileRow, UserRow

USERS, INTERACTIONS, PROFILES, JOBS, NOTES = (r.__table__ for r in (UserRow, InteractionRow, ProfileRow, JobRow, NoteRow))
PROFILE_MODES = ("scratch", "update", "notes")


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
    mode: str  # "scratch", "update" or "notes"
    previous_version: int | None
    through_seq: int
    source_seqs: list[int]
    prompt_tokens: int | None
    created_at: datetime


@dataclass(frozen=True)
class StoredNote:
    id: int
    user_id: str
    through_seq: int  # the newest interaction the note read
    source_seqs: list[int]  # exactly the interactions its prompt showed
    text: str
    generator: str
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


USER_LOCKS = 28_001  # the advisory-lock class of per-user locks (the migration lock is a one-key lock)


def _user_key(user_id: str) -> int:
    """A stable signed 32-bit key of a user id (a collision only makes two users share a lock)."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=4).digest(), "big", signed=True)


def _lock_users(conn: Connection, users: Sequence[str], *, shared: bool = False) -> None:
    """Hold the users' locks until the transaction ends (PostgreSQL; in key order, so writers of
    overlapping user sets cannot deadlock). A no-op on SQLite, whose writers are serialized anyway."""
    if conn.dialect.name != "postgresql" or not users:
        return
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    keys = sorted({_user_key(u) for u in users})
    conn.execute(text(f"SELECT {fn}(:cls, k) FROM unnest(CAST(:keys AS integer[])) WITH ORDINALITY AS t(k, i) ORDER BY i"),
                 {"cls": USER_LOCKS, "keys": keys})


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
            _lock_users(conn, users)  # the seqs drawn below commit before any reader of these users reads
            if users:  # new users: insert-or-ignore, so concurrent first writes of one user never collide
                conn.execute(_insert_ignore(conn, USERS).values([{"id": uid, "created_at": now} for uid in users]))
            # one SELECT for the client ids seen before and one INSERT for the rest: the users' locks are
            # held for a few statements, whatever the batch size
            wanted = sorted({(uid, it.external_id) for uid, it in items if it.external_id is not None})
            known: dict[tuple[str, str], int] = {}
            if wanted:
                rows = conn.execute(select(INTERACTIONS.c.user_id, INTERACTIONS.c.external_id, INTERACTIONS.c.seq).where(
                    tuple_(INTERACTIONS.c.user_id, INTERACTIONS.c.external_id).in_(wanted)))
                known = {(u, e): s for u, e, s in rows}
            fresh: list[dict[str, Any]] = []
            slot: list[int | tuple[str, str]] = []  # per item: an index into ``fresh``, or a known client id
            queued: dict[tuple[str, str], int] = {}
            for uid, it in items:
                key = (uid, it.external_id) if it.external_id is not None else None
                if key is not None and key in known:
                    slot.append(key)
                elif key is not None and key in queued:  # the same client id twice in one batch: stored once
                    slot.append(queued[key])
                else:
                    if key is not None:
                        queued[key] = len(fresh)
                    slot.append(len(fresh))
                    fresh.append(dict(user_id=uid, external_id=it.external_id, text=it.text, timestamp=it.timestamp,
                                      meta=it.meta, created_at=now))
            seqs = list(conn.execute(insert(INTERACTIONS).returning(INTERACTIONS.c.seq, sort_by_parameter_order=True),
                                     fresh).scalars()) if fresh else []
            return [known[s] if isinstance(s, tuple) else seqs[s] for s in slot]

    def interactions(self, user_id: str, *, after_seq: int = 0, limit: int | None = None,
                     newest: bool = False) -> list[StoredInteraction]:
        """The user's interactions with ``seq > after_seq``, oldest first; with ``newest`` only the newest
        ``limit`` of them (still oldest first). Waits for a write of this user in progress."""
        q = select(INTERACTIONS).where(INTERACTIONS.c.user_id == user_id, INTERACTIONS.c.seq > after_seq).order_by(
            INTERACTIONS.c.seq.desc() if newest else INTERACTIONS.c.seq)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            _lock_users(conn, [user_id], shared=True)
            rows = list(conn.execute(q))
            return [StoredInteraction(r.seq, r.user_id, r.text, r.timestamp, r.external_id, r.meta or {},
                                      _aware(r.created_at)) for r in (rows[::-1] if newest else rows)]

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

    def profile_history(self, user_id: str, *, after_version: int = 0, limit: int | None = None) -> list[StoredProfile]:
        """The user's profile versions after ``after_version``, oldest first (``limit``: one page)."""
        q = select(PROFILES).where(PROFILES.c.user_id == user_id, PROFILES.c.version > after_version).order_by(
            PROFILES.c.version)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_profile(r) for r in conn.execute(q)]

    def write_profile(self, user_id: str, text: str, *, generator: str, mode: str, previous_version: int | None,
                      through_seq: int, source_seqs: Sequence[int], prompt_tokens: int | None = None) -> StoredProfile:
        """Add the next version of the user's profile, in one transaction.

        ``previous_version`` is the version the new text was built on (None: there was none); if a
        newer one was written meanwhile, nothing is written and :class:`StaleWriteError` is raised.
        """
        if mode not in PROFILE_MODES:
            raise ValueError(f"mode must be one of {', '.join(PROFILE_MODES)}, not {mode!r}")
        with self._write() as conn:
            newest = conn.execute(select(func.max(PROFILES.c.version)).where(PROFILES.c.user_id == user_id)).scalar()
            if newest != previous_version:
                raise StaleWriteError(f"user '{user_id}': profile v{newest} was written while v{previous_version} was refreshed")
            values = dict(user_id=user_id, version=(newest or 0) + 1, text=text, generator=generator, mode=mode,
                          previous_version=previous_version, through_seq=through_seq, source_seqs=list(source_seqs),
                          prompt_tokens=prompt_tokens, created_at=_now())
            try:
                conn.execute(insert(PROFILES).values(**values))
            except IntegrityError as exc:  # PostgreSQL: a concurrent writer inserted this version first
                if conn.dialect.name != "postgresql" or "uq_profiles_user_version" not in str(exc.orig):
                    raise
                raise StaleWriteError(f"user '{user_id}': profile v{values['version']} was written concurrently "
                                      f"on top of v{previous_version}") from None
        return StoredProfile(**{k: v for k, v in values.items()})  # type: ignore[arg-type]

    # --- notes -----------------------------------------------------------------------------------

    def write_note(self, user_id: str, text: str, *, generator: str, source_seqs: Sequence[int],
                   prompt_tokens: int | None, after_seq: int | None) -> StoredNote:
        """Add a note on ``source_seqs`` in one transaction. ``after_seq`` is the ``through_seq`` of the
        newest note it was built after (None: there was none); if another note was written meanwhile,
        nothing is written and :class:`StaleWriteError` is raised."""
        if not source_seqs or (after_seq is not None and min(source_seqs) <= after_seq):
            raise ValueError(f"user '{user_id}': a note reads interactions after seq {after_seq}, not {list(source_seqs)}")
        values = dict(user_id=user_id, through_seq=max(source_seqs), source_seqs=list(source_seqs), text=text,
                      generator=generator, prompt_tokens=prompt_tokens, created_at=_now())
        with self._write() as conn:
            _lock_users(conn, [user_id])  # PostgreSQL: the check below sees every note written before it
            newest = conn.execute(select(func.max(NOTES.c.through_seq)).where(NOTES.c.user_id == user_id)).scalar()
            if newest != after_seq:
                raise StaleWriteError(f"user '{user_id}': a note through seq {newest} was written while the note "
                                      f"after seq {after_seq} was generated")
            try:
                note_id = conn.execute(insert(NOTES).values(**values).returning(NOTES.c.id)).scalar_one()
            except IntegrityError as exc:  # PostgreSQL: a writer that took no lock inserted this note first
                if conn.dialect.name != "postgresql" or "uq_notes_user_through" not in str(exc.orig):
                    raise
                raise StaleWriteError(f"user '{user_id}': a note through seq {values['through_seq']} was written "
                                      "concurrently") from None
        return StoredNote(id=note_id, **values)  # type: ignore[arg-type]

    def latest_notes(self, user_id: str, k: int) -> list[StoredNote]:
        """The user's newest ``k`` notes, oldest first."""
        q = select(NOTES).where(NOTES.c.user_id == user_id).order_by(NOTES.c.through_seq.desc()).limit(k)
        with self._read() as conn:
            rows = list(conn.execute(q))
        return [StoredNote(r.id, r.user_id, r.through_seq, list(r.source_seqs), r.text, r.generator, r.prompt_tokens,
                           _aware(r.created_at)) for r in reversed(rows)]

    def stale_users(self, *, min_new: int = 1, max_age_s: float | None = None, now: datetime | None = None,
                    after_user: str | None = None, limit: int | None = None) -> list[str]:
        """Users whose profile is missing or stale, with at least one interaction it does not cover, by id.

        Stale: at least ``min_new`` interactions newer than the profile, or (when ``max_age_s`` is
        set) a profile older than ``max_age_s`` seconds with any newer interaction at all. One page:
        ids after ``after_user``, at most ``limit`` of them.
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
        if after_user is not None:
            q = q.where(USERS.c.id > after_user)
        stale = [lp.c.created_at.is_(None), func.count(INTERACTIONS.c.seq) >= min_new]
        if max_age_s is not None:
            stale.append(lp.c.created_at < now - timedelta(seconds=max_age_s))
        q = q.having(or_(*stale))
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [uid for uid, _created, _n in conn.execute(q)]

    # --- refresh jobs ---------------------------------------------------------------------------

    def create_job(self, users: Sequence[str], *, owner: str | None = None) -> Job:
        """A queued job of ``users``, owned by the replica ``owner`` (the one that will run it)."""
        now = _now()
        values = dict(id=uuid.uuid4().hex, status="queued", users=list(users), total=len(users), done=0, failed=0,
                      error=None, created_at=now, updated_at=now)
        with self._write() as conn:
            conn.execute(insert(JOBS).values(**values, owner=owner))
        return Job(**values)  # type: ignore[arg-type]

    def update_job(self, job_id: str, **changes: Any) -> None:
        with self._write() as conn:
            conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(**changes, updated_at=_now()))

    def job(self, job_id: str, *, with_users: bool = False) -> Job | None:
        """The job's status and counters; its user list (which may be long) only ``with_users``."""
        cols = [c for c in JOBS.c if with_users or c.name != "users"]
        with self._read() as conn:
            row = conn.execute(select(*cols).where(JOBS.c.id == job_id)).first()
        if row is None:
            return None
        return Job(row.id, row.status, list(row.users) if with_users else [], row.total, row.done, row.failed, row.error,
                   _aware(row.created_at), _aware(row.updated_at))

    def touch_jobs(self, owner: str) -> int:
        """Mark the owner's unfinished jobs alive now (a replica's heartbeat); how many there are."""
        with self._write() as conn:
            return conn.execute(update(JOBS).where(JOBS.c.owner == owner, JOBS.c.status.in_(["queued", "running"]))
                                .values(updated_at=_now())).rowcount

    def interrupt_unfinished_jobs(self, owner: str | None = None, *, stale_after_s: float | None = None,
                                  now: datetime | None = None) -> int:
        """Mark jobs left ``queued``/``running`` as ``interrupted``; how many there were.

        With ``owner``: only that replica's own jobs (left by its previous process), jobs with no
        owner, and jobs of any replica not heard from in ``stale_after_s`` seconds (a live replica
        touches its unfinished jobs more often than that). Without: every unfinished job.
        """
        unfinished = JOBS.c.status.in_(["queued", "running"])
        if owner is not None:
            mine = or_(JOBS.c.owner == owner, JOBS.c.owner.is_(None))
            if stale_after_s is not None:
                mine = or_(mine, JOBS.c.updated_at < (now or _now()) - timedelta(seconds=stale_after_s))
            unfinished = and_(unfinished, mine)
        with self._write() as conn:
            return conn.execute(update(JOBS).where(unfinished).values(
                status="interrupted", error="the service stopped before the job finished", updated_at=_now())).rowcount


def _profile(r: Any) -> StoredProfile:
    return StoredProfile(r.user_id, r.version, r.text, r.generator, r.mode, r.previous_version, r.through_seq,
                         list(r.source_seqs), r.prompt_tokens, _aware(r.created_at))
