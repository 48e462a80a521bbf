"""Flood control for every request the bot makes, as a python-telegram-bot rate limiter.

Telegram's limits (Bot FAQ): about 30 messages a second overall, about one a second into
one private chat, 20 a minute into one group or channel. Three rules keep them:

* **Overall**, a :class:`Pacer`: 30 slots a second on a fixed schedule, and at each slot
  the most urgent waiter goes. Replies to users (commands, buttons, menus) are more
  urgent than deliveries from the outbox, which the sender marks with
  ``rate_limit_args=Priority.BROADCAST``; so a user's answer never queues behind a
  broadcast, and the broadcast takes every slot nobody else wants.
* **Per chat**, a :class:`ChatPacer`: a message into a private chat starts only once the
  previous one into it was answered a second ago; into a group, once the one 20 before
  was answered a minute ago. A reply of several messages (a card and its analysis, an
  album) is spread out instead of drawing a 429, and it never holds up other chats.
* **A 429 that still comes** blocks that chat alone for ``retry_after`` seconds, never
  the whole bot (python-telegram-bot's AIORateLimiter pauses every request, so one busy
  chat would stall everyone). A reply is retried after the wait (twice at most, and only
  for short waits); a broadcast send fails at once with RetryAfter, so the delivery
  reschedules that row and its worker serves other chats meanwhile.

Requests without a chat (inline answers, callback answers, getUpdates, getMe) are not
paced at all: nothing in Telegram's limits counts them, and an inline answer must never
wait behind anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from typing import Any

from telegram.constants import FloodLimit
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)

_Result = bool | dict[str, Any] | list[dict[str, Any]]  # what a Bot API request returns

SEND_LIMIT: int = FloodLimit.MESSAGES_PER_SECOND
"""Messages overall in any SEND_WINDOW: Telegram's documented 30 (replies included)."""
SEND_WINDOW: float = 1.0
"""Seconds: Telegram's second. Exact, because the pacer never starts a send until the one
SEND_LIMIT sends before it has been answered a whole window earlier (see Pacer)."""
PRIVATE_LIMIT = (1, 1.0)
"""Messages into one private chat per seconds (the Bot FAQ's "about one a second")."""
GROUP_LIMIT = (FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP, 60.0)
"""Messages into one group or channel per seconds (20 a minute)."""
REPLY_RETRIES = 2
"""429s a reply is retried after (waiting them out for its chat only)."""
REPLY_MAX_WAIT = 10.0
"""Seconds of retry_after beyond which a reply is not retried: the user has moved on."""

_CHAT_METHODS = frozenset({"copymessage", "copymessages", "forwardmessage",
                           "forwardmessages"})


class Priority(IntEnum):
    """How urgent a request is; lower goes first. Passed as ``rate_limit_args``."""

    REPLY = 0
    BROADCAST = 1


def counts_as_message(endpoint: str) -> bool:
    """Whether Telegram counts this request against a chat's message limit."""
    name = endpoint.lower()
    return (name.startswith("send") and name != "sendchataction") or name in _CHAT_METHODS


def retry_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds (python-telegram-bot moves it from int to timedelta)."""
    with warnings.catch_warnings():  # int vs timedelta, see PTB_TIMEDELTA
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _Send:
    """One paced request: its answer (or failure) ends it."""

    __slots__ = ("ended",)

    def __init__(self, ended: asyncio.Future[float]) -> None:
        self.ended = ended


class Pacer:
    """At most ``limit`` sends in any ``window`` seconds as the server counts them,
    spread evenly, the most urgent waiter first.

    Slots lie on an absolute schedule, ``window / limit`` apart: a slot that is taken
    late (a busy event loop) does not push the later slots back, so lateness does not
    accumulate into a lower rate, and an idle pacer gives no credit for a burst. On top
    of that, a send starts only once the send ``limit`` places before it was *answered*
    ``window`` ago. The server counts each request somewhere between its start and its
    answer, so that holds on the server's clock too, whatever delays the requests on
    the way (network, a pause of either process): measured against the start of the
    earlier send instead, 30 ms of such jitter drew 429s from the test server. The cost
    is the answer time once every ``limit`` sends: 29.9 a second at a 3 ms round trip.

    Who gets a slot is decided when the slot comes, not when the waiter arrived: a
    reply that arrives while 16 broadcast sends wait takes the very next slot. Replies
    do not wait for the even schedule at all, only for the window rule: thirty people
    who write at once are answered at once when the last second had room for thirty,
    and the broadcast's schedule is not moved by them.
    """

    def __init__(self, limit: int, window: float, *,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._interval = window / limit
        self._clock = clock  # None: the running event loop's clock
        self._sleep = sleep
        self._next = -math.inf  # the earliest free slot
        self._sends: deque[_Send] = deque(maxlen=limit)  # the last `limit` sends
        self._waiting: list[tuple[int, int, asyncio.Future[_Send]]] = []  # a heap
        self._order = itertools.count()
        self._dispatcher: asyncio.Task[None] | None = None

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot now."""
        return sum(not f.done() for _, _, f in self._waiting)

    async def wait(self, priority: int = Priority.REPLY) -> _Send:
        """Return at this caller's slot; pass the result to :meth:`done` once the request
        is answered or has failed. Equal priorities go in the order they came."""
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[_Send] = loop.create_future()
        heapq.heappush(self._waiting, (int(priority), next(self._order), granted))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(self._dispatch(), name="pacer")
        try:
            return await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():  # granted, then cancelled
                self.done(granted.result())
            raise

    def done(self, send: _Send) -> None:
        if not send.ended.done():
            send.ended.set_result(self._now())

    def _head(self) -> asyncio.Future[_Send] | None:
        """The most urgent caller still waiting (cancelled ones are dropped)."""
        while self._waiting and self._waiting[0][2].done():
            heapq.heappop(self._waiting)
        return self._waiting[0][2] if self._waiting else None

    async def _dispatch(self) -> None:
        """Hand out slots while anyone waits; ends when nobody does."""
        while self._head() is not None:
            now = self._now()
            slot = max(self._next, now)
            if slot > now and self._waiting[0][0] >= Priority.BROADCAST:
                await self._sleep(slot - now)  # (a reply coming meanwhile takes it)
            while len(self._sends) == self.limit:
                ended = await asyncio.shield(self._sends[0].ended)  # waits while in flight
                free, now = ended + self.window, self._now()
                if free <= now:
                    break
                await self._sleep(free - now)
            head = self._head()
            if head is None:  # everyone gave up meanwhile: the slot stays free
                return
            priority = heapq.heappop(self._waiting)[0]
            if priority >= Priority.BROADCAST or slot <= self._now():
                self._next = slot + self._interval  # a reply ahead of its slot moves nothing
            send = _Send(asyncio.get_running_loop().create_future())
            self._sends.append(send)
            head.set_result(send)


@dataclass(slots=True)
class _Lane:
    """One chat's recent messages: when each was answered, and a 429's block."""

    limit: int
    window: float
    answered: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def free_at(self) -> float:
        """When the next message may start."""
        start = self.blocked_until
        if len(self.answered) >= self.limit:
            start = max(start, self.answered[-self.limit] + self.window)
        return start


class ChatPacer:
    """Telegram's per-chat limits: each chat's messages go one at a time, in the order
    they were asked for, and the one ``limit`` places before a message was answered
    ``window`` ago (1 per second in a private chat, 20 per minute in a group)."""

    PRUNE_ABOVE = 4096

    def __init__(self, *, private: tuple[int, float] = PRIVATE_LIMIT,
                 group: tuple[int, float] = GROUP_LIMIT,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.private = private
        self.group = group
        self._clock = clock
        self._sleep = sleep
        self._lanes: dict[int | str, _Lane] = {}
        self._prune_at = self.PRUNE_ABOVE

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def lane(self, chat_id: int | str) -> _Lane:
        lane = self._lanes.get(chat_id)
        if lane is None:
            if len(self._lanes) >= self._prune_at:
                self._prune()
            # A private chat's id is its user's, positive; groups and channels are
            # negative, or an @username (channels and supergroups only).
            limit, window = (self.private if isinstance(chat_id, int) and chat_id > 0
                             else self.group)
            lane = self._lanes[chat_id] = _Lane(limit, window)
        return lane

    def _prune(self) -> None:
        """Forget chats whose limits no longer hold anything back. The next prune waits
        until the table has doubled, so a broadcast to many chats prunes in O(1) a send."""
        now = self._now()
        for chat_id, lane in list(self._lanes.items()):
            if not lane.lock.locked() and lane.free_at() <= now:
                del self._lanes[chat_id]
        self._prune_at = max(self.PRUNE_ABOVE, 2 * len(self._lanes))

    async def wait_turn(self, lane: _Lane) -> None:
        """Call with ``lane.lock`` held: return when the chat may take its next message."""
        while (delay := lane.free_at() - self._now()) > 0:
            await self._sleep(delay)

    def answered(self, lane: _Lane) -> None:
        lane.answered.append(self._now())
        while len(lane.answered) > lane.limit:
            lane.answered.popleft()

    def block(self, lane: _Lane, seconds: float) -> None:
        lane.blocked_until = max(lane.blocked_until, self._now() + seconds)


class PacedRateLimiter(BaseRateLimiter[int]):
    """python-telegram-bot's rate-limiter interface, keeping the rules of this module's
    docstring. ``rate_limit_args`` is the request's :class:`Priority` (REPLY if unset)."""

    def __init__(self, limit: int = SEND_LIMIT, window: float = SEND_WINDOW, *,
                 chats: ChatPacer | None = None, reply_retries: int = REPLY_RETRIES,
                 reply_max_wait: float = REPLY_MAX_WAIT) -> None:
        self.pacer = Pacer(limit, window)
        self.chats = chats or ChatPacer()
        self.reply_retries = reply_retries
        self.reply_max_wait = reply_max_wait

    async def initialize(self) -> None:
        """Nothing to set up: the pacers start on first use."""

    async def shutdown(self) -> None:
        """Nothing to free: an idle pacer has no running task."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, _Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> _Result:
        chat_id = data.get("chat_id")
        if chat_id is None or data.get("allow_paid_broadcast"):
            return await callback(*args, **kwargs)
        priority = Priority.REPLY if rate_limit_args is None else Priority(rate_limit_args)
        if not counts_as_message(endpoint):  # an edit, getChatMember, ...: overall only
            return await self._paced(callback, args, kwargs, priority)
        with contextlib.suppress(ValueError, TypeError):  # "@channel" stays a username
            chat_id = int(chat_id)
        lane = self.chats.lane(chat_id)
        async with lane.lock:
            for attempt in itertools.count():
                await self.chats.wait_turn(lane)
                try:
                    return await self._paced(callback, args, kwargs, priority)
                except RetryAfter as exc:
                    wait = retry_seconds(exc)
                    self.chats.block(lane, wait)
                    if (priority is Priority.BROADCAST or attempt >= self.reply_retries
                            or wait > self.reply_max_wait):
                        raise
                    log.info("429 for %s into chat %s: retrying after %.0f s (that chat "
                             "only)", endpoint, chat_id, wait)
                finally:
                    self.chats.answered(lane)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _paced(self, callback: Callable[..., Coroutine[Any, Any, _Result]],
                     args: Any, kwargs: dict[str, Any], priority: Priority) -> _Result:
        send = await self.pacer.wait(priority)
        try:
            return await callback(*args, **kwargs)
        finally:
            self.pacer.done(send)


def rate_limiter() -> PacedRateLimiter:
    """Telegram's limits: SEND_LIMIT messages in any SEND_WINDOW overall, one a second
    into a private chat, 20 a minute into a group; a 429 blocks only its chat."""
    return PacedRateLimiter(SEND_LIMIT, SEND_WINDOW)
