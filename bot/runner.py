"""`paperfeed run`: the composition root of the running bot.

`assemble` builds the engine, repositories, services, the bot and the Application once,
wires the scan to delivery, and is used as is by the end-to-end tests; `run_bot` adds
the jobs and hands control to python-telegram-bot's run loop.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update

from bot.config import Settings
from bot.domain.models import IngestReport
from bot.scheduling import register_jobs
from bot.services.delivery import Delivery
from bot.services.ingest import Ingestor
from bot.services.ports import SystemClock
from bot.services.scan import ScanStatus
from bot.storage.chats import ChatRepo
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.outbox import OutboxRepo
from bot.storage.repository import ArchiveRepo
from bot.tg.app import AnyApp, build_application, make_bot, startup
from bot.tg.deps import Deps
from bot.tg.polling import PollingRequest
from bot.tg.sender import TelegramSender

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Assembly:
    """Everything `paperfeed run` is made of."""

    engine: AsyncEngine
    deps: Deps
    app: AnyApp


def assemble(settings: Settings, **builder_options: Any) -> Assembly:
    """Build every part once; nothing connects until the Application starts."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    archive = ArchiveRepo(sessions)
    chats = ChatRepo(sessions)
    outbox = OutboxRepo(sessions)
    ingestor = Ingestor(archive, settings.digest_dir, blog_base_url=settings.blog_base_url)
    polling = PollingRequest(connection_pool_size=1)
    bot = make_bot(settings, polling)
    delivery = Delivery(
        archive, chats, outbox, TelegramSender(bot), SystemClock(),
        default_tz=settings.timezone, default_daily_time=settings.daily_time,
        blog_base_url=settings.blog_base_url,
        owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
    )
    deps = Deps(settings, archive, chats, ingestor, outbox, delivery, ScanStatus())

    async def deliver_new(report: IngestReport) -> None:
        if report.new_appearances and await delivery.enqueue_new(report):
            await delivery.drain()

    deps.scan_status.hooks.append(deliver_new)
    app = build_application(deps, bot, polling, **builder_options)
    return Assembly(engine, deps, app)


def run_bot(settings: Settings) -> None:
    """Run until interrupted (Ctrl-C, SIGTERM); the database is migrated first."""
    holder: list[Assembly] = []

    async def post_init(app: AnyApp) -> None:
        parts = holder[0]
        await migrate(parts.engine)
        if not settings.digest_dir.is_dir():
            log.warning("digest folder %s does not exist yet; scanning it every %ss anyway",
                        settings.digest_dir, settings.scan_interval)
        await startup(app, parts.deps)
        log.info("paperfeed running as @%s", app.bot.username)

    async def post_shutdown(app: AnyApp) -> None:
        await holder[0].engine.dispose()

    parts = assemble(settings, post_init=post_init, post_shutdown=post_shutdown)
    holder.append(parts)
    register_jobs(parts.app, parts.deps)
    parts.app.run_polling(allowed_updates=Update.ALL_TYPES)
