"""The composition root: builds the engine, repositories and services once, from Settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.redaction import RedactingFilter, Redactor
from bot.services.ingest import DeleteGuard, Ingestor
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the CLI and the bot need, built in one place and passed down."""

    settings: Settings
    engine: AsyncEngine
    archive: ArchiveRepo
    ingestor: Ingestor


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Migrate the database to the newest schema, then hand out the services."""
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
        archive = ArchiveRepo(make_sessionmaker(engine))
        ingestor = Ingestor(archive, settings.digest_dir, blog_base_url=settings.blog_base_url,
                        guard=DeleteGuard(settings.delete_guard_share,
                                          settings.delete_guard_min))
        yield Services(settings, engine, archive, ingestor)
    finally:
        await engine.dispose()


class _QuietStartAbort(logging.Filter):
    """Drops python-telegram-bot's traceback for a start-up that gives up (Bot API out of
    reach, token refused): `run_bot` says the same in one line, naming the setting."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or not record.name.startswith("telegram"):
            return True
        message = record.getMessage()
        return not (message.startswith("Network Retry Loop") and "Abort" in message)


def setup_logging(settings: Settings) -> None:
    """One line per event, secrets redacted; chatty libraries kept at WARNING."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter(Redactor.from_settings(settings)))
    handler.addFilter(_QuietStartAbort())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level_number)
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, settings.log_level_number))
