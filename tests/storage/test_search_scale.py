"""What keeps search fast on a large archive, checked on a small one: the query plan of a
filtered full-text search, ranking only the newest matches of a very common term,
narrowed listings, and the index settings migration 0004 applies."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.query import parse_query
from bot.storage import search
from bot.storage.engine import make_sessionmaker
from bot.storage.repository import ArchiveRepo
from tests.storage.factories import make_digest, make_paper, state_of
from tests.storage.plans import match_statements, query_plan

START = date(2024, 1, 1)


async def _store_days(repo: ArchiveRepo, days: int, per_day: int) -> None:
    """`days` NeRF digests of `per_day` papers each; every paper mentions "splatting", and
    every third one has it in its title."""
    for d in range(days):
        papers = tuple(
            make_paper(f"2401.{d * per_day + i:05d}",
                       title=("Splatting " if (d * per_day + i) % 3 == 0 else "Fields ")
                       + f"study {d}-{i}",
                       abstract="We use splatting. " * (1 + i % 4))
            for i in range(per_day)
        )
        digest = make_digest("NeRF", START + timedelta(days=d), papers)
        await repo.store_digest(digest, state_of(digest))


async def _ids(repo: ArchiveRepo, query: str, limit: int = 100, offset: int = 0) -> list[str]:
    hits, _ = await repo.search(parse_query(query), limit=limit, offset=offset)
    return [hit.paper.arxiv_id for hit in hits]


# --- the query plan ---------------------------------------------------------------------


async def test_filtered_text_search_reads_the_index_once(engine: AsyncEngine) -> None:
    """The `+rowid` in search.py: given `rowid IN (tag filter)`, SQLite would hand each id
    to FTS5, which then runs the whole MATCH (and bm25) once per id: seconds at 100k
    papers. Every statement of a filtered search must scan the index once, its MATCH
    alone, and check the filter list per match."""
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite query plan")
    repo = ArchiveRepo(make_sessionmaker(engine))
    await _store_days(repo, 3, 4)
    with match_statements(engine) as seen:
        for query in ("tag:NeRF splatting", "tag:NeRF since:2024-01-02 splatting",
                      "until:2024-01-02 author:Turing splatting"):
            hits, total = await repo.search(parse_query(query), limit=5)
            assert hits
            assert total >= len(hits)
    filtered = [(sql, params) for sql, params in seen if "appearances" in sql]
    assert len(filtered) >= 3
    async with engine.connect() as conn:
        for sql, params in filtered:
            plan = await query_plan(conn, sql, params)
            scans = [step for step in plan if "VIRTUAL TABLE INDEX" in step]
            # FTS5 names what it was handed after "INDEX n:": M the MATCH, "=" a rowid
            # equality (one MATCH per id: the regression), ">"/"<" rowid ranges.
            assert scans, plan
            for step in scans:
                handed = step.rsplit(":", 1)[-1]
                assert handed.startswith("M"), (sql, plan)
                assert "=" not in handed, (sql, plan)
            assert any("LIST SUBQUERY" in step for step in plan), (sql, plan)


# --- ranking very common terms ----------------------------------------------------------


async def test_common_term_ranks_the_newest_matches(
    repo: ArchiveRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _store_days(repo, 6, 5)  # 30 papers, all matching
    full = await _ids(repo, "splatting")
    hits, total = await repo.search(parse_query("splatting"), limit=100)
    assert total == 30
    assert len(full) == 30
    assert all(h.paper.paper.title.startswith("Splatting") for h in hits[:10])  # title first

    monkeypatch.setattr(search, "RANK_WINDOW", 12)
    windowed = await _ids(repo, "splatting")
    newest = sorted(full, reverse=True)[:12]  # ids grow with the date here
    # The newest 12 by relevance (as the full ranking orders them), then the rest newest first.
    assert windowed[:12] == [i for i in full if i in newest]
    assert windowed[12:] == sorted(set(full) - set(newest), reverse=True)
    _, total = await repo.search(parse_query("splatting"), limit=3)
    assert total == 30
    for offset in (0, 5, 10, 11, 12, 13, 25, 29, 30, 40):
        for limit in (1, 3, 7):
            hits, total = await repo.search(parse_query("splatting"), limit=limit, offset=offset)
            assert total == 30
            assert [h.paper.arxiv_id for h in hits] == windowed[offset : offset + limit]
    assert all(h.rank > 0 for h in (await repo.search(parse_query("splatting"), limit=30))[0])


async def test_page_past_the_matches_still_counts(repo: ArchiveRepo) -> None:
    await _store_days(repo, 2, 3)
    assert await repo.search(parse_query("splatting"), limit=5, offset=50) == ([], 6)
    assert await repo.search(parse_query("splatting"), limit=0) == ([], 6)


# --- listings -----------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["tag:NeRF", "since:2024-01-03", 'author:"Ada Lovelace"',
                                   "tag:NeRF until:2024-01-05", "author:Turing tag:NeRF"])
async def test_narrowed_listings_page_like_the_full_grouping(
    repo: ArchiveRepo, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    await _store_days(repo, 7, 4)
    extra = make_digest("3DGS", START + timedelta(days=6),  # listed again, later
                        (make_paper("2401.00001", title="Splatting study 0-1"),))
    await repo.store_digest(extra, state_of(extra))
    monkeypatch.setattr(search, "NARROW_LISTINGS_ABOVE", 10_000)
    expected, total = await repo.search(parse_query(query), limit=100)
    monkeypatch.setattr(search, "NARROW_LISTINGS_ABOVE", 0)
    for offset in (0, 1, 4, 9, 20, 27, 40):
        for limit in (1, 4, 10):
            hits, count = await repo.search(parse_query(query), limit=limit, offset=offset)
            assert count == total
            assert hits == expected[offset : offset + limit]


# --- migration 0004 -----------------------------------------------------------------------


async def test_index_settings_are_applied(engine: AsyncEngine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("FTS5 settings")
    async with engine.connect() as conn:
        config = dict((await conn.execute(text("SELECT k, v FROM paper_fts_config"))).all())
        indexes = {row[1] for row in await conn.execute(text("PRAGMA index_list(appearances)"))}
    assert config["hashsize"] == 32 * 1024 * 1024
    assert "ix_appearances_topic_date_paper_id" in indexes
