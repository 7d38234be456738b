"""The store's tables (SQLAlchemy 2 declarative). The schema itself is created by the Alembic
migrations in ``migrations/versions``; these classes must match them (a test compares the two).

Provenance of a stored profile version: ``generator`` (the model that wrote it), ``mode``
(``scratch``: from the newest interactions alone; ``update``: from the previous version plus
interactions since; ``notes``: merged from the user's latest notes, whose ``source_seqs`` it unites),
``source_seqs`` (exactly the interactions this version's prompt showed),
``through_seq`` (the newest interaction the version accounts for, directly or through the version it
updated: later ones are "new"), and ``created_at``. This is not the ``read`` record of a
profiles.jsonl line (:mod:`bump_profiles.profiles.provenance`): that one lists every interaction a profile
*may* have read (the whole history its prompt was cut from, for the held-out leak checks), a superset
of what was shown, where ``source_seqs`` is exactly what was shown.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InteractionRow(Base):
    __tablename__ = "interactions"
    __table_args__ = (UniqueConstraint("user_id", "external_id", name="uq_interactions_user_external"),)

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[str | None] = mapped_column(String(64), nullable=True)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProfileRow(Base):
    __tablename__ = "profiles"
    __table_args__ = (UniqueConstraint("user_id", "version", name="uq_profiles_user_version"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    generator: Mapped[str] = mapped_column(String(500))
    mode: Mapped[str] = mapped_column(String(16))
    previous_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    through_seq: Mapped[int] = mapped_column(BigInteger)
    source_seqs: Mapped[list] = mapped_column(JSON)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NoteRow(Base):
    """A note on one round of a user's new interactions (refresh mode ``notes``): written once, never rewritten."""

    __tablename__ = "notes"
    __table_args__ = (UniqueConstraint("user_id", "through_seq", name="uq_notes_user_through"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    through_seq: Mapped[int] = mapped_column(BigInteger)  # the newest interaction the note read
    source_seqs: Mapped[list] = mapped_column(JSON)  # exactly the interactions its prompt showed
    text: Mapped[str] = mapped_column(Text)
    generator: Mapped[str] = mapped_column(String(500))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, done, failed, interrupted
    users: Mapped[list] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the replica running it (revision 0002)
