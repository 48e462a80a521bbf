"""Paper vectors: what "Related" searches.

One row per paper: the int8 codes of its title + abstract vector (one byte per
dimension, bot/domain/neighbours.py) and the model that made them, so a model change
re-embeds every paper. Deleted with the paper (ON DELETE CASCADE). Papers stored before
this revision have no row: the bot embeds them in the background at its next start.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "paper_vectors",
        sa.Column("paper_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"],
                                name=op.f("fk_paper_vectors_paper_id_papers"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("paper_id", name=op.f("pk_paper_vectors")),
    )


def downgrade() -> None:
    op.drop_table("paper_vectors")
