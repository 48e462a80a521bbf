"""Counting matches only as far as a page needs (count_up_to), and the rowid range a tag
and date filter hands to the index: the same papers, in the same order, as counting and
reading everything."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.query import parse_query
from bot.storage import search
from bot.storage.engine import make_sessionmaker
from bot.storage.repository import ArchiveRepo
from tests.storage.factories import make_digest, make_paper, state_of
from tests.storage.plans import match_statements, query_plan

START = date(2024, 1, 1)


async def _store(repo: ArchiveRepo, days: list[int], per_day: int = 5,
                 topic: str = "NeRF", month: str = "2401") -> None:
    """One digest of `per_day` papers per day in `days`, stored in that order (so ids
    need not grow with the date); every paper mentions "splatting"."""
    for d in days:
        papers = tuple(
            make_paper(f"{month}.{d * per_day + i:05d}",
                       title=("Splatting " if i % 2 else "Fields ") + f"study {d}-{i}",
                       abstract="We use splatting. " * (1 + i % 3))
            for i in range(per_day)
        )
        digest = make_digest(topic, START + timedelta(days=d), papers)
        await repo.store_digest(digest, state_of(digest))


async def _found(repo: ArchiveRepo, query: str, limit: int, offset: int = 0,
                 up_to: int | None = None) -> tuple[list[str], int]:
    hits, total = await repo.search(parse_query(query), limit=limit, offset=offset,
                                    count_up_to=up_to)
    return [h.paper.arxiv_id for h in hits], total


@pytest.mark.parametrize("window", [2000, 12])  # 12: more match than are ranked
async def test_counting_up_to_a_bound_gives_the_same_pages(
    repo: ArchiveRepo, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    await _store(repo, list(range(6)))  # 30 papers, all matching
    monkeypatch.setattr(search, "RANK_WINDOW", window)
    everything, total = await _found(repo, "splatting", 100)
    assert total == 30
    for up_to in (1, 5, 10, 20, 29, 30, 31, 100):
        for offset in (0, 4, 10, 11, 12, 13, 25, 29, 30):
            for limit in (1, 5):
                page, counted = await _found(repo, "splatting", limit, offset, up_to)
                assert page == everything[offset : offset + limit]
                bound = max(up_to, offset + limit + 1)
                # exact below the bound, "at least" at it: never more than match
                assert counted == min(30, bound)


async def test_counting_up_to_covers_listings_and_exact_ids(repo: ArchiveRepo) -> None:
    await _store(repo, list(range(4)))  # 20 papers under NeRF
    for query in ("tag:NeRF", 'author:"Ada Lovelace"', "2401.00003 splatting",
                  "2401.00003 2401.00004 tag:NeRF splatting"):
        everything, total = await _found(repo, query, 100)
        assert total == len(everything) > 10
        page, counted = await _found(repo, query, 5, 0, up_to=8)
        assert page == everything[:5]
        assert counted == 8
        page, counted = await _found(repo, query, 5, 15, up_to=8)
        assert page == everything[15:20]
        assert counted == total  # below this page's bound (21): exact


async def test_a_dated_tag_filter_finds_the_same_papers_whatever_the_id_order(
    repo: ArchiveRepo,
) -> None:
    """The tag and date filter narrows the index to the ids of its papers: papers stored
    late with early dates (ids not in date order) are still found."""
    await _store(repo, [9, 3, 7, 0, 5, 1, 8, 2, 6, 4])
    await _store(repo, [0, 4, 8], per_day=3, topic="3DGS", month="2402")  # ids in between
    for query, days in (("tag:NeRF until:2024-01-04 splatting", range(0, 4)),
                        ("tag:NeRF since:2024-01-06 splatting", range(5, 10)),
                        ("tag:NeRF since:2024-01-03 until:2024-01-07 fields", range(2, 7)),
                        ("#NeRF #3DGS until:2024-01-02 splatting", range(0, 2))):
        found, total = await _found(repo, query, 100)
        kept = range(0, 5, 2) if "fields" in query else range(5)  # even i: "Fields …"
        expected = {f"2401.{d * 5 + i:05d}" for d in days for i in kept}
        if "#3DGS" in query:
            expected |= {"2402.00000", "2402.00001", "2402.00002"}  # 3DGS, day 0
        assert set(found) == expected
        assert total == len(expected)
    assert await _found(repo, "tag:NeRF until:2023-12-31 splatting", 10) == ([], 0)
    assert await _found(repo, "tag:NeRF since:2024-02-01 splatting", 10, up_to=5) == ([], 0)


async def test_a_dated_tag_filter_hands_fts5_a_rowid_range(engine: AsyncEngine) -> None:
    """The range reaches FTS5 as rowid bounds (">" and "<" in its plan), never as a rowid
    equality, and the tag's list is still checked per match."""
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite query plan")
    repo = ArchiveRepo(make_sessionmaker(engine))
    await _store(repo, list(range(4)))
    with match_statements(engine) as seen:
        _, total = await repo.search(parse_query("tag:NeRF until:2024-01-02 splatting"))
    assert total == 10
    async with engine.connect() as conn:
        for sql, params in seen:
            plan = await query_plan(conn, sql, params)
            [scan] = [step for step in plan if "VIRTUAL TABLE INDEX" in step]
            handed = scan.rsplit(":", 1)[-1]
            assert handed.startswith("M"), plan
            assert ">" in handed, plan
            assert "<" in handed, plan
            assert "=" not in handed, plan
            assert any("LIST SUBQUERY" in step for step in plan), plan
