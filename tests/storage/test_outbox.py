"""The outbox and the sender lease on a real database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.engine import database_now, make_sessionmaker
from bot.storage.outbox import LEASE_SENDER, NewDelivery, OutboxRepo, SentMark
from bot.storage.tables import LeaseRow, OutboxRow

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)


@pytest.fixture
def outbox(engine: AsyncEngine) -> OutboxRepo:
    return OutboxRepo(make_sessionmaker(engine))


def card(chat_id: int, arxiv_id: str, *, reason: str = "new", due: datetime = T0,
         group: int | None = None, path: str = "2024-06-01/NeRF.md") -> NewDelivery:
    return NewDelivery(chat_id, "card", reason, due, arxiv_id=arxiv_id, digest_path=path,
                       group=group)


def header(chat_id: int, group: int, *, reason: str = "new", due: datetime = T0,
           topic: str = "NeRF") -> NewDelivery:
    return NewDelivery(chat_id, "header", reason, due, digest_path="2024-06-01/NeRF.md",
                       meta={"topic": topic, "date": "2024-06-01"}, group=group)


async def test_enqueue_is_idempotent_for_new_and_counts_the_header(outbox: OutboxRepo) -> None:
    rows = [header(1, 1), card(1, "2401.00001", group=1), card(1, "2401.00002", group=1)]
    assert await outbox.enqueue(rows, now=T0) == 3
    assert await outbox.enqueue(rows, now=T0) == 0  # everything known: not even the header
    stored = await outbox.for_chat(1)
    assert [(r.kind, r.arxiv_id) for r in stored] == [
        ("header", None), ("card", "2401.00001"), ("card", "2401.00002")]
    assert stored[0].meta == {"topic": "NeRF", "date": "2024-06-01", "papers": 2}
    assert all(r.state == "pending" and r.attempts == 0 for r in stored)
    assert stored[0].due_at == T0
    assert stored[0].due_at.tzinfo is not None

    # One paper known, one new: the header counts only what is written.
    more = [header(1, 7), card(1, "2401.00002", group=7), card(1, "2401.00003", group=7)]
    assert await outbox.enqueue(more, now=T0) == 2
    assert (await outbox.for_chat(1))[-2].meta == {
        "topic": "NeRF", "date": "2024-06-01", "papers": 1}


async def test_unique_per_chat_for_new_but_not_for_repost(outbox: OutboxRepo,
                                                          engine: AsyncEngine) -> None:
    # The same id twice in one call, and for two chats.
    assert await outbox.enqueue([card(1, "2401.00001"), card(1, "2401.00001"),
                                 card(2, "2401.00001")]) == 2
    assert await outbox.enqueue([card(1, "2401.00001", reason="repost"),
                                 card(1, "2401.00001", reason="repost")]) == 2
    assert [r.reason for r in await outbox.for_chat(1)] == ["new", "repost", "repost"]
    # The database itself refuses a second "new" row, whatever the code above does.
    async with make_sessionmaker(engine)() as session, session.begin():
        with pytest.raises(IntegrityError):
            await session.execute(insert(OutboxRow).values(
                chat_id=1, kind="card", reason="new", arxiv_id="2401.00001", state="pending",
                attempts=0, due_at=T0, created_at=T0))


async def test_due_is_in_id_order_paged_and_respects_due_times(outbox: OutboxRepo) -> None:
    later = T0 + timedelta(hours=3)
    await outbox.enqueue([card(1, "a"), card(2, "b"), card(1, "c", due=later), card(3, "d"),
                          card(2, "e")])
    due = await outbox.due(T0)
    assert [r.arxiv_id for r in due] == ["a", "b", "d", "e"]  # "c" waits for its time
    first = await outbox.due(T0, limit=2)
    rest = await outbox.due(T0, after=first[-1].id, limit=2)
    assert [r.arxiv_id for r in first + rest] == ["a", "b", "d", "e"]
    assert [r.arxiv_id for r in await outbox.due(later)] == ["a", "b", "c", "d", "e"]
    assert await outbox.due_count(T0) == 4


async def test_a_row_waiting_for_retry_holds_back_its_chat(outbox: OutboxRepo) -> None:
    await outbox.enqueue([card(1, "a"), card(1, "b"), card(2, "c")])
    a = (await outbox.due(T0))[0]
    await outbox.mark_retry(a.id, "Bad Gateway", T0 + timedelta(seconds=60))
    assert [r.arxiv_id for r in await outbox.due(T0)] == ["c"]  # b must not overtake a
    soon = T0 + timedelta(seconds=60)
    assert [r.arxiv_id for r in await outbox.due(soon)] == ["a", "b", "c"]
    assert (await outbox.get(a.id)) is not None
    stored = await outbox.get(a.id)
    assert stored is not None
    assert (stored.attempts, stored.last_error) == (1, "Bad Gateway")
    # A flood wait does not count as an attempt.
    await outbox.mark_retry(a.id, "flood", soon, count_attempt=False)
    stored = await outbox.get(a.id)
    assert stored is not None
    assert stored.attempts == 1


async def test_outcomes_and_counts(outbox: OutboxRepo) -> None:
    await outbox.enqueue([card(1, "a"), card(1, "b"), card(1, "c"), card(2, "d"), card(2, "e")])
    a, b, c, d, _e = await outbox.due(T0)
    await outbox.mark_sent(a.id, 101, at=T0)
    await outbox.mark_failed(b.id, "500 Internal Server Error")
    assert await outbox.cancel(c.id, "paper gone")
    assert not await outbox.cancel(c.id, "again")  # only pending rows
    assert await outbox.cancel_chat(2, "bot was blocked by the user") == 2
    assert await outbox.counts() == {"pending": 0, "sent": 1, "failed": 1, "cancelled": 3}
    sent = await outbox.get(a.id)
    assert sent is not None
    assert (sent.state, sent.message_id, sent.sent_at, sent.attempts) == ("sent", 101, T0, 1)
    cancelled = await outbox.get(d.id)
    assert cancelled is not None
    assert cancelled.last_error == "bot was blocked by the user"
    assert await outbox.due(T0) == []


async def test_mark_sent_many_records_a_batch_in_one_call(outbox: OutboxRepo) -> None:
    await outbox.enqueue([card(1, "a"), card(1, "b"), card(2, "c"), card(3, "d")])
    a, b, c, d = await outbox.due(T0)
    await outbox.mark_retry(b.id, "Bad Gateway", T0 - TTL)  # one earlier attempt
    later = T0 + TTL
    await outbox.mark_sent_many([SentMark(a.id, 11, T0), SentMark(b.id, 12, later),
                                 SentMark(c.id, 13, T0)])
    await outbox.mark_sent_many([])  # nothing to do
    rows = {r.id: r for r in await outbox.due(T0 + 2 * TTL)}
    assert list(rows) == [d.id]
    for row_id, message_id, at, attempts in ((a.id, 11, T0, 1), (b.id, 12, later, 2),
                                             (c.id, 13, T0, 1)):
        stored = await outbox.get(row_id)
        assert stored is not None
        assert (stored.state, stored.message_id, stored.sent_at, stored.attempts,
                stored.next_attempt_at) == ("sent", message_id, at, attempts, None)
    assert await outbox.counts() == {"pending": 1, "sent": 3, "failed": 0, "cancelled": 0}


async def test_move_chat_takes_history_along_and_skips_what_the_target_has(
    outbox: OutboxRepo,
) -> None:
    await outbox.enqueue([header(-5, 1), card(-5, "a", group=1), card(-5, "b", group=1),
                          card(-5, "c", group=1), card(-9, "c")])
    rows = await outbox.for_chat(-5)
    await outbox.mark_sent(rows[1].id, 1)  # "a" was delivered to the old group
    assert await outbox.move_chat(-5, -9) == 2  # header and "b"; "c" is already at -9
    moved = await outbox.for_chat(-9)
    assert [(r.kind, r.arxiv_id, r.state) for r in moved] == [
        ("header", None, "pending"), ("card", "a", "sent"), ("card", "b", "pending"),
        ("card", "c", "pending")]
    left = await outbox.for_chat(-5)
    assert [(r.arxiv_id, r.state) for r in left] == [("c", "cancelled")]
    # History moved: the supergroup is not sent "a" again.
    assert await outbox.enqueue([card(-9, "a")]) == 0


class StepClock:
    """The time leases are judged by, moved by the test."""

    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


async def test_lease_mutual_exclusion_renewal_and_expiry(engine: AsyncEngine) -> None:
    clock = StepClock()
    outbox = OutboxRepo(make_sessionmaker(engine), clock=clock.now)
    assert await outbox.acquire_lease(LEASE_SENDER, "A", TTL)
    assert not await outbox.acquire_lease(LEASE_SENDER, "B", TTL)
    assert await outbox.lease_holder(LEASE_SENDER) == "A"
    # A renews; B still loses just before the renewed expiry.
    clock.at = T0 + timedelta(seconds=50)
    assert await outbox.acquire_lease(LEASE_SENDER, "A", TTL)
    clock.at = T0 + timedelta(seconds=100)
    assert not await outbox.acquire_lease(LEASE_SENDER, "B", TTL)
    # Once expired, B takes over and A is out.
    clock.at = T0 + timedelta(seconds=111)
    assert await outbox.lease_holder(LEASE_SENDER) is None
    assert await outbox.acquire_lease(LEASE_SENDER, "B", TTL)
    assert not await outbox.acquire_lease(LEASE_SENDER, "A", TTL)
    await outbox.release_lease(LEASE_SENDER, "A")  # not A's: nothing happens
    assert await outbox.lease_holder(LEASE_SENDER) == "B"
    await outbox.release_lease(LEASE_SENDER, "B")
    assert await outbox.lease_holder(LEASE_SENDER) is None
    assert await outbox.acquire_lease(LEASE_SENDER, "A", TTL)
    # Leases are independent by name.
    assert await outbox.acquire_lease("other", "B", TTL)


async def test_leases_run_on_the_database_clock(engine: AsyncEngine) -> None:
    """Two processes whose clocks are hours apart still see one holder: neither clock
    is consulted, so the one whose clock runs ahead cannot think the lease expired."""
    outbox = OutboxRepo(make_sessionmaker(engine))  # no clock: the database's
    assert await outbox.acquire_lease(LEASE_SENDER, "A", TTL)
    assert not await outbox.acquire_lease(LEASE_SENDER, "B", TTL)
    assert await outbox.lease_holder(LEASE_SENDER) == "A"
    async with make_sessionmaker(engine)() as session:
        row = await session.get(LeaseRow, LEASE_SENDER)
        db_now = await database_now(session)
    assert row is not None
    # Written from the database's now: it expires one ttl from now, not from a
    # caller's idea of the time.
    assert timedelta(0) < row.expires_at - db_now <= TTL
    # Expired on the database's clock, it is free, whatever a process's clock says.
    await outbox.acquire_lease("short", "A", timedelta(seconds=-1))
    assert await outbox.lease_holder("short") is None
    assert await outbox.acquire_lease("short", "B", TTL)


async def test_concurrent_first_acquire_has_one_winner(outbox: OutboxRepo) -> None:
    results = await asyncio.gather(*(
        outbox.acquire_lease(LEASE_SENDER, f"owner-{i}", TTL) for i in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_naive_datetimes_are_refused(outbox: OutboxRepo) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        await outbox.enqueue([card(1, "a", due=datetime(2024, 6, 1, 8, 0))])
