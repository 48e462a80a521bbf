"""A real, migrated database per test, on each backend under test.

SQLite in tmp_path always; PostgreSQL as well when PAPERFEED_TEST_PG_URL is set (see
tests/conftest.py, which also makes CI fail without it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo
from tests.conftest import BACKENDS, PG_URL, wipe_postgres


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of each backend under test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'archive.db'}"
    else:
        await wipe_postgres(PG_URL)
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
