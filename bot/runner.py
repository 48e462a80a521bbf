"""`paperfeed run`: the composition root of the running bot.

Builds the engine, repositories, services and the Telegram Application once, wires
the scan job and its hooks, and hands control to python-telegram-bot's run loop.
"""

from __future__ import annotations

import logging

from telegram import Update

from bot.config import Settings
from bot.scheduling import register_jobs
from bot.services.ingest import Ingestor
from bot.services.scan import ScanStatus
from bot.storage.chats import ChatRepo
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo
from bot.tg.app import AnyApp, build_application, startup
from bot.tg.deps import Deps

log = logging.getLogger(__name__)


def run_bot(settings: Settings) -> None:
    """Run until interrupted (Ctrl-C, SIGTERM); the database is migrated first."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    archive = ArchiveRepo(sessions)
    ingestor = Ingestor(archive, settings.digest_dir, blog_base_url=settings.blog_base_url)
    deps = Deps(settings, archive, ChatRepo(sessions), ingestor, ScanStatus())

    async def post_init(app: AnyApp) -> None:
        await migrate(engine)
        if not settings.digest_dir.is_dir():
            log.warning("digest folder %s does not exist yet; scanning it every %ss anyway",
                        settings.digest_dir, settings.scan_interval)
        await startup(app, deps)
        me = app.bot
        log.info("paperfeed running as @%s on %s", me.username, settings.database_url
                 .split("@")[-1])

    async def post_shutdown(app: AnyApp) -> None:
        await engine.dispose()

    application = build_application(deps, post_init=post_init, post_shutdown=post_shutdown)
    register_jobs(application, ingestor, deps.scan_status, settings.scan_interval)
    application.run_polling(allowed_updates=Update.ALL_TYPES)
