"""Engine, sessions and schema migrations: everything about reaching the database.

Nothing here runs at import time; the composition root calls `make_engine` once and
`migrate` on start. Migrations ship inside the package (bot/migrations), so no
alembic.ini is needed at run time. Alembic (with Mako, 7 MB of a running bot's memory)
is imported only when a migration runs: `migrate` first compares the database's
revision with the newest one shipped, read from the migration files' headers.
"""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, partial
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, create_engine, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "migrations"
"""Found from this file rather than as the resource "bot:migrations", which an editable
install can turn into a namespace path that importlib.resources refuses."""

WRITE: Final[Mapping[str, Any]] = {"paperfeed_write": True}
"""Execution options for a read-modify-write transaction: such transactions run one
at a time, so two of them never both decide that a paper is new.

SQLite begins them with BEGIN IMMEDIATE: the write lock is taken (waiting up to
busy_timeout) before the first read, so the transaction cannot fail later with
"database is locked" when it upgrades from reading to writing. PostgreSQL takes a
transaction-scoped advisory lock first (READ COMMITTED alone would let two writers
insert the same arXiv id).
"""

PG_WRITE_LOCK: Final = 0x70617065  # pg_advisory_xact_lock key of archive writes ("pape")

SQLITE_PRAGMAS: Final = (
    # A new database only (an existing one keeps its page size): papers are ~8 KB rows,
    # and 8 KiB pages took a tenth off SQLite's CPU time in a bulk ingest against 4 KiB.
    "PRAGMA page_size = 8192",
    "PRAGMA foreign_keys = ON",  # ON DELETE CASCADE needs it, per connection
    "PRAGMA journal_mode = WAL",  # readers (the bot) never block the writer (ingest)
    "PRAGMA synchronous = NORMAL",  # safe with WAL, far fewer fsyncs
    "PRAGMA busy_timeout = 10000",  # wait for a concurrent writer instead of failing
)


_json_encode: Final = json.JSONEncoder(ensure_ascii=False).encode


def json_text(value: Any) -> str:
    """JSON columns (authors, takeaways, …) as UTF-8 text; reading is unchanged.

    Chinese takeaways escaped as \\uXXXX took twice the bytes. Lists of strings, which
    is what the archive stores, are joined by hand: the same text as json.dumps at a
    quarter of its cost, which was a tenth of a bulk ingest's Python time.
    """
    if type(value) is list:
        try:
            return "[" + ", ".join(map(encode_basestring, value)) + "]"
        except TypeError:  # not all strings
            pass
    return _json_encode(value)


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An AsyncEngine for `sqlite+aiosqlite://` or `postgresql+asyncpg://` URLs.

    For a SQLite file the parent folder is created; every SQLite connection gets the
    pragmas above, and SQLAlchemy (not the sqlite3 module) emits BEGIN, so that reads
    inside a transaction are repeatable and WRITE transactions begin IMMEDIATE.
    Creating the engine opens no connection.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        engine = create_async_engine(sa_url, echo=echo, pool_pre_ping=True,
                                     json_serializer=json_text)
        event.listen(engine.sync_engine, "begin", _postgresql_on_begin)
        return engine
    database = sa_url.database or ""
    if database not in ("", ":memory:") and not sa_url.query.get("uri"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(sa_url, echo=echo, json_serializer=json_text)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


READER_THREADS: Final = 4
"""Worker threads (each with its own connection) that run read transactions on a SQLite
file; SQLite runs them side by side (WAL), releasing the GIL while it works."""


@dataclass(frozen=True, slots=True)
class _ThreadReader:
    engine: Engine  # pysqlite, on the same file, with the same pragmas
    threads: ThreadPoolExecutor


_READERS: WeakKeyDictionary[Engine, _ThreadReader] = WeakKeyDictionary()


def _thread_reader(engine: AsyncEngine) -> _ThreadReader | None:
    """The thread reader of a SQLite file's engine, made on first use and dropped when the
    engine is disposed; None for PostgreSQL and in-memory SQLite (whose data only the
    async engine's connection sees)."""
    key = engine.sync_engine
    reader = _READERS.get(key)
    if reader is not None:
        return reader
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") \
            or url.query.get("mode") == "memory":
        return None
    sync = create_engine(url.set(drivername="sqlite+pysqlite"), json_serializer=json_text,
                         pool_size=READER_THREADS,
                         connect_args={"check_same_thread": False})
    event.listen(sync, "connect", _sqlite_on_connect)
    event.listen(sync, "begin", _sqlite_on_begin)
    reader = _ThreadReader(sync, ThreadPoolExecutor(READER_THREADS, "paperfeed-read"))
    _READERS[key] = reader

    def disposed(_engine: Engine) -> None:
        if _READERS.get(key) is reader:
            del _READERS[key]
        reader.threads.shutdown(wait=True)
        reader.engine.dispose()

    event.listen(key, "engine_disposed", disposed)
    return reader


def statement_engines(engine: AsyncEngine) -> list[Engine]:
    """Every engine that runs this engine's statements (its own, and its thread
    reader's): where to listen for them."""
    reader = _thread_reader(engine)
    return [engine.sync_engine] + ([reader.engine] if reader is not None else [])


def _read_in(engine: Engine, work: Callable[[Session], T]) -> T:
    with Session(engine) as session, session.begin():
        return work(session)


async def run_read(engine: AsyncEngine, work: Callable[[Session], T]) -> T:
    """Run `work` in one read transaction as plain blocking code.

    On a SQLite file it runs in a worker thread on a connection of its own: one hand-off
    for the whole transaction, where the async driver costs one or more per statement
    (about 0.7 ms each, most of a fast search). Elsewhere it runs through an
    AsyncSession (run_sync), statement by statement as before.
    """
    reader = _thread_reader(engine)
    if reader is None:
        async with AsyncSession(engine) as session, session.begin():
            return await session.run_sync(work)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(reader.threads, partial(_read_in, reader.engine, work))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see _sqlite_on_begin
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("paperfeed_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _postgresql_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("paperfeed_write", False):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


SQLITE_BULK_CACHE_KIB: Final = 64 * 1024
"""Page cache of a connection while it writes a large batch (the default is 2 MiB).

The index merges and the B-tree inserts of a first ingest re-read pages they wrote
moments before; with 2 MiB those came back through read() system calls, about a sixth
of SQLite's CPU time in the 100k-paper benchmark. Only the bulk transaction gets it:
the bot keeps a pool of connections and should not hold 64 MiB in each."""


@asynccontextmanager
async def bulk_write(session: AsyncSession) -> AsyncIterator[None]:
    """Settings for a large write transaction on this session's connection, then back."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = await session.connection()
    previous = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    await connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}")
    yield
    # Not in a `finally`: after a failed statement the connection refuses more until the
    # rollback, and a larger cache left on one pooled connection does no harm.
    await connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous)}")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (they are converted right away)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config built in code: script location inside the package, optional URL."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@asynccontextmanager
async def _engine_of(target: AsyncEngine | str) -> AsyncIterator[AsyncEngine]:
    if isinstance(target, AsyncEngine):
        yield target
        return
    engine = make_engine(target)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _run_alembic(
    target: AsyncEngine | str, action: Callable[[Config, str], None], revision: str
) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection  # env.py uses it instead of a URL
        action(config, revision)

    async with _engine_of(target) as engine, engine.connect() as conn:
        conn = await conn.execution_options(**WRITE)
        async with conn.begin():
            await conn.run_sync(run)


async def migrate(target: AsyncEngine | str, revision: str = "head") -> None:
    """Apply every pending migration (up to `revision`) in one transaction; a database
    already at the newest revision is left alone without importing Alembic."""
    if revision == "head":
        shipped = shipped_head()
        if shipped is not None:
            async with _engine_of(target) as engine:
                if await _stored_revisions(engine) == (shipped,):
                    return
    from alembic import command

    await _run_alembic(target, command.upgrade, revision)


async def downgrade(target: AsyncEngine | str, revision: str = "base") -> None:
    """Undo migrations down to `revision` ("base" drops everything); for tests and rollbacks."""
    from alembic import command

    await _run_alembic(target, command.downgrade, revision)


async def current_revision(target: AsyncEngine | str) -> str | None:
    """The revision the database is at; None for an empty (never migrated) database."""
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with _engine_of(target) as engine, engine.connect() as conn:
        return await conn.run_sync(read)


async def _stored_revisions(engine: AsyncEngine) -> tuple[str, ...] | None:
    """The rows of Alembic's version table; None when there is none (never migrated)."""
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return tuple(sorted(str(row[0]) for row in rows))
    except Exception:  # no such table (or unreadable): Alembic decides
        return None


@cache
def shipped_head() -> str | None:
    """The newest revision in bot/migrations/versions, read from the files' `revision`
    and `down_revision` lines; None if they are not plain strings with one head (then
    Alembic, which this must agree with, decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        header = _revision_lines(path)
        revision, down = header.get("revision"), header.get("down_revision")
        downs = down if isinstance(down, tuple | list) else () if down is None else (down,)
        if not isinstance(revision, str) or not all(isinstance(d, str) for d in downs):
            return None
        revisions.add(revision)
        parents.update(downs)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _revision_lines(path: Path) -> dict[str, object]:
    """A migration file's module-level `revision` and `down_revision` values."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1
            else None)
        if (isinstance(target, ast.Name) and target.id in ("revision", "down_revision")
                and isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None):
            try:
                found[target.id] = ast.literal_eval(node.value)
            except ValueError:
                found[target.id] = node  # not a literal: shipped_head gives up
    return found


def head_revision() -> str:
    """The newest revision this code ships; `doctor` compares it with current_revision."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head



def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """INSERT with ON CONFLICT support (``on_conflict_do_nothing``), in the session's
    dialect: SQLite and PostgreSQL both have it, SQLAlchemy's core insert does not."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def database_now(session: AsyncSession) -> datetime:
    """The database's time now, for deadlines that several processes compare (leases,
    confirmations).

    Why: processes on different hosts disagree by seconds or more, so a deadline written
    by one and judged by another's clock can hold a lease twice or expire a button at
    once. PostgreSQL answers with its own clock. SQLite is a file on this host, opened
    only by processes on this host, so this host's clock is the database's.
    """
    if session.get_bind().dialect.name == "postgresql":
        value = await session.scalar(select(func.statement_timestamp()))
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    return datetime.now(UTC)
