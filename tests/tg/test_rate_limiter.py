"""The overall send limit (bot.tg.ratelimit: Pacer, PacedRateLimiter) on a virtual clock.

Why virtual: what matters is the schedule the limiter produces, and a fake clock whose
sleeps can be made to overshoot (a busy event loop wakes callers late) shows it exactly,
without a test that sleeps or depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.tg.ratelimit import ChatPacer, PacedRateLimiter, Pacer, Priority, rate_limiter

LIMIT, WINDOW = 30, 1.0
BROADCAST = int(Priority.BROADCAST)
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
        await asyncio.sleep(0)  # as a real sleep, let others run meanwhile


def pacer(time: VirtualTime, limit: int = LIMIT, window: float = WINDOW) -> Pacer:
    return Pacer(limit, window, clock=time.clock, sleep=time.sleep)


async def starts(p: Pacer, time: VirtualTime, count: int) -> list[float]:
    """A backlog: ``count`` sends, each answered at once and asking as soon as the
    previous one started."""
    out = []
    for _ in range(count):
        send = await p.wait(Priority.BROADCAST)  # the even schedule is the broadcast's
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
    slow = await p.wait(Priority.BROADCAST)
    others = await starts(p, time, 2)
    assert others == pytest.approx([1000 + 1 / 3, 1000 + 2 / 3])
    time.now = 1000.9
    p.done(slow)  # answered 900 ms after it started (a pause, a slow network)
    (next_start,) = await starts(p, time, 1)
    assert next_start == pytest.approx(1001.9)  # not at 1001.0, its slot


async def test_a_send_waits_while_the_one_a_window_before_is_unanswered() -> None:
    time = VirtualTime()
    p = pacer(time, limit=2, window=1.0)
    in_flight = await p.wait(Priority.BROADCAST)
    await starts(p, time, 1)
    waiting = asyncio.ensure_future(p.wait(Priority.BROADCAST))
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
    limiter = PacedRateLimiter(2, 1.0, chats=ChatPacer(clock=time.clock, sleep=time.sleep))
    limiter.pacer = pacer(time, limit=2, window=1.0)
    called: list[tuple[str, float]] = []

    async def request(endpoint: str) -> Any:
        called.append((endpoint, time.now))
        return True

    for endpoint, data in [("sendMessage", {"chat_id": 1}), ("sendMessage", {"chat_id": 2}),
                           ("getMe", {}), ("answerCallbackQuery", {"callback_query_id": "x"}),
                           ("sendMessage", {"chat_id": 3})]:
        await limiter.process_request(request, (endpoint,), {}, endpoint, data, BROADCAST)
    assert called == [("sendMessage", 1000.0), ("sendMessage", 1000.5), ("getMe", 1000.5),
                      ("answerCallbackQuery", 1000.5), ("sendMessage", 1001.0)]
    assert all(send.ended.done() for send in limiter.pacer._sends)  # each one answered


# --- priorities -------------------------------------------------------------------------


async def test_a_reply_takes_the_next_slot_ahead_of_a_broadcast_backlog() -> None:
    """16 broadcast sends wait (a drain's workers); a reply that comes after them is
    served at the very next slot, and the broadcast gets every other slot."""
    time = VirtualTime()
    p = pacer(time)
    order: list[str] = []

    async def one(name: str, priority: Priority) -> None:
        send = await p.wait(priority)
        order.append(name)
        p.done(send)

    broadcast = [asyncio.ensure_future(one(f"b{i}", Priority.BROADCAST)) for i in range(16)]
    await asyncio.sleep(0)
    reply = asyncio.ensure_future(one("reply", Priority.REPLY))
    await asyncio.gather(*broadcast, reply)
    # b0 had its slot before the reply arrived; the reply goes right after it.
    assert order[:2] == ["b0", "reply"]
    assert order[2:] == [f"b{i}" for i in range(1, 16)]


async def test_a_cancelled_waiter_gives_its_slot_to_the_next() -> None:
    time = VirtualTime()
    p = pacer(time)
    first = await p.wait()
    p.done(first)
    waiting = asyncio.ensure_future(p.wait(Priority.BROADCAST))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    send = await p.wait()
    p.done(send)
    assert p.waiting == 0


# --- per chat ---------------------------------------------------------------------------


def limiter_on(time: VirtualTime) -> PacedRateLimiter:
    limiter = PacedRateLimiter(30, 1.0, chats=ChatPacer(clock=time.clock, sleep=time.sleep))
    limiter.pacer = pacer(time)
    return limiter


async def test_messages_into_one_private_chat_are_a_second_apart() -> None:
    time = VirtualTime()
    limiter = limiter_on(time)
    starts: dict[int, list[float]] = {}

    async def request(chat_id: int) -> Any:
        starts.setdefault(chat_id, []).append(time.now)
        return True

    for _ in range(3):  # a card, then two parts of its analysis
        await limiter.process_request(request, (7,), {}, "sendMessage", {"chat_id": 7}, None)
    await limiter.process_request(request, (8,), {}, "sendMessage", {"chat_id": 8}, None)
    assert starts[7] == pytest.approx([1000.0, 1001.0, 1002.0])
    # Another chat is not held back by chat 7's pace, only by the overall slots.
    assert starts[8][0] - starts[7][-1] <= INTERVAL + 1e-9


async def test_a_group_takes_twenty_messages_a_minute() -> None:
    time = VirtualTime()
    limiter = limiter_on(time)
    starts: list[float] = []

    async def request() -> Any:
        starts.append(time.now)
        return True

    for _ in range(21):
        await limiter.process_request(request, (), {}, "sendMessage", {"chat_id": -100}, None)
    assert starts[19] - starts[0] < 1.0  # a burst of 20 is allowed
    assert starts[20] >= starts[0] + 60.0  # the 21st waits for the first's minute


async def test_edits_and_chatless_requests_skip_the_chat_pace() -> None:
    time = VirtualTime()
    limiter = limiter_on(time)
    starts: list[tuple[str, float]] = []

    async def request(endpoint: str) -> Any:
        starts.append((endpoint, time.now))
        return True

    for endpoint, data in [("sendMessage", {"chat_id": 5}),
                           ("editMessageText", {"chat_id": 5, "message_id": 1}),
                           ("answerInlineQuery", {"inline_query_id": "q"}),
                           ("sendChatAction", {"chat_id": 5})]:
        await limiter.process_request(request, (endpoint,), {}, endpoint, data, BROADCAST)
    assert [t for _, t in starts] == pytest.approx([1000.0, 1000.0 + INTERVAL, 1000.0 + INTERVAL,
                                                    1000.0 + 2 * INTERVAL])


async def test_a_429_blocks_only_its_chat_and_a_reply_is_retried() -> None:
    time = VirtualTime()
    limiter = limiter_on(time)
    calls: list[tuple[int, float]] = []
    refuse = {7: 1}

    async def request(chat_id: int) -> Any:
        calls.append((chat_id, time.now))
        if refuse.get(chat_id):
            refuse[chat_id] -= 1
            raise RetryAfter(timedelta(seconds=5))
        return True

    assert await limiter.process_request(request, (7,), {}, "sendMessage", {"chat_id": 7},
                                         None)
    await limiter.process_request(request, (8,), {}, "sendMessage", {"chat_id": 8}, None)
    chat_7 = [t for c, t in calls if c == 7]
    assert chat_7[1] - chat_7[0] >= 5.0  # waited out, for chat 7
    # Chat 8 was asked after chat 7 finished, so this only shows it was not blocked too:
    assert next(t for c, t in calls if c == 8) - chat_7[1] <= INTERVAL + 1e-9


async def test_a_429_on_a_broadcast_is_raised_at_once() -> None:
    """The delivery reschedules the row; its worker must not sleep in the limiter."""
    time = VirtualTime()
    limiter = limiter_on(time)
    calls = 0

    async def request() -> Any:
        nonlocal calls
        calls += 1
        raise RetryAfter(timedelta(seconds=30))

    with pytest.raises(RetryAfter):
        await limiter.process_request(request, (), {}, "sendMessage", {"chat_id": 9},
                                      int(Priority.BROADCAST))
    assert calls == 1
    # A reply to that chat now waits for the block instead of drawing another 429.
    assert limiter.chats.lane(9).free_at() >= time.now + 29.0


async def test_a_long_429_is_not_waited_out_for_a_reply() -> None:
    time = VirtualTime()
    limiter = limiter_on(time)

    async def request() -> Any:
        raise RetryAfter(timedelta(seconds=120))

    with pytest.raises(RetryAfter):
        await limiter.process_request(request, (), {}, "sendMessage", {"chat_id": 3}, None)


async def test_chats_whose_limits_have_passed_are_forgotten() -> None:
    time = VirtualTime()
    chats = ChatPacer(clock=time.clock, sleep=time.sleep)
    for chat_id in range(1, ChatPacer.PRUNE_ABOVE + 1):
        chats.answered(chats.lane(chat_id))
    time.now += 2.0  # every private chat's second has passed
    chats.lane(-1)
    assert len(chats._lanes) == 1


async def test_replies_at_once_go_at_once_while_the_window_has_room() -> None:
    """Thirty people write at the same moment to an idle bot: thirty answers start at
    once (the last second had room for thirty), the thirty-first a second later."""
    time = VirtualTime()
    p = pacer(time)
    starts: list[float] = []

    async def reply() -> None:
        send = await p.wait(Priority.REPLY)
        starts.append(time.now)
        p.done(send)

    await asyncio.gather(*(reply() for _ in range(31)))
    assert starts[:30] == [1000.0] * 30
    assert starts[30] >= 1001.0
    assert most_in_any_window(sorted(starts), WINDOW) == LIMIT
