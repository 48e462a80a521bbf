"""bot.services.feeds on a real archive (SQLite, and PostgreSQL when configured): one
render per archive change, the ETag and Last-Modified a conditional GET relies on, and
`ArchiveRepo.version`, which says when the archive changed."""

from __future__ import annotations

from datetime import date
from typing import Any

import feedparser
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.models import SearchHit, SearchQuery
from bot.errors import UnknownTag
from bot.services.feeds import Feeds
from bot.storage.engine import make_sessionmaker
from bot.storage.repository import ArchiveRepo
from tests.services.world import FakeClock
from tests.storage.factories import make_digest, make_paper, state_of


class CountingArchive(ArchiveRepo):
    """The real repository, counting the searches a feed render makes."""

    searches = 0

    async def search(self, query: SearchQuery, limit: int = 10, offset: int = 0
                     ) -> tuple[list[SearchHit], int]:
        self.searches += 1
        return await super().search(query, limit, offset)


@pytest.fixture
def archive(engine: AsyncEngine) -> CountingArchive:
    return CountingArchive(make_sessionmaker(engine))


async def store(archive: ArchiveRepo, topic: str, day: date, *ids: str, mtime_ns: int = 1,
                summary: str = "") -> None:
    digest = make_digest(topic, day, tuple(make_paper(i, summary=summary) for i in ids))
    await archive.store_digest(digest, state_of(digest, mtime_ns=mtime_ns))


def ids(body: bytes) -> list[str]:
    return [e.id.rsplit("/", 1)[1] for e in feedparser.parse(body).entries]


async def test_version_moves_with_every_change_of_the_files(archive: CountingArchive) -> None:
    empty = await archive.version()
    assert empty == (0, 0, 0, 0)
    await store(archive, "NeRF", date(2024, 6, 1), "2406.00001", mtime_ns=10**18)
    one = await archive.version()
    assert one != empty
    assert await archive.version() == one  # nothing changed: the same
    await archive.touch_file("2024-06-01/NeRF.md", 1000, 10**18 + 5_000_000)
    touched = await archive.version()
    assert touched != one
    await store(archive, "3DGS", date(2024, 6, 2), "2406.00002", mtime_ns=2 * 10**18)
    two = await archive.version()
    assert two not in (one, touched)
    await archive.delete_file("2024-06-02/3DGS.md")
    assert await archive.version() == touched  # the same files as then: the same papers


async def test_polls_of_an_unchanged_archive_render_once(archive: CountingArchive) -> None:
    await store(archive, "NeRF", date(2024, 6, 1), "2406.00001", "2406.00002")
    clock = FakeClock()
    feeds = Feeds(archive, clock)
    first = await feeds.feed("nerf")  # resolved like the bot does
    assert first.tag == "NeRF"
    assert ids(first.body) == ["2406.00001", "2406.00002"]
    for _ in range(5):
        clock.advance(minutes=1)
        assert await feeds.feed("NeRF") == first
    assert await feeds.feed("n e r f") == first
    assert archive.searches == 1

    everything = await feeds.feed(None)
    assert everything.tag is None
    assert archive.searches == 2
    assert everything.etag != first.etag


async def test_a_change_gives_a_new_etag_and_a_later_last_modified(
    archive: CountingArchive,
) -> None:
    await store(archive, "NeRF", date(2024, 6, 1), "2406.00001", mtime_ns=10**18)
    clock = FakeClock()
    feeds = Feeds(archive, clock)
    before = await feeds.feed("NeRF")
    assert before.etag.startswith('"')
    assert before.etag.endswith('"')
    assert before.last_modified == clock.now().replace(microsecond=0)

    # Another tag changes: the archive's version moves, NeRF's body does not.
    await store(archive, "3DGS", date(2024, 6, 2), "2406.00009", mtime_ns=2 * 10**18)
    clock.advance(minutes=5)
    same = await feeds.feed("NeRF")
    assert (same.etag, same.last_modified) == (before.etag, before.last_modified)
    assert archive.searches == 2  # rendered again, found the same bytes

    await store(archive, "NeRF", date(2024, 6, 3), "2406.00003", mtime_ns=3 * 10**18)
    changed = await feeds.feed("NeRF")
    assert ids(changed.body) == ["2406.00003", "2406.00001"]
    assert changed.etag != before.etag
    assert changed.last_modified > before.last_modified

    # Back to the first body within the same second: still later than the one before,
    # so a reader holding the second body's date cannot be told "not modified".
    await archive.delete_file("2024-06-03/NeRF.md")
    back = await feeds.feed("NeRF")
    assert back.etag == before.etag
    assert back.last_modified > changed.last_modified


async def test_the_same_archive_gives_the_same_feed_anywhere(archive: CountingArchive) -> None:
    """Two instances (or a restart, or `paperfeed feed`) serve the same bytes and ETag."""
    await store(archive, "NeRF", date(2024, 6, 1), "2406.00001", summary="总结")
    one = await Feeds(archive, FakeClock(), base_url="https://x.example/feeds").feed("NeRF")
    other = await Feeds(archive, FakeClock(), base_url="https://x.example/feeds").feed("nerf")
    assert (one.body, one.etag) == (other.body, other.etag)
    assert b"https://x.example/feeds/NeRF.atom" in one.body


@pytest.mark.parametrize("name", ["nerff", "", "all of them"])
async def test_an_unknown_tag_is_refused(archive: CountingArchive, name: str) -> None:
    await store(archive, "NeRF", date(2024, 6, 1), "2406.00001")
    with pytest.raises(UnknownTag):
        await Feeds(archive, FakeClock()).feed(name)


async def test_the_newest_fifty(archive: CountingArchive) -> None:
    for day in range(1, 31):
        await store(archive, "NeRF", date(2024, 6, day), f"2406.{day:03d}01",
                    f"2406.{day:03d}02", mtime_ns=day)
    feeds = Feeds(archive, FakeClock())
    body = (await feeds.feed(None)).body
    listed: list[Any] = ids(body)
    assert len(listed) == 50
    assert listed[:2] == ["2406.03001", "2406.03002"]  # newest digest first, in its order
    assert listed[-1] == "2406.00602"
