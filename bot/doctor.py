"""`paperfeed doctor`: is this installation ready to run, and if not, what to do.

Why a separate command: `paperfeed run` fails on the first problem it meets, one at a
time and mixed in with its logs. The doctor checks everything an operator can get wrong
(the settings, the database, the digest folder, the token) in one go, says what to do
for each failure, and changes nothing: it creates no database file and migrates nothing.
Secrets (the token, WEBHOOK_SECRET, a database password) never appear in its output.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Final

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from telegram import Bot
from telegram.error import InvalidToken, TelegramError
from telegram.request import HTTPXRequest

from bot.config import Settings, load_settings
from bot.errors import ConfigError
from bot.redaction import Redactor, hide_password
from bot.services.ingest import DeleteGuard
from bot.storage.engine import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    make_sessionmaker,
)
from bot.storage.repository import ArchiveRepo

DB_TIMEOUT: Final = 10.0
"""Seconds to reach the database: a firewalled PostgreSQL would otherwise hang."""

TELEGRAM_TIMEOUT: Final = 10.0
"""Seconds for getMe: long enough for a slow network, short enough to see an answer."""


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: ok True/False, or None when the check was skipped."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    def line(self) -> str:
        """"✓ name: detail", "✗ name: detail; fix", or "– name: detail" (skipped)."""
        mark = {True: "✓", False: "✗", None: "–"}[self.ok]
        fix = f" → {self.fix}" if self.fix and self.ok is False else ""
        return f"{mark} {self.name}: {self.detail}{fix}"


def failed(checks: list[Check]) -> bool:
    """Whether the doctor should exit with status 1."""
    return any(check.ok is False for check in checks)


async def doctor(settings: Settings | None = None) -> list[Check]:
    """Every check in order; without settings they are loaded (env and .env) first.

    A configuration that does not load stops here: every other check needs it. Each
    line shows URLs without their passwords, and is redacted besides, since it may
    quote an error message (a driver's, PTB's) that holds a secret.
    """
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            return [Check("configuration", False, str(exc),
                          "fix that variable in .env or the environment (see .env.example)")]
    database = await check_database(settings)
    checks = [
        check_configuration(settings),
        database,
        check_digest_dir(settings.digest_dir),
        await check_vanished_files(settings) if database.ok
        else Check(VANISHED, None, "skipped: no archive to compare with"),
        await check_token(settings),
    ]
    redact = Redactor.from_settings(settings)
    return [replace(c, detail=redact(c.detail), fix=redact(c.fix)) for c in checks]


def check_configuration(settings: Settings) -> Check:
    """The settings loaded; say which mode `paperfeed run` will use."""
    if settings.webhook_url:
        mode = f"webhook at {hide_password(settings.webhook_url)} (listening on " \
               f"{settings.webhook_listen}:{settings.webhook_port})"
    else:
        mode = "long polling"
    health = f", /healthz on port {settings.health_port}" if settings.health_port else ""
    return Check("configuration", True, f"loaded; paperfeed run uses {mode}{health}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


async def check_database(settings: Settings) -> Check:
    """Reachable, and at the newest migration (behind: say how to migrate)."""
    url = settings.database_url
    shown = hide_password(url)  # no part of the password, however the URL parses
    migrate_hint = "run `paperfeed ingest` or `paperfeed run` to migrate it"
    path = _sqlite_file(url)
    if path is not None:
        problem = _sqlite_problem(path)
        if problem == "missing":
            return Check("database", False, f"{shown} does not exist yet",
                         "run `paperfeed ingest` or `paperfeed run` to create and migrate it")
        if problem is not None:
            return Check("database", False, f"cannot open {shown}: {problem}",
                         "check DATABASE_URL and that the user running paperfeed may read "
                         "and write that file and its folder")
    engine = make_engine(url)
    try:
        async with asyncio.timeout(DB_TIMEOUT):
            current = await current_revision(engine)
    except TimeoutError:
        return Check("database", False, f"{shown} did not answer within {DB_TIMEOUT:.0f}s",
                     "check DATABASE_URL and that the database server is running")
    except Exception as exc:
        return Check("database", False, f"cannot connect to {shown}: {_first_line(exc)}",
                     "check DATABASE_URL and that the database server is running")
    finally:
        await engine.dispose()
    head = head_revision()
    if current == head:
        return Check("database", True, f"{shown}, schema at the newest migration ({head})")
    if current is None:
        return Check("database", False, f"{shown} is empty (never migrated; newest is {head})",
                     migrate_hint)
    if _known(current):
        return Check("database", False, f"{shown} is at migration {current}, behind {head}",
                     migrate_hint)
    return Check("database", False,
                 f"{shown} is at migration {current}, which this paperfeed does not know",
                 "a newer paperfeed migrated it: upgrade this installation")


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite DATABASE_URL; None for other databases and in-memory ones."""
    sa_url = make_url(url)
    database = sa_url.database or ""
    if sa_url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if sa_url.query.get("uri"):
        return None
    return Path(database).expanduser()


def _sqlite_problem(path: Path) -> str | None:
    """"missing", why the file cannot be opened, or None: read-only and synchronous.

    Why not just connect: connecting creates a missing file (make_engine even its
    folder), and a failed aiosqlite connect leaves its worker thread to finish after
    `asyncio.run` closed the loop, which prints a thread traceback. The standard sqlite3
    module opening the file read-only has neither problem.
    """
    if not path.exists():
        return "missing"
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            connection.execute("PRAGMA schema_version")
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None


def _known(revision: str) -> bool:
    """Whether this code ships `revision` (else a newer paperfeed wrote the schema)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False


def _is_date_folder(path: Path) -> bool:
    try:
        date.fromisoformat(path.name)
    except ValueError:
        return False
    return len(path.name) == 10 and path.is_dir()


def check_digest_dir(folder: Path) -> Check:
    """Exists, readable, and how much is in it (<YYYY-MM-DD>/<topic>.md)."""
    fix = "create it, or set DIGEST_DIR to the folder of <YYYY-MM-DD>/<topic>.md files"
    folder = folder.absolute()  # a relative DIGEST_DIR depends on where paperfeed runs
    if not folder.exists():
        return Check("digest folder", False, f"{folder} does not exist", fix)
    if not folder.is_dir():
        return Check("digest folder", False, f"{folder} is not a folder", fix)
    if not os.access(folder, os.R_OK | os.X_OK):
        return Check("digest folder", False, f"{folder} is not readable by this user",
                     "give the user running paperfeed read access to it")
    try:
        days = [child for child in folder.iterdir() if _is_date_folder(child)]
        files = sum(1 for day in days for file in day.glob("*.md") if file.is_file())
    except OSError as exc:
        return Check("digest folder", False, f"{folder}: {_first_line(exc)}",
                     "give the user running paperfeed read access to it")
    detail = f"{folder}: {files} digest files in {len(days)} date folders"
    if not files:
        detail += " (empty so far: the bot serves digests as they arrive)"
    return Check("digest folder", True, detail)


VANISHED: Final = "archive vs folder"


async def check_vanished_files(settings: Settings) -> Check:
    """Whether the folder still holds the files the archive was built from: a scan keeps
    the papers of files that vanish all at once (DeleteGuard), and says so here."""
    name = VANISHED
    engine = make_engine(settings.database_url)
    try:
        async with asyncio.timeout(DB_TIMEOUT):
            if await current_revision(engine) is None:
                return Check(name, True, "nothing archived yet")
            known = await ArchiveRepo(make_sessionmaker(engine)).file_states()
    except Exception as exc:
        return Check(name, True, f"not checked: the database is unavailable "
                                 f"({_first_line(exc)})")
    finally:
        await engine.dispose()
    folder = settings.digest_dir
    gone = [path for path in known if not (folder / path).is_file()]
    guard = DeleteGuard(settings.delete_guard_share, settings.delete_guard_min)
    if gone and guard.holds(len(gone), len(known)):
        return Check(name, False,
                     f"{len(gone)} of the {len(known)} digest files in the archive are gone "
                     f"from {folder.absolute()}; scans keep their papers",
                     "mount or restore the folder; if they were deleted on purpose, run "
                     "`paperfeed ingest --prune`")
    return Check(name, True, f"{len(known) - len(gone)} of {len(known)} archived files "
                             "present")


async def check_token(settings: Settings) -> Check:
    """getMe against BOT_API_URL: the token is valid and the server is reachable."""
    token = settings.telegram_token.get_secret_value()
    if not token:
        return Check("bot token", None,
                     "TELEGRAM_TOKEN not set, not checked (only `paperfeed run` needs it)")
    api = settings.bot_api_url
    shown = hide_password(api)
    request = HTTPXRequest(connect_timeout=TELEGRAM_TIMEOUT, read_timeout=TELEGRAM_TIMEOUT)
    bot = Bot(token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot", request=request)
    try:
        await bot.initialize()  # getMe
        me = bot.bot
    except InvalidToken:  # its message quotes the token: never shown
        return Check("bot token", False, f"{shown} rejected TELEGRAM_TOKEN",
                     "copy the token again from @BotFather (/mybots → API Token)")
    except TelegramError as exc:  # NetworkError, TimedOut, ...: may quote the URL
        reason = Redactor.from_settings(settings)(str(exc))
        return Check("bot token", False, f"cannot reach {shown}: {reason}",
                     "check BOT_API_URL and the network (proxy, firewall)")
    finally:
        await bot.shutdown()
    return Check("bot token", True, f"valid: @{me.username} (id {me.id}) via {shown}")
