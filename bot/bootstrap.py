"""The composition root: builds the engine, repositories and services once, from Settings."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.domain.limits import Limits
from bot.redaction import RedactingFilter, Redactor
from bot.services.ingest import DeleteGuard, Ingestor
from bot.services.related import Related
from bot.services.scan import ScanStatus
from bot.services.trends import Trends
from bot.storage.chats import ChatRepo
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.outbox import OutboxRepo
from bot.storage.repository import ArchiveRepo
from bot.storage.saved import SavedRepo
from bot.storage.vectors import VectorRepo


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the CLI, the bot and the health server share, built in one place.

    Nothing here connects: the engine opens its first connection when a repository is
    first used. `open_services` migrates and disposes; the bot's runner builds these
    and adds what needs Telegram (delivery, the Application).
    """

    settings: Settings
    engine: AsyncEngine
    archive: ArchiveRepo
    chats: ChatRepo
    outbox: OutboxRepo
    ingestor: Ingestor
    scan_status: ScanStatus
    saved: SavedRepo
    trends: Trends  # the trend charts and their cache, shared by everyone in the process
    vectors: VectorRepo
    related: Related  # the papers' vectors and the index "Related" searches, in memory


def build_services(settings: Settings) -> Services:
    """The one builder of the engine, the repositories and the ingestor."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    archive = ArchiveRepo(sessions)
    vectors = VectorRepo(sessions)
    ingestor = Ingestor(archive, settings.digest_dir, blog_base_url=settings.blog_base_url,
                        guard=DeleteGuard(settings.delete_guard_share,
                                          settings.delete_guard_min),
                        max_file_bytes=settings.digest_max_bytes,
                        limits=Limits(settings.analysis_max_bytes, settings.figures_max))
    return Services(settings, engine, archive, ChatRepo(sessions), OutboxRepo(sessions),
                    ingestor, ScanStatus(redact=Redactor.from_settings(settings)),
                    SavedRepo(sessions), trends=Trends(archive), vectors=vectors,
                    related=Related(vectors))


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Migrate the database to the newest schema, then hand out the services."""
    services = build_services(settings)
    try:
        await migrate(services.engine)
        yield services
    finally:
        await services.engine.dispose()


class _QuietStartAbort(logging.Filter):
    """Drops python-telegram-bot's traceback for a start-up that gives up (Bot API out of
    reach, token refused): `run_bot` says the same in one line, naming the setting."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or not record.name.startswith("telegram"):
            return True
        message = record.getMessage()
        return not (message.startswith("Network Retry Loop") and "Abort" in message)


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to ``sys.stderr`` as it is at each record (as logging.lastResort does), so
    a command run in-process, whose stderr is swapped for its run, leaves no handler
    writing to a closed stream; ``setStream`` pins another stream."""

    def __init__(self) -> None:
        super().__init__()
        self._pinned: TextIO | None = None

    @property
    def stream(self) -> TextIO:
        return self._pinned or sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        self._pinned = None if value is sys.stderr else value


def _log_uncaught(kind: type[BaseException], error: BaseException,
                  trace: TracebackType | None) -> None:
    """sys.excepthook: a crash's traceback goes through the log, and so is redacted,
    instead of raw to stderr (its message may quote a URL or the token)."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("paperfeed").critical("uncaught exception", exc_info=(kind, error, trace))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    """threading.excepthook: the same for a worker thread (a chart, an index build)."""
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("paperfeed").critical(
        "uncaught exception in thread %s", name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def setup_logging(settings: Settings, *, quiet: bool = False) -> None:
    """One line per event on stderr, secrets redacted; chatty libraries kept at WARNING.

    Every command calls it, so every record is written by this one root handler, whose
    filter redacts it whichever logger made it (telegram, httpx, sqlalchemy, …); an
    uncaught exception is logged there too. ``quiet``: commands whose output is a report
    show warnings and errors only.
    """
    handler = _Stderr()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter(Redactor.from_settings(settings)))
    handler.addFilter(_QuietStartAbort())
    level = max(logging.WARNING, settings.log_level_number) if quiet \
        else settings.log_level_number
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # tornado.general: a stranger's malformed request to the webhook port is not news.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "alembic",
                  "tornado.general", "tornado.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    # Library warnings (matplotlib, SQLAlchemy, …) as records of this handler: redacted
    # and formatted like the rest, not printed raw to stderr from whichever thread.
    logging.captureWarnings(True)
