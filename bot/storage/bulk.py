"""Many rows into one table in one statement: on SQLite, straight to the driver.

SQLAlchemy prepares every parameter of every row in Python before the driver sees it
(a dict per row, JSON columns through the serializer, dates formatted, defaults filled
in). For the papers and listings of a 100 000-paper ingest that was about 3 s of the
main process's 45, more than SQLite took to insert them. On SQLite `insert_rows` does
the same conversions itself, once per column rather than per value looked up, and
hands positional tuples to one executemany, as search.py does for the index rows. The
stored values are the same: engine.py's JSON serializer, dates as SQLAlchemy writes
them on SQLite (YYYY-MM-DD), booleans as 0/1, scalar column defaults.

Other dialects (asyncpg wants its own types), and a table with a column type or default
this module does not know, go through SQLAlchemy's executemany as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Enum,
    Integer,
    String,
    Table,
    TypeDecorator,
    insert,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.engine import json_text

Convert = Callable[[Sequence[Any]], Sequence[Any]] | None
"""How a column's Python values become what SQLite binds, the whole column at once;
None: as they are."""


class _Unknown(Exception):
    """A column this module cannot prepare like SQLAlchemy would."""


def _sqlite_date(value: date | None) -> str | None:
    """SQLAlchemy's SQLite DATE storage format."""
    if value is None:
        return None
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _each(convert: Callable[[Any], Any]) -> Convert:
    """Convert every value (JSON: each one is different)."""
    return lambda column: list(map(convert, column))


def _few(convert: Callable[[Any], Any]) -> Convert:
    """Convert each distinct value once (dates, flags: a batch has a few of them)."""

    def column_of(column: Sequence[Any]) -> list[Any]:
        done = {value: convert(value) for value in set(column)}
        return list(map(done.__getitem__, column))

    return column_of


_JSON: Final = _each(json_text)  # None is JSON null, as SQLAlchemy's JSON type stores it
_DATE: Final = _few(_sqlite_date)
_BOOL: Final = _few(_sqlite_bool)


def _convert(column: Column[Any]) -> Convert:
    kind = column.type
    if isinstance(kind, (TypeDecorator, Enum)):  # their own processing: SQLAlchemy's
        raise _Unknown(f"{column.table.name}.{column.key}: {kind!r}")
    if isinstance(kind, JSON):
        return _JSON
    if isinstance(kind, Date):
        return _DATE
    if isinstance(kind, Boolean):
        return _BOOL
    if isinstance(kind, (Integer, String)):  # BigInteger, Text: bound as they are
        return None
    raise _Unknown(f"{column.table.name}.{column.key}: {kind!r}")


def _default(column: Column[Any]) -> Any:
    default = column.default
    if default is None or not default.is_scalar:
        raise _Unknown(f"{column.table.name}.{column.key}: default {default!r}")
    return default.arg  # type: ignore[attr-defined]


def _sqlite_plan(table: Table, keys: Sequence[str]) -> tuple[str, list[Convert], list[Any]]:
    """The INSERT statement, a converter per given column, and the values of the scalar
    defaults of the columns not given (SQLAlchemy would add them)."""
    given = set(keys)
    defaulted = [c for c in table.columns if c.key not in given and c.default is not None]
    names = [*keys, *(c.key for c in defaulted)]
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "
           f"VALUES ({', '.join('?' * len(names))})")
    converts = [_convert(table.columns[key]) for key in keys]
    defaults = []
    for column in defaulted:
        value, convert = _default(column), _convert(column)
        defaults.append(value if convert is None else convert([value])[0])
    return sql, converts, defaults


async def insert_rows(session: AsyncSession, table: Table,
                      rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT every row (all with the keys of the first) in one executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name == "sqlite":
        keys = list(rows[0])
        try:
            sql, converts, defaults = _sqlite_plan(table, keys)
        except _Unknown:
            pass
        else:
            # Transposed and back by zip and itemgetter, in C: a Python loop per value
            # is what this module saves.
            if len(keys) == 1:
                columns: list[Sequence[Any]] = [[row[keys[0]] for row in rows]]
            else:
                columns = list(zip(*map(itemgetter(*keys), rows), strict=True))
            for i, convert in enumerate(converts):
                if convert is not None:
                    columns[i] = convert(columns[i])
            columns.extend([value] * len(rows) for value in defaults)
            connection = await session.connection()
            await connection.exec_driver_sql(sql, list(zip(*columns, strict=True)))
            return
    await session.execute(insert(table), list(rows))
