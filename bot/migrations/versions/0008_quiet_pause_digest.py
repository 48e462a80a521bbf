"""Quiet, pause, the daily digest list and the weekly roundup.

A chat can mute its deliveries (``chats.silent``: sent with disable_notification) and
pause them (``chats.paused``: rows wait, due never, until it resumes). Rows that go out
as one line of a list message instead of a card of their own (a long backlog summarised
on resume) carry ``outbox.listed``. The digest mode itself is a value of the existing
``chats.mode`` column. ``chats.weekly`` opts a chat into the Monday roundup, and
``chats.roundup_week`` is the week whose roundup was last queued for it (queued once).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("silent", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("paused", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("weekly", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("roundup_week", sa.Date(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("listed", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("listed")
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("roundup_week")
        batch.drop_column("weekly")
        batch.drop_column("paused")
        batch.drop_column("silent")
