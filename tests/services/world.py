"""The delivery tests' world: a real database, a fake sender that records and fails on
demand, and a settable clock. The `world` fixture (conftest.py) builds one per test."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from bot.domain.models import Chat, Paper
from bot.services.delivery import Delivery
from bot.services.ports import Outgoing, Sender
from bot.storage.chats import ChatRepo
from bot.storage.outbox import OutboxRepo
from bot.storage.repository import ArchiveRepo
from tests.storage.factories import make_digest, make_paper, state_of

T0 = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
DAY1 = date(2024, 6, 1)
DAY2 = date(2024, 6, 2)


# --------------------------------------------------------------------------- fakes


class Killed(BaseException):
    """The process dies: not an Exception, so nothing on the way may swallow it."""


@dataclass(frozen=True)
class Sent:
    chat_id: int
    message: Outgoing
    message_id: int

    @property
    def text(self) -> str:
        return self.message.html if self.message.html is not None else self.message.plain_fallback


@dataclass
class FakeSender:
    """Records sends; fails per chat from a script, by a rule, or dies after N sends."""

    log: list[Sent] = field(default_factory=list)
    failures: dict[int, list[Exception]] = field(default_factory=dict)
    rule: Callable[[Chat, Outgoing], Exception | None] | None = None
    kill_after: int | None = None
    overlap: int | None = None  # hold sends until this many are in flight at once
    inflight: int = 0
    max_inflight: int = 0
    calls: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _mine: int = 0
    _crowd: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, chat_id: int, *errors: Exception) -> None:
        self.failures.setdefault(chat_id, []).extend(errors)

    async def send(self, chat: Chat, message: Outgoing) -> int:
        self.calls += 1
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.overlap is not None:
                if self.inflight >= self.overlap:
                    self._crowd.set()
                await self._crowd.wait()
            await asyncio.sleep(0)  # a real send yields to the event loop
            queued = self.failures.get(chat.chat_id)
            if queued:
                raise queued.pop(0)
            if self.rule is not None:
                error = self.rule(chat, message)
                if error is not None:
                    raise error
            sent = Sent(chat.chat_id, message, next(self._ids))
            self.log.append(sent)
            self._mine += 1
            if self.kill_after is not None and self._mine >= self.kill_after:
                raise Killed  # Telegram has the message, the outbox never hears of it
            return sent.message_id
        finally:
            self.inflight -= 1

    def to(self, chat_id: int) -> list[str]:
        return [s.text for s in self.log if s.chat_id == chat_id]


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t

    def advance(self, **delta: float) -> None:
        self.t += timedelta(**delta)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds=seconds)
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    archive: ArchiveRepo
    chats: ChatRepo
    outbox: OutboxRepo
    sender: FakeSender
    clock: FakeClock

    def delivery(self, owner: str = "A", sender: Sender | None = None,
                 clock: FakeClock | None = None, *, outbox: OutboxRepo | None = None,
                 chats: ChatRepo | None = None, **options: object) -> Delivery:
        """A Delivery on this world; a test may swap in its own sender, clock or repos."""
        settings: dict[str, object] = {
            "default_tz": "UTC", "default_daily_time": time(9, 0),
            "blog_base_url": "https://blog.example.org", "owner": owner,
            "private_gap": 0.0, "group_gap": 0.0, "jitter": lambda: 1.0,
        }
        settings.update(options)
        return Delivery(self.archive, chats or self.chats, outbox or self.outbox,
                        sender or self.sender, clock or self.clock, **settings)  # type: ignore[arg-type]

    async def publish(self, topic: str, day: date, *papers: Paper) -> list[tuple[str, str]]:
        """Store a digest; return its new appearances, as an IngestReport would."""
        digest = make_digest(topic, day, papers)
        result = await self.archive.store_digest(digest, state_of(digest))
        return [(arxiv_id, result.path) for arxiv_id in result.new_appearances]

    async def chat(self, chat_id: int, *tags: str, everything: bool = False,
                   kind: str = "private", **settings: object) -> Chat:
        await self.chats.ensure(chat_id, kind, f"chat {chat_id}")
        chat = await self.chats.subscribe(chat_id, tags, everything=everything)
        if settings:
            chat = await self.chats.update_settings(chat_id, **settings)
        return chat


def paper(n: int, title: str | None = None, **fields: object) -> Paper:
    return make_paper(f"2406.{n:05d}", title=title or f"Paper number {n}", **fields)  # type: ignore[arg-type]


def kinds(texts: list[str]) -> list[str]:
    """Headers as "H:<topic> <n>", cards as their title."""
    out = []
    for text in texts:
        if text.startswith("📚"):
            topic = text.split("<b>")[1].split("</b>")[0]
            count = text.rsplit("· ", 1)[1].split()[0]
            out.append(f"H:{topic} {count}")
        else:
            out.append(text.split("<b>")[1].split("</b>")[0] if "<b>" in text else text)
    return out


def assert_resent_only_in_flight(world: World, chat_ids: list[int], in_flight: int,
                                 expected: list[str]) -> None:
    """After a crash and a survivor's drain: every chat got ``expected`` (as `kinds`),
    and only the ``in_flight`` messages the dead process never recorded came twice."""
    log = world.sender.log
    assert len(log) - len({(s.chat_id, s.text) for s in log}) == in_flight
    for chat_id in chat_ids:
        texts = world.sender.to(chat_id)
        assert max(texts.count(t) for t in texts) <= 2
        unique = [t for i, t in enumerate(texts) if t not in texts[:i]]
        assert kinds(unique) == expected
