"""Remember which stored appearances delivery has not queued yet.

An ingest commits its papers, and only then does delivery queue them for the chats.
A process killed between the two used to lose those announcements: the next scan
saw the files unchanged. `appearances.announced` is written False by the ingest and
set True once the outbox rows exist; whatever is still False is queued at the next
scan. Existing rows were announced (or deliberately not) by the code before this.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("appearances") as batch:
        batch.add_column(
            sa.Column("announced", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_index("ix_appearances_unannounced", "appearances", ["id"],
                    sqlite_where=sa.text("announced = 0"),
                    postgresql_where=sa.text("NOT announced"))


def downgrade() -> None:
    op.drop_index("ix_appearances_unannounced", table_name="appearances")
    with op.batch_alter_table("appearances") as batch:
        batch.drop_column("announced")
