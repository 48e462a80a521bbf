"""Alembic environment: runs migrations on the connection `bot.storage.engine.migrate` passes
in, or, from the `alembic` command line, on an async engine built from the configured URL.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection

from bot.storage.search import is_search_object
from bot.storage.tables import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None:  # the alembic command line, with alembic.ini
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Hide the full-text index (a virtual table and its shadow tables) from autogenerate."""
    return not (type_ == "table" and is_search_object(name))


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from bot.config import load_settings  # only for the alembic command line

    return load_settings().database_url


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: print the SQL instead of running it."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_name=_include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    from bot.storage.engine import WRITE, make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(**WRITE)
            async with conn.begin():
                await conn.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Use the caller's connection when there is one, else connect to the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_async(_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
