"""The composition root: builds the engine, repositories and services once, from Settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.services.ingest import Ingestor
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
        ingestor = Ingestor(archive, settings.digest_dir, blog_base_url=settings.blog_base_url)
        yield Services(settings, engine, archive, ingestor)
    finally:
        await engine.dispose()


class _RedactToken(logging.Filter):
    """Keeps the bot token out of every log line: messages (httpx logs request URLs) and
    tracebacks (PTB's InvalidToken quotes it), plain or percent-encoded."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.secrets = tuple(dict.fromkeys(t for t in (token, quote(token, safe="")) if t))

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<token>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


class _QuietStartAbort(logging.Filter):
    """Drops python-telegram-bot's traceback for a start-up that gives up (Bot API out of
    reach, token refused): `run_bot` says the same in one line, naming the setting."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or not record.name.startswith("telegram"):
            return True
        message = record.getMessage()
        return not (message.startswith("Network Retry Loop") and "Abort" in message)


def setup_logging(settings: Settings) -> None:
    """One line per event, token redacted; chatty libraries kept at WARNING."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(_RedactToken(settings.telegram_token))
    handler.addFilter(_QuietStartAbort())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level_number)
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, settings.log_level_number))
