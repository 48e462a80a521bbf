"""Saved papers: the ⭐ on a card and the /saved list.

One row per person and paper, keyed by the Telegram user (a press in a group saves for
whoever pressed). Not a foreign key to `papers`: a saved paper must survive its digest
file changing or going, so the row keeps the arXiv id and a snapshot of the card's
title, authors, link and first date.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_papers",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("arxiv_id", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("abs_url", sa.Text(), nullable=False),
        sa.Column("first_date", sa.Date(), nullable=True),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "arxiv_id", name=op.f("pk_saved_papers")),
    )
    op.create_index(op.f("ix_saved_papers_user_id_saved_at"), "saved_papers",
                    ["user_id", "saved_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_saved_papers_user_id_saved_at"), table_name="saved_papers")
    op.drop_table("saved_papers")
