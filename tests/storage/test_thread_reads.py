"""Searches on a SQLite file run whole in the reader's worker threads: the event loop is
free while SQLite works, many run side by side, and a store in progress changes nothing
of what they see. Elsewhere (PostgreSQL, an in-memory SQLite) they run on the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.query import parse_query
from bot.storage.engine import (
    READER_THREADS,
    make_engine,
    make_sessionmaker,
    migrate,
    statement_engines,
)
from bot.storage.repository import ArchiveRepo
from tests.storage.factories import make_digest, make_paper, state_of
from tests.storage.plans import before_statements


@contextmanager
def threads_of_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The name of the thread each statement of the block ran in."""
    names: list[str] = []

    def record(*_args: Any) -> None:
        names.append(threading.current_thread().name)

    with before_statements(engine, record):
        yield names


async def _archive(engine: AsyncEngine, papers: int = 3) -> ArchiveRepo:
    repo = ArchiveRepo(make_sessionmaker(engine))
    digest = make_digest("NeRF", date(2024, 6, 1), tuple(
        make_paper(f"2406.{i:05d}", title=f"Gaussian splatting study {i}")
        for i in range(1, papers + 1)))
    await repo.store_digest(digest, state_of(digest))
    return repo


async def test_a_search_on_a_sqlite_file_runs_in_a_reader_thread(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'archive.db'}")
    try:
        await migrate(engine)
        repo = await _archive(engine)
        with threads_of_statements(engine) as names:
            hits, total = await repo.search(parse_query("tag:nerf splatting"))
        assert total == 3
        assert len(hits) == 3
        assert names
        assert all(name.startswith("paperfeed-read") for name in names), names
    finally:
        await engine.dispose()


async def test_the_loop_runs_on_while_a_search_waits_in_sqlite(tmp_path: Path) -> None:
    """A search whose statement cannot finish until the loop has served another caller:
    on the loop's own thread this would never end."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'archive.db'}")
    try:
        await migrate(engine)
        repo = await _archive(engine)
        other_done = threading.Event()
        waited: list[bool] = []

        def hold(*_args: Any) -> None:
            if threading.current_thread() is not threading.main_thread():
                waited.append(other_done.wait(timeout=10))

        reader = statement_engines(engine)[-1]
        event.listen(reader, "before_cursor_execute", hold)
        try:
            search = asyncio.create_task(repo.search(parse_query("splatting")))
            stats = await repo.stats()  # served by the loop while the search is held
            other_done.set()
            _, total = await search
        finally:
            event.remove(reader, "before_cursor_execute", hold)
        assert stats.papers == 3
        assert total == 3
        assert waited
        assert all(waited)
    finally:
        await engine.dispose()


async def test_many_searches_at_once_during_a_store(tmp_path: Path) -> None:
    """A hundred searches side by side, more than there are reader threads, while a
    digest is being stored: each sees the archive before or after the store, whole."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'archive.db'}")
    try:
        await migrate(engine)
        repo = await _archive(engine, papers=5)
        later = make_digest("NeRF", date(2024, 6, 2), tuple(
            make_paper(f"2406.{i:05d}", title=f"Gaussian splatting study {i}")
            for i in range(6, 11)))
        searches = [repo.search(parse_query("splatting"), limit=20) for _ in range(100)]
        store = repo.store_digest(later, state_of(later))
        *results, _ = await asyncio.gather(*searches, store)
        assert READER_THREADS < 100
        for hits, total in results:
            assert total in (5, 10)
            assert len(hits) == total
        _, total = await repo.search(parse_query("splatting"))
        assert total == 10
    finally:
        await engine.dispose()


async def test_a_disposed_engine_reads_again_with_a_new_reader(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'archive.db'}")
    try:
        await migrate(engine)
        repo = await _archive(engine)
        first = statement_engines(engine)[-1]
        await engine.dispose()
        assert (await repo.search(parse_query("splatting")))[1] == 3
        assert statement_engines(engine)[-1] is not first
    finally:
        await engine.dispose()


async def test_an_in_memory_database_searches_on_the_loop() -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        await migrate(engine)
        repo = await _archive(engine)
        assert statement_engines(engine) == [engine.sync_engine]
        with threads_of_statements(engine) as names:
            assert (await repo.search(parse_query("tag:nerf splatting")))[1] == 3
        assert names
        assert not any(name.startswith("paperfeed-read") for name in names)
    finally:
        await engine.dispose()
