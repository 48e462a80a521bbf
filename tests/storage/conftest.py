"""A real, migrated database per test.

SQLite in tmp_path always; set PAPERFEED_TEST_PG_URL (an empty PostgreSQL database
the tests may wipe) to run every storage test on PostgreSQL as well.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo

PG_URL = os.environ.get("PAPERFEED_TEST_PG_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


async def _wipe_postgres(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of each backend under test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'archive.db'}"
    else:
        await _wipe_postgres(PG_URL)
        yield PG_URL


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database migrated to head."""
    engine = make_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def repo(engine: AsyncEngine) -> ArchiveRepo:
    """The archive repository on the migrated database."""
    return ArchiveRepo(make_sessionmaker(engine))
