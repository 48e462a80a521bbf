"""Delivery: new papers become outbox rows (bot.services.planning), and the outbox is
worked through, never losing one (bot.services.drain).

The two halves share only the database. `Delivery` is both, built from one set of
settings, because that is what the bot, the CLI and the tests hold: one object that
queues and sends.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import time, timedelta

from bot.services.drain import (
    BUFFER_ROWS,
    MAX_AGE,
    PAUSE_RETRY,
    RETRY_BASE,
    RETRY_CAP,
    RETRY_HOLD,
    Drain,
    DrainReport,
    Progress,
)
from bot.services.planning import Planner
from bot.services.ports import AdminNotifier, Clock, Sender
from bot.storage.chats import ChatRepo
from bot.storage.outbox import OutboxRepo
from bot.storage.repository import ArchiveRepo

__all__ = ["Delivery", "DrainReport", "Progress"]


class Delivery(Planner, Drain):
    """Queues deliveries (Planner) and sends them (Drain); one instance per process."""

    def __init__(
        self,
        archive: ArchiveRepo,
        chats: ChatRepo,
        outbox: OutboxRepo,
        sender: Sender,
        clock: Clock,
        *,
        default_tz: str,
        default_daily_time: time,
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
    ) -> None:
        Planner.__init__(self, archive, chats, outbox, clock, default_tz=default_tz,
                         default_daily_time=default_daily_time)
        Drain.__init__(
            self, archive, chats, outbox, sender, clock, blog_base_url=blog_base_url,
            owner=owner, workers=workers, max_age=max_age, lease_ttl=lease_ttl,
            retry_base=retry_base, retry_cap=retry_cap, retry_hold=retry_hold,
            pause_retry=pause_retry, jitter=jitter, private_gap=private_gap,
            group_gap=group_gap, page_size=page_size, chat_buffer=chat_buffer,
            buffer_rows=buffer_rows, may_send=may_send, notifier=notifier)
