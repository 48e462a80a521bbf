"""The delivery outbox and the sender lease.

A delivery is an outbox row written before anything is sent; the partial unique index
makes "a chat receives a paper once" a database guarantee (reposts are exempt). The
lease table lets one process at a time work through the outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_ONLY = sa.text("reason = 'new'")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=8), nullable=False),
        sa.Column("arxiv_id", sa.String(), nullable=True),
        sa.Column("digest_path", sa.String(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_state_id"), "outbox", ["state", "id"])
    op.create_index(op.f("ix_outbox_chat_id_state_id"), "outbox", ["chat_id", "state", "id"])
    op.create_index(
        "uq_outbox_new_chat_id_arxiv_id", "outbox", ["chat_id", "arxiv_id"], unique=True,
        sqlite_where=_NEW_ONLY, postgresql_where=_NEW_ONLY,
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("uq_outbox_new_chat_id_arxiv_id", table_name="outbox")
    op.drop_index(op.f("ix_outbox_chat_id_state_id"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_state_id"), table_name="outbox")
    op.drop_table("outbox")
