"""The outbox: every delivery is a row, written before anything is sent.

A row is ``pending`` until Telegram answers, then ``sent`` (with the message id),
``failed`` (gave up, with the error) or ``cancelled`` (the chat is gone, the paper left
the archive). Nothing is ever deleted, so the rows are also the delivery history that
makes "a chat receives a paper once" hold: the partial unique index on
``(chat_id, arxiv_id) WHERE reason = 'new'`` enforces it in the database.

Rows of one chat are sent in ``id`` order. A row waiting for a retry holds back the
later rows of its chat (:meth:`OutboxRepo.due` leaves them out), so a header is never
overtaken by its own cards.

The lease table keeps a second process from sending what the first is sending: the
sender holds the lease ``"sender"`` and renews it while it works. Lease expiries are
written and judged on the database's clock (`database_now`), never a process's own, so
processes whose clocks disagree still agree on who holds a lease.

Every public method is its own short transaction. On SQLite writers begin IMMEDIATE
(they wait for the write lock instead of failing half-way); on PostgreSQL single
statements are atomic on their own and only read-then-write methods take the archive's
advisory write lock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import (
    CursorResult,
    Table,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.storage.engine import database_now, dialect_insert
from bot.storage.loading import chunked
from bot.storage.session import Repository
from bot.storage.tables import OUTBOX_STATES, ChatRow, LeaseRow, OutboxRow

__all__ = [
    "LEASE_SENDER",
    "NewDelivery",
    "OutboxItem",
    "OutboxRepo",
    "SentMark",
]

LEASE_SENDER: Final = "sender"
"""The lease the delivery worker holds while it sends."""

MAX_ERROR_LEN: Final = 1000
PAIR_CHUNK: Final = 400  # (chat_id, arxiv_id) pairs per IN: 800 bound parameters

_NEW_ONLY: Final = text("reason = 'new'")  # the unique index's predicate, as a literal
_outbox = cast(Table, OutboxRow.__table__)
_leases = LeaseRow.__table__
_MARK_SENT: Final = (  # Core, so that a list of parameters runs as one executemany
    update(_outbox).where(_outbox.c.id == bindparam("b_id")).values(
        state="sent", message_id=bindparam("b_message_id"), sent_at=bindparam("b_at"),
        attempts=_outbox.c.attempts + 1, next_attempt_at=None)
)


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A row to enqueue.

    Cards and the header that opens them share a ``group`` (any int, unique per chat
    within one :meth:`OutboxRepo.enqueue` call). A header is written only if at least one
    card of its group is, and its ``meta["papers"]`` is set to how many were.
    """

    chat_id: int
    kind: str  # "header" | "card"
    reason: str  # "new" | "repost"
    due_at: datetime
    arxiv_id: str | None = None
    digest_path: str | None = None
    meta: Mapping[str, Any] | None = None
    group: int | None = None


@dataclass(frozen=True, slots=True)
class SentMark:
    """Telegram accepted row ``row_id`` as message ``message_id`` at ``at``."""

    row_id: int
    message_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A stored row, as delivery and the admin commands see it."""

    id: int
    chat_id: int
    kind: str
    reason: str
    arxiv_id: str | None
    digest_path: str | None
    meta: Mapping[str, Any] | None
    state: str
    attempts: int
    last_error: str | None
    message_id: int | None
    due_at: datetime
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None = field(default=None)
    papers: int = 0  # a header: how many cards of its digest were queued with it
    listed: bool = False  # goes out as a line of a list message (see Drain)


def _item(row: OutboxRow, shared: dict[Any, Any] | None = None) -> OutboxItem:
    """``shared``: one dict for a page of rows, in which equal strings and times become
    one object. The drain holds up to 16 384 rows; in a broadcast they repeat a handful
    of kinds, states, arXiv ids, paths and times, and one copy of each per row was half
    of the 11 MB those rows took."""
    same = shared.setdefault if shared is not None else _as_is
    return OutboxItem(
        id=row.id, chat_id=row.chat_id, kind=same(row.kind, row.kind),
        reason=same(row.reason, row.reason), arxiv_id=same(row.arxiv_id, row.arxiv_id),
        digest_path=same(row.digest_path, row.digest_path),
        meta=dict(row.meta) if row.meta is not None else None,
        state=same(row.state, row.state), attempts=row.attempts, last_error=row.last_error,
        message_id=row.message_id, due_at=same(row.due_at, row.due_at),
        next_attempt_at=row.next_attempt_at, created_at=same(row.created_at, row.created_at),
        sent_at=row.sent_at, papers=int((row.meta or {}).get("papers") or 0),
        listed=bool(row.listed),
    )


def _as_is(_key: Any, value: Any) -> Any:
    return value


def _error(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LEN else text[: MAX_ERROR_LEN - 1] + "…"


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


class OutboxRepo(Repository):
    """Deliveries and the sender lease; every public method is one transaction.

    Writers pass ``lock=False`` unless they read and then write what they read (see
    the module docstring).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 clock: Callable[[], datetime] | None = None) -> None:
        """``clock``: the time leases are judged by; None (always, outside tests) means
        the database's clock."""
        super().__init__(sessions)
        self._clock = clock

    async def _now(self, session: AsyncSession) -> datetime:
        return self._clock() if self._clock is not None else await database_now(session)

    # enqueue ----------------------------------------------------------------------------

    async def enqueue(self, rows: Sequence[NewDelivery], *, now: datetime | None = None) -> int:
        """Write these rows in order; returns how many were written.

        Idempotent for reason "new": a card whose (chat, arXiv id) already has a "new"
        row (in any state, or earlier in ``rows``) is left out, and so is a header none
        of whose cards is written. "repost" cards are always written.
        """
        if not rows:
            return 0
        created = now or datetime.now(UTC)
        async with self._write() as session:
            wanted = sorted({(r.chat_id, r.arxiv_id) for r in rows
                             if r.kind == "card" and r.reason == "new" and r.arxiv_id})
            taken: set[tuple[int, str]] = set()
            for part in chunked(wanted, PAIR_CHUNK):
                found = await session.execute(
                    select(OutboxRow.chat_id, OutboxRow.arxiv_id).where(
                        OutboxRow.reason == "new",
                        tuple_(OutboxRow.chat_id, OutboxRow.arxiv_id).in_(part),
                    )
                )
                taken.update((r.chat_id, r.arxiv_id) for r in found)

            keep: list[bool] = []
            cards: Counter[tuple[int, int]] = Counter()
            for r in rows:
                ok = True
                if r.kind == "card" and r.reason == "new" and r.arxiv_id:
                    pair = (r.chat_id, r.arxiv_id)
                    ok = pair not in taken
                    taken.add(pair)
                if ok and r.kind == "card" and r.group is not None:
                    cards[(r.chat_id, r.group)] += 1
                keep.append(ok)

            values: list[dict[str, Any]] = []
            for r, ok in zip(rows, keep, strict=True):
                meta = dict(r.meta) if r.meta is not None else None
                if r.kind == "header" and r.group is not None:
                    count = cards[(r.chat_id, r.group)]
                    if not count:
                        continue
                    meta = {**(meta or {}), "papers": count}
                if not ok:
                    continue
                values.append({
                    "chat_id": r.chat_id, "kind": r.kind, "reason": r.reason,
                    "arxiv_id": r.arxiv_id, "digest_path": r.digest_path, "meta": meta,
                    "state": "pending", "attempts": 0, "last_error": None,
                    "message_id": None, "due_at": r.due_at, "next_attempt_at": None,
                    "created_at": created, "sent_at": None,
                })
            if values:
                # The lock makes the check above exact; the index stays the last word.
                stmt = dialect_insert(session, _outbox).on_conflict_do_nothing(
                    index_elements=["chat_id", "arxiv_id"], index_where=_NEW_ONLY)
                await session.execute(stmt, values)
            return len(values)

    # reading ----------------------------------------------------------------------------

    async def due(self, now: datetime, *, after: int = 0, limit: int = 500) -> list[OutboxItem]:
        """Pending rows that may be sent at ``now``, in id order, ``id > after``.

        Call again with the last id to page through them. A row whose chat has an
        earlier row waiting for a retry is left out, so that chat stays in order.
        """
        earlier = aliased(OutboxRow)
        held = exists().where(
            earlier.chat_id == OutboxRow.chat_id,
            earlier.state == "pending",
            earlier.id < OutboxRow.id,
            earlier.next_attempt_at > now,
        )
        stmt = (
            select(OutboxRow)
            .where(
                OutboxRow.state == "pending",
                OutboxRow.id > after,
                OutboxRow.due_at <= now,
                or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now),
                ~held,
            )
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        shared: dict[Any, Any] = {}
        async with self._read() as session:
            return [_item(row, shared) for row in (await session.scalars(stmt)).all()]

    async def get(self, row_id: int) -> OutboxItem | None:
        async with self._read() as session:
            row = await session.get(OutboxRow, row_id)
            return _item(row) if row is not None else None

    async def for_chat(self, chat_id: int, *, state: str | None = None) -> list[OutboxItem]:
        """A chat's rows in send order (for tests and the admin's eyes; not paged)."""
        stmt = select(OutboxRow).where(OutboxRow.chat_id == chat_id).order_by(OutboxRow.id)
        if state is not None:
            stmt = stmt.where(OutboxRow.state == state)
        async with self._read() as session:
            return [_item(row) for row in (await session.scalars(stmt)).all()]

    async def counts(self) -> dict[str, int]:
        """Rows per state (pending, sent, failed, cancelled), for /stats."""
        async with self._read() as session:
            rows = await session.execute(
                select(OutboxRow.state, func.count()).group_by(OutboxRow.state))
            found: dict[str, int] = {state: int(count) for state, count in rows}
        return {state: found.get(state, 0) for state in OUTBOX_STATES}

    async def due_count(self, now: datetime) -> int:
        """How many pending rows are due (retry holds ignored): a drain's expected work."""
        async with self._read() as session:
            return int(await session.scalar(
                select(func.count()).select_from(OutboxRow).where(
                    OutboxRow.state == "pending", OutboxRow.due_at <= now,
                    or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now),
                )) or 0)

    async def reschedule_chat(self, chat_id: int, due_at: datetime, *,
                              reposts: bool = False) -> int:
        """Move the chat's pending new-paper rows to ``due_at``; reposts stay due now
        unless ``reposts`` (a pause holds them too, a resume releases them)."""
        stmt = update(OutboxRow).where(OutboxRow.chat_id == chat_id,
                                       OutboxRow.state == "pending")
        if not reposts:
            stmt = stmt.where(OutboxRow.reason == "new")
        async with self._write(lock=False) as session:
            return _rowcount(await session.execute(stmt.values(due_at=due_at)))

    async def pending_cards(self, chat_id: int) -> int:
        """How many papers are queued for this chat, due or not."""
        async with self._read() as session:
            return int(await session.scalar(
                select(func.count()).select_from(OutboxRow).where(
                    OutboxRow.chat_id == chat_id, OutboxRow.state == "pending",
                    OutboxRow.kind == "card")) or 0)

    async def list_backlog(self, chat_id: int) -> int:
        """Mark the chat's pending papers (and their headers) to go out as list lines:
        a backlog summarised."""
        async with self._write(lock=False) as session:
            return _rowcount(await session.execute(update(OutboxRow).where(
                OutboxRow.chat_id == chat_id, OutboxRow.state == "pending",
                OutboxRow.kind.in_(("header", "card"))).values(listed=True)))

    async def enqueue_roundup(self, chat_id: int, week: date, *, now: datetime) -> bool:
        """Queue the chat's roundup for the week that starts on ``week`` (a Monday), unless
        one was queued for it: the week is claimed on the chat's row in the same
        transaction, so it is queued once however many processes or passes plan it."""
        async with self._write(lock=False) as session:
            claimed = await session.execute(update(ChatRow).where(
                ChatRow.chat_id == chat_id,
                or_(ChatRow.roundup_week.is_(None), ChatRow.roundup_week < week)).values(
                    roundup_week=week))
            if _rowcount(claimed) != 1:
                return False
            session.add(OutboxRow(
                chat_id=chat_id, kind="roundup", reason="new", arxiv_id=None,
                digest_path=None, meta={"week": week.isoformat()}, state="pending",
                attempts=0, due_at=now, created_at=now, listed=False))
            return True

    async def listing(self, chat_id: int, digest_path: str | None, reason: str,
                      now: datetime, *, limit: int = 500) -> list[OutboxItem]:
        """The chat's due rows of one digest (``None``: rows of no digest) and reason, in
        order: what one list message shows. Rows held for a retry are left out."""
        same_digest = (OutboxRow.digest_path.is_(None) if digest_path is None
                       else OutboxRow.digest_path == digest_path)
        stmt = (
            select(OutboxRow)
            .where(OutboxRow.chat_id == chat_id, OutboxRow.state == "pending", same_digest,
                   OutboxRow.reason == reason, OutboxRow.due_at <= now,
                   or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now))
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        async with self._read() as session:
            return [_item(row) for row in (await session.scalars(stmt)).all()]

    async def next_retry(self, now: datetime) -> datetime | None:
        """When the earliest pending row held for a retry may go again (None: none is)."""
        async with self._read() as session:
            found: datetime | None = await session.scalar(
                select(func.min(OutboxRow.next_attempt_at)).where(
                    OutboxRow.state == "pending", OutboxRow.due_at <= now,
                    OutboxRow.next_attempt_at > now))
        return found

    # outcomes ---------------------------------------------------------------------------

    async def mark_sent(self, row_id: int, message_id: int, *, at: datetime | None = None) -> None:
        """Telegram accepted the message. Recorded whatever the row's state: it was sent."""
        await self.mark_sent_many([SentMark(row_id, message_id, at or datetime.now(UTC))])

    async def mark_sent_many(self, marks: Sequence[SentMark]) -> None:
        """:meth:`mark_sent` for many rows in one transaction (one statement, executemany).

        Why: at hundreds of messages a second a transaction per message was most of the
        sender's database work; the rows of one batch commit together or not at all.
        """
        if not marks:
            return
        params = [{"b_id": m.row_id, "b_message_id": m.message_id, "b_at": m.at} for m in marks]
        async with self._write(lock=False) as session:
            await session.execute(_MARK_SENT, params)

    async def mark_retry(self, row_id: int, error: str, next_at: datetime, *,
                         count_attempt: bool = True) -> None:
        """Keep the row pending until ``next_at``; flood waits pass count_attempt=False."""
        values: dict[str, Any] = {"last_error": _error(error), "next_attempt_at": next_at}
        if count_attempt:
            values["attempts"] = OutboxRow.attempts + 1
        async with self._write(lock=False) as session:
            await session.execute(update(OutboxRow).where(
                OutboxRow.id == row_id, OutboxRow.state == "pending").values(**values))

    async def mark_failed(self, row_id: int, error: str) -> None:
        """Give up on this row; it stays visible with its error."""
        async with self._write(lock=False) as session:
            await session.execute(update(OutboxRow).where(
                OutboxRow.id == row_id, OutboxRow.state == "pending").values(
                    state="failed", last_error=_error(error), attempts=OutboxRow.attempts + 1,
                    next_attempt_at=None))

    async def cancel(self, row_id: int, reason: str) -> bool:
        """Cancel one pending row (its paper left the archive, ...)."""
        async with self._write(lock=False) as session:
            result = await session.execute(update(OutboxRow).where(
                OutboxRow.id == row_id, OutboxRow.state == "pending").values(
                    state="cancelled", last_error=_error(reason), next_attempt_at=None))
            return _rowcount(result) == 1

    async def cancel_many(self, row_ids: Sequence[int], reason: str) -> int:
        """Cancel these rows where still pending; returns how many were."""
        cancelled = 0
        async with self._write(lock=False) as session:
            for part in chunked(list(row_ids), PAIR_CHUNK):
                result = await session.execute(update(OutboxRow).where(
                    OutboxRow.id.in_(part), OutboxRow.state == "pending").values(
                        state="cancelled", last_error=_error(reason), next_attempt_at=None))
                cancelled += _rowcount(result)
        return cancelled

    async def cancel_chat(self, chat_id: int, reason: str = "chat is gone") -> int:
        """Cancel every pending row of a chat; returns how many."""
        async with self._write(lock=False) as session:
            result = await session.execute(update(OutboxRow).where(
                OutboxRow.chat_id == chat_id, OutboxRow.state == "pending").values(
                    state="cancelled", last_error=_error(reason), next_attempt_at=None))
            return _rowcount(result)

    async def move_chat(self, old_id: int, new_id: int) -> int:
        """A group became a supergroup: its rows, history included, move to the new id.

        History moves too, so the supergroup is not sent what the group already got. A
        "new" row whose paper the new id already has stays behind (cancelled if pending).
        Returns how many pending rows moved.
        """
        async with self._write() as session:
            there = (select(OutboxRow.arxiv_id).where(
                OutboxRow.chat_id == new_id, OutboxRow.reason == "new",
                OutboxRow.arxiv_id.is_not(None)).scalar_subquery())
            movable = or_(OutboxRow.reason != "new", OutboxRow.arxiv_id.is_(None),
                          OutboxRow.arxiv_id.not_in(there))
            pending = int(await session.scalar(
                select(func.count()).select_from(OutboxRow).where(
                    OutboxRow.chat_id == old_id, OutboxRow.state == "pending", movable)) or 0)
            await session.execute(update(OutboxRow).where(
                OutboxRow.chat_id == old_id, movable).values(chat_id=new_id))
            await session.execute(update(OutboxRow).where(
                OutboxRow.chat_id == old_id, OutboxRow.state == "pending").values(
                    state="cancelled", last_error=f"chat migrated to {new_id}, which has it",
                    next_attempt_at=None))
            return pending

    # the lease ---------------------------------------------------------------------------

    async def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        """Take or renew the lease for ``ttl`` from the database's now; False while
        someone else holds it.

        One conditional UPDATE (free once expired, or already ours), else a first-time
        INSERT that loses quietly to a concurrent one: atomic on both backends.
        """
        async with self._write(lock=False) as session:
            now = await self._now(session)
            expires = now + ttl
            result = await session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name,
                       or_(LeaseRow.expires_at < now, LeaseRow.owner == owner))
                .values(owner=owner, expires_at=expires)
            )
            if _rowcount(result) == 1:
                return True
            result = await session.execute(
                dialect_insert(session, _leases).values(name=name, owner=owner, expires_at=expires)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            return _rowcount(result) == 1

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up (only if ours), so the next sender need not wait for expiry."""
        async with self._write(lock=False) as session:
            await session.execute(delete(LeaseRow).where(LeaseRow.name == name,
                                                         LeaseRow.owner == owner))

    async def lease_holder(self, name: str) -> str | None:
        """Who holds the lease now (None if nobody), for /stats."""
        async with self._read() as session:
            row = await session.get(LeaseRow, name)
            if row is None or row.expires_at < await self._now(session):
                return None
            return row.owner
