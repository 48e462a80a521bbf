"""What SQLite is asked to do: the full-text statements a block runs, and their plans."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.storage.engine import statement_engines


@contextmanager
def before_statements(engine: AsyncEngine, listener: Callable[..., None]) -> Iterator[None]:
    """`listener` called before every statement the engine runs inside the block, on its
    own connections or its thread reader's (where searches run)."""
    engines = statement_engines(engine)
    for target in engines:
        event.listen(target, "before_cursor_execute", listener)
    try:
        yield
    finally:
        for target in engines:
            event.remove(target, "before_cursor_execute", listener)


@contextmanager
def match_statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement with a MATCH the engine runs inside the block, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: Any,
               *_args: object) -> None:
        if "MATCH" in statement:
            seen.append((statement, parameters))

    with before_statements(engine, record):
        yield seen


async def query_plan(conn: AsyncConnection, sql: str, params: Any) -> list[str]:
    """The steps of EXPLAIN QUERY PLAN for one statement."""
    rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)).all()
    return [str(row[-1]) for row in rows]
