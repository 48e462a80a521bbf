"""`paperfeed run`: the composition root of the running bot.

`assemble` builds the engine, repositories, services, the bot and the Application once,
wires the scan to delivery, and is used as is by the end-to-end tests; `run_bot` adds
the jobs and runs the bot: by long polling (python-telegram-bot's run loop), or, when
WEBHOOK_URL is set, as a webhook server that also answers /healthz (see bot.health).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, NoReturn

from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.bootstrap import Services, build_services
from bot.config import Settings
from bot.domain.models import IngestReport
from bot.redaction import hide_password
from bot.scheduling import register_jobs
from bot.services.delivery import Delivery
from bot.services.feeds import Feeds
from bot.services.leader import LEASE_ACTIVE, ActiveInstance, reclaim_dead_lease
from bot.services.ports import SystemClock
from bot.services.roundup import Roundups
from bot.storage.engine import migrate
from bot.storage.outbox import LEASE_SENDER
from bot.tg.app import AnyApp, build_application, make_bot, startup
from bot.tg.deps import Deps
from bot.tg.polling import PollingRequest
from bot.tg.sender import TelegramSender

if TYPE_CHECKING:
    import tornado.web

    from bot.health import HealthCheck, HttpServer

log = logging.getLogger(__name__)

STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGABRT)  # as PTB's defaults


@dataclass(frozen=True, slots=True)
class Assembly:
    """Everything `paperfeed run` is made of."""

    engine: AsyncEngine
    services: Services
    deps: Deps
    app: AnyApp
    active: ActiveInstance


def assemble(settings: Settings, *, elected: bool = False, embed_after_scan: bool = False,
             **builder_options: Any) -> Assembly:
    """Build every part once; nothing connects until the Application starts.

    ``elected``: delivery sends only while this process is the active instance (as
    `paperfeed run` does, whose jobs hold the election); without it, as in the
    in-process tests that call the services themselves, it always may.
    ``embed_after_scan``: each scan, once delivery has queued its papers, starts
    embedding the papers that lack a vector in the background (`Related.refresh_soon`),
    as `paperfeed run` does; the end-to-end tests leave it off and refresh when they
    choose to, as they scan and drain.
    """
    services = build_services(settings)
    archive, chats, outbox = services.archive, services.chats, services.outbox
    polling = PollingRequest(connection_pool_size=1)
    bot = make_bot(settings, polling)
    owner = sender_owner()
    active = ActiveInstance(outbox, owner, SystemClock())
    sender = TelegramSender(bot)
    delivery = Delivery(
        archive, chats, outbox, sender, SystemClock(),
        default_tz=settings.timezone, default_daily_time=settings.daily_time,
        blog_base_url=settings.blog_base_url,
        owner=owner,
        max_age=timedelta(hours=settings.delivery_max_age),
        may_send=(lambda: active.active) if elected else None,
        notifier=sender,
        roundups=Roundups(archive, services.trends),
    )
    deps = Deps.of(services, delivery)

    async def deliver_new(report: IngestReport) -> None:
        # Not only this scan's papers: whatever is stored and not yet queued.
        queued = await delivery.announce_pending()
        if embed_after_scan:  # after the queueing, so the first cards never wait for it
            services.related.refresh_soon()
        if queued:
            await delivery.drain()

    deps.scan_status.hooks.append(deliver_new)
    app = build_application(deps, bot, polling, **builder_options)
    return Assembly(services.engine, services, deps, app, active)


class _CannotStart(Exception):
    """Start-up failed for a reason one log line explains (a port taken, a URL refused)."""


def sender_owner() -> str:
    """`host:pid:random`: unique per process, and says where the process ran."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_bot(settings: Settings) -> None:
    """Run until interrupted (Ctrl-C, SIGTERM); the database is migrated first.

    Webhook mode when WEBHOOK_URL is set, long polling otherwise. A failure to start is
    one CRITICAL line and exit status 1, never a traceback: a rejected token in
    particular, because python-telegram-bot's own message for it quotes the token.
    """
    try:
        if settings.webhook_url:
            asyncio.run(_serve_webhook(settings))
        else:
            _run_polling(settings)
    except InvalidToken:
        log.critical("Telegram rejected TELEGRAM_TOKEN (getMe answered Unauthorized); check "
                     "it with @BotFather, and BOT_API_URL (%s)",
                     hide_password(settings.bot_api_url))
        raise SystemExit(1) from None
    except NetworkError as exc:  # only start-up gives up: polling retries for ever
        log.critical("cannot reach the Bot API at %s (%s); check BOT_API_URL and the "
                     "network", hide_password(settings.bot_api_url), exc)
        raise SystemExit(1) from None
    except _CannotStart as exc:
        log.critical("%s", exc)
        raise SystemExit(1) from None


async def _prepare(parts: Assembly) -> None:
    """Once connected, before updates flow: migrate, warn about the folder, publish menus."""
    settings = parts.deps.settings
    await migrate(parts.engine)
    # A restart after a crash here: neither lease waits for the dead process's expiry.
    await reclaim_dead_lease(parts.deps.outbox, LEASE_SENDER)
    await reclaim_dead_lease(parts.deps.outbox, LEASE_ACTIVE)
    if not settings.digest_dir.is_dir():
        log.warning("digest folder %s does not exist yet; scanning it every %ss anyway",
                    settings.digest_dir, settings.scan_interval)
    # Papers stored before "Related" existed, or by an ingest since, are embedded after
    # the scan that becoming the active instance starts (`deliver_new`), not here: a
    # standby instance would embed them too.
    await startup(parts.app, parts.deps)
    log.info("paperfeed running as @%s", parts.app.bot.username)


def _http() -> ModuleType:
    """bot.health, imported only when an HTTP server is wanted: tornado comes with PTB's
    `webhooks` extra, and polling without HEALTH_PORT (and `assemble`) must not need it."""
    try:
        import bot.health
    except ImportError as exc:
        raise _CannotStart(f"WEBHOOK_URL and HEALTH_PORT need tornado ({exc}); install "
                           "python-telegram-bot[webhooks]") from None
    return bot.health


def _health_check(parts: Assembly) -> HealthCheck:
    async def check() -> tuple[int, dict[str, Any]]:
        result: tuple[int, dict[str, Any]] = await _http().health(
            parts.engine, parts.deps.outbox, parts.deps.scan_status)
        return result

    return check


def _feeds(parts: Assembly) -> Feeds:
    """The Atom feeds the HTTP servers serve (see bot.services.feeds)."""
    settings = parts.deps.settings
    return Feeds(parts.services.archive, SystemClock(), base_url=settings.feed_base_url,
                 blog_base_url=settings.blog_base_url)


def _listen(web: tornado.web.Application, listen: str, port: int, what: str) -> HttpServer:
    """Start one HTTP server now; a taken port becomes one line, not a traceback."""
    try:
        server: HttpServer = _http().HttpServer.start(web, listen, port)
    except OSError as exc:
        raise _CannotStart(f"the {what} cannot listen on {listen}:{port}: "
                           f"{exc.strerror or exc}") from None
    return server


def _run_polling(settings: Settings) -> None:
    """Long polling; /healthz on HEALTH_PORT when it is set."""
    holder: list[Assembly] = []
    servers: list[HttpServer] = []

    async def post_init(app: AnyApp) -> None:
        parts = holder[0]
        await _prepare(parts)
        # PTB's own stop signals raise SystemExit and then wait for running jobs; ours
        # stop the drain first, so a broadcast does not hold the shutdown for hours.
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, _stop_polling, parts.deps.delivery)
        if settings.health_port is not None:
            server = _listen(_http().web_app(_health_check(parts), feeds=_feeds(parts)),
                             settings.webhook_listen, settings.health_port, "health server")
            servers.append(server)
            log.info("health server listening on %s:%d (GET /healthz, /feeds/*.atom)",
                     server.listen, server.port)

    async def post_shutdown(app: AnyApp) -> None:
        if watcher is not None:
            await watcher.stop()
        for server in servers:
            await server.stop()
        await holder[0].active.resign()  # the jobs have stopped: nobody renews it again
        await holder[0].deps.related.close()
        await holder[0].engine.dispose()

    parts = assemble(settings, elected=True, embed_after_scan=True, post_init=post_init,
                     post_shutdown=post_shutdown)
    holder.append(parts)
    watcher = register_jobs(parts.app, parts.services, parts.deps.delivery, parts.active)
    parts.app.run_polling(allowed_updates=Update.ALL_TYPES, stop_signals=STOP_SIGNALS)


def _stop_polling(delivery: Delivery) -> NoReturn:
    """A stop signal: cut running drains short, then leave run_polling as PTB does."""
    delivery.stop()
    raise SystemExit


async def _serve_webhook(settings: Settings) -> None:
    """Webhook mode: our tornado server takes Telegram's POSTs and answers /healthz.

    PTB's `run_webhook` runs a server with the webhook route only, so this is PTB's
    "custom webhook server" pattern instead: the Application runs without an Updater,
    the server (bot.health) checks the secret header and queues each Update, and
    setWebhook is called here with the secret and every update type. The webhook is
    left set on exit, so Telegram keeps the updates that arrive during a restart.
    """
    http = _http()
    url = settings.webhook_url
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    if url is None or secret is None:  # pragma: no cover - Settings guarantees both
        raise _CannotStart("WEBHOOK_URL and WEBHOOK_SECRET must both be set")
    parts = assemble(settings, elected=True, embed_after_scan=True, updater=None)
    watcher = register_jobs(parts.app, parts.services, parts.deps.delivery, parts.active)
    app = parts.app
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    servers: list[HttpServer] = []
    try:
        async with app:  # initialize (getMe, so a bad token fails here) ... shutdown
            await _prepare(parts)
            await app.start()
            try:
                check = _health_check(parts)
                feeds = _feeds(parts)  # one cache for both servers
                route = http.WebhookRoute(settings.webhook_path, app, secret)
                webhook = _listen(http.web_app(check, route, feeds), settings.webhook_listen,
                                  settings.webhook_port, "webhook server")
                servers.append(webhook)
                extra_port = settings.health_port
                if extra_port is not None and extra_port != settings.webhook_port:
                    servers.append(_listen(http.web_app(check, feeds=feeds),
                                           settings.webhook_listen, extra_port,
                                           "health server"))
                try:
                    await app.bot.set_webhook(url, secret_token=secret,
                                              allowed_updates=Update.ALL_TYPES)
                except InvalidToken:
                    raise
                except TelegramError as exc:
                    raise _CannotStart(f"setWebhook failed for WEBHOOK_URL {url}: {exc}") from None
                log.info("webhook server listening on %s:%d (POST %s, GET /healthz, "
                         "/feeds/*.atom); Telegram posts to %s", webhook.listen, webhook.port,
                         settings.webhook_path, url)
                for extra in servers[1:]:
                    log.info("health server listening on %s:%d (GET /healthz, /feeds/*.atom)",
                             extra.listen, extra.port)
                await stop.wait()
            finally:
                for server in servers:
                    await server.stop()
                parts.deps.delivery.stop()  # Application.stop waits for running jobs
                if watcher is not None:
                    await watcher.stop()
                await app.stop()
                await parts.active.resign()  # after the jobs stopped: none renews it
                await parts.deps.related.close()
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        await parts.engine.dispose()
