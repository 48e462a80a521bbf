"""Delivery over a real database with a fake sender and a settable clock.

The fake sender records what would have reached Telegram and fails on demand, so every
rule of the delivery issue is checked from the outside: who gets what, in which order,
when, and what a failure does to the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.models import Chat, IngestReport
from bot.domain.rendering import plain_text, render_header
from bot.domain.tgtext import utf16_len
from bot.errors import ChatGone
from bot.services.drain import DrainReport, retry_delay
from bot.services.ingest import Ingestor
from bot.services.planning import next_daily
from bot.services.ports import (
    ChatMigrated,
    FloodWait,
    MessageRejected,
    Outgoing,
    TransientSendError,
)
from bot.storage.engine import make_sessionmaker
from bot.storage.outbox import LEASE_SENDER, OutboxRepo
from tests.fixtures.expected import (
    FIXTURE_DIR,
    FIXTURE_DISTINCT_IDS,
    SAME_DAY_TWO_TOPICS_ID,
    TWO_VERSIONS_ID,
)
from tests.fixtures.folder import copy_fixture_folder
from tests.services.folders import swap
from tests.services.world import (
    DAY1,
    DAY2,
    T0,
    FakeClock,
    FakeSender,
    Killed,
    World,
    assert_resent_only_in_flight,
    kinds,
    paper,
)
from tests.storage.factories import make_paper

# --------------------------------------------------------------------------- who gets what


async def test_one_delivery_per_chat_across_topics_days_and_versions(world: World) -> None:
    p1, p2, p3 = paper(1), paper(2), paper(3)
    new = await world.publish("NeRF", DAY1, p1, p2)
    new += await world.publish("3DGS", DAY1, p2, p3)
    await world.chat(1, "NeRF", "3DGS")
    await world.chat(2, "3DGS")
    await world.chat(3, everything=True)
    await world.chats.ensure(4, "private")  # follows nothing
    delivery = world.delivery()

    assert await delivery.enqueue_new(new) == 5 + 3 + 5
    assert await delivery.enqueue_new(new) == 0  # idempotent
    report = await delivery.drain()
    assert (report.sent, report.failed, report.pending_left) == (13, 0, 0)

    both = ["H:3DGS 2", "Paper number 2", "Paper number 3", "H:NeRF 1", "Paper number 1"]
    assert kinds(world.sender.to(1)) == both
    assert kinds(world.sender.to(2)) == ["H:3DGS 2", "Paper number 2", "Paper number 3"]
    assert kinds(world.sender.to(3)) == both
    assert world.sender.to(4) == []
    card = world.sender.to(1)[1]
    assert "#3DGS" in card
    assert "#NeRF" in card

    # The next day: p2 again in a new version, and a new p4.
    later = await world.publish("NeRF", DAY2, make_paper("2406.00002", 2, title="Paper v2"),
                                paper(4))
    world.clock.advance(days=1)
    assert await delivery.enqueue_new(IngestReport(new_appearances=later)) == 2 * 2
    await delivery.drain()
    assert kinds(world.sender.to(1))[5:] == ["H:NeRF 1", "Paper number 4"]
    assert kinds(world.sender.to(2))[3:] == []  # 3DGS only: nothing new there
    assert kinds(world.sender.to(3))[5:] == ["H:NeRF 1", "Paper number 4"]


async def test_header_per_digest_then_cards_in_digest_order(world: World) -> None:
    papers = [paper(n) for n in (5, 3, 9, 1)]
    new = await world.publish("Talking Head Generation", DAY1, *papers)
    await world.chat(1, "talking head generation")  # tags match ignoring case
    await world.delivery().enqueue_new(new)
    await world.delivery().drain()
    texts = world.sender.to(1)
    assert texts[0] == ("📚 <b>Talking Head Generation</b> · 2024-06-01 · 4 new papers")
    assert kinds(texts)[1:] == [f"Paper number {n}" for n in (5, 3, 9, 1)]
    rows = await world.outbox.for_chat(1)
    assert [r.state for r in rows] == ["sent"] * 5
    assert [r.message_id for r in rows] == [s.message_id for s in world.sender.log]


async def test_keyword_filters_and_tag_choices(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1, "Gaussian fields"),
                              paper(2, "Neural radiance for robots"),
                              paper(3, "Gaussian robots"))
    new += await world.publish("3DGS", DAY1, paper(4, "Gaussian splats"))
    await world.chat(1, "NeRF", include=("gaussian",))
    await world.chat(2, "NeRF", exclude=("robot",))
    await world.chat(3, "NeRF", include=("gaussian",), exclude=("robot",))
    await world.chat(4, "Diffusion")
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    await delivery.drain()
    assert kinds(world.sender.to(1)) == ["H:NeRF 2", "Gaussian fields", "Gaussian robots"]
    assert kinds(world.sender.to(2)) == ["H:NeRF 1", "Gaussian fields"]
    assert kinds(world.sender.to(3)) == ["H:NeRF 1", "Gaussian fields"]
    assert world.sender.to(4) == []


async def test_the_fixture_folder_end_to_end(world: World, tmp_path: Path) -> None:
    """The fixture digests arriving day by day: every paper reaches an all-topics chat once."""
    await world.chat(1, everything=True)
    folder = tmp_path / "digests"
    delivery = world.delivery()
    ingestor = Ingestor(world.archive, folder, settle_seconds=0)
    written = 0
    ids: set[str] = set()
    for day in sorted(p for p in FIXTURE_DIR.iterdir() if p.is_dir()):
        shutil.copytree(day, folder / day.name)
        report = await ingestor.scan()
        ids |= {a for a, _ in report.new_appearances}
        written += await delivery.enqueue_new(report)
    drained = await delivery.drain()
    assert drained.sent == written
    assert drained.failed == drained.pending_left == 0
    cards = [s for s in world.sender.log if not s.text.startswith("📚")]
    assert len(cards) == len(ids) == FIXTURE_DISTINCT_IDS
    for arxiv_id in (SAME_DAY_TWO_TOPICS_ID, TWO_VERSIONS_ID):
        assert sum(f"/abs/{arxiv_id}" in s.text for s in cards) == 1
    assert (await world.outbox.counts())["sent"] == written


async def test_a_digest_that_arrives_weeks_late_is_still_news(world: World) -> None:
    """Digests are committed in batches up to 97 days after their date: a paper the archive
    did not list before goes out, whatever the date of its digest."""
    await world.chat(1, everything=True)
    delivery = world.delivery()
    assert await delivery.enqueue_new(await world.publish("NeRF", DAY2, paper(1))) == 2
    late = await world.publish("NeRF", DAY2 - timedelta(days=97), paper(2), paper(3))
    late += await world.publish("3DGS", DAY2 - timedelta(days=365), paper(4))
    assert await delivery.enqueue_new(late) == 3 + 2
    await delivery.drain()
    assert kinds(world.sender.to(1)) == ["H:NeRF 1", "Paper number 1",
                                          "H:3DGS 1", "Paper number 4",
                                          "H:NeRF 2", "Paper number 2", "Paper number 3"]


async def test_papers_stored_but_never_queued_are_queued_after_a_restart(world: World) -> None:
    """A kill between the ingest's commit and the queueing: the next scan sees the files
    unchanged, so only the archive's own record can bring the papers to the chats."""
    await world.chat(1, everything=True)
    await world.chat(2, "3DGS")
    await world.publish("NeRF", DAY1, paper(1), paper(2))  # stored, then the process died
    await world.publish("3DGS", DAY1, paper(3))
    restarted = world.delivery()
    assert await restarted.announce_pending() == (1 + 2) + (1 + 1) + (1 + 1)
    assert await restarted.announce_pending() == 0  # announced once
    await restarted.drain()
    assert kinds(world.sender.to(1)) == ["H:3DGS 1", "Paper number 3",
                                          "H:NeRF 2", "Paper number 1", "Paper number 2"]
    assert kinds(world.sender.to(2)) == ["H:3DGS 1", "Paper number 3"]
    # A later day is announced on its own; the earlier papers are not queued again.
    await world.publish("NeRF", DAY2, paper(2), paper(4))
    assert await restarted.announce_pending() == 2
    await restarted.drain()
    assert kinds(world.sender.to(1))[5:] == ["H:NeRF 1", "Paper number 4"]


async def test_a_kill_after_queueing_but_before_marking_sends_each_paper_once(
    world: World,
) -> None:
    await world.chat(1, everything=True)
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    assert await world.delivery().enqueue_new(new) == 3  # queued; then the process died
    restarted = world.delivery()
    assert await restarted.announce_pending() == 0  # already in the outbox
    assert await world.archive.unannounced() == []
    await restarted.drain()
    assert kinds(world.sender.to(1)) == ["H:NeRF 2", "Paper number 1", "Paper number 2"]


async def test_papers_stored_before_anyone_subscribed_are_not_sent_to_newcomers(
    world: World,
) -> None:
    await world.publish("NeRF", DAY1, paper(1))
    assert await world.delivery().announce_pending() == 0  # nobody to tell
    assert await world.archive.unannounced() == []  # settled all the same
    await world.chat(1, everything=True)
    assert await world.delivery().announce_pending() == 0  # a subscription is not news
    await world.delivery().drain()
    assert world.sender.to(1) == []


def copy_one_under_another_name(folder: Path) -> None:
    day = sorted(p for p in folder.iterdir() if p.is_dir())[0]
    digest = sorted(day.glob("*.md"))[0]
    shutil.copy(digest, day / f"renamed {digest.name}")


async def test_a_folder_that_vanishes_and_comes_back_sends_nobody_anything(
    world: World, tmp_path: Path,
) -> None:
    """The fixture folder, announced; a chat subscribes later; the folder is pruned away
    (the explicit step past the delete guard) and then restored, and another copy of a
    digest appears under a new name: every listing was announced before, so no one gets
    anything, not even the chat that never received the old papers."""
    await world.chat(1, everything=True)
    folder = copy_fixture_folder(tmp_path / "digests")
    ingestor = Ingestor(world.archive, folder, settle_seconds=0)
    delivery = world.delivery()
    await ingestor.scan()
    await delivery.announce_pending()
    await delivery.drain()
    before = len(world.sender.log)
    assert before > 0
    await world.chat(2, everything=True)  # subscribes after the papers arrived
    away = tmp_path / "away"
    swap(folder, away)
    pruned = await ingestor.scan(prune=True)
    assert pruned.files_deleted > 0
    swap(away, folder)
    restored = await ingestor.scan()
    assert restored.new_appearances
    copy_one_under_another_name(folder)
    await ingestor.scan()
    assert await delivery.announce_pending() == 0
    await delivery.drain()
    assert len(world.sender.log) == before
    assert world.sender.to(2) == []


async def test_a_paper_listed_again_under_another_topic_goes_to_that_topics_chats(
    world: World,
) -> None:
    """A listing is (paper, topic, day): the same paper in another topic's digest is news
    to that topic's followers, and still once per chat."""
    await world.chat(1, "NeRF")
    await world.chat(2, "3DGS")
    delivery = world.delivery()
    await world.publish("NeRF", DAY1, paper(1))
    await delivery.announce_pending()
    await world.publish("3DGS", DAY1, paper(1))
    await delivery.announce_pending()
    await delivery.drain()
    assert kinds(world.sender.to(1)) == ["H:NeRF 1", "Paper number 1"]
    assert kinds(world.sender.to(2)) == ["H:3DGS 1", "Paper number 1"]


# --------------------------------------------------------------------------- when


def test_next_daily_uses_the_local_calendar_across_dst() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # Saturday before the spring change: tomorrow 08:00 is CEST (UTC+2), not now + 24 h.
    assert next_daily(datetime(2024, 3, 30, 10, 0, tzinfo=UTC), time(8, 0), berlin) == \
        datetime(2024, 3, 31, 6, 0, tzinfo=UTC)
    # Still before today's time: today.
    assert next_daily(datetime(2024, 3, 30, 6, 59, tzinfo=UTC), time(8, 0), berlin) == \
        datetime(2024, 3, 30, 7, 0, tzinfo=UTC)
    # Exactly at the time: now.
    at = datetime(2024, 3, 30, 7, 0, tzinfo=UTC)
    assert next_daily(at, time(8, 0), berlin) == at
    # 02:30 does not exist on 2024-03-31 in Berlin: it is read as 03:30 CEST.
    assert next_daily(datetime(2024, 3, 30, 23, 0, tzinfo=UTC), time(2, 30), berlin) == \
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    # 02:30 happens twice on 2024-10-27: the first one (CEST).
    assert next_daily(datetime(2024, 10, 26, 23, 0, tzinfo=UTC), time(2, 30), berlin) == \
        datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    # Autumn: the day after the change, 08:00 is UTC+1 again.
    assert next_daily(datetime(2024, 10, 27, 12, 0, tzinfo=UTC), time(8, 0), berlin) == \
        datetime(2024, 10, 28, 7, 0, tzinfo=UTC)
    tokyo = ZoneInfo("Asia/Tokyo")  # local date ahead of UTC
    assert next_daily(datetime(2024, 6, 1, 23, 30, tzinfo=UTC), time(9, 0), tokyo) == \
        datetime(2024, 6, 2, 0, 0, tzinfo=UTC)


async def test_daily_chats_get_their_rows_at_their_next_daily_time(world: World) -> None:
    world.clock.t = datetime(2024, 3, 30, 10, 0, tzinfo=UTC)
    new = await world.publish("NeRF", date(2024, 3, 30), paper(1), paper(2))
    await world.chat(1, "NeRF", mode="daily", daily_time="08:00", timezone="Europe/Berlin")
    await world.chat(2, "NeRF", mode="daily")  # operator defaults: 09:00 in Asia/Shanghai
    await world.chat(3, "NeRF", mode="daily", timezone="Not/AZone")  # falls back to defaults
    await world.chat(4, "NeRF")  # instant
    delivery = world.delivery(default_tz="Asia/Shanghai", default_daily_time=time(9, 0))
    await delivery.enqueue_new(new)

    due = {r.chat_id: r.due_at for r in await world.outbox.due(datetime(2030, 1, 1, tzinfo=UTC))}
    assert due[1] == datetime(2024, 3, 31, 6, 0, tzinfo=UTC)
    assert due[2] == due[3] == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    assert due[4] == world.clock.t

    assert (await delivery.drain()).sent == 3
    assert {s.chat_id for s in world.sender.log} == {4}
    world.clock.t = datetime(2024, 3, 31, 5, 59, 59, tzinfo=UTC)
    assert (await delivery.drain()).sent == 6  # chats 2 and 3
    world.clock.t = datetime(2024, 3, 31, 6, 0, tzinfo=UTC)
    report = await delivery.drain()
    assert (report.sent, report.pending_left) == (3, 0)
    assert kinds(world.sender.to(1)) == ["H:NeRF 2", "Paper number 1", "Paper number 2"]


async def test_queued_rows_follow_a_change_of_delivery_time(world: World) -> None:
    """Daily at 08:00 Berlin, papers queued for tomorrow morning; the chat switches to
    instant: they go now. Back to daily at 20:00 UTC: what is queued waits for 20:00."""
    world.clock.t = datetime(2024, 3, 30, 10, 0, tzinfo=UTC)
    await world.chat(1, "NeRF", mode="daily", daily_time="08:00", timezone="Europe/Berlin")
    delivery = world.delivery()
    await delivery.enqueue_new(await world.publish("NeRF", DAY1, paper(1)))
    assert (await delivery.drain()).sent == 0
    instant = await world.chats.update_settings(1, mode="instant")
    assert await delivery.reschedule(instant) == 2
    assert (await delivery.drain()).sent == 2
    evening = await world.chats.update_settings(1, mode="daily", daily_time="20:00",
                                                timezone="UTC")
    await delivery.enqueue_new(await world.publish("NeRF", DAY2, paper(2)))
    assert await delivery.reschedule(evening) == 2
    [row, _] = await world.outbox.for_chat(1, state="pending")
    assert row.due_at == datetime(2024, 3, 30, 20, 0, tzinfo=UTC)


async def test_a_day_without_new_papers_sends_nothing(world: World) -> None:
    await world.chat(1, "NeRF")
    delivery = world.delivery()
    assert await delivery.enqueue_new(IngestReport()) == 0
    assert await delivery.enqueue_new([]) == 0
    # A digest of a topic nobody follows is nothing new for anyone either.
    assert await delivery.enqueue_new(await world.publish("Elsewhere", DAY1, paper(1))) == 0
    assert await delivery.drain() == DrainReport()
    assert world.sender.log == []


async def test_rows_a_chat_no_longer_wants_are_cancelled_when_due(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1, "Gaussian fields"), paper(2))
    await world.chat(1, "NeRF")
    await world.chat(2, "NeRF")
    delivery = world.delivery()
    assert await delivery.enqueue_new(new) == 6
    await world.chats.unsubscribe(1, ["NeRF"])
    await world.chats.update_settings(2, exclude=("gaussian",))
    report = await delivery.drain()
    assert (report.sent, report.cancelled) == (2 + 1, 2 + 1)  # headers still go
    assert kinds(world.sender.to(2)) == ["H:NeRF 2", "Paper number 2"]
    assert {r.last_error for r in await world.outbox.for_chat(1, state="cancelled")} == {
        "the chat no longer follows this paper"}


async def test_unfollowing_cancels_its_queued_rows_at_once(world: World) -> None:
    """Unsubscribing cancels the rows of that topic right away (a daily chat would
    otherwise keep them until its time), except a paper another followed topic lists."""
    shared = paper(3, "Listed in both")
    new = (await world.publish("NeRF", DAY1, paper(1), shared)
           + await world.publish("3DGS", DAY1, paper(2), shared))
    await world.chat(1, "NeRF", "3DGS", mode="daily", daily_time="08:00", timezone="UTC")
    delivery = world.delivery()
    assert await delivery.enqueue_new(new) == 5  # two headers, three papers once each
    chat = await world.chats.unsubscribe(1, ["NeRF"])
    # Digests go in topic order, so "Listed in both" was queued under 3DGS: the NeRF
    # digest loses paper 1 and, left empty, its header.
    assert await delivery.unfollowed(chat) == 2
    left = await world.outbox.for_chat(1, state="pending")
    assert [(r.kind, r.arxiv_id) for r in left] == [
        ("header", None), ("card", "2406.00002"), ("card", "2406.00003")]
    chat = await world.chats.subscribe(1, ["NeRF"])
    chat = await world.chats.unsubscribe(1, ["3DGS"])
    # Paper 2 goes; "Listed in both" is NeRF's too, so it stays with the header it
    # was queued under.
    assert await delivery.unfollowed(chat) == 1
    left = await world.outbox.for_chat(1, state="pending")
    assert [(r.kind, r.arxiv_id) for r in left] == [("header", None), ("card", "2406.00003")]
    chat = await world.chats.unsubscribe(1, ["NeRF"])
    assert await delivery.unfollowed(chat) == 2
    assert await world.outbox.for_chat(1, state="pending") == []
    world.clock.advance(days=1)
    assert (await delivery.drain()).sent == 0
    assert world.sender.log == []


async def test_a_new_filter_cancels_queued_papers_it_leaves_out(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1, "Gaussian fields"), paper(2))
    await world.chat(1, "NeRF", mode="daily", daily_time="08:00", timezone="UTC")
    delivery = world.delivery()
    assert await delivery.enqueue_new(new) == 3
    chat = await world.chats.update_settings(1, exclude=("gaussian",))
    assert await delivery.unfollowed(chat) == 1
    world.clock.advance(days=1)
    await delivery.drain()
    assert kinds(world.sender.to(1)) == ["H:NeRF 2", "Paper number 2"]


# --------------------------------------------------------------------------- failures


async def test_flood_wait_keeps_the_row_and_its_chat_waits(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    await world.chat(1, "NeRF")
    await world.chat(2, "NeRF")
    world.sender.fail(1, FloodWait(60))  # longer than a drain holds on for retries
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    report = await delivery.drain()
    assert (report.sent, report.retried, report.failed, report.pending_left) == (3, 1, 0, 3)
    assert world.sender.to(1) == []
    header = (await world.outbox.for_chat(1))[0]
    assert (header.state, header.attempts) == ("pending", 0)  # a wait is not an attempt
    assert header.next_attempt_at == T0 + timedelta(seconds=60)
    world.clock.advance(seconds=29)
    assert (await delivery.drain()).sent == 0  # the whole chat keeps waiting, in order
    world.clock.advance(seconds=31)
    assert (await delivery.drain()).sent == 3
    assert kinds(world.sender.to(1)) == ["H:NeRF 2", "Paper number 1", "Paper number 2"]


async def test_transient_errors_are_retried_within_seconds_in_the_same_drain(
    world: World,
) -> None:
    """A 502 or a dropped connection is retried after 1, 2, 4, … seconds (with jitter) in
    the same drain, keeping the chat's order; nothing is given up or sent twice."""
    new = await world.publish("NeRF", DAY1, paper(1))
    await world.chat(1, "NeRF")
    await world.chat(2, "NeRF")
    world.sender.fail(1, *(TransientSendError("Bad Gateway") for _ in range(5)))
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    started = world.clock.now()
    report = await delivery.drain()
    assert (report.sent, report.retried, report.failed) == (4, 5, 0)
    assert kinds(world.sender.to(1)) == ["H:NeRF 1", "Paper number 1"]  # in order, once
    assert kinds(world.sender.to(2)) == ["H:NeRF 1", "Paper number 1"]
    assert world.clock.now() - started == timedelta(seconds=1 + 2 + 4 + 8 + 16)
    rows = await world.outbox.for_chat(1)
    # Five failed attempts and the one that went; the card went at its first.
    assert [(r.state, r.attempts) for r in rows] == [("sent", 6), ("sent", 1)]


async def test_an_outage_keeps_rows_pending_until_telegram_answers_again(
    world: World, caplog: pytest.LogCaptureFixture,
) -> None:
    """An hour without Telegram: rows wait (the drain ends once the backoff is longer than
    it holds on for; the next drain goes on), then everything goes, once. Only a row
    still failing MAX_AGE after it was queued fails."""
    new = await world.publish("NeRF", DAY1, paper(1))
    await world.chat(1, "NeRF")
    down = [True]
    world.sender.rule = lambda chat, message: (
        TransientSendError("connection refused") if down[0] else None)
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    for _ in range(12):  # drains every five minutes for an hour
        report = await delivery.drain()
        assert report.sent == report.failed == 0
        world.clock.advance(minutes=5)
    assert (await world.outbox.counts())["pending"] == 2
    down[0] = False
    report = await delivery.drain()
    assert (report.sent, report.failed) == (2, 0)
    assert kinds(world.sender.to(1)) == ["H:NeRF 1", "Paper number 1"]

    later = await world.publish("NeRF", DAY2, paper(2))
    await delivery.enqueue_new(later)
    down[0] = True
    world.clock.advance(days=3)
    with caplog.at_level(logging.ERROR):
        report = await delivery.drain()
    assert report.failed == 2  # the header and its card, both three days old
    assert "giving up on outbox row" in caplog.text


def test_retry_delays_grow_with_jitter_up_to_a_cap() -> None:
    assert retry_delay(1) == timedelta(seconds=1)
    assert retry_delay(1, jitter=0.0) == timedelta(seconds=0.5)
    assert retry_delay(4) == timedelta(seconds=8)
    assert retry_delay(30) == timedelta(minutes=5)
    assert retry_delay(10_000, jitter=0.5) == timedelta(minutes=3, seconds=45)


async def test_a_blocked_chat_is_deactivated_and_its_rows_cancelled(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    await world.chat(1, "NeRF")
    await world.chat(2, "NeRF")
    world.sender.fail(1, ChatGone(1, "Forbidden: bot was blocked by the user"))
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    report = await delivery.drain()
    assert (report.sent, report.cancelled, report.pending_left) == (3, 3, 0)
    chat = await world.chats.get(1)
    assert chat is not None
    assert (chat.active, chat.disabled_reason) == (False, "Forbidden: bot was blocked by the user")
    assert {r.state for r in await world.outbox.for_chat(1)} == {"cancelled"}
    assert world.sender.calls == 4  # one try for chat 1, nothing after it
    # Inactive chats are not even queued for later digests.
    assert await delivery.enqueue_new(await world.publish("NeRF", DAY2, paper(3))) == 2


async def test_a_migrated_group_moves_and_gets_everything_there(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    await world.chat(-100, "NeRF", kind="group")
    world.sender.rule = lambda chat, _m: (
        ChatMigrated(-100, -100_777) if chat.chat_id == -100 else None)
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    report = await delivery.drain()
    assert (report.sent, report.migrated, report.pending_left) == (3, 1, 0)
    assert world.sender.to(-100) == []
    assert kinds(world.sender.to(-100_777)) == ["H:NeRF 2", "Paper number 1", "Paper number 2"]
    assert await world.chats.get(-100) is None
    moved = await world.chats.get(-100_777)
    assert moved is not None
    assert (moved.kind, moved.tags) == ("supergroup", ("NeRF",))
    # What the group got counts for the supergroup.
    assert await delivery.enqueue_new(new) == 0


async def test_a_rejected_card_is_resent_as_plain_text(
    world: World, caplog: pytest.LogCaptureFixture,
) -> None:
    new = await world.publish("NeRF", DAY1, paper(1, "Fields & <friends>"))
    await world.chat(1, "NeRF")
    world.sender.rule = lambda chat, m: (
        MessageRejected("Can't parse entities: unclosed tag") if not m.is_plain
        and "friends" in (m.html or "") else None)
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    with caplog.at_level(logging.ERROR):
        report = await delivery.drain()
    assert (report.sent, report.plain, report.failed) == (2, 1, 0)
    card = world.sender.log[1].message
    assert card.is_plain
    assert card.buttons == ()
    assert card.preview_url is None
    assert card.plain_fallback.startswith("Fields & <friends>")
    assert "BUG: Telegram refused outbox row" in caplog.text
    assert all(r.levelno == logging.ERROR for r in caplog.records if "BUG" in r.message)


async def test_plain_text_is_refused_too_then_the_row_fails(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1))
    await world.chat(1, "NeRF")
    world.sender.rule = lambda _c, _m: MessageRejected("Bad Request: something about this chat")
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    report = await delivery.drain()
    assert (report.sent, report.failed, report.pending_left) == (0, 2, 0)
    assert world.sender.calls == 4  # each row: formatted, then plain
    assert {r.state for r in await world.outbox.for_chat(1)} == {"failed"}


def test_plain_text_strips_tags_and_fits() -> None:
    assert plain_text("<b>bold</b> &amp; <i>more") == "bold & more"  # malformed: stripped
    assert plain_text("<b>ok</b> &lt;tag&gt;") == "ok <tag>"
    assert plain_text("<b> </b>", "Title\nhttps://arxiv.org/abs/1") == (
        "Title\nhttps://arxiv.org/abs/1")
    assert plain_text("") == "…"
    long = plain_text("<b>" + "𝒙" * 5000 + "</b>")
    assert utf16_len(long) <= 4096
    assert long.endswith("…")
    assert render_header("A<B", "2024-06-01", 1, lang="zh", reason="repost") == (
        "📚 <b>A&lt;B</b> · 2024-06-01 · 1 篇论文")


async def test_paper_gone_or_chat_gone_before_sending_cancels(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1))
    new += await world.publish("3DGS", DAY1, paper(2))
    await world.chat(1, "NeRF", "3DGS")
    await world.chat(2, "NeRF")
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    await world.archive.delete_file(new[1][1])  # 3DGS digest deleted: paper 2 left
    await world.chats.deactivate(2, "user pressed /stop")
    report = await delivery.drain()
    assert (report.sent, report.cancelled) == (3, 3)
    assert kinds(world.sender.to(1)) == ["H:3DGS 1", "H:NeRF 1", "Paper number 1"]
    assert [r.last_error for r in await world.outbox.for_chat(2)] == [
        "chat is inactive: user pressed /stop"] * 2


async def test_cards_are_rendered_when_sent_with_current_settings(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1, abstract="We study things."))
    await world.chat(1, "NeRF")
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    await world.chats.update_settings(1, style="compact", lang="zh")
    await delivery.drain()
    header, card = world.sender.to(1)
    assert header.endswith("1 篇新论文")
    assert "<blockquote" not in card
    assert "We study things" not in card
    sent = world.sender.log[1].message
    assert [b.text for row in sent.buttons for b in row] == [
        "☆ 收藏", "🔗 相关", "BibTeX", "arXiv", "📄 PDF", "📝 博客"]
    assert "https://blog.example.org/2024-06-01/NeRF/" in card


# --------------------------------------------------------------------------- reposts


async def test_reposts_resend_what_was_delivered(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    await world.chat(1, "NeRF")
    await world.chat(2, "3DGS")
    await world.chats.ensure(3, "private")  # follows nothing, named by the admin
    await world.chats.ensure(4, "private")
    await world.chats.deactivate(4, "blocked")
    delivery = world.delivery()
    await delivery.enqueue_new(new)
    await delivery.drain()
    digest = await world.archive.digest_papers(new[0][1])
    assert digest is not None
    assert await delivery.enqueue_repost([digest]) == 3  # to chat 1 only
    assert await delivery.enqueue_repost([digest.papers[1]], chat_ids=[3, 4, 99]) == 1
    await delivery.drain()
    assert kinds(world.sender.to(1)) == ["H:NeRF 2", "Paper number 1", "Paper number 2"] * 2
    assert world.sender.to(1)[3].endswith("2 papers")
    assert kinds(world.sender.to(3)) == ["Paper number 2"]  # bare papers: no header
    assert world.sender.to(2) == world.sender.to(4) == []


# --------------------------------------------------------------------------- one sender


async def test_no_drain_while_another_owner_holds_the_lease(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1))
    await world.chat(1, "NeRF")
    delivery = world.delivery(owner="B")
    await delivery.enqueue_new(new)
    assert await world.outbox.acquire_lease(LEASE_SENDER, "A", timedelta(seconds=60))
    report = await delivery.drain()
    assert report == DrainReport(locked=True, pending_left=2)
    assert world.sender.log == []
    world.clock.advance(seconds=61)  # A died: its lease runs out
    assert (await delivery.drain()).sent == 2
    assert await world.outbox.lease_holder(LEASE_SENDER) is None  # released


async def test_concurrent_drains_send_everything_once(world: World) -> None:
    new = await world.publish("NeRF", DAY1, *(paper(n) for n in range(1, 6)))
    for chat_id in range(1, 21):
        await world.chat(chat_id, "NeRF")
    first = world.delivery(owner="A")
    await first.enqueue_new(new)
    second = world.delivery(owner="B")
    reports = await asyncio.gather(first.drain(), second.drain(), first.drain())
    assert sum(r.sent for r in reports) == 20 * 6
    assert [r.locked for r in reports].count(False) == 1
    assert len({(s.chat_id, s.text) for s in world.sender.log}) == len(world.sender.log) == 120


async def test_a_drain_that_loses_its_lease_stops_sending(world: World,
                                                          engine: AsyncEngine) -> None:
    new = await world.publish("NeRF", DAY1, paper(1))
    for chat_id in range(1, 11):
        await world.chat(chat_id, "NeRF")
    gate, entered = asyncio.Event(), asyncio.Event()

    async def slow_first(chat: Chat, message: Outgoing) -> int:
        entered.set()
        await gate.wait()
        return await FakeSender.send(world.sender, chat, message)

    sender = FakeSender(log=world.sender.log)
    sender.send = slow_first  # type: ignore[method-assign]
    # A's renewals (every 10 ms) are seen at T0 and never reach past T0 + 30 ms, as when
    # a stalled process cannot renew; B, a second later, finds the lease expired.
    frozen = FakeClock(T0)
    stalled = world.delivery(owner="A", sender=sender, workers=1, clock=frozen,
                             outbox=OutboxRepo(make_sessionmaker(engine), clock=frozen.now),
                             lease_ttl=timedelta(milliseconds=30))
    await stalled.enqueue_new(new)
    draining = asyncio.create_task(stalled.drain())
    await entered.wait()  # A holds the lease and is sending
    noticed = asyncio.Event()

    class Notice(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "the sender lease was taken over" in record.getMessage():
                noticed.set()

    # Watching before the takeover: A may notice while B's acquire is still returning.
    watcher = Notice()
    logging.getLogger("bot.services.drain").addHandler(watcher)
    try:
        world.clock.advance(seconds=1)  # A stalls past its lease, B takes over
        assert await world.outbox.acquire_lease(LEASE_SENDER, "B", timedelta(seconds=60))
        async with asyncio.timeout(5):  # A's renewal notices within a few ms
            await noticed.wait()
    finally:
        logging.getLogger("bot.services.drain").removeHandler(watcher)
    gate.set()
    report = await draining
    assert report.sent <= 1  # at most what was in flight
    assert await world.outbox.lease_holder(LEASE_SENDER) == "B"
    rest = await world.delivery(owner="B").drain()
    assert report.sent + rest.sent == 20
    assert len({(s.chat_id, s.text) for s in world.sender.log}) == len(world.sender.log) == 20


async def test_a_crash_mid_drain_loses_nothing_and_repeats_only_what_was_in_flight(
    world: World,
) -> None:
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    chat_ids = list(range(1, 13))
    for chat_id in chat_ids:
        await world.chat(chat_id, "NeRF")
    world.sender.kill_after = 10
    dying = world.delivery(owner="A", workers=4)
    assert await dying.enqueue_new(new) == 36
    with pytest.raises(Killed):
        await dying.drain()
    # The process died holding the lease. Telegram has every message in the log; the
    # outbox marked those whose answer it had processed. The rest were in flight: the
    # killing send, and at most one more per other worker.
    await world.outbox.acquire_lease(LEASE_SENDER, "A", timedelta(seconds=60))
    sent_at_crash = (await world.outbox.counts())["sent"]
    in_flight = len(world.sender.log) - sent_at_crash
    assert 1 <= in_flight <= 4
    survivor = world.delivery(owner="B", sender=FakeSender(log=world.sender.log))
    assert (await survivor.drain()).locked
    world.clock.advance(seconds=61)
    report = await survivor.drain()
    assert (report.sent, report.pending_left) == (36 - sent_at_crash, 0)
    assert_resent_only_in_flight(world, chat_ids, in_flight,
                                 ["H:NeRF 2", "Paper number 1", "Paper number 2"])


@dataclass
class StalledSender:
    """Passes ``passes`` sends, then hangs like a request that never gets an answer."""

    passes: int
    log: list[tuple[int, str]] = field(default_factory=list)
    stalled: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, chat: Chat, message: Outgoing) -> int:
        if len(self.log) >= self.passes:
            self.stalled.set()
            await asyncio.Event().wait()
        self.log.append((chat.chat_id, message.html or ""))
        return len(self.log)


async def test_stop_cuts_a_drain_short_and_a_restart_sends_the_rest(world: World) -> None:
    """A shutdown must not wait for a whole broadcast; what is left stays pending."""
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    for chat_id in range(1, 7):
        await world.chat(chat_id, "NeRF")
    stalled = StalledSender(passes=5)
    stopping = world.delivery(owner="A", sender=stalled, workers=2)
    assert await stopping.enqueue_new(new) == 18
    drain = asyncio.create_task(stopping.drain())
    await stalled.stalled.wait()
    stopping.stop()
    report = await drain  # returns instead of raising into the caller (a scan, a job)
    assert report.locked
    assert not drain.cancelled()
    assert (await stopping.drain()).locked  # and it starts no other
    assert await world.outbox.lease_holder(LEASE_SENDER) is None
    counts = await world.outbox.counts()
    assert counts["sent"] == len(stalled.log) == 5
    assert (counts["pending"], counts["failed"]) == (13, 0)

    restarted = world.delivery(owner="B")
    assert (await restarted.drain()).sent == 13
    delivered = stalled.log + [(s.chat_id, s.text) for s in world.sender.log]
    assert len(delivered) == len(set(delivered)) == 18  # the stalled send never got through


async def test_stop_leaves_a_cancel_from_outside_alone(world: World) -> None:
    """Only its own stop is absorbed: a caller's cancel still cancels."""
    new = await world.publish("NeRF", DAY1, paper(1))
    await world.chat(1, "NeRF")
    stalled = StalledSender(passes=0)
    delivery = world.delivery(sender=stalled)
    await delivery.enqueue_new(new)
    drain = asyncio.create_task(delivery.drain())
    await stalled.stalled.wait()
    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain
    assert (await world.outbox.counts())["pending"] == 2


# --------------------------------------------------------------------------- throughput


async def test_sends_overlap_across_chats_but_each_chat_stays_in_order(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    for chat_id in range(1, 41):
        await world.chat(chat_id, "NeRF")
    world.sender.overlap = 8  # every send waits until 8 are in flight at once
    delivery = world.delivery(workers=8)
    await delivery.enqueue_new(new)
    async with asyncio.timeout(10):  # a serial drain would wait forever
        report = await delivery.drain()
    assert report.sent == 120
    assert world.sender.max_inflight == 8
    for chat_id in range(1, 41):
        assert kinds(world.sender.to(chat_id)) == ["H:NeRF 2", "Paper number 1", "Paper number 2"]


async def test_small_pages_and_buffers_still_send_every_row_in_order(world: World) -> None:
    new = await world.publish("NeRF", DAY1, *(paper(n) for n in range(1, 8)))
    for chat_id in range(1, 6):
        await world.chat(chat_id, "NeRF")
    seen: list[tuple[int, int, int]] = []
    delivery = world.delivery(workers=2, page_size=3, chat_buffer=2)
    await delivery.enqueue_new(new)
    report = await delivery.drain(progress=lambda s, f, t: seen.append((s, f, t)))
    assert (report.sent, report.pending_left) == (40, 0)
    expected = ["H:NeRF 7", *(f"Paper number {n}" for n in range(1, 8))]
    for chat_id in range(1, 6):
        assert kinds(world.sender.to(chat_id)) == expected
    assert seen[-1] == (40, 0, 40)


async def test_an_outage_pauses_the_drain_instead_of_burning_every_row(world: World) -> None:
    new = await world.publish("NeRF", DAY1, paper(1))
    for chat_id in range(1, 31):
        await world.chat(chat_id, "NeRF")
    world.sender.rule = lambda _c, _m: TransientSendError("Network is unreachable")
    delivery = world.delivery(workers=4)
    await delivery.enqueue_new(new)
    report = await delivery.drain()
    assert report.sent == report.failed == 0
    # The first pass stops after a streak of failures; each later one waits for the
    # earliest retry (1 s, 2 s, … while that is under half a minute) and probes with one
    # send: a handful of attempts, not one per queued row.
    rows = await world.outbox.due(datetime(2030, 1, 1, tzinfo=UTC), limit=1000)
    assert len(rows) == 60
    tried = sum(r.attempts > 0 for r in rows)
    assert tried <= 2 * 4  # the first pass's sends in flight, and a probe or two
    # Backoff 1, 2, 4, 8, 16 s: within the 30 s a drain holds on, a row is tried at most
    # six times.
    assert report.retried <= 6 * tried
