"""Remember every announced listing, beyond the life of its digest file.

An emptied folder that came back, a file deleted and restored, or a renamed file made
the same papers "new" again: their appearances had been removed with the files, so the
next scan announced them once more, and chats that had subscribed since got the whole
back catalogue. `announced_listings` keeps (arXiv id, topic, date) of every announced
appearance for good; delivery announces a listing only once. Filled from the
appearances announced so far.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "announced_listings",
        sa.Column("arxiv_id", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("arxiv_id", "topic", "date", name="pk_announced_listings"),
    )
    op.execute(
        "INSERT INTO announced_listings (arxiv_id, topic, date) "
        "SELECT DISTINCT papers.arxiv_id, appearances.topic, appearances.date "
        "FROM appearances JOIN papers ON papers.id = appearances.paper_id "
        "WHERE appearances.announced"
    )


def downgrade() -> None:
    op.drop_table("announced_listings")
