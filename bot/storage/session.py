"""The transactions a repository method runs in: two read kinds, one write kind.

Every public repository method is one short transaction. Writers never fail half-way
on a lock: on SQLite they begin IMMEDIATE, taking the one write lock (or waiting up to
busy_timeout) before their first read. PostgreSQL runs writers concurrently, which is
safe for statements that are atomic alone but not for a transaction that reads and
then writes what it read (two of them would both decide a paper is new): those take
the archive's advisory lock first. Both are the engine's WRITE option (see engine.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot.storage.engine import WRITE, run_read

T = TypeVar("T")


class Repository:
    """Base of the repositories: their sessions, and the two kinds of transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        """A read transaction: one consistent view (plain BEGIN on SQLite), no lock."""
        async with self._sessions() as session, session.begin():
            yield session

    async def _read_blocking(self, work: Callable[[Session], T]) -> T:
        """A read transaction written as plain blocking code, for the reads users wait
        for (search, papers, digests, tags): on SQLite it runs whole in a worker thread
        (see engine.run_read), one hand-off instead of several per statement."""
        engine = self._sessions.kw["bind"]
        assert isinstance(engine, AsyncEngine)
        return await run_read(engine, work)

    @asynccontextmanager
    async def _write(self, *, lock: bool = True) -> AsyncIterator[AsyncSession]:
        """A write transaction holding the write lock from its start.

        SQLite: always BEGIN IMMEDIATE. PostgreSQL: the advisory lock unless ``lock`` is
        False, which only a transaction of statements that are atomic alone may pass.
        """
        async with self._sessions() as session, session.begin():
            if lock or session.get_bind().dialect.name == "sqlite":
                await session.connection(execution_options=dict(WRITE))
            yield session
