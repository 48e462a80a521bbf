"""Papers per topic per week, counted by the archive in one query (both dialects)."""

from __future__ import annotations

from datetime import date, timedelta

from bot.storage.repository import ArchiveRepo
from tests.storage.factories import make_digest, make_paper, state_of

END = date(2024, 6, 30)  # a Sunday; weeks here end on Sundays: 06-24 … 06-30, 06-17 … 06-23
DAY = timedelta(days=1)


async def store(repo: ArchiveRepo, topic: str, day: date, *ids: str) -> None:
    digest = make_digest(topic, day, tuple(make_paper(i) for i in ids))
    await repo.store_digest(digest, state_of(digest))


async def test_distinct_papers_per_topic_per_week(repo: ArchiveRepo) -> None:
    await store(repo, "NeRF", END, "2406.00001", "2406.00002")
    await store(repo, "NeRF", END - 2 * DAY, "2406.00001")  # same week again: counted once
    await store(repo, "NeRF", END - 7 * DAY, "2406.00003")  # the first day of the week before
    await store(repo, "NeRF", END - 6 * DAY, "2406.00004")  # the last week's first day
    await store(repo, "元宇宙/虚拟人", END - 8 * DAY, "2406.00001")  # in two topics: in each
    await store(repo, "NeRF", END - 21 * DAY, "2405.00001")  # the week before the three asked
    await store(repo, "3DGS", END + DAY, "2407.00001")  # after the end
    rows = await repo.weekly_counts(END, 3)
    assert sorted(rows) == [
        ("NeRF", date(2024, 6, 17), 1),
        ("NeRF", date(2024, 6, 24), 3),
        ("元宇宙/虚拟人", date(2024, 6, 17), 1),
    ]
    assert sorted(await repo.weekly_counts(END, 4)) == [
        ("NeRF", date(2024, 6, 3), 1), *sorted(rows)]
    assert await repo.weekly_counts(END, 1, ["元宇宙/虚拟人", "GAN"]) == []
    assert await repo.weekly_counts(END - 7 * DAY, 1, ["元宇宙/虚拟人", "GAN"]) == [
        ("元宇宙/虚拟人", date(2024, 6, 17), 1)]
    assert await repo.weekly_counts(END, 2, []) == []


async def test_an_empty_archive_counts_nothing(repo: ArchiveRepo) -> None:
    assert await repo.weekly_counts(END, 104) == []
