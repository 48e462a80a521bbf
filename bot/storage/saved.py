"""Saved papers: what each person saved with ⭐, for their /saved list.

Every method is one short transaction, so a hundred people pressing ⭐ at once cost a
hundred tiny writes. A save copies the paper's title, authors, link and first date
from the archive in the same INSERT … SELECT that stores it; the list shows the
archive's current record while the paper is there, and that snapshot once it has left.
Each write is atomic alone (a DELETE, or an INSERT that ignores a row already there),
so on PostgreSQL they skip the archive's advisory lock and never wait for a scan.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.models import SavedPaper
from bot.storage.engine import database_now, dialect_insert
from bot.storage.session import Repository
from bot.storage.tables import AppearanceRow, PaperRow, SavedPaperRow, UTCDateTime

_saved = SavedPaperRow.__table__


def _first_date() -> Any:
    """The date of the first digest that listed the paper of the row in hand."""
    return (select(func.min(AppearanceRow.date))
            .where(AppearanceRow.paper_id == PaperRow.id).scalar_subquery())


def _to_saved(row: Any) -> SavedPaper:
    """The entry as the list shows it: the archive's fields while the paper is there."""
    here = row.paper_id is not None
    return SavedPaper(
        arxiv_id=row.arxiv_id,
        title=row.current_title if here else row.title,
        authors=tuple((row.current_authors if here else row.authors) or ()),
        abs_url=row.current_abs_url if here else row.abs_url,
        first_date=row.current_first_date if here else row.first_date,
        saved_at=row.saved_at,
        in_archive=here,
    )


class SavedRepo(Repository):
    """One person's saved papers; ``user_id`` is the Telegram user, never a chat."""

    async def toggle(self, user_id: int, arxiv_id: str) -> bool | None:
        """Unsave the paper if saved, else save it: whether it is saved now; None when
        it is neither saved nor in the archive (nothing to save)."""
        async with self._write(lock=False) as session:
            gone = await session.execute(delete(SavedPaperRow).where(
                SavedPaperRow.user_id == user_id, SavedPaperRow.arxiv_id == arxiv_id))
            if getattr(gone, "rowcount", 0):
                return False
            return await self._save(session, user_id, arxiv_id)

    async def set_saved(self, user_id: int, arxiv_id: str, saved: bool) -> bool | None:
        """Save or unsave (a second press of the same button changes nothing): whether it
        is saved now; None when saving a paper the archive does not hold."""
        async with self._write(lock=False) as session:
            if saved:
                return await self._save(session, user_id, arxiv_id)
            await session.execute(delete(SavedPaperRow).where(
                SavedPaperRow.user_id == user_id, SavedPaperRow.arxiv_id == arxiv_id))
            return False

    @staticmethod
    async def _save(session: AsyncSession, user_id: int, arxiv_id: str) -> bool | None:
        """Store the paper with its snapshot; True if it is saved now (also when it already
        was), None when the archive has no such paper."""
        now = await database_now(session)
        snapshot = select(
            literal(user_id, BigInteger()), PaperRow.arxiv_id, PaperRow.title,
            PaperRow.authors, PaperRow.abs_url, _first_date(), literal(now, UTCDateTime()),
        ).where(PaperRow.arxiv_id == arxiv_id)
        stored = await session.execute(
            dialect_insert(session, _saved).from_select(
                ["user_id", "arxiv_id", "title", "authors", "abs_url", "first_date",
                 "saved_at"], snapshot).on_conflict_do_nothing())
        if getattr(stored, "rowcount", 0):
            return True
        there = await session.scalar(select(SavedPaperRow.arxiv_id).where(
            SavedPaperRow.user_id == user_id, SavedPaperRow.arxiv_id == arxiv_id))
        return True if there is not None else None

    async def is_saved(self, user_id: int, arxiv_id: str) -> bool:
        async with self._read() as session:
            return await session.scalar(select(SavedPaperRow.arxiv_id).where(
                SavedPaperRow.user_id == user_id,
                SavedPaperRow.arxiv_id == arxiv_id)) is not None

    async def page(self, user_id: int, limit: int, offset: int = 0
                   ) -> tuple[list[SavedPaper], int]:
        """One page of the person's list, newest first, and how many they saved."""
        async with self._read() as session:
            total = await session.scalar(select(func.count()).select_from(SavedPaperRow)
                                         .where(SavedPaperRow.user_id == user_id)) or 0
            rows = await session.execute(self._listing(user_id).limit(limit).offset(offset))
            return [_to_saved(row) for row in rows], total

    async def all(self, user_id: int) -> list[SavedPaper]:
        """The person's whole list, newest first (for the BibTeX file and the links)."""
        async with self._read() as session:
            return [_to_saved(row) for row in await session.execute(self._listing(user_id))]

    @staticmethod
    def _listing(user_id: int) -> Any:
        return (
            select(SavedPaperRow.arxiv_id, SavedPaperRow.title, SavedPaperRow.authors,
                   SavedPaperRow.abs_url, SavedPaperRow.first_date, SavedPaperRow.saved_at,
                   PaperRow.id.label("paper_id"), PaperRow.title.label("current_title"),
                   PaperRow.authors.label("current_authors"),
                   PaperRow.abs_url.label("current_abs_url"),
                   _first_date().label("current_first_date"))
            .outerjoin(PaperRow, PaperRow.arxiv_id == SavedPaperRow.arxiv_id)
            .where(SavedPaperRow.user_id == user_id)
            .order_by(SavedPaperRow.saved_at.desc(), SavedPaperRow.arxiv_id.desc())
        )
