"""Bulk inserts straight to the driver store exactly what SQLAlchemy's insert stores."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.bulk import insert_rows
from bot.storage.engine import make_sessionmaker
from bot.storage.tables import Base

_files = Base.metadata.tables["digest_files"]
_papers = Base.metadata.tables["papers"]
_apps = Base.metadata.tables["appearances"]
_chats = Base.metadata.tables["chats"]
_leases = Base.metadata.tables["leases"]

ODD_TEXT = 'quote " backslash \\ tab \t newline \n 中文 emoji 🙂 \u2028 nul-free'


def _file(path: str, **extra: Any) -> dict[str, Any]:
    return {"path": path, "content_hash": "ab" * 32, "size": 10**12, "mtime_ns": 10**18,
            "topic": "NeRF", "date": date(2024, 6, 1), "skipped_reason": None, **extra}


def _paper(arxiv_id: str, source: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "arxiv_id": arxiv_id, "version": 2, "title": ODD_TEXT, "authors": ["A. B", ODD_TEXT],
        "abstract": "x" * 5000, "abs_url": "https://arxiv.org/abs/1", "pdf_url": "p",
        "comment": "", "links": [], "summary": "一", "takeaways": ["a", "b\\c"],
        "analysis": ODD_TEXT * 100, "figures": ["https://x/1.png"], "first_seen": None,
        "source_path": source, **extra,
    }


def _app(paper_id: int, path: str, **extra: Any) -> dict[str, Any]:
    return {"paper_id": paper_id, "digest_path": path, "topic": "元宇宙/虚拟人",
            "date": date(999, 1, 2), "summary": ODD_TEXT, "takeaways": [], "position": 3,
            **extra}


def _columns(table: Table) -> list[str]:
    """The columns compared: all but a generated row id."""
    return [c.name for c in table.columns if not (c.primary_key and c.name == "id")]


async def _stored(engine: AsyncEngine, table: Table) -> list[dict[str, Any]]:
    """Every row as the driver returns it (on SQLite: JSON as text, dates as text; on
    PostgreSQL: JSON decoded, dates as dates)."""
    names = _columns(table)
    async with engine.connect() as conn:
        result = await conn.exec_driver_sql(f"SELECT {', '.join(names)} FROM {table.name}")
        return [dict(zip(names, row, strict=True)) for row in result]


async def _both_ways(
    engine: AsyncEngine, table: Table, rows: Sequence[Mapping[str, Any]],
    key: str, rename: Callable[[str], str],
) -> None:
    """Insert the rows with insert_rows and again, `key` renamed, with SQLAlchemy's
    insert: the stored rows must be the same but for that key."""
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await insert_rows(session, table, rows)
        await session.execute(insert(table), [{**r, key: rename(r[key])} for r in rows])
    back = {rename(r[key]): r[key] for r in rows}
    fast: Counter[tuple[Any, ...]] = Counter()
    slow: Counter[tuple[Any, ...]] = Counter()
    for row in await _stored(engine, table):
        if row[key] in back:
            slow[tuple(map(repr, {**row, key: back[row[key]]}.values()))] += 1
        else:  # repr: PostgreSQL's driver gives JSON back as lists, which do not hash
            fast[tuple(map(repr, row.values()))] += 1
    assert fast == slow
    assert sum(fast.values()) == len(rows)


async def test_archive_rows_are_stored_as_sqlalchemy_stores_them(engine: AsyncEngine) -> None:
    await _both_ways(engine, _files, [_file("a.md"), _file("b.md", paper_count=2,
                                                           date=None, topic=None,
                                                           skipped_reason="not a digest")],
                     "path", lambda p: "sa-" + p)
    await _both_ways(engine, _papers, [_paper("2409.00001", "a.md"),
                                       _paper("2409.00002", None, first_seen=date(2024, 1, 9))],
                     "arxiv_id", lambda a: a + "9")
    async with engine.connect() as conn:
        ids = [i for (i,) in await conn.execute(select(_papers.c.id).order_by(_papers.c.id))]
    await _both_ways(engine, _apps, [_app(ids[0], "a.md"),
                                     _app(ids[1], "a.md", announced=True, takeaways=["z"])],
                     "digest_path", lambda p: "sa-" + p)


async def test_unset_defaults_are_applied_as_sqlalchemy_would(engine: AsyncEngine) -> None:
    """digest_files.paper_count (0) and appearances.announced (False, where the column's
    server default is true) are given by the model, as SQLAlchemy's insert gives them."""
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await insert_rows(session, _files, [_file("a.md")])
        await insert_rows(session, _papers, [_paper("2409.00001", None)])
        paper_id = (await session.execute(select(_papers.c.id))).scalar_one()
        await insert_rows(session, _apps, [_app(paper_id, "a.md")])
    async with engine.connect() as conn:
        count = (await conn.execute(select(_files.c.paper_count))).scalar_one()
        announced = (await conn.execute(select(_apps.c.announced))).scalar_one()
    assert (count, announced) == (0, False)


async def test_other_column_kinds_go_through_sqlalchemy(engine: AsyncEngine) -> None:
    """A callable default (chats.include) or a type decorator (leases.expires_at): the
    rows are inserted by SQLAlchemy, defaults and conversions included."""
    sessions = make_sessionmaker(engine)
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with sessions() as session, session.begin():
        await insert_rows(session, _chats, [{"chat_id": 7, "kind": "private"}])
        await insert_rows(session, _leases, [{"name": "x", "owner": "me",
                                              "expires_at": expires}])
    async with engine.connect() as conn:
        chat = (await conn.execute(select(_chats.c.include, _chats.c.active))).one()
        lease = (await conn.execute(select(_leases.c.expires_at))).scalar_one()
    assert (chat.include, chat.active, lease) == ([], True, expires)


async def test_no_rows_is_no_statement(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await insert_rows(session, _papers, [])
    assert await _stored(engine, _papers) == []
