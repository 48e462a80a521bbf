"""Delivery at broadcast scale: marks written in batches, cards rendered once, subscribers
loaded at once, and what a crash or a database error in the middle of it does.

Uses the world of tests/services/world.py (a real database, the fake sender and clock).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.models import Chat
from bot.storage.chats import ChatRepo
from bot.storage.engine import make_sessionmaker
from bot.storage.outbox import OutboxRepo, SentMark
from tests.services.world import (
    DAY1,
    FakeSender,
    Killed,
    World,
    assert_resent_only_in_flight,
    kinds,
    paper,
)


class DyingOutbox(OutboxRepo):
    """The process dies while it commits a batch of marks, after ``survive`` batches:
    Telegram has those messages, the outbox never hears of them."""

    def __init__(self, engine: AsyncEngine, survive: int) -> None:
        super().__init__(make_sessionmaker(engine))
        self.survive = survive
        self.batches: list[int] = []

    async def mark_sent_many(self, marks: Sequence[SentMark]) -> None:
        if len(self.batches) >= self.survive:
            raise Killed
        self.batches.append(len(marks))
        await super().mark_sent_many(marks)


async def test_a_crash_while_marking_a_batch_resends_that_batch_once(
    world: World, engine: AsyncEngine,
) -> None:
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    chat_ids = list(range(1, 13))
    for chat_id in chat_ids:
        await world.chat(chat_id, "NeRF")
    world.sender.overlap = 4  # the first four sends finish together: their marks batch
    dying = DyingOutbox(engine, survive=3)
    first = world.delivery(outbox=dying, workers=4)
    assert await first.enqueue_new(new) == 36
    with pytest.raises(Killed):
        await first.drain()
    assert max(dying.batches) > 1  # marks were written in batches
    recorded = sum(dying.batches)
    assert (await world.outbox.counts())["sent"] == recorded
    unrecorded = len(world.sender.log) - recorded  # the lost batch, and sends under way
    assert 1 <= unrecorded <= 4  # each worker waits for its mark: at most one message each

    world.clock.advance(seconds=61)  # the dead process's lease runs out
    survivor = world.delivery(owner="B", sender=FakeSender(log=world.sender.log))
    report = await survivor.drain()
    assert (report.sent, report.pending_left) == (36 - recorded, 0)
    assert_resent_only_in_flight(world, chat_ids, unrecorded,
                                 ["H:NeRF 2", "Paper number 1", "Paper number 2"])


class FlakyOutbox(OutboxRepo):
    """The database refuses the first batch of marks (locked, connection lost, ...)."""

    failed = False

    async def mark_sent_many(self, marks: Sequence[SentMark]) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("database is locked")
        await super().mark_sent_many(marks)


async def test_marks_that_fail_to_commit_leave_their_rows_pending(
    world: World, engine: AsyncEngine, caplog: pytest.LogCaptureFixture,
) -> None:
    new = await world.publish("NeRF", DAY1, paper(1))
    await world.chat(1, "NeRF")
    flaky = world.delivery(outbox=FlakyOutbox(make_sessionmaker(engine)))
    await flaky.enqueue_new(new)
    with caplog.at_level(logging.ERROR):
        report = await flaky.drain()
    assert (report.sent, report.errors, report.pending_left) == (0, 1, 2)
    assert "it stays pending" in caplog.text
    report = await flaky.drain()  # the header again: the outbox never learnt it was sent
    assert (report.sent, report.pending_left) == (2, 0)
    assert kinds(world.sender.to(1)) == ["H:NeRF 1", "H:NeRF 1", "Paper number 1"]


async def test_a_card_is_rendered_once_per_drain_for_each_style_and_language(
    world: World,
) -> None:
    new = await world.publish("NeRF", DAY1, paper(1), paper(2))
    for chat_id in range(1, 5):
        await world.chat(chat_id, "NeRF")
    await world.chat(5, "NeRF", style="compact")
    await world.chat(6, "NeRF", lang="zh")
    drainer = world.delivery()
    await drainer.enqueue_new(new)
    await drainer.drain()
    sent = {chat_id: [s.message for s in world.sender.log if s.chat_id == chat_id]
            for chat_id in range(1, 7)}
    for i in range(3):  # the header and both cards: one object for all chats alike
        assert all(sent[chat_id][i] is sent[1][i] for chat_id in range(2, 5))
        assert sent[6][i] != sent[1][i]  # in Chinese
    assert sent[5][0] is sent[1][0]  # the header does not depend on the card style
    assert sent[5][1] != sent[1][1]
    assert "<blockquote" not in (sent[5][1].html or "")


class CountingChats(ChatRepo):
    looked_up = 0

    async def get(self, chat_id: int) -> Chat | None:
        self.looked_up += 1
        return await super().get(chat_id)


async def test_a_broadcast_loads_its_subscribers_at_once(
    world: World, engine: AsyncEngine,
) -> None:
    new = await world.publish("NeRF", DAY1, paper(1))
    for chat_id in range(1, 121):
        await world.chat(chat_id, "NeRF")
    chats = CountingChats(make_sessionmaker(engine))
    drainer = world.delivery(chats=chats)
    assert await drainer.enqueue_new(new) == 240
    await world.chats.deactivate(7, "user pressed /stop")
    report = await drainer.drain()
    assert (report.sent, report.cancelled, report.pending_left) == (238, 2, 0)
    assert chats.looked_up == 1  # chat 7 alone: it is no longer among the subscribers
    assert world.sender.to(7) == []
    assert kinds(world.sender.to(120)) == ["H:NeRF 1", "Paper number 1"]
