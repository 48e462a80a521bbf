"""Delivery end to end, in process: a digest file appears, the assembled bot scans and
drains, and the fake Bot API shows what each chat received.

Why: the delivery service is unit-tested with a fake sender; only here do the real
pieces meet — ingest, the scan hook the runner wires, the outbox, TelegramSender,
python-telegram-bot's rate limiter and a Bot API that answers like Telegram (flood
control, 5xx, dropped connections, blocked users, kicked bots, migrated groups).

Time: the assembled Delivery runs on the system clock (``assemble`` does not take
one). Rows that wait for the future (daily chats, retries after network trouble) are
checked by their due times, and then sent by a second Delivery built with the public
constructor on the same repositories and bot, whose clock is set past those times: the
drain job of a later minute, without waiting for it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.services.delivery import Delivery
from bot.services.scan import scan_once
from bot.tg.sender import TelegramSender
from tests.botapi.server import FakeChat
from tests.tg.bot_harness import OPERATOR_ID, BotUnderTest
from tests.tg.delivery_support import (
    SynthPaper,
    add_digest,
    assert_paced,
    delivered,
    expected_digest,
)

DAY = date(2024, 6, 10)
PAPERS = (
    SynthPaper("2406.10001", "Folded Radiance Fields"),
    SynthPaper("2406.10002", "Origami Neural Fields"),  # the "origami" filter drops it
    SynthPaper("2406.10003", "Radiance Cranes at Scale", version=2),
)
IDS = [p.arxiv_id for p in PAPERS]


# --------------------------------------------------------------------------- helpers


async def subscriber(bot: BotUnderTest, name: str, tags: Sequence[str] = (), *,
                     everything: bool = False, **settings: Any) -> FakeChat:
    """A private chat Telegram knows, subscribed in the bot's database."""
    s = bot.server
    fake = s.add_chat(s.private_chat(s.user(name)))
    await bot.deps.chats.ensure(fake.id, "private", title=name)
    await bot.deps.chats.subscribe(fake.id, tags, everything=everything)
    if settings:
        await bot.deps.chats.update_settings(fake.id, **settings)
    return fake


async def subscribed_group(bot: BotUnderTest, fake: FakeChat, tags: Sequence[str]) -> FakeChat:
    bot.server.add_chat(fake)
    await bot.deps.chats.ensure(fake.id, fake.type, title=fake.title or "")
    await bot.deps.chats.subscribe(fake.id, tags)
    return fake


@dataclass
class LaterClock:
    """The wall clock as it will be ``ahead`` from now (for the Clock port)."""

    ahead: timedelta

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def later_delivery(bot: BotUnderTest, clock: LaterClock) -> Delivery:
    """The drain of a later minute: same database, same bot (and rate limiter)."""
    deps = bot.deps
    sender = TelegramSender(bot.app.bot)
    return Delivery(deps.archive, deps.chats, deps.outbox, sender, clock,
                    default_tz=deps.settings.timezone,
                    default_daily_time=deps.settings.daily_time,
                    blog_base_url=deps.settings.blog_base_url, owner="a later minute",
                    notifier=sender)


async def stats_text(bot: BotUnderTest) -> str:
    s = bot.server
    op = s.user("Operator", user_id=OPERATOR_ID)
    chat = s.private_chat(op)
    s.send_command(chat, op, "/stats")
    await bot.settle()
    return s.sent_to(chat.id)[-1].plain_text or ""


def next_nine_shanghai(after: datetime) -> datetime:
    """09:00 in Asia/Shanghai (UTC+8, no DST) at or after ``after``, in UTC."""
    tz = ZoneInfo("Asia/Shanghai")
    local = after.astimezone(tz)
    nine = datetime.combine(local.date(), time(9, 0), tzinfo=tz)
    if nine < local:
        nine += timedelta(days=1)
    return nine.astimezone(UTC)


# --------------------------------------------------------------------------- who gets what


async def test_a_new_digest_reaches_exactly_the_chats_that_want_it(bot: BotUnderTest) -> None:
    s = bot.server
    nerf = await subscriber(bot, "Nerf", ["NeRF"])
    others = await subscriber(bot, "Gauss", ["3DGS", "Diffusion Models"])
    everything = await subscriber(bot, "All", everything=True)
    picky = await subscriber(bot, "Picky", ["NeRF"], exclude=["origami"])
    daily = await subscriber(bot, "Daily", ["NeRF"], mode="daily", daily_time="09:00",
                             timezone="Asia/Shanghai")
    add_digest(bot.digest_dir, "NeRF", DAY, PAPERS)

    report = await scan_once(bot.deps.ingestor, bot.deps.scan_status)  # hook: enqueue + drain

    assert report.new_papers == IDS
    full = expected_digest("NeRF", DAY, IDS)
    assert delivered(s, nerf.id) == full
    assert s.sent_to(nerf.id)[0].plain_text == "📚 NeRF · 2024-06-10 · 3 new papers"
    assert delivered(s, everything.id) == full
    assert delivered(s, picky.id) == expected_digest("NeRF", DAY, [IDS[0], IDS[2]])
    assert delivered(s, others.id) == []
    assert delivered(s, daily.id) == []
    sent = s.sent_to(nerf.id)
    assert all(b.at - a.at >= 1.0 for a, b in itertools.pairwise(sent))  # one a second

    # The daily chat's rows wait in the outbox for its next 09:00 in Shanghai.
    rows = await bot.deps.outbox.for_chat(daily.id)
    assert [(r.kind, r.arxiv_id, r.state) for r in rows] == [
        ("header", None, "pending")] + [("card", i, "pending") for i in IDS]
    due = next_nine_shanghai(rows[0].created_at)
    assert {r.due_at for r in rows} == {due}
    assert due > datetime.now(UTC)
    assert await bot.deps.outbox.due(due - timedelta(seconds=1)) == []
    assert [r.id for r in await bot.deps.outbox.due(due)] == [r.id for r in rows]
    assert await bot.deps.outbox.counts() == {
        "pending": 4, "sent": 4 + 4 + 3, "failed": 0, "cancelled": 0}

    # The drain that runs once the clock has passed 09:00 there sends them.
    ahead = due - datetime.now(UTC) + timedelta(minutes=1)
    report_later = await later_delivery(bot, LaterClock(ahead)).drain()
    assert (report_later.sent, report_later.pending_left) == (4, 0)
    assert delivered(s, daily.id) == full
    assert delivered(s, nerf.id) == full  # nobody else got anything again


async def test_papers_ingested_before_a_crash_go_out_at_the_next_scan(
    bot: BotUnderTest,
) -> None:
    """The ingest committed, then the process died before queueing (or the operator ran
    `paperfeed ingest` while the bot was down): the next scan finds the files unchanged
    and still sends their papers."""
    s = bot.server
    nerf = await subscriber(bot, "Nerf", ["NeRF"])
    add_digest(bot.digest_dir, "NeRF", DAY, PAPERS)
    stored = await bot.deps.ingestor.scan()  # no hook: nothing queued
    assert stored.new_papers == IDS
    assert await bot.deps.outbox.counts() == {
        "pending": 0, "sent": 0, "failed": 0, "cancelled": 0}

    again = await scan_once(bot.deps.ingestor, bot.deps.scan_status)

    assert (again.files_read, again.new_papers) == (0, [])
    assert delivered(s, nerf.id) == expected_digest("NeRF", DAY, IDS)
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    assert delivered(s, nerf.id) == expected_digest("NeRF", DAY, IDS)  # once


async def test_a_paper_reaches_a_chat_once_across_topics_days_and_versions(
    bot: BotUnderTest,
) -> None:
    s = bot.server
    both = await subscriber(bot, "Both", ["NeRF", "3DGS"])
    gauss = await subscriber(bot, "Gauss", ["3DGS"])
    x, y, z = (SynthPaper("2406.20001", "Paper X"), SynthPaper("2406.20002", "Paper Y"),
               SynthPaper("2406.20003", "Paper Z"))

    add_digest(bot.digest_dir, "NeRF", date(2024, 6, 10), [x, y])
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    first = expected_digest("NeRF", date(2024, 6, 10), [x.arxiv_id, y.arxiv_id])
    assert delivered(s, both.id) == first
    assert delivered(s, gauss.id) == []

    # The next day X is listed again under 3DGS, Y comes as v2, Z is new.
    y2 = SynthPaper(y.arxiv_id, y.title, version=2)
    add_digest(bot.digest_dir, "3DGS", date(2024, 6, 11), [x, y2, z])
    report = await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    assert {(i, "2024-06-11/3DGS.md") for i in (x.arxiv_id, y.arxiv_id, z.arxiv_id)} <= set(
        report.new_appearances)
    assert delivered(s, both.id) == first + expected_digest("3DGS", date(2024, 6, 11),
                                                            [z.arxiv_id])
    # A chat that follows only 3DGS never had X or Y: it gets all three, once.
    assert delivered(s, gauss.id) == expected_digest(
        "3DGS", date(2024, 6, 11), [x.arxiv_id, y.arxiv_id, z.arxiv_id])

    # Y again, as v3 under NeRF: nobody gets it again, not even a lone header.
    before = await bot.deps.outbox.counts()
    add_digest(bot.digest_dir, "NeRF", date(2024, 6, 12), [SynthPaper(y.arxiv_id, y.title, 3)])
    report = await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    assert (y.arxiv_id, "2024-06-12/NeRF.md") in report.new_appearances
    assert await bot.deps.outbox.counts() == before
    assert len(delivered(s, both.id)) == 5
    assert len(delivered(s, gauss.id)) == 4


# --------------------------------------------------------------------------- under fire


async def test_a_broadcast_through_faults_loses_nothing_and_repeats_nothing(
    bot: BotUnderTest,
) -> None:
    """150 private chats and 5 groups, flood control on, 5xx and dropped connections at
    random, users who blocked the bot, a kicked bot and two migrated groups."""
    s = bot.server
    flood = s.enable_flood_control()
    papers = [SynthPaper("2406.30001", "Storm Paper One"),
              SynthPaper("2406.30002", "Storm Paper Two")]
    ids = [p.arxiv_id for p in papers]
    full = expected_digest("NeRF", DAY, ids)

    privates = [await subscriber(bot, f"user{i}", ["NeRF"]) for i in range(150)]
    blocked, failing, reachable = privates[:3], privates[3], privates[4:]
    for chat in blocked:
        s.block(chat)
    # Every attempt at this chat's first message fails, until delivery gives up on it.
    s.script_fault("http_502", method="sendMessage", chat_id=failing.id, times=5)
    group = await subscribed_group(bot, s.group("Plain group"), ["NeRF"])
    supergroup = await subscribed_group(bot, s.supergroup("Big group"), ["NeRF"])
    kicked = await subscribed_group(bot, s.group("Kicked us"), ["NeRF"])
    s.kick_bot(kicked)
    # Migrated without the bot being told: the first send learns it (400 + new id).
    silent = await subscribed_group(bot, s.group("Upgraded quietly"), ["NeRF"])
    silent_to = s.add_chat(s.supergroup("Upgraded quietly"))
    silent_to.members.update(silent.members)
    s.set_chat_state(silent, "migrated")
    silent.migrate_to_chat_id = silent_to.id
    # Migrated with the service message, after its rows were queued (see below).
    announced = await subscribed_group(bot, s.group("Upgraded loudly"), ["NeRF"])

    add_digest(bot.digest_dir, "NeRF", DAY, papers)
    report = await bot.deps.ingestor.scan()  # what scan_once does, with a pause in between:
    queued = await bot.deps.delivery.enqueue_new(report)
    assert queued == 155 * 3
    announced_to = s.migrate_group(announced, s.user("Admin"))
    await bot.settle()  # the bot has seen "migrated to ..." before the drain starts

    s.enable_random_faults(0.03, seed=20240610, kinds=("http_502", "http_503", "drop"))
    first = await bot.deps.delivery.drain()
    again = await bot.deps.delivery.drain()  # a row that fell due as the first one ended
    assert (again.failed, again.errors, again.locked) == (0, 0, False)
    assert again.sent <= 3
    assert first.errors == 0
    assert first.migrated == 1  # the quiet one; the loud one had moved already
    assert first.retried >= 5  # the failing chat's five 502s at least, retried at once

    # Nothing lost, nothing twice: the retries came within seconds, in the same drain,
    # so every reachable chat has its three messages, exactly once and in order.
    reachable_ids = [c.id for c in reachable] + [
        failing.id, group.id, supergroup.id, silent_to.id, announced_to.id]
    for chat_id in reachable_ids:
        rows = await bot.deps.outbox.for_chat(chat_id)
        assert [r.state for r in rows] == ["sent"] * 3, chat_id
        assert delivered(s, chat_id) == full, chat_id
    assert (await bot.deps.outbox.counts())["pending"] == 0
    assert again.pending_left == 0
    assert (await bot.deps.outbox.for_chat(failing.id))[0].attempts >= 6

    # Gone chats: deactivated, their rows cancelled, nothing sent there.
    for chat_id in [c.id for c in blocked] + [kicked.id]:
        stored = await bot.deps.chats.get(chat_id)
        assert stored is not None
        assert not stored.active, chat_id
        assert {r.state for r in await bot.deps.outbox.for_chat(chat_id)} == {"cancelled"}
        assert delivered(s, chat_id) == []
    # Migrated groups: the subscription moved to the supergroup and nothing went astray.
    for old, new in ((silent, silent_to), (announced, announced_to)):
        assert await bot.deps.chats.get(old.id) is None
        moved = await bot.deps.chats.get(new.id)
        assert moved is not None
        assert (moved.kind, moved.tags) == ("supergroup", ("NeRF",))
        assert await bot.deps.outbox.for_chat(old.id) == []
        assert delivered(s, old.id) == []

    s.faults.disable_random()  # the operator's /stats must not be sabotaged
    counts = await bot.deps.outbox.counts()
    assert counts["failed"] == 0
    assert (f"Deliveries: pending {counts['pending']} · failed 0 · "
            f"cancelled {counts['cancelled']} · sent {counts['sent']}") in await stats_text(bot)

    assert s.faults.pending_scripts == 0
    assert_paced(flood, accepted=len(s.sent))
    # Telegram refused only what it should have: the gone chats and the quiet migration.
    refused = {(int(c.params["chat_id"]), c.description) for c in s.errors()
               if c.method == "sendMessage"}
    assert refused == {(c.id, "Forbidden: bot was blocked by the user") for c in blocked} | {
        (kicked.id, "Forbidden: bot was kicked from the group chat"),
        (silent.id, "Bad Request: group chat was upgraded to a supergroup chat"),
    }
    sent = 147 * 3 + 4 * 3  # every reachable private chat (the failing one too), 4 groups
    assert await bot.deps.outbox.counts() == {
        "pending": 0, "sent": sent, "failed": 0, "cancelled": 4 * 3}


# --------------------------------------------------------------------------- paused chats


async def test_a_closed_topic_waits_and_gets_what_it_missed_once_reopened(
    bot: BotUnderTest,
) -> None:
    """A forum group gets its cards in a topic; an admin closes the topic. The chat is not
    a departed chat: it stays subscribed, its rows wait in order, and once the topic is
    reopened the next try (hourly) delivers what it missed, exactly once."""
    s = bot.server
    forum = s.add_chat(s.supergroup("Paper club", forum=True))
    topic = s.add_topic(forum, "Papers")
    await bot.deps.chats.ensure(forum.id, "supergroup", title="Paper club")
    await bot.deps.chats.subscribe(forum.id, ["NeRF"], thread_id=topic)
    reader = await subscriber(bot, "Reader", ["NeRF"])
    s.close_topic(forum, topic)
    add_digest(bot.digest_dir, "NeRF", DAY, PAPERS)
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)  # queues and drains
    expected = expected_digest("NeRF", DAY, IDS)
    assert delivered(s, reader.id) == expected  # other chats are not held up
    stored = await bot.deps.chats.get(forum.id)
    assert stored is not None
    assert stored.active
    assert {r.state for r in await bot.deps.outbox.for_chat(forum.id)} == {"pending"}
    # The group is told once, in its General topic (the rest of the forum is writable).
    [notice] = s.sent_to(forum.id)
    assert notice.message_thread_id is None
    assert "can't post the new papers in Paper club" in (notice.plain_text or "")
    assert "topic_closed" in (notice.plain_text or "").lower()
    clock = LaterClock(timedelta(hours=1, minutes=1))  # the hourly retry, still closed
    assert (await later_delivery(bot, clock).drain()).sent == 0
    assert len(s.sent_to(forum.id)) == 1  # not told again

    s.reopen_topic(forum, topic)
    clock.ahead = timedelta(hours=1, minutes=30)
    assert (await later_delivery(bot, clock).drain()).sent == 0  # not yet time to retry
    clock.ahead = timedelta(hours=2, minutes=2)
    report = await later_delivery(bot, clock).drain()
    assert report.sent == len(expected)
    assert delivered(s, forum.id)[1:] == expected
    assert all(m.message_thread_id == topic for m in s.sent_to(forum.id)[1:])


async def test_a_bot_without_the_right_to_send_keeps_the_subscription(
    bot: BotUnderTest,
) -> None:
    s = bot.server
    group = await subscribed_group(bot, s.supergroup("Strict group"), ["NeRF"])
    # Two admins: one has started the bot (a private chat it may write to), one has not.
    reachable, unreachable = s.user("Owner"), s.user("Silent admin")
    s.add_chat(s.private_chat(reachable))
    s.set_member(group, reachable, "creator")
    s.set_member(group, unreachable, "administrator")
    s.set_bot_status(group, "restricted", can_send_messages=False)
    add_digest(bot.digest_dir, "NeRF", DAY, PAPERS)
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    stored = await bot.deps.chats.get(group.id)
    assert stored is not None
    assert stored.active
    rows = await bot.deps.outbox.for_chat(group.id)
    assert {r.state for r in rows} == {"pending"}
    assert "not enough rights" in (rows[0].last_error or "").lower()
    # The group cannot be written to: the admin who can be reached hears it privately.
    [notice] = s.sent_to(reachable.id)
    assert "can't post the new papers in Strict group" in (notice.plain_text or "")
    assert s.sent_to(group.id) == []
