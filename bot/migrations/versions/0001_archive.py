"""The archive: digest files, papers, their appearances, and the full-text index.

Revision ID: 0001
Revises:
Create Date: 2024-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.storage.search import search_ddl_v1

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_files",
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("date", sa.Date(), nullable=True),
        sa.Column("paper_count", sa.Integer(), nullable=False),
        sa.Column("skipped_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_digest_files")),
    )
    op.create_table(
        "papers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("arxiv_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("abstract", sa.Text(), nullable=False),
        sa.Column("abs_url", sa.Text(), nullable=False),
        sa.Column("pdf_url", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("takeaways", sa.JSON(), nullable=False),
        sa.Column("analysis", sa.Text(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.Date(), nullable=True),
        sa.Column("source_path", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_path"], ["digest_files.path"],
            name=op.f("fk_papers_source_path_digest_files"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_papers")),
        sa.UniqueConstraint("arxiv_id", name=op.f("uq_papers_arxiv_id")),
    )
    op.create_table(
        "appearances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("digest_path", sa.String(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("takeaways", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["digest_path"], ["digest_files.path"],
            name=op.f("fk_appearances_digest_path_digest_files"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"],
            name=op.f("fk_appearances_paper_id_papers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appearances")),
        sa.UniqueConstraint("paper_id", "digest_path",
                            name=op.f("uq_appearances_paper_id_digest_path")),
    )
    op.create_index(op.f("ix_appearances_topic_date"), "appearances", ["topic", "date"])
    op.create_index(op.f("ix_appearances_date"), "appearances", ["date"])
    op.create_index(op.f("ix_appearances_digest_path"), "appearances", ["digest_path"])
    for statement in search_ddl_v1(op.get_context().dialect.name).create:
        op.execute(statement)


def downgrade() -> None:
    for statement in search_ddl_v1(op.get_context().dialect.name).drop:
        op.execute(statement)
    op.drop_index(op.f("ix_appearances_digest_path"), table_name="appearances")
    op.drop_index(op.f("ix_appearances_date"), table_name="appearances")
    op.drop_index(op.f("ix_appearances_topic_date"), table_name="appearances")
    op.drop_table("appearances")
    op.drop_table("papers")
    op.drop_table("digest_files")
