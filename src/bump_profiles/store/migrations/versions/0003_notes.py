"""Rolling notes: a note per round of a user's new interactions, written once and kept (refresh mode ``notes``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite autoincrements only INTEGER keys


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(200), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("through_seq", sa.BigInteger, nullable=False),
        sa.Column("source_seqs", sa.JSON, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("generator", sa.String(500), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "through_seq", name="uq_notes_user_through"),
    )
    op.create_index("ix_notes_user_id", "notes", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_notes_user_id", "notes")
    op.drop_table("notes")
