"""Migrations: up, down and up again; the schema they build is the one tables.py declares."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, event, inspect, text

from bot.storage.engine import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    make_sessionmaker,
    migrate,
    shipped_head,
)
from bot.storage.repository import ArchiveRepo
from bot.storage.search import is_search_object
from bot.storage.tables import Base
from tests.storage.factories import make_digest, make_paper, state_of

TABLES = {"digest_files", "papers", "appearances"}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_stairway_up_down_up(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert await current_revision(engine) is None
        await migrate(engine)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) >= TABLES
        await downgrade(engine, "base")
        assert await current_revision(engine) is None
        async with engine.connect() as conn:
            left = await conn.run_sync(_tables)
        assert not (left - {"alembic_version"}), left
        await migrate(engine)
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_migrate_is_idempotent_and_accepts_a_url(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)
    assert await current_revision(database_url) == head_revision()


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert shipped_head() == head_revision()


def test_a_database_at_head_is_left_alone_without_loading_alembic(tmp_path: Path) -> None:
    """Alembic and Mako are 7 MB of a running bot's memory: a bot restarted on a
    database that needs no migration never imports them."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'archive.db'}"
    asyncio.run(migrate(url))
    code = ("import asyncio, sys\n"
            "from bot.storage.engine import current_revision, migrate\n"
            f"asyncio.run(migrate({url!r}))\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "[]"
    assert asyncio.run(current_revision(url)) == head_revision()


async def test_migrations_match_the_declared_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrate(engine)

        def diff(conn: Connection) -> list[object]:
            context = MigrationContext.configure(
                conn, opts={"include_name": lambda name, type_, _p: not (
                    type_ == "table" and is_search_object(name)), "compare_type": True},
            )
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_sqlite_file_folder_created_and_pragmas_set(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "deeper" / "archive.db"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    try:
        async with engine.connect() as conn:
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            sync = (await conn.execute(text("PRAGMA synchronous"))).scalar()
        assert db.parent.is_dir()
        assert (foreign_keys, journal, sync) == (1, "wal", 1)
    finally:
        await engine.dispose()


async def test_in_memory_database_works_end_to_end() -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        await migrate(engine)
        repo = ArchiveRepo(make_sessionmaker(engine))
        digest = make_digest(papers=(make_paper(),))
        await repo.store_digest(digest, state_of(digest))
        assert (await repo.stats()).papers == 1
    finally:
        await engine.dispose()


def test_make_engine_opens_no_connection(tmp_path: Path) -> None:
    db = tmp_path / "lazy" / "archive.db"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    assert not db.exists()
    engine.sync_engine.dispose()


async def test_sqlite_writes_begin_immediate(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'archive.db'}")
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    try:
        await migrate(engine)
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        repo = ArchiveRepo(make_sessionmaker(engine))
        digest = make_digest(papers=(make_paper(),))
        await repo.store_digest(digest, state_of(digest))
        await repo.stats()
    finally:
        await engine.dispose()
    begins = [s for s in seen if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]  # the write, then the read


async def test_upgrading_to_announcements_does_not_announce_the_archive_again(
    database_url: str,
) -> None:
    """Appearances stored before migration 0005 were handed to delivery by the code of
    that time; after the upgrade they must not count as news."""
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        repo = ArchiveRepo(make_sessionmaker(engine))
        digest = make_digest(papers=(make_paper(),))
        await repo.store_digest(digest, state_of(digest))
        assert len(await repo.unannounced()) == 1
        await downgrade(engine, "0004")
        await migrate(engine)
        assert await repo.unannounced() == []
        assert (await repo.stats()).appearances == 1
    finally:
        await engine.dispose()
