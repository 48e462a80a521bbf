"""Delivery: new papers become outbox rows (bot.services.planning), and the outbox is
worked through, never losing one (bot.services.drain).

The two halves share only the database. `Delivery` is both, built from one set of
settings, because that is what the bot, the CLI and the tests hold: one object that
queues and sends.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from bot.services.drain import Drain, DrainReport, Progress
from bot.services.planning import Planner
from bot.services.ports import Clock, Sender
from bot.storage.chats import ChatRepo
from bot.storage.outbox import OutboxRepo
from bot.storage.repository import ArchiveRepo

__all__ = ["Delivery", "DrainReport", "Progress"]


class Delivery(Planner, Drain):
    """Queues deliveries (Planner) and sends them (Drain); one instance per process.

    The drain's options (``owner``, ``workers``, ``max_age``, the retry and pacing knobs)
    are passed through to :class:`Drain` as they are, so they are declared once, there.
    """

    def __init__(self, archive: ArchiveRepo, chats: ChatRepo, outbox: OutboxRepo,
                 sender: Sender, clock: Clock, *, default_tz: str, default_daily_time: time,
                 **drain_options: Any) -> None:
        Planner.__init__(self, archive, chats, outbox, clock, default_tz=default_tz,
                         default_daily_time=default_daily_time)
        Drain.__init__(self, archive, chats, outbox, sender, clock, **drain_options)
