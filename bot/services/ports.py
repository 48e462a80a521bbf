"""What delivery needs from the outside world: a sender, a clock, and the ways a send fails.

Delivery (bot.services.delivery) only knows these types, so it can be tested with a fake
sender and a settable clock, and the Telegram adapter (bot.tg.sender) is the only place
that imports ``telegram``. Every failure a sender can report is one of the exceptions
below (or ChatGone from bot.errors); delivery decides from the type alone what happens
to the outbox row.

    PaperfeedError
    ├── ChatGone (bot.errors)  403 / chat not found: deactivate the chat, cancel its rows
    ├── ChatPaused (bot.errors) topic closed, no right to send: the rows wait, retried hourly
    └── SendError
        ├── ChatMigrated       group became a supergroup: move the rows, resend there
        ├── FloodWait          429 that escaped the rate limiter: keep the row, wait
        ├── TransientSendError network error, timeout, 5xx: retry with backoff, then fail
        └── MessageRejected    Telegram refused this message: resend it as plain text
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Protocol, runtime_checkable

from bot.domain.models import Chat
from bot.domain.rendering import Button
from bot.errors import ChatGone, PaperfeedError

__all__ = [
    "AdminNotifier",
    "ChatGone",
    "ChatMigrated",
    "Clock",
    "FloodWait",
    "MessageRejected",
    "Outgoing",
    "RoundupSource",
    "SendError",
    "Sender",
    "SystemClock",
    "TransientSendError",
]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send.

    ``html`` is Telegram HTML (parse_mode HTML); None means "send ``plain_fallback`` as
    plain text, without formatting, buttons or link preview" — what delivery does after
    Telegram rejected the formatted version. ``plain_fallback`` is always set, at most
    4096 UTF-16 units and non-empty.
    """

    html: str | None
    plain_fallback: str
    preview_url: str | None = None
    buttons: tuple[tuple[Button, ...], ...] = ()
    photo: bytes | None = None  # a picture (PNG) sent with ``html`` as its caption

    @property
    def is_plain(self) -> bool:
        return self.html is None

    def as_plain(self) -> Outgoing:
        """The same message as bare text: nothing Telegram could refuse to parse."""
        return replace(self, html=None, preview_url=None, buttons=(), photo=None)


class SendError(PaperfeedError):
    """A send did not happen; the subclass says what delivery should do about it."""


class ChatMigrated(SendError):
    """The group became a supergroup with a new id; resend there."""

    def __init__(self, old_id: int, new_id: int) -> None:
        super().__init__(f"chat {old_id} migrated to {new_id}")
        self.old_id = old_id
        self.new_id = new_id


class FloodWait(SendError):
    """Telegram's flood control (429) asked to wait; the message was not sent."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"flood control: retry after {seconds:g} s")
        self.seconds = seconds


class TransientSendError(SendError):
    """Network trouble, a timeout or a 5xx: the same send may well work later.

    After a timeout the message may in fact have arrived; a retry can then duplicate it,
    which the outbox accepts for in-flight messages.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MessageRejected(SendError):
    """Telegram refused this message itself (bad HTML, too long, empty, bad button)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class Sender(Protocol):
    """Sends one message to one chat and returns Telegram's message id.

    Raises ChatGone, ChatMigrated, FloodWait, TransientSendError or MessageRejected;
    anything else is a bug and propagates.
    """

    async def send(self, chat: Chat, message: Outgoing) -> int: ...


class AdminNotifier(Protocol):
    """Tells the people who run a chat something about it, where the bot can reach them.

    Used when a chat is paused (a closed topic, a right taken away): the chat itself may
    not be writable, so the notifier tries what it can (the group's General topic, the
    admins' private chats with the bot). Never raises for Telegram's refusals.
    """

    async def tell_admins(self, chat: Chat, message: Outgoing) -> bool:
        """True when at least one place took the message."""
        ...


class Clock(Protocol):
    """Wall-clock time, injectable so that due times, retries and leases are testable."""

    def now(self) -> datetime:
        """A timezone-aware datetime in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until ``now()`` is ``seconds`` later."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class RoundupSource(Protocol):
    """Makes a chat's weekly roundup when its row comes due (bot.services.roundup)."""

    async def roundup(self, chat: Chat, week: date) -> Outgoing | None: ...
