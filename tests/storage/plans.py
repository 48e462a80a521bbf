"""What SQLite is asked to do: the full-text statements a block runs, and their plans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.storage.engine import statement_engines


@contextmanager
def match_statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement with a MATCH the engine runs inside the block, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: Any,
               *_args: object) -> None:
        if "MATCH" in statement:
            seen.append((statement, parameters))

    engines = statement_engines(engine)  # searches run on the thread reader's
    for target in engines:
        event.listen(target, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for target in engines:
            event.remove(target, "before_cursor_execute", record)


async def query_plan(conn: AsyncConnection, sql: str, params: Any) -> list[str]:
    """The steps of EXPLAIN QUERY PLAN for one statement."""
    rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)).all()
    return [str(row[-1]) for row in rows]
