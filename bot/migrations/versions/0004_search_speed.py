"""Faster ingest and search: covering indexes for tag listings, full-text index settings.

`appearances (topic, date)` becomes `(topic, date, paper_id)`, so a tag listing or a
tag filter reads the papers of a tag, by date, from the index alone; `digest_files
(topic, date)` lets the tag names and their last dates be read without a table scan.
SQLite's FTS5 index gets a larger in-memory buffer (see search_tuning_v2).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from bot.storage.search import search_tuning_v2

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_appearances_topic_date"), table_name="appearances")
    op.create_index(op.f("ix_appearances_topic_date_paper_id"), "appearances",
                    ["topic", "date", "paper_id"])
    op.create_index(op.f("ix_digest_files_topic_date"), "digest_files", ["topic", "date"])
    for statement in search_tuning_v2(op.get_context().dialect.name).create:
        op.execute(statement)


def downgrade() -> None:
    for statement in search_tuning_v2(op.get_context().dialect.name).drop:
        op.execute(statement)
    op.drop_index(op.f("ix_digest_files_topic_date"), table_name="digest_files")
    op.drop_index(op.f("ix_appearances_topic_date_paper_id"), table_name="appearances")
    op.create_index(op.f("ix_appearances_topic_date"), "appearances", ["topic", "date"])
