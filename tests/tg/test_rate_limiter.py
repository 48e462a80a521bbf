"""The overall send limit (bot.tg.ratelimit: Pacer, PacedRateLimiter) on a virtual clock.

Why virtual: what matters is the schedule the limiter produces, and a fake clock whose
sleeps can be made to overshoot (a busy event loop wakes callers late) shows it exactly,
without a test that sleeps or depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.tg.ratelimit import PacedRateLimiter, Pacer, rate_limiter

LIMIT, WINDOW = 30, 1.0
INTERVAL = WINDOW / LIMIT


class VirtualTime:
    """A clock that moves only when someone sleeps; ``late`` is added to every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.late = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds) + self.late


def pacer(time: VirtualTime, limit: int = LIMIT, window: float = WINDOW) -> Pacer:
    return Pacer(limit, window, clock=time.clock, sleep=time.sleep)


async def starts(p: Pacer, time: VirtualTime, count: int) -> list[float]:
    """A backlog: ``count`` sends, each answered at once and asking as soon as the
    previous one started."""
    out = []
    for _ in range(count):
        send = await p.wait()
        out.append(time.now)
        p.done(send)
    return out


def most_in_any_window(times: list[float], window: float) -> int:
    """The most starts in any half-open window [t, t + window), as Telegram counts."""
    best, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - window:
            first += 1
        best = max(best, last - first + 1)
    return best


async def test_sends_are_spread_evenly_at_the_limit() -> None:
    time = VirtualTime()
    times = await starts(pacer(time), time, 300)
    assert times[0] == 1000.0  # the first goes at once
    assert times[1:] == pytest.approx([1000.0 + k * INTERVAL for k in range(1, 300)])
    assert most_in_any_window(times, WINDOW) == LIMIT


async def test_late_wake_ups_do_not_lower_the_rate() -> None:
    time = VirtualTime()
    time.late = 0.004  # every sleep ends 4 ms late
    times = await starts(pacer(time), time, 600)
    # A limiter that restarts its interval from each late wake-up would lose 4 ms a send
    # (2.4 s here); the schedule loses at most one late wake-up every LIMIT sends.
    assert times[-1] - times[0] <= 599 * INTERVAL + (600 / LIMIT + 1) * 0.004 + 1e-9
    assert most_in_any_window(times, WINDOW) <= LIMIT


async def test_catching_up_after_a_stall_never_exceeds_the_limit() -> None:
    time = VirtualTime()
    p = pacer(time)
    before = await starts(p, time, 45)
    time.now += 0.5  # the whole process stalled half a second
    after = await starts(p, time, 300)
    times = before + after
    assert most_in_any_window(times, WINDOW) <= LIMIT
    # The missed slots are made up: 345 sends end where the schedule says, give or take
    # the one window the catch-up may have to wait for.
    assert times[-1] - times[0] <= 344 * INTERVAL + WINDOW


async def test_a_slow_answer_holds_back_the_send_a_window_later() -> None:
    """The server may count a request as late as its answer: the send ``limit`` places
    later waits for a whole window after that answer, not after the request's start."""
    time = VirtualTime()
    p = pacer(time, limit=3, window=1.0)
    slow = await p.wait()
    others = await starts(p, time, 2)
    assert others == pytest.approx([1000 + 1 / 3, 1000 + 2 / 3])
    time.now = 1000.9
    p.done(slow)  # answered 900 ms after it started (a pause, a slow network)
    (next_start,) = await starts(p, time, 1)
    assert next_start == pytest.approx(1001.9)  # not at 1001.0, its slot


async def test_a_send_waits_while_the_one_a_window_before_is_unanswered() -> None:
    time = VirtualTime()
    p = pacer(time, limit=2, window=1.0)
    in_flight = await p.wait()
    await starts(p, time, 1)
    waiting = asyncio.ensure_future(p.wait())
    await asyncio.sleep(0)
    assert not waiting.done()  # the first is still unanswered
    time.now += 3.0
    p.done(in_flight)
    p.done(await waiting)
    assert time.now >= 1003.0


async def test_a_pause_gives_no_credit_for_a_burst() -> None:
    time = VirtualTime()
    p = pacer(time)
    await starts(p, time, 5)
    time.now += 60.0  # nothing to send for a minute
    first, second = await starts(p, time, 2)
    assert second - first == pytest.approx(INTERVAL)


def test_the_product_limiter_is_telegrams_limit_with_a_margin() -> None:
    limiter = rate_limiter()
    assert (limiter.pacer.limit, limiter.pacer.window) == (30, 1.0)
    with pytest.raises(ValueError, match="limit"):
        Pacer(0, 1.0)


async def test_only_requests_to_a_chat_are_paced() -> None:
    time = VirtualTime()
    limiter = PacedRateLimiter(2, 1.0, max_retries=0)
    limiter.pacer = pacer(time, limit=2, window=1.0)
    called: list[tuple[str, float]] = []

    async def request(endpoint: str) -> Any:
        called.append((endpoint, time.now))
        return True

    for endpoint, data in [("sendMessage", {"chat_id": 1}), ("sendMessage", {"chat_id": 2}),
                           ("getMe", {}), ("answerCallbackQuery", {"callback_query_id": "x"}),
                           ("sendMessage", {"chat_id": 3})]:
        await limiter.process_request(request, (endpoint,), {}, endpoint, data, None)
    assert called == [("sendMessage", 1000.0), ("sendMessage", 1000.5), ("getMe", 1000.5),
                      ("answerCallbackQuery", 1000.5), ("sendMessage", 1001.0)]
    assert all(send.ended.done() for send in limiter.pacer._sends)  # each one answered
