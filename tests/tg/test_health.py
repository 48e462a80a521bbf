"""/healthz, its HTTP server, the container probe, and what the logs may never show.

The health function is checked in-process against real SQLite files (a migrated one,
an empty one, one that cannot be opened); the server on a loopback port the OS picks
(with the webhook route, its /healthz says ok or error only); `paperfeed run` with
HEALTH_PORT as a real process against the fake Bot API. The server's limits are in
test_webhook_limits.py.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from telegram.ext import ApplicationBuilder

from bot.bootstrap import setup_logging
from bot.config import Settings
from bot.domain.models import IngestReport
from bot.health import HttpServer, WebhookRoute, health, probe, probe_url, web_app
from bot.services.scan import ScanStatus
from bot.storage.engine import head_revision, make_engine, make_sessionmaker, migrate
from bot.storage.outbox import OutboxRepo
from tests.botapi.server import FakeBotApi
from tests.fixtures.expected import FIXTURE_DISTINCT_IDS
from tests.tg.test_run_process import BotProcess, bot_env
from tests.tg.test_webhook import finish, free_port, webhook_process

# --- health() -----------------------------------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh SQLite file, not migrated yet."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'health.db'}")
    yield engine
    await engine.dispose()


async def check(engine: AsyncEngine, status: ScanStatus | None = None) -> tuple[int, Any]:
    return await health(engine, OutboxRepo(make_sessionmaker(engine)), status or ScanStatus())


async def test_a_migrated_database_is_ok(engine: AsyncEngine) -> None:
    await migrate(engine)
    scanned = ScanStatus(last_at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC))
    code, body = await check(engine, scanned)
    assert code == 200
    assert body == {
        "status": "ok",
        "database": {"reachable": True},
        "migrations": {"current": head_revision(), "head": head_revision()},
        "last_scan": "2024-05-06T07:08:09+00:00",
        "last_scan_error": None,
        "deletions_held": 0,
        "outbox": {"pending": 0, "failed": 0},
    }


async def test_files_held_back_from_deletion_are_degraded(engine: AsyncEngine) -> None:
    await migrate(engine)
    held = ScanStatus(last_at=datetime(2024, 5, 6, tzinfo=UTC),
                      last_report=IngestReport(files_seen=0, deletions_held=40))
    code, body = await check(engine, held)
    assert code == 200
    assert body["status"] == "degraded"
    assert body["deletions_held"] == 40


async def test_a_failed_scan_is_degraded_not_down(engine: AsyncEngine) -> None:
    await migrate(engine)
    code, body = await check(engine, ScanStatus(last_error="PermissionError: /digests"))
    assert code == 200
    assert body["status"] == "degraded"
    assert body["last_scan_error"] == "PermissionError: /digests"
    assert body["last_scan"] is None


async def test_a_database_behind_head_is_degraded(engine: AsyncEngine) -> None:
    code, body = await check(engine)  # reachable, never migrated: no outbox table either
    assert code == 200
    assert body["status"] == "degraded"
    assert body["migrations"] == {"current": None, "head": head_revision()}
    assert body["outbox"] is None


async def test_an_unreachable_database_is_503() -> None:
    # PostgreSQL on a port nobody listens on: refused at once. (A SQLite file that cannot
    # be opened would do too, but aiosqlite finishes a failed connect on its own thread
    # after the test's loop has closed.)
    engine = create_async_engine(f"postgresql+asyncpg://pf:pw@127.0.0.1:{free_port()}/pf")
    try:
        code, body = await check(engine)
    finally:
        await engine.dispose()
    assert code == 503
    assert body["status"] == "error"
    assert body["database"] == {"reachable": False}
    assert body["outbox"] is None


# --- the HTTP server ------------------------------------------------------------------


async def test_the_server_answers_healthz_only(engine: AsyncEngine) -> None:
    await migrate(engine)
    outbox = OutboxRepo(make_sessionmaker(engine))

    async def healthy() -> tuple[int, dict[str, Any]]:
        return await health(engine, outbox, ScanStatus())

    async def down() -> tuple[int, dict[str, Any]]:
        return 503, {"status": "error"}

    up_server = HttpServer.start(web_app(healthy), "127.0.0.1", 0)
    down_server = HttpServer.start(web_app(down), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            up = await client.get(f"http://127.0.0.1:{up_server.port}/healthz")
            assert up.status_code == 200
            assert up.json()["status"] == "ok"
            assert up.headers["content-type"].startswith("application/json")
            assert up.headers["cache-control"] == "no-store"
            gone = await client.get(f"http://127.0.0.1:{down_server.port}/healthz")
            assert gone.status_code == 503
            assert gone.json() == {"status": "error"}
            other = await client.get(f"http://127.0.0.1:{up_server.port}/hook")
            assert other.status_code == 404  # no webhook route without WEBHOOK_URL
    finally:
        await up_server.stop()
        await down_server.stop()


async def test_the_webhook_port_says_ok_or_error_only(engine: AsyncEngine) -> None:
    """The webhook port faces the internet: no schema, counts or errors for strangers."""
    await migrate(engine)
    outbox = OutboxRepo(make_sessionmaker(engine))
    failed_scan = ScanStatus(last_error="PermissionError: /srv/secret/digests")

    async def degraded() -> tuple[int, dict[str, Any]]:
        return await health(engine, outbox, failed_scan)

    async def down() -> tuple[int, dict[str, Any]]:
        return 503, {"status": "error", "database": {"reachable": False}}

    app = ApplicationBuilder().token("123:TEST").updater(None).build()  # never started
    route = WebhookRoute("/hook", app, "s3cret")
    public = HttpServer.start(web_app(degraded, route), "127.0.0.1", 0)
    public_down = HttpServer.start(web_app(down, route), "127.0.0.1", 0)
    private = HttpServer.start(web_app(degraded), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            up = await client.get(f"http://127.0.0.1:{public.port}/healthz")
            assert (up.status_code, up.json()) == (200, {"status": "ok"})
            assert up.headers["cache-control"] == "no-store"
            assert "secret" not in up.text
            gone = await client.get(f"http://127.0.0.1:{public_down.port}/healthz")
            assert (gone.status_code, gone.json()) == (503, {"status": "error"})
            full = await client.get(f"http://127.0.0.1:{private.port}/healthz")
            assert full.status_code == 200
            assert full.json()["status"] == "degraded"
            assert full.json()["last_scan_error"] == "PermissionError: /srv/secret/digests"
            assert full.json()["outbox"] == {"pending": 0, "failed": 0}
    finally:
        for server in (public, public_down, private):
            await server.stop()


# --- the container probe: python -m bot.health ------------------------------------------


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_probe_url_follows_the_mode() -> None:
    assert probe_url(settings()) is None  # polling without HEALTH_PORT: nothing to ask
    assert probe_url(settings(health_port=9000)) == "http://127.0.0.1:9000/healthz"
    webhook = settings(webhook_url="https://bot.example.org/hook", webhook_secret="s",
                       webhook_port=8443)
    assert probe_url(webhook) == "http://127.0.0.1:8443/healthz"
    assert probe_url(settings(health_port=9000, webhook_listen="10.0.0.5")) == (
        "http://10.0.0.5:9000/healthz")
    assert probe_url(settings(health_port=9000, webhook_listen="::1")) == (
        "http://[::1]:9000/healthz")


@pytest.fixture
def probe_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("WEBHOOK_URL", "WEBHOOK_LISTEN", "WEBHOOK_PORT", "WEBHOOK_SECRET",
                 "HEALTH_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return monkeypatch


async def test_probe_exit_status(probe_env: pytest.MonkeyPatch) -> None:
    assert await asyncio.to_thread(probe) == 0  # no health server configured

    async def healthy() -> tuple[int, dict[str, Any]]:
        return 200, {"status": "ok"}

    async def down() -> tuple[int, dict[str, Any]]:
        return 503, {"status": "error"}

    for answer, expected in ((healthy, 0), (down, 1)):
        server = HttpServer.start(web_app(answer), "127.0.0.1", 0)
        try:
            probe_env.setenv("HEALTH_PORT", str(server.port))
            assert await asyncio.to_thread(probe, 5.0) == expected
        finally:
            await server.stop()
    probe_env.setenv("HEALTH_PORT", str(free_port()))  # nobody listening
    assert await asyncio.to_thread(probe, 5.0) == 1


# --- paperfeed run with HEALTH_PORT ----------------------------------------------------


async def start_bot(tmp_path: Path, server: FakeBotApi, **extra: str) -> BotProcess:
    env = bot_env(tmp_path, server)
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET"):
        env.pop(name, None)
    env.update(WEBHOOK_LISTEN="127.0.0.1", **extra)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    return BotProcess(proc)


async def test_polling_serves_healthz_on_health_port(botapi: FakeBotApi, tmp_path: Path) -> None:
    port = free_port()
    bot = await start_bot(tmp_path, botapi, HEALTH_PORT=str(port))
    try:
        await bot.wait_for_line(f"health server listening on 127.0.0.1:{port}")
        await bot.wait_for_line(f"{FIXTURE_DISTINCT_IDS} papers new")  # the start-up scan
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"http://127.0.0.1:{port}/healthz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["migrations"]["current"] == head_revision()
        assert body["last_scan"] is not None
        assert body["outbox"] == {"pending": 0, "failed": 0}
        await botapi.wait_until_polling()  # and it still polls
        bot.proc.send_signal(signal.SIGTERM)
        code, log = await finish(bot)
        assert code == 0, log
        assert "Traceback" not in log
    finally:
        if bot.proc.returncode is None:
            bot.proc.kill()
            await bot.proc.wait()


async def test_webhook_mode_keeps_the_details_for_health_port(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    health_port = free_port()
    async with webhook_process(tmp_path, botapi, HEALTH_PORT=str(health_port)) as (bot, port):
        await bot.wait_for_line(f"health server listening on 127.0.0.1:{health_port}")
        await bot.wait_for_line(f"{FIXTURE_DISTINCT_IDS} papers new")  # the start-up scan
        async with httpx.AsyncClient(timeout=10) as client:
            public = await client.get(f"http://127.0.0.1:{port}/healthz")
            private = await client.get(f"http://127.0.0.1:{health_port}/healthz")
        assert (public.status_code, public.json()) == (200, {"status": "ok"})
        assert private.status_code == 200
        body = private.json()
        assert body["status"] == "ok"
        assert body["migrations"]["current"] == head_revision()
        assert body["outbox"] == {"pending": 0, "failed": 0}
        bot.proc.send_signal(signal.SIGTERM)
        code, log = await finish(bot)
        assert code == 0, log
        assert "Traceback" not in log


async def test_a_taken_health_port_is_one_line(botapi: FakeBotApi, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bot = await start_bot(tmp_path, botapi, HEALTH_PORT=str(port))
        try:
            line = await bot.wait_for_line("CRITICAL")
            assert f"the health server cannot listen on 127.0.0.1:{port}" in line
            code, log = await finish(bot)
            assert code == 1, log
            assert "Traceback" not in log
        finally:
            if bot.proc.returncode is None:
                bot.proc.kill()
                await bot.proc.wait()


async def wrong_token_run(botapi: FakeBotApi, tmp_path: Path) -> str:
    """`paperfeed run` (polling) with a token Telegram rejects: its whole stderr."""
    bot = await start_bot(tmp_path, botapi, TELEGRAM_TOKEN="999:WRONGwrongWRONG")
    try:
        await bot.wait_for_line("Telegram rejected TELEGRAM_TOKEN")
        code, log = await finish(bot)
    finally:
        if bot.proc.returncode is None:
            bot.proc.kill()
            await bot.proc.wait()
    assert code == 1, log
    return log


async def test_a_rejected_token_stops_polling_with_one_line(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    log = await wrong_token_run(botapi, tmp_path)
    last = log.rstrip().splitlines()[-1]  # ours, not an uncaught traceback
    assert "CRITICAL bot.runner: Telegram rejected TELEGRAM_TOKEN" in last
    assert "WRONGwrongWRONG" not in last


async def test_a_rejected_token_is_never_logged_when_polling(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    assert "WRONGwrongWRONG" not in await wrong_token_run(botapi, tmp_path)


# --- the token never reaches the log ---------------------------------------------------

TOKEN = "123456:AAH-secret_token-VALUE"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """setup_logging as `paperfeed run` calls it, writing into a buffer; root restored."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook, threading.excepthook
    setup_logging(settings(telegram_token=TOKEN, log_level="DEBUG"))
    buffer = io.StringIO()
    for handler in root.handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level, sys.excepthook, threading.excepthook = saved
        root.setLevel(level)
        logging.captureWarnings(False)


def test_httpx_request_lines_are_redacted(log_output: io.StringIO) -> None:
    url = f"https://api.telegram.org/bot{TOKEN}/getMe"
    logging.getLogger("httpx").warning('HTTP Request: %s %s "%s %d %s"', "POST", url,
                                       "HTTP/1.1", 200, "OK")
    logging.getLogger("telegram.ext.Updater").error(f"Network error on {url}")
    text = log_output.getvalue()
    assert TOKEN not in text
    assert text.count("https://api.telegram.org/bot<token>/getMe") == 2
    assert len(text.splitlines()) == 2  # one line per event


def test_tracebacks_are_redacted(log_output: io.StringIO) -> None:
    try:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
    except RuntimeError:
        logging.getLogger("telegram.ext.Application").exception("Invalid token")
    assert TOKEN not in log_output.getvalue()
