"""The database backends under test, shared by the storage, search and delivery tests.

SQLite (a file in tmp_path) always. PostgreSQL as well when PAPERFEED_TEST_PG_URL names
an empty PostgreSQL database the tests may wipe, as
``postgresql+asyncpg://user:password@127.0.0.1:5432/db``; `.ci/run` starts a throwaway
server and sets it. Each database test then runs once per backend, with ids ending in
``[sqlite]`` and ``[postgresql]``.

Locally, without the variable, the PostgreSQL variants are simply not generated. In CI
(``CI=true``) the variable must be set and the database reachable: otherwise the run
stops at once with an error, rather than passing on SQLite alone. A variable that is set
but names an unreachable database stops any run, instead of failing every test alike.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo

PG_ENV: Final = "PAPERFEED_TEST_PG_URL"
PG_URL: Final = os.environ.get(PG_ENV, "").strip()
BACKENDS: Final = ["sqlite", *(["postgresql"] if PG_URL else [])]
IN_CI: Final = os.environ.get("CI", "").lower() == "true"
PROBE_TIMEOUT: Final = 20.0  # seconds to connect and ask the server its version
_seen: dict[str, str] = {}


async def wipe_postgres(url: str) -> None:
    """Empty the database: drop and recreate the public schema (needs to own it)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def _server_version(url: str) -> str:
    engine = create_async_engine(url, connect_args={"timeout": PROBE_TIMEOUT})
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("SHOW server_version"))).scalar_one())
    finally:
        await engine.dispose()


def _postgres_problem() -> str | None:
    """Why the PostgreSQL tests cannot run as required, or None when all is well."""
    if not PG_URL:
        if not IN_CI:
            return None
        return (
            f"CI=true but {PG_ENV} is not set: the storage, search and delivery tests must "
            "run on PostgreSQL too. Start a PostgreSQL server and set it to an empty "
            "database the tests may wipe (postgresql+asyncpg://user:pw@127.0.0.1:5432/db); "
            ".ci/run does both."
        )
    try:
        url = make_url(PG_URL)
    except ArgumentError as exc:
        return f"{PG_ENV} is not a database URL: {exc}"
    shown = url.render_as_string(hide_password=True)
    if url.drivername != "postgresql+asyncpg":
        return f"{PG_ENV}={shown}: expected a postgresql+asyncpg:// URL"
    try:
        version = asyncio.run(asyncio.wait_for(_server_version(PG_URL), PROBE_TIMEOUT + 5))
    except Exception as exc:
        return f"{PG_ENV}={shown}: cannot reach PostgreSQL: {type(exc).__name__}: {exc}"
    _seen["version"] = version
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = _postgres_problem()
    if problem is not None:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_report_header(config: pytest.Config) -> str:
    if not PG_URL:
        return f"database backends: sqlite only ({PG_ENV} not set)"
    shown = make_url(PG_URL).render_as_string(hide_password=True)
    version = _seen.get("version", "?")
    return f"database backends: sqlite, postgresql {version} ({shown})"


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
