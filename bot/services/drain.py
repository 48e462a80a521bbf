"""The drain: the outbox is worked through, never losing a row.

:meth:`Drain.drain` sends what is due, while it holds the sender lease. Each chat's rows
go strictly in order, one at a time, while up to ``workers`` chats are served at once;
rows are read in pages and at most ``buffer_rows`` are held, so a large backlog is never
in memory at once. Cards are rendered at send time (once per drain for each paper,
digest, style and language, however many chats get it), so rendering fixes and settings
changes apply to rows already queued. Marks of rows sent are written in batches:
whatever finished while the previous batch was being committed (see _Acks).

What a failed send does to its row is decided by the exception type (see
bot.services.ports): a 429 that got past the rate limiter keeps it pending until the
wait is over; network trouble retries it with backoff (never giving up because of an
outage alone, only after ``max_age``); a chat that is gone is deactivated and its rows
cancelled; a closed topic or a missing right pauses the chat; a migrated group's rows
follow it to the supergroup; a message Telegram refuses goes again as plain text. A
crash between a send and its mark re-sends that one message: the only duplicate allowed.

Pacing: the bot's rate limiter (bot.tg.ratelimit) keeps the overall limit, with replies
to users ahead of these sends, and each chat's own limit (about one message a second in a
private chat, 20 a minute in a group). Each chat's queue here also leaves
``private_gap`` / ``group_gap`` seconds between its messages, so a worker slot is free
while a chat waits, instead of waiting inside the limiter.

Why one module of some 800 lines: the lanes, passes, lease, retries and the fate of a
failed row are one state machine, and each rule reads the others' state (a retry holds
its chat's lane, an outage halts the pass, a lost lease stops every lane); split across
modules they would share private state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any, Final, Literal, TypeVar

from bot.domain.listing import ListEntry, render_listing
from bot.domain.matching import wants
from bot.domain.models import ArchivedPaper, Chat
from bot.domain.rendering import plain_text, render_card, render_header, render_paused_notice
from bot.errors import ChatGone, ChatPaused
from bot.services.ports import (
    AdminNotifier,
    ChatMigrated,
    Clock,
    FloodWait,
    MessageRejected,
    Outgoing,
    RoundupSource,
    Sender,
    TransientSendError,
)
from bot.storage.chats import ChatRepo
from bot.storage.outbox import LEASE_SENDER, OutboxItem, OutboxRepo, SentMark
from bot.storage.repository import ArchiveRepo

__all__ = [
    "Drain",
    "DrainReport",
    "Progress",
    "retry_delay",
]

log = logging.getLogger(__name__)

Progress = Callable[[int, int, int], None]
"""Called after every row a drain finishes: (sent, failed, rows due when it started)."""

PAPER_CACHE: Final = 256  # papers kept while draining (one paper goes to many chats)
MESSAGE_CACHE: Final = 512  # rendered cards and headers kept while draining
BUFFER_ROWS: Final = 16_384  # due rows held in memory while draining (see Delivery)
BULK_CHATS: Final = 100  # new chats on one page from which all subscribers are loaded at once
MAX_PASSES: Final = 1000
RETRY_BASE: Final = timedelta(seconds=1)  # the first retry after a 5xx or a lost connection
RETRY_CAP: Final = timedelta(minutes=5)  # the longest wait between two attempts
MAX_AGE: Final = timedelta(days=3)  # a row still failing this long after it was queued fails
PAUSE_RETRY: Final = timedelta(hours=1)  # a closed topic or a missing right: try again
RETRY_HOLD: Final = timedelta(seconds=30)
"""A drain whose rows wait for a retry due within this long waits for it instead of ending
(the next drain would only come DRAIN_INTERVAL later)."""



@dataclass(frozen=True, slots=True)
class DrainReport:
    """What one drain did; ``locked`` means another sender holds the lease (nothing done)."""

    sent: int = 0
    failed: int = 0  # gave up: counted in the outbox's "failed" state as well
    retried: int = 0  # left pending for a later attempt (network trouble, flood wait)
    cancelled: int = 0  # chat gone, paper gone, no longer wanted
    pending_left: int = 0  # pending rows after the drain, due or not
    plain: int = 0  # of `sent`, how many went as plain text after Telegram refused them
    migrated: int = 0  # groups that turned out to be supergroups now
    errors: int = 0  # rows left untouched by an unexpected error (logged)
    locked: bool = False


# --------------------------------------------------------------------------- pure helpers


def retry_delay(attempts: int, base: timedelta = RETRY_BASE, cap: timedelta = RETRY_CAP, *,
                jitter: float = 1.0) -> timedelta:
    """Backoff after the ``attempts``-th failure: base, 2×, 4×, … up to ``cap``, with
    "equal jitter": half the step, plus ``jitter`` (0 to 1) times the other half, so the
    rows that one outage failed together do not all come back in the same second."""
    step: timedelta = min(cap, base * (2 ** min(max(0, attempts - 1), 30)))
    return step / 2 + step / 2 * min(1.0, max(0.0, jitter))


_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    """Store ``value``, dropping the oldest entry beyond MESSAGE_CACHE; returns it."""
    if len(cache) >= MESSAGE_CACHE:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real exception in a (nested) exception group."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


# --------------------------------------------------------------------------- drain state


class _Next(Enum):
    """What a chat's queue does after one row."""

    CONTINUE = "continue"
    SKIPPED = "skipped"  # nothing was sent: no pause before the chat's next row
    STOP = "stop"  # the chat's later rows wait (retry, flood, gone) until a later drain
    MOVED = "moved"  # the rows moved to another chat id: another pass sends them


class _Skip(Exception):
    """The row must not be sent (its paper left the archive, ...)."""


@dataclass(eq=False, slots=True)
class _Lane:
    """One chat's rows during a pass: sent in order by one task at a time.

    A pass keeps a lane for every chat it met (10 000 in a broadcast): a list, not a
    deque (760 bytes even when empty), and slots keep one under 200 bytes when idle; a
    lane holds at most ``chat_buffer`` rows, so taking the first off a list costs nothing.
    """

    chat_id: int
    rows: list[OutboxItem] = field(default_factory=list)
    chat: Chat | None = None  # loaded when the lane first runs in its pass
    loaded: bool = False
    running: bool = False
    accepting: bool = True  # False: this chat's later rows wait for the next pass
    stopped: bool = False  # True: drop what is buffered, too


@dataclass(eq=False)
class _Run:
    """The mutable state of one drain."""

    progress: Progress | None
    total: int
    sent: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    plain: int = 0
    migrated: int = 0
    errors: int = 0
    lost: bool = False  # the lease went to someone else: stop sending
    halted: bool = False  # everything fails alike (network down): stop trying
    transient_streak: int = 0
    probe: asyncio.Lock = field(default_factory=asyncio.Lock)  # one send at a time while
    # an outage lasts: each later pass spends one attempt to learn whether it is over
    buffered: int = 0
    room: asyncio.Event = field(default_factory=asyncio.Event)
    papers: OrderedDict[str, asyncio.Task[ArchivedPaper | None]] = field(
        default_factory=OrderedDict)
    # Rendered once per drain, not once per chat: (arXiv id, digest, style, language)
    # -> the paper it was rendered from and the message; headers by what they show.
    cards: dict[tuple[str, str | None, str, str], tuple[ArchivedPaper, Outgoing]] = field(
        default_factory=dict)
    headers: dict[tuple[str, str, int, str, str], Outgoing] = field(default_factory=dict)
    listed: set[int] = field(default_factory=set)  # rows a list message took care of

    @property
    def stopping(self) -> bool:
        return self.lost or self.halted

    def report_progress(self) -> None:
        if self.progress is not None:
            try:
                self.progress(self.sent, self.failed, self.total)
            except Exception:
                log.exception("the drain's progress callback failed")

    def report(self, pending_left: int) -> DrainReport:
        return DrainReport(sent=self.sent, failed=self.failed, retried=self.retried,
                           cancelled=self.cancelled, pending_left=pending_left,
                           plain=self.plain, migrated=self.migrated, errors=self.errors)


@dataclass(eq=False)
class _Pass:
    rerun: bool = False  # rows were left for another pass (moved chat, full buffer)
    progress: bool = False
    # The subscribers as the pass found them, once a page brought many new chats; chats
    # not in it (inactive, unknown, following nothing) are still looked up one by one.
    chats: dict[int, Chat] | None = None


class _Acks:
    """Group commit of "sent" marks: one transaction for all the sends that finished
    while the previous one was being written.

    Why: a transaction per message was most of the sender's database work at hundreds
    of messages a second. Each worker still waits for its own mark before it sends its
    next message, so what a crash can repeat stays "at most one message per worker";
    a batch commits whole or not at all, and its rows stay pending if it fails.
    """

    def __init__(self, outbox: OutboxRepo) -> None:
        self._outbox = outbox
        self._marks: list[SentMark] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, mark: SentMark) -> None:
        """Return once ``mark`` is committed; if the caller is cancelled meanwhile, the
        mark is still written (Telegram has the message) before the cancellation goes on."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks.append(mark)
        self._waiters.append(done)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
            # Its failure reaches every waiter; retrieving it here keeps asyncio from
            # logging it a second time when the task is collected.
            self._writer.add_done_callback(
                lambda task: None if task.cancelled() else task.exception())
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            await done
            raise

    async def _write(self) -> None:
        while self._marks:
            marks, waiters = self._marks, self._waiters
            self._marks, self._waiters = [], []
            error: BaseException | None = None
            try:
                await self._outbox.mark_sent_many(marks)
            except BaseException as exc:  # handed to the waiters, re-raised below if fatal
                error = exc
            if error is not None and not isinstance(error, Exception):
                # Cancelled or dying: fail the marks queued meanwhile too, so that no
                # worker waits for a writer that is gone.
                waiters += self._waiters
                self._marks, self._waiters = [], []
            for waiter in waiters:
                if not waiter.done():
                    if error is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(error)
            if error is not None and not isinstance(error, Exception):
                raise error


# --------------------------------------------------------------------------- the service


class Drain:
    """Sends what the outbox holds; one instance per process, ``owner`` unique."""

    def __init__(
        self,
        archive: ArchiveRepo,
        chats: ChatRepo,
        outbox: OutboxRepo,
        sender: Sender,
        clock: Clock,
        *,
        blog_base_url: str | None,
        owner: str,
        workers: int = 16,
        max_age: timedelta = MAX_AGE,
        lease_ttl: timedelta = timedelta(seconds=60),
        retry_base: timedelta = RETRY_BASE,
        retry_cap: timedelta = RETRY_CAP,
        retry_hold: timedelta = RETRY_HOLD,
        pause_retry: timedelta = PAUSE_RETRY,
        jitter: Callable[[], float] = random.random,
        private_gap: float = 1.0,
        group_gap: float = 3.0,
        page_size: int = 500,
        chat_buffer: int = 64,
        buffer_rows: int = BUFFER_ROWS,
        may_send: Callable[[], bool] | None = None,
        notifier: AdminNotifier | None = None,
        roundups: RoundupSource | None = None,
    ) -> None:
        if min(workers, page_size, chat_buffer, buffer_rows) < 1:
            raise ValueError("workers, page_size, chat_buffer and buffer_rows must be >= 1")
        self._archive = archive
        self._chats = chats
        self._outbox = outbox
        self._sender = sender
        self._clock = clock
        self._blog = blog_base_url
        self._owner = owner
        self._workers = workers
        self._outage_after = max(3, workers)  # failures in a row that mean an outage
        self._max_age = max_age
        self._lease_ttl = lease_ttl
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._retry_hold = retry_hold
        self._pause_retry = pause_retry
        self._jitter = jitter
        self._wake = asyncio.Event()  # set when rows are queued during a drain
        self._private_gap = private_gap
        self._group_gap = group_gap
        self._page_size = page_size
        self._chat_buffer = chat_buffer
        # Several processes on one database: only the active instance sends (see
        # bot.services.leader); None (one process, the tests) always may.
        self._may_send = may_send
        self._notifier = notifier
        self._roundups = roundups
        # Many chats' rows at once: each chat may only get a message a second, so the
        # rate a drain can reach is about the number of chats it has rows of.
        self._buffer_rows = max(buffer_rows, workers)
        self._acks = _Acks(outbox)
        self._draining = False
        self._again = False
        self._stopped = False
        self._drain_task: asyncio.Task[Any] | None = None
        # chat id -> event-loop time before which its next message must wait; kept
        # between passes and drains, so a chat is never sent a burst across them.
        self._ready: dict[int, float] = {}

    # drain ------------------------------------------------------------------------------

    async def drain(self, *, progress: Progress | None = None) -> DrainReport:
        """Send every due row, if this process holds (or gets) the sender lease.

        Returns at once with ``locked`` when another owner holds the lease, when this
        process is not the active instance (``may_send``: the active one sends what is
        queued here), or when this instance is already draining (that drain then makes
        one more pass, so rows queued meanwhile are not missed).
        """
        if self._may_send is not None and not self._may_send():
            return DrainReport(locked=True)
        if self._stopped:
            return DrainReport(locked=True)
        if self._draining:
            self._again = True
            self._wake.set()
            return DrainReport(locked=True)
        self._draining = True
        task = self._drain_task = asyncio.current_task()
        try:
            return await self._drain(progress)
        except asyncio.CancelledError:
            if not self._stopped or task is None:
                raise
            task.uncancel()  # our own cancel (stop), not the caller's: return normally
            log.info("the outbox drain stopped for shutdown; what is pending goes out "
                     "after the restart")
            return DrainReport(locked=True)
        finally:
            self._draining = False
            self._drain_task = None

    def stop(self) -> None:
        """Shutdown: cut the running drain short and start no other.

        python-telegram-bot's Application.stop waits for running jobs, and a broadcast
        can take hours, while a process manager kills what has not exited after 10 to
        90 s. A cancelled drain is safe: unsent rows stay pending, the messages in flight
        may go twice (as after a crash), and the sender lease is handed back.
        """
        self._stopped = True
        if self._drain_task is not None:
            self._drain_task.cancel()

    async def _drain(self, progress: Progress | None) -> DrainReport:
        now = self._clock.now()
        moment = asyncio.get_running_loop().time()
        self._ready = {c: t for c, t in self._ready.items() if t > moment}
        if not await self._outbox.acquire_lease(LEASE_SENDER, self._owner, self._lease_ttl):
            pending = (await self._outbox.counts())["pending"]
            log.info("the sender lease is held by another process; not draining")
            return DrainReport(locked=True, pending_left=pending)
        run = _Run(progress, total=await self._outbox.due_count(now))
        keeper = asyncio.create_task(self._keep_lease(run))
        try:
            for _ in range(MAX_PASSES):
                self._again = False
                self._wake.clear()
                state = await self._pass(run)
                if run.lost or self._stopped:
                    break
                if not run.halted and (self._again or (state.rerun and state.progress)):
                    continue
                if not await self._await_retries(run):
                    break
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            for task in run.papers.values():
                task.cancel()
            if not run.lost:
                await self._outbox.release_lease(LEASE_SENDER, self._owner)
        report = run.report((await self._outbox.counts())["pending"])
        if report.sent or report.failed or report.cancelled or report.retried:
            log.info("drain: %s", report)
        return report

    async def _await_retries(self, run: _Run) -> bool:
        """Wait for the earliest retry if it is due within ``retry_hold`` (or for rows
        queued meanwhile); False when there is none so soon: the drain ends."""
        now = self._clock.now()
        soon = await self._outbox.next_retry(now)
        if soon is None or soon - now > self._retry_hold:
            return False
        run.halted = False
        waiting = asyncio.ensure_future(self._clock.sleep((soon - now).total_seconds()))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiting, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiting, woken):
                task.cancel()
        return True

    async def _keep_lease(self, run: _Run) -> None:
        """Renew the lease every ttl/3; if it was lost, stop sending."""
        interval = self._lease_ttl.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self._outbox.acquire_lease(LEASE_SENDER, self._owner,
                                                        self._lease_ttl)
            except Exception:
                log.exception("could not renew the sender lease; stopping this drain")
                held = False
            if not held:
                log.warning("the sender lease was taken over; stopping this drain")
                run.lost = True
                run.room.set()
                return

    async def _pass(self, run: _Run) -> _Pass:
        """One read of the due rows, page by page, each chat served by its own task."""
        state = _Pass()
        lanes: dict[int, _Lane] = {}
        slots = asyncio.Semaphore(self._workers)
        try:
            await self._fill(run, state, lanes, slots)
        except BaseExceptionGroup as group:  # TaskGroup wraps even a lone error
            raise _first(group) from None
        return state

    async def _fill(self, run: _Run, state: _Pass, lanes: dict[int, _Lane],
                    slots: asyncio.Semaphore) -> None:
        """Page through the due rows into the chats' queues, never too many at once."""
        async with asyncio.TaskGroup() as tasks:
            after = 0
            while not run.stopping:
                while run.buffered >= self._buffer_rows and not run.stopping:
                    run.room.clear()
                    await run.room.wait()
                if run.stopping:
                    break
                page = await self._outbox.due(self._clock.now(), after=after,
                                              limit=self._page_size)
                if state.chats is None and len({i.chat_id for i in page} - lanes.keys()
                                               ) >= BULK_CHATS:
                    # A broadcast: one query for all subscribers instead of one per chat
                    # (a chat's settings then count as of this moment for this pass).
                    state.chats = {c.chat_id: c for c in await self._chats.subscribers()}
                for item in page:
                    lane = lanes.get(item.chat_id)
                    if lane is None:
                        lane = lanes[item.chat_id] = _Lane(item.chat_id)
                    if not lane.accepting:
                        continue
                    if len(lane.rows) >= self._chat_buffer:
                        lane.accepting = False  # the rest of this chat: next pass
                        state.rerun = True
                        continue
                    lane.rows.append(item)
                    run.buffered += 1
                    if not lane.running:
                        lane.running = True
                        tasks.create_task(self._run_lane(lane, slots, run, state))
                if len(page) < self._page_size:
                    break
                after = page[-1].id

    def _gap(self, chat: Chat) -> float:
        return self._private_gap if chat.kind == "private" else self._group_gap

    async def _run_lane(self, lane: _Lane, slots: asyncio.Semaphore, run: _Run,
                        state: _Pass) -> None:
        """Send one chat's buffered rows in order; a worker slot only while sending."""
        loop = asyncio.get_running_loop()
        try:
            if not lane.loaded:  # once per pass, however often the lane runs dry and refills
                lane.chat = (state.chats or {}).get(lane.chat_id)
                if lane.chat is None:
                    async with slots:  # thousands of new lanes must not all query at once
                        lane.chat = await self._chats.get(lane.chat_id)
                lane.loaded = True
            chat = lane.chat
            if chat is None or not chat.active:
                why = "chat is unknown" if chat is None else (
                    f"chat is inactive: {chat.disabled_reason or 'disabled'}")
                cancelled = await self._outbox.cancel_chat(lane.chat_id, why)
                run.cancelled += cancelled
                state.progress = state.progress or cancelled > 0
                lane.accepting, lane.stopped = False, True
                return
            while lane.rows and not lane.stopped and not run.stopping:
                delay = self._ready.get(lane.chat_id, 0.0) - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                item = lane.rows[0]
                if item.id in run.listed:  # sent (or dropped) as part of a list message
                    lane.rows.pop(0)
                    self._release(run, 1)
                    continue
                async with slots:
                    if run.stopping:
                        break
                    outage = run.transient_streak >= self._outage_after
                    async with run.probe if outage else contextlib.nullcontext():
                        if run.stopping:
                            break
                        try:
                            step = await self._deliver(chat, item, run)
                        except Exception:
                            log.exception("delivering outbox row %d to chat %d failed "
                                          "unexpectedly; it stays pending", item.id,
                                          chat.chat_id)
                            run.errors += 1
                            step = _Next.STOP
                if step is not _Next.SKIPPED:
                    self._ready[lane.chat_id] = loop.time() + self._gap(chat)
                lane.rows.pop(0)
                self._release(run, 1)
                state.progress = True
                if step in (_Next.STOP, _Next.MOVED):
                    lane.accepting, lane.stopped = False, True
                    if step is _Next.MOVED:
                        state.rerun = True
        finally:
            self._release(run, len(lane.rows))
            lane.rows.clear()
            lane.running = False

    def _release(self, run: _Run, count: int) -> None:
        if count:
            run.buffered -= count
            if run.buffered < self._buffer_rows:
                run.room.set()

    # one row ---------------------------------------------------------------------------

    async def _deliver(self, chat: Chat, item: OutboxItem, run: _Run) -> _Next:
        """Send one row and record the outcome; says what the chat's queue does next."""
        if item.kind in ("header", "card") and (
                item.listed or (chat.mode == "digest" and item.digest_path is not None)):
            return await self._deliver_list(chat, item, run)
        try:
            message = await self._message(chat, item, run)
        except _Skip as skip:
            if await self._outbox.cancel(item.id, str(skip)):
                run.cancelled += 1
            return _Next.SKIPPED
        return await self._send(chat, item, message, run)

    async def _deliver_list(self, chat: Chat, item: OutboxItem, run: _Run) -> _Next:
        """Send ``item``'s digest as list messages (bot.domain.listing): its header and
        cards that are due, a line and a button per paper, ten to a message. Each
        message's rows are marked sent with its id; rows whose paper is gone or no
        longer wanted are cancelled. The chat's lane skips the rows listed here."""
        rows = [r for r in await self._outbox.listing(chat.chat_id, item.digest_path,
                                                      item.reason, self._clock.now())
                if r.id not in run.listed] or [item]
        cards = [r for r in rows if r.kind == "card" and r.arxiv_id]
        papers = {p.arxiv_id: p for p in await self._archive.get_papers(
            [r.arxiv_id for r in cards if r.arxiv_id])}
        entries: list[tuple[OutboxItem, ListEntry]] = []
        dropped: list[int] = []
        for row in cards:
            paper = papers.get(row.arxiv_id or "")
            if paper is None or (row.reason == "new" and not wants(chat, paper)):
                dropped.append(row.id)
                continue
            appearance = next((a for a in paper.appearances
                               if a.digest_path == row.digest_path), None)
            entries.append((row, ListEntry(paper, appearance)))
        header = next((r for r in rows if r.kind == "header"), None)
        if not entries and header is not None:
            dropped.append(header.id)
        if dropped:
            run.cancelled += await self._outbox.cancel_many(
                dropped, "the paper left the archive or the chat no longer follows it")
        run.listed.update(dropped)
        if not entries:
            return _Next.SKIPPED
        topic, day = self._listing_title(header, entries[0][1])
        messages = render_listing(topic, day, [e for _, e in entries], lang=chat.lang,
                                  reason=item.reason)
        for number, (shown, message) in enumerate(messages):
            part = [entries[i][0] for i in shown]
            if number == 0 and header is not None:
                part = [header, *part]
            outgoing = Outgoing(html=message.html, plain_fallback=plain_text(message.html),
                                buttons=message.buttons)
            step = await self._send(chat, part[0], outgoing, run,
                                    also=[r.id for r in part[1:]])
            if step is not _Next.CONTINUE:
                return step
            run.listed.update(r.id for r in part)
        return _Next.CONTINUE

    @staticmethod
    def _listing_title(header: OutboxItem | None, first: ListEntry
                       ) -> tuple[str | None, date | None]:
        """The topic and day a list is headed by: its header's, else its first paper's
        appearance in the digest (a list resumed after a failure has no header left)."""
        meta = dict(header.meta or {}) if header is not None else {}
        if meta.get("topic"):
            day = meta.get("date")
            return str(meta["topic"]), date.fromisoformat(day) if isinstance(day, str) else None
        if first.appearance is not None:
            return first.appearance.topic, first.appearance.date
        return None, None

    async def _send(self, chat: Chat, item: OutboxItem, message: Outgoing, run: _Run, *,
                    also: Sequence[int] = ()) -> _Next:
        """Send ``message`` as row ``item`` (and the rows ``also`` it shows); the
        outcome of a failure is ``item``'s alone."""
        plain = message.is_plain
        while True:
            try:
                message_id = await self._sender.send(chat, message)
                break
            except MessageRejected as exc:
                if message.is_plain:
                    log.error("Telegram refused even the plain text of outbox row %d for "
                              "chat %d: %s", item.id, chat.chat_id, exc.reason)
                    await self._outbox.mark_failed(item.id, f"rejected as plain text: {exc}")
                    run.failed += 1
                    run.report_progress()
                    return _Next.CONTINUE
                log.error("BUG: Telegram refused outbox row %d (%s %s) for chat %d: %s; "
                          "sending it as plain text", item.id, item.kind,
                          item.arxiv_id or item.digest_path, chat.chat_id, exc.reason)
                message = message.as_plain()
                plain = True
            except FloodWait as exc:
                wait = timedelta(seconds=max(1.0, exc.seconds))
                await self._outbox.mark_retry(item.id, str(exc), self._clock.now() + wait,
                                              count_attempt=False)
                run.retried += 1
                log.warning("flood control for chat %d: row %d waits %s", chat.chat_id,
                            item.id, wait)
                return _Next.STOP
            except TransientSendError as exc:
                return await self._transient(chat, item, exc, run)
            except ChatPaused as exc:
                return await self._paused(chat, item, exc, run)
            except ChatGone as exc:
                await self._chats.deactivate(chat.chat_id, exc.reason)
                cancelled = await self._outbox.cancel_chat(chat.chat_id, exc.reason)
                run.cancelled += cancelled
                log.info("chat %d is gone (%s): deactivated, %d deliveries cancelled",
                         chat.chat_id, exc.reason, cancelled)
                return _Next.STOP
            except ChatMigrated as exc:
                await self._chats.migrate(exc.old_id, exc.new_id)
                moved = await self._outbox.move_chat(exc.old_id, exc.new_id)
                run.migrated += 1
                log.info("chat %d became supergroup %d: %d deliveries moved there",
                         exc.old_id, exc.new_id, moved)
                return _Next.MOVED
        run.transient_streak = 0
        # Telegram has the message: record that even if this task is being cancelled
        # (a shutdown, or another chat's task failing), and only then give up.
        at = self._clock.now()
        for row_id in (*also, item.id):
            await self._acks.record(SentMark(row_id, message_id, at))
        run.sent += 1 + len(also)
        run.plain += plain
        run.report_progress()
        return _Next.CONTINUE

    async def _too_old(self, chat: Chat, item: OutboxItem, reason: str, now: datetime,
                       run: _Run) -> bool:
        """A row that still cannot go ``max_age`` after it was queued fails (an outage or
        a pause alone never fails a row before that); True when it did."""
        age = now - item.created_at
        if age < self._max_age:
            return False
        await self._outbox.mark_failed(item.id, reason)
        run.failed += 1
        run.report_progress()
        log.error("giving up on outbox row %d for chat %d: still failing %s after it was "
                  "queued (%d attempts): %s", item.id, chat.chat_id, age, item.attempts + 1,
                  reason)
        return True

    async def _paused(self, chat: Chat, item: OutboxItem, exc: ChatPaused, run: _Run
                      ) -> _Next:
        """A closed forum topic, a right taken away: the chat keeps its subscription and
        its queue, in order, and tries again every ``pause_retry`` (a reopened topic gets
        what it missed); only a row still blocked ``max_age`` after it was queued fails."""
        now = self._clock.now()
        if await self._too_old(chat, item, exc.reason, now, run):
            return _Next.CONTINUE
        await self._outbox.mark_retry(item.id, exc.reason, now + self._pause_retry,
                                      count_attempt=False)
        run.retried += 1
        if item.last_error == exc.reason:  # the hourly retry of a pause already told
            return _Next.STOP
        log.warning("chat %d cannot be posted to for now (%s): its deliveries wait and are "
                    "tried again in %s", chat.chat_id, exc.reason, self._pause_retry)
        if self._notifier is not None:
            html = render_paused_notice(chat.title, exc.reason, lang=chat.lang)
            try:
                told = await self._notifier.tell_admins(
                    chat, Outgoing(html=html, plain_fallback=plain_text(html)))
            except Exception:
                log.exception("BUG: telling the admins of paused chat %d failed",
                              chat.chat_id)
                told = False
            log.info("the admins of paused chat %d were %s", chat.chat_id,
                     "told" if told else "not reachable (no place the bot may write)")
        return _Next.STOP

    async def _transient(self, chat: Chat, item: OutboxItem, exc: TransientSendError,
                         run: _Run) -> _Next:
        """A 5xx, a lost connection, a timeout: retry soon, with backoff, keeping the
        chat's order; never give up because of an outage alone, only when the row has
        been failing for ``max_age`` since it was queued."""
        attempts = item.attempts + 1
        run.transient_streak += 1
        if run.transient_streak >= self._outage_after:
            # Every send fails alike: the network or Telegram is down. Stop here instead
            # of spending an attempt of every queued row on it; later passes probe with
            # one send until one gets through.
            run.halted = True
            run.room.set()
            if run.transient_streak == self._outage_after:
                log.warning("%d sends in a row failed (%s); pausing delivery, probing "
                            "with one send at each retry", run.transient_streak, exc.reason)
        now = self._clock.now()
        if await self._too_old(chat, item, exc.reason, now, run):
            return _Next.CONTINUE
        delay = retry_delay(attempts, self._retry_base, self._retry_cap,
                            jitter=self._jitter())
        await self._outbox.mark_retry(item.id, exc.reason, now + delay)
        run.retried += 1
        return _Next.STOP

    async def _message(self, chat: Chat, item: OutboxItem, run: _Run) -> Outgoing:
        """Render a row now, with the chat's current settings (each message once a drain)."""
        if item.kind == "header":
            meta: dict[str, Any] = dict(item.meta or {})
            key = (str(meta.get("topic") or ""), str(meta.get("date") or ""), item.papers,
                   chat.lang, item.reason)
            header = run.headers.get(key)
            if header is None:
                html = render_header(key[0], key[1], key[2], lang=chat.lang,
                                     reason=item.reason)
                header = _remember(run.headers, key,
                                   Outgoing(html=html, plain_fallback=plain_text(html)))
            return header
        if item.kind == "roundup":
            return await self._roundup(chat, item)
        if not item.arxiv_id:
            raise _Skip(f"a {item.kind!r} row without an arXiv id")
        paper = await self._paper(item.arxiv_id, run)
        if paper is None:
            raise _Skip("the paper is no longer in the archive")
        if item.reason == "new" and not wants(chat, paper):
            raise _Skip("the chat no longer follows this paper")
        style = chat.style
        card_key = (item.arxiv_id, item.digest_path, style, chat.lang)
        found = run.cards.get(card_key)
        if found is not None and found[0] is paper:  # rendered from this very paper
            return found[1]
        return _remember(run.cards, card_key, (paper, self._card(paper, item, style, chat)))[1]

    async def _roundup(self, chat: Chat, item: OutboxItem) -> Outgoing:
        week = str((item.meta or {}).get("week") or "")
        try:
            monday = date.fromisoformat(week)
        except ValueError:
            raise _Skip(f"a roundup row without a week: {week!r}") from None
        if self._roundups is None:
            raise _Skip("this process makes no roundups")
        message = await self._roundups.roundup(chat, monday)
        if message is None:
            raise _Skip("nothing to round up: the archive has no topics")
        return message

    def _card(self, paper: ArchivedPaper, item: OutboxItem,
              style: Literal["full", "compact"], chat: Chat) -> Outgoing:
        p = paper.paper
        fallback = f"{p.title}\n{p.abs_url}"
        appearance = next((a for a in paper.appearances if a.digest_path == item.digest_path),
                          None)
        try:
            card = render_card(paper, blog_base_url=self._blog, style=style,
                               appearance=appearance, lang=chat.lang)
        except Exception:
            log.exception("BUG: rendering %s failed; sending its title and link instead",
                          item.arxiv_id)
            return Outgoing(html=None, plain_fallback=plain_text(fallback))
        return Outgoing(html=card.html, plain_fallback=plain_text(card.html, fallback),
                        preview_url=card.preview_url, buttons=card.buttons)

    async def _paper(self, arxiv_id: str, run: _Run) -> ArchivedPaper | None:
        """The paper, loaded once per drain however many chats it goes to."""
        task = run.papers.get(arxiv_id)
        if task is None:
            task = asyncio.ensure_future(self._archive.get_paper(arxiv_id))
            run.papers[arxiv_id] = task
            while len(run.papers) > PAPER_CACHE:
                run.papers.popitem(last=False)
        else:
            run.papers.move_to_end(arxiv_id)
        try:
            return await asyncio.shield(task)
        except Exception:
            if run.papers.get(arxiv_id) is task:
                del run.papers[arxiv_id]
            raise
