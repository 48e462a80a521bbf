"""Fault injection for the fake Bot API: flood control, 5xx answers, dropped sockets.

Why: the delivery code of the bot has to survive what Telegram really does under load
(429 with ``retry_after``, 502 from its front end, connections that die mid-request).
These hooks make each of those reproducible in a test: flood control is driven by an
injectable clock, and random faults come from a seeded RNG.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "FAULT_KINDS",
    "SEND_METHODS",
    "FaultInjector",
    "FaultKind",
    "FloodControl",
    "FloodRejection",
    "InjectedFault",
    "ManualClock",
    "RateWindow",
]

Clock = Callable[[], float]

#: Methods that create messages; these are what Telegram's flood limits count.
SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "sendmediagroup",
        "senddocument",
        "sendvideo",
        "sendaudio",
        "sendanimation",
        "sendvoice",
        "sendsticker",
        "sendlocation",
        "sendpoll",
        "copymessage",
        "forwardmessage",
    }
)

FaultKind = Literal[
    "http_500",  # answer 500 Internal Server Error, nothing happens
    "http_502",  # answer 502 Bad Gateway (Telegram's front end does this), nothing happens
    "http_503",
    "http_504",
    "drop",  # close the connection before doing anything: the request is lost
    "drop_after",  # do the work (e.g. the message IS sent), then close without answering
    "hang",  # never answer; hold the connection until the client gives up
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "drop",
    "drop_after",
    "hang",
)


class ManualClock:
    """A monotonic clock that only moves when the test says so.

    Pass it as ``FakeBotApi(clock=...)`` to make flood control and recorded send
    timestamps deterministic.  Note that PTB's own rate limiter uses the real event
    loop clock, so combine the two only when that is what the test means.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock can't go back")
        self.now += seconds


@dataclass(frozen=True)
class RateWindow:
    """At most ``limit`` accepted sends in any sliding window of ``period`` seconds."""

    limit: int
    period: float


@dataclass(frozen=True)
class FloodRejection:
    """One 429 answered by flood control."""

    at: float
    method: str
    chat_id: int
    retry_after: int
    window: str  # "global", "group" or "private"


@dataclass
class FloodControl:
    """Telegram's documented send limits, enforced with sliding windows.

    Defaults follow the Bot FAQ: about 30 messages per second overall, 20 messages per
    minute to one group or channel, about one message per second to one private chat
    (Telegram tolerates short bursts there; the fake does not, on purpose).
    """

    overall: RateWindow = RateWindow(30, 1.0)
    per_group: RateWindow = RateWindow(20, 60.0)
    per_private: RateWindow = RateWindow(1, 1.0)
    methods: frozenset[str] = SEND_METHODS
    _overall_log: deque[float] = field(default_factory=deque, repr=False)
    _chat_logs: dict[int, deque[float]] = field(default_factory=dict, repr=False)
    rejections: list[FloodRejection] = field(default_factory=list)

    def applies_to(self, method: str) -> bool:
        return method.lower() in self.methods

    def check(self, *, now: float, method: str, chat_id: int, is_private: bool) -> int | None:
        """Return ``retry_after`` seconds if the send must be refused, else record it."""
        chat_log = self._chat_logs.setdefault(chat_id, deque())
        chat_window = self.per_private if is_private else self.per_group
        checks = (
            ("global", self._overall_log, self.overall),
            ("private" if is_private else "group", chat_log, chat_window),
        )
        for name, log, window in checks:
            retry = self._retry_after(log, window, now)
            if retry is not None:
                self.rejections.append(FloodRejection(now, method, chat_id, retry, name))
                return retry
        self._overall_log.append(now)
        chat_log.append(now)
        return None

    @staticmethod
    def _retry_after(log: deque[float], window: RateWindow, now: float) -> int | None:
        while log and log[0] <= now - window.period:
            log.popleft()
        if len(log) < window.limit:
            return None
        # The send becomes possible when the oldest send still in the window expires.
        free_at = log[len(log) - window.limit] + window.period
        return max(1, math.ceil(free_at - now))

    @property
    def rejected(self) -> int:
        """How many 429s flood control has answered."""
        return len(self.rejections)


@dataclass
class _Script:
    kind: FaultKind
    method: str | None
    chat_id: int | None
    remaining: int


@dataclass(frozen=True)
class InjectedFault:
    """A fault that was actually applied to a request."""

    kind: FaultKind
    method: str
    chat_id: int | None
    scripted: bool


class FaultInjector:
    """Decides, per request, whether to sabotage it.

    Scripted faults are consumed first, in the order they were added; then, if random
    faults are enabled, a seeded RNG decides.  Method names are case-insensitive.
    """

    def __init__(self) -> None:
        self._scripts: list[_Script] = []
        self._rng: random.Random | None = None
        self._rate = 0.0
        self._kinds: tuple[FaultKind, ...] = ()
        self._methods: frozenset[str] = frozenset()
        self.injected: list[InjectedFault] = []

    def script(
        self,
        kind: FaultKind,
        *,
        method: str | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Apply ``kind`` to the next ``times`` requests matching method / chat."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        self._scripts.append(_Script(kind, method.lower() if method else None, chat_id, times))

    def enable_random(
        self,
        rate: float,
        *,
        seed: int,
        kinds: Iterable[FaultKind] = ("http_502", "drop"),
        methods: Iterable[str] = SEND_METHODS,
    ) -> None:
        """Sabotage each matching request with probability ``rate`` (seeded, repeatable)."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        self._rng = random.Random(seed)
        self._rate = rate
        self._kinds = tuple(kinds)
        self._methods = frozenset(m.lower() for m in methods)
        for kind in self._kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}")

    def disable_random(self) -> None:
        self._rng = None

    def clear(self) -> None:
        self._scripts.clear()
        self._rng = None

    @property
    def pending_scripts(self) -> int:
        return sum(s.remaining for s in self._scripts)

    def pick(self, method: str, chat_id: int | None) -> FaultKind | None:
        lowered = method.lower()
        for script in self._scripts:
            if script.method not in (None, lowered):
                continue
            if script.chat_id is not None and script.chat_id != chat_id:
                continue
            script.remaining -= 1
            if script.remaining <= 0:
                self._scripts.remove(script)
            self.injected.append(InjectedFault(script.kind, method, chat_id, scripted=True))
            return script.kind
        if (
            self._rng is not None
            and lowered in self._methods
            and self._kinds
            and self._rng.random() < self._rate
        ):
            kind = self._rng.choice(self._kinds)
            self.injected.append(InjectedFault(kind, method, chat_id, scripted=False))
            return kind
        return None


def default_clock() -> float:
    """The monotonic clock used when a test doesn't inject one."""
    return time.monotonic()
