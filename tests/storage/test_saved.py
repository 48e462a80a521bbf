"""Saved papers on a real database: per person, newest first, and kept when the paper's
digest file changes or goes."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.engine import make_sessionmaker
from bot.storage.repository import ArchiveRepo
from bot.storage.saved import SavedRepo
from tests.storage.factories import make_digest, make_paper, state_of, with_papers

DAY = date(2024, 6, 1)


@pytest.fixture
def saved(engine: AsyncEngine) -> SavedRepo:
    return SavedRepo(make_sessionmaker(engine))


async def _archive(repo: ArchiveRepo, *ids: str, day: date = DAY, topic: str = "NeRF") -> None:
    digest = make_digest(topic, day, tuple(make_paper(i) for i in ids))
    await repo.store_digest(digest, state_of(digest))


async def test_save_toggle_and_snapshot(repo: ArchiveRepo, saved: SavedRepo) -> None:
    await _archive(repo, "2406.00001", "2406.00002")
    assert await saved.toggle(7, "2406.00001") is True
    assert await saved.is_saved(7, "2406.00001")
    assert not await saved.is_saved(8, "2406.00001")  # per person
    [entry] = await saved.all(7)
    assert (entry.arxiv_id, entry.title, entry.authors, entry.abs_url, entry.first_date,
            entry.in_archive) == ("2406.00001", "Paper 2406.00001",
                                  ("Ada Lovelace", "Alan Turing"),
                                  "https://arxiv.org/abs/2406.00001v1", DAY, True)
    assert await saved.toggle(7, "2406.00001") is False
    assert await saved.all(7) == []


async def test_set_saved_is_idempotent(repo: ArchiveRepo, saved: SavedRepo) -> None:
    await _archive(repo, "2406.00001")
    assert await saved.set_saved(7, "2406.00001", True) is True
    assert await saved.set_saved(7, "2406.00001", True) is True
    assert len(await saved.all(7)) == 1
    assert await saved.set_saved(7, "2406.00001", False) is False
    assert await saved.set_saved(7, "2406.00001", False) is False
    assert await saved.all(7) == []


async def test_a_paper_not_in_the_archive_cannot_be_saved(saved: SavedRepo) -> None:
    assert await saved.toggle(7, "2406.99999") is None
    assert await saved.set_saved(7, "2406.99999", True) is None
    assert await saved.all(7) == []


async def test_newest_first_and_pages(repo: ArchiveRepo, saved: SavedRepo) -> None:
    ids = [f"2406.{n:05d}" for n in range(1, 8)]
    await _archive(repo, *ids)
    for arxiv_id in ids:
        await saved.toggle(7, arxiv_id)
    first, total = await saved.page(7, 5)
    second, _ = await saved.page(7, 5, 5)
    assert total == 7
    assert [e.arxiv_id for e in first + second] == ids[::-1]
    assert await saved.page(8, 5) == ([], 0)


async def test_kept_when_the_file_changes_and_when_the_paper_leaves(
    repo: ArchiveRepo, saved: SavedRepo,
) -> None:
    digest = make_digest("NeRF", DAY, (make_paper("2406.00001"), make_paper("2406.00002")))
    await repo.store_digest(digest, state_of(digest))
    await saved.toggle(7, "2406.00001")
    await saved.toggle(7, "2406.00002")

    renamed = with_papers(digest, make_paper("2406.00001", 2, title="Better Title"))
    await repo.store_digest(renamed, state_of(renamed))  # 00002 leaves the archive
    by_id = {e.arxiv_id: e for e in await saved.all(7)}
    assert set(by_id) == {"2406.00001", "2406.00002"}
    assert by_id["2406.00001"].title == "Better Title"  # the archive's current record
    assert by_id["2406.00001"].abs_url == "https://arxiv.org/abs/2406.00001v2"
    gone = by_id["2406.00002"]
    assert (gone.in_archive, gone.title, gone.abs_url, gone.first_date) == (
        False, "Paper 2406.00002", "https://arxiv.org/abs/2406.00002v1", DAY)

    await repo.delete_file(digest.path)
    by_id = {e.arxiv_id: e for e in await saved.all(7)}
    assert not any(e.in_archive for e in by_id.values())
    assert by_id["2406.00001"].title == "Paper 2406.00001"  # the snapshot taken at saving
    assert await saved.toggle(7, "2406.00002") is False  # unsaving still works


async def test_many_people_at_once(repo: ArchiveRepo, saved: SavedRepo) -> None:
    ids = [f"2406.{n:05d}" for n in range(1, 4)]
    await _archive(repo, *ids)

    async def person(user_id: int) -> None:
        for arxiv_id in ids[: user_id % 3 + 1]:
            assert await saved.toggle(user_id, arxiv_id) is True

    await asyncio.gather(*(person(u) for u in range(1, 41)))
    for user_id in range(1, 41):
        assert {e.arxiv_id for e in await saved.all(user_id)} == set(ids[: user_id % 3 + 1])
