"""Confirmations in the database; saved searches expire.

An operator's "/repost … to 300 chats?" waited for its button in one process's memory:
behind a load balancer the press could reach another process, and a restart lost it.
`confirmations` keeps each question with its asker and an expiry on the database's
clock. Saved searches gain `used_at`, so a search's ◀ ▶ buttons expire some time after
their last use and the table does not grow for ever.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "confirmations",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_confirmations")),
    )
    op.create_index(op.f("ix_confirmations_expires_at"), "confirmations", ["expires_at"])
    with op.batch_alter_table("saved_queries") as batch:
        batch.add_column(sa.Column("used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("saved_queries") as batch:
        batch.drop_column("used_at")
    op.drop_index(op.f("ix_confirmations_expires_at"), table_name="confirmations")
    op.drop_table("confirmations")
