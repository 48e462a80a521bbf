"""Turn paper ids into ArchivedPaper objects: two queries, whatever the number of ids."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.domain.models import Appearance, ArchivedPaper, Paper
from bot.storage.tables import (
    APPEARANCE_FIELDS,
    PAPER_FIELDS,
    AppearanceRow,
    PaperRow,
    appearance_from_mapping,
    paper_from_mapping,
)

T = TypeVar("T")

CHUNK = 500
"""Ids per `IN (...)`: far below SQLite's and asyncpg's bound-parameter limits."""


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def load_archived(session: AsyncSession, ids: Sequence[int]) -> list[ArchivedPaper]:
    """The papers with these row ids, in the order given; ids that do not exist are skipped."""
    by_id = await load_archived_by_id(session, ids)
    return [by_id[pid] for pid in dict.fromkeys(ids) if pid in by_id]


# Built once (every search loads its page through them), the ids a parameter.
_PAPERS = select(PaperRow.id, *(getattr(PaperRow, name) for name in PAPER_FIELDS)).where(
    PaperRow.id.in_(bindparam("ids", expanding=True)))
_APPEARANCES = (
    select(AppearanceRow.paper_id, *(getattr(AppearanceRow, name) for name in APPEARANCE_FIELDS))
    .where(AppearanceRow.paper_id.in_(bindparam("ids", expanding=True)))
    .order_by(AppearanceRow.date, AppearanceRow.topic, AppearanceRow.position)
)


async def load_archived_by_id(
    session: AsyncSession, ids: Sequence[int]
) -> dict[int, ArchivedPaper]:
    """The papers with these row ids, keyed by id, with all their appearances."""
    return await session.run_sync(archived_by_id, ids)


def archived_by_id(session: Session, ids: Sequence[int]) -> dict[int, ArchivedPaper]:
    """load_archived_by_id as blocking code, for reads that run whole in a thread."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    papers: dict[int, Paper] = {}
    appearances: defaultdict[int, list[Appearance]] = defaultdict(list)
    for part in chunked(wanted):
        for row in session.execute(_PAPERS, {"ids": list(part)}):
            papers[row.id] = paper_from_mapping(row._mapping)
        for row in session.execute(_APPEARANCES, {"ids": list(part)}):
            appearances[row.paper_id].append(appearance_from_mapping(row._mapping))
    return {pid: ArchivedPaper(paper, tuple(appearances[pid])) for pid, paper in papers.items()}
