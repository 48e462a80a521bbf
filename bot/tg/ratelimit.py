"""Flood control for every request the bot makes: python-telegram-bot's AIORateLimiter
(per-group limits, waiting out a 429) with the overall 30-a-second limit paced exactly.

Why a pacer in front of AIORateLimiter's overall limiter: see Pacer.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.constants import FloodLimit
from telegram.ext import AIORateLimiter

_Result = bool | dict[str, Any] | list[dict[str, Any]]  # what a Bot API request returns

SEND_LIMIT: int = FloodLimit.MESSAGES_PER_SECOND
"""Messages overall in any SEND_WINDOW: Telegram's documented 30 (replies included)."""
SEND_WINDOW: float = 1.0
"""Seconds: Telegram's second. Exact, because the pacer never starts a send until the one
SEND_LIMIT sends before it has been answered a whole window earlier (see Pacer)."""


class _Send:
    """One paced request: its answer (or failure) ends it."""

    __slots__ = ("ended",)

    def __init__(self, ended: asyncio.Future[float]) -> None:
        self.ended = ended


class Pacer:
    """At most ``limit`` sends in any ``window`` seconds as the server counts them,
    spread evenly.

    Slots lie on an absolute schedule, ``window / limit`` apart: a caller that wakes
    late (a busy event loop) does not push the later slots back, so lateness does not
    accumulate into a lower rate, and an idle pacer gives no credit for a burst. On top
    of that, a send starts only once the send ``limit`` places before it was *answered*
    ``window`` ago. The server counts each request somewhere between its start and its
    answer, so that holds on the server's clock too, whatever delays the requests on
    the way (network, a pause of either process): measured against the start of the
    earlier send instead, 30 ms of such jitter drew 429s from the test server. The cost
    is the answer time once every ``limit`` sends: 29.9 a second at a 3 ms round trip.
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

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def wait(self) -> _Send:
        """Return at this caller's slot (in the order callers came); pass the result to
        :meth:`done` once the request is answered or has failed."""
        now = self._now()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)
        while len(self._sends) == self.limit:
            ended = await asyncio.shield(self._sends[0].ended)  # waits while in flight
            free, now = ended + self.window, self._now()
            if free <= now:
                break
            await self._sleep(free - now)
        send = _Send(asyncio.get_running_loop().create_future())
        self._sends.append(send)
        return send

    def done(self, send: _Send) -> None:
        if not send.ended.done():
            send.ended.set_result(self._now())


class PacedRateLimiter(AIORateLimiter):
    """python-telegram-bot's AIORateLimiter (group limits, waiting out 429s) with the
    overall limit kept by a :class:`Pacer` instead of aiolimiter's bucket.

    Why: a bucket of 30 lets 60 messages through in the first second and bursts after
    every pause, which earns 429s; a bucket of one loses every moment the event loop
    is late (26.8 a second where it was set to 28, in the benchmark).
    The pacer takes a slot for each attempt at a request to a chat, inside the group
    limiter and the 429 handling of AIORateLimiter, so a retry takes a slot of its own.
    """

    def __init__(self, limit: int, window: float, **options: Any) -> None:
        super().__init__(overall_max_rate=0, **options)  # 0: no aiolimiter bucket overall
        self.pacer = Pacer(limit, window)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, _Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> _Result:
        """Like AIORateLimiter: only requests to a chat count (paid broadcasts apart)."""
        if data.get("chat_id") is None or data.get("allow_paid_broadcast"):
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)

        async def paced(*call_args: Any, **call_kwargs: Any) -> _Result:
            send = await self.pacer.wait()
            try:
                return await callback(*call_args, **call_kwargs)
            finally:
                self.pacer.done(send)

        return await super().process_request(paced, args, kwargs, endpoint, data,
                                             rate_limit_args)


def rate_limiter() -> PacedRateLimiter:
    """Telegram's limits: SEND_LIMIT messages in any SEND_WINDOW overall, 20 a minute
    into one group; a 429 that still comes is waited out (up to 5 times) before the
    send fails with FloodWait."""
    return PacedRateLimiter(SEND_LIMIT, SEND_WINDOW, group_max_rate=20, group_time_period=60,
                            max_retries=5)
