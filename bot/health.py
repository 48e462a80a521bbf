"""`/healthz` for process managers, and the small HTTP server that hosts it.

Why an endpoint: a supervisor (Docker, systemd, Kubernetes) only sees that the process
is alive; it cannot tell a bot whose database went away from a healthy one. `health`
answers that from what the running bot already holds: the engine, the outbox and the
last scan. It returns 503 only when the database is unreachable, because that is the one
state a restart may fix; a failed scan or an unexpected schema is "degraded" (200), for
a human to look at, since restarting would not help.

Why the webhook route lives here too: in webhook mode Telegram's POSTs and the health
checks share one tornado server (one port to open, one process to watch), so the
server is built in one place. It is PTB's "custom webhook server" pattern: the
Application runs without an Updater and this handler puts each Update on its queue.
tornado is what PTB's own webhook server uses (the `webhooks` extra), so it adds no
dependency.

Why the Atom feeds live here too (bot.feeds_http): a feed reader needs an HTTP server,
and the bot already runs this one; on HEALTH_PORT, and on the webhook port in webhook
mode, where it is public anyway.

Why limits: the webhook port faces the internet (through the TLS proxy), and anyone can
connect to it. So the secret header is checked before the body is read, bodies are
capped far above any real update, connections that say nothing are closed, and the
webhook port's `/healthz` says only ok or error (the details are for HEALTH_PORT, which
is meant to stay private).

`python -m bot.health` is the container health probe: it asks the running bot's
`/healthz` and exits 0 when healthy (or when no health server is configured).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import tornado.web
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bot.config import HEALTH_PATH, Settings, load_settings
from bot.errors import ConfigError
from bot.feeds_http import feed_routes
from bot.services.scan import ScanStatus
from bot.storage.engine import current_revision, head_revision
from bot.storage.outbox import OutboxRepo

if TYPE_CHECKING:  # the health probe must not load the bot's handlers
    from bot.services.feeds import Feeds
    from bot.tg.app import AnyApp

log = logging.getLogger(__name__)

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
"""The header Telegram sends WEBHOOK_SECRET in, with every update."""

DB_TIMEOUT: Final = 5.0
"""Seconds the database may take to answer before it counts as unreachable: a health
check that hangs is worse than one that says "error"."""

MAX_BODY_SIZE: Final = 1024 * 1024
"""Bytes a request body may have, on every route. Telegram's updates are a few KiB, tens
at most (a message holds 4096 characters, plus entities, the message it replies to and
a keyboard), so 1 MiB is a wide margin that still bounds what one stranger's request
makes us hold (tornado's default: 100 MiB). The webhook answers 413 beyond it."""

MAX_HEADER_SIZE: Final = 16 * 1024
"""Bytes the request line and headers may take (tornado's default: 64 KiB). Telegram's
fit in well under 1 KiB; a proxy's forwarding headers add a few hundred bytes."""

IDLE_TIMEOUT: Final = 30.0
"""Seconds a connection may wait for a request's headers to be complete, between
requests (keep-alive) as well as within one (a slow-header client): tornado uses one
timer for both. Telegram and the TLS proxy send headers in one go and may keep the
connection for the next update; 30 s (tornado's default: an hour) still lets idle
connections be reused, and frees those that never send anything."""

BODY_TIMEOUT: Final = 10.0
"""Seconds a request body may take to arrive once its headers have. An update is one
or two TCP segments, and a proxy forwards the body it has already buffered."""

HealthCheck = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


@cache
def _head() -> str:
    """The newest migration this code ships (read from disk once, not per request)."""
    return head_revision()


async def health(
    engine: AsyncEngine, outbox: OutboxRepo, scan_status: ScanStatus, *,
    db_timeout: float = DB_TIMEOUT,
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of `/healthz`.

    ok: database reachable, schema at head, last scan (if any) succeeded → 200.
    degraded: reachable, but the schema is not at head, the outbox cannot be counted, the
    last scan failed, or it held back the removal of many vanished files → 200.
    error: the database is unreachable (or slower than `db_timeout`) → 503.
    """
    head = _head()
    current: str | None = None
    counts: dict[str, int] | None = None
    try:
        async with asyncio.timeout(db_timeout):
            current = await current_revision(engine)
        reachable = True
    except Exception as exc:  # any failure to answer means "unreachable" to a supervisor
        log.warning("health check: database unreachable: %s", _first_line(exc))
        reachable = False
    if reachable and current is not None:  # never migrated: there is no outbox to count
        try:
            async with asyncio.timeout(db_timeout):
                counts = await outbox.counts()
        except Exception as exc:
            log.warning("health check: cannot count the outbox: %s", _first_line(exc))
    report = scan_status.last_report
    held = report.deletions_held if report is not None else 0
    if not reachable:
        status = "error"
    elif (current != head or counts is None or scan_status.last_error is not None
          or held):
        status = "degraded"
    else:
        status = "ok"
    body: dict[str, Any] = {
        "status": status,
        "database": {"reachable": reachable},
        "migrations": {"current": current, "head": head},
        "last_scan": scan_status.last_at.isoformat() if scan_status.last_at else None,
        "last_scan_error": scan_status.last_error,
        "deletions_held": held,
        "outbox": ({"pending": counts.get("pending", 0), "failed": counts.get("failed", 0)}
                   if counts is not None else None),
    }
    code = HTTPStatus.OK if reachable else HTTPStatus.SERVICE_UNAVAILABLE
    return int(code), body


def _first_line(exc: BaseException) -> str:
    """SQLAlchemy errors span lines (SQL, a link); a log line takes the first only."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# --- the HTTP server --------------------------------------------------------------------


class _HealthHandler(tornado.web.RequestHandler):
    """GET /healthz: the JSON of `health`, or only its verdict on a public port; never cached."""

    SUPPORTED_METHODS = ("GET",)

    def initialize(self, check: HealthCheck, details: bool) -> None:
        self._check = check
        self._details = details

    async def get(self) -> None:
        code, body = await self._check()
        if not self._details:  # no schema, counts or errors for strangers to read
            body = {"status": "ok" if code == HTTPStatus.OK else "error"}
        self.set_status(code)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))


@tornado.web.stream_request_body
class _WebhookHandler(tornado.web.RequestHandler):
    """POST <WEBHOOK_URL's path>: one Update from Telegram onto the Application's queue.

    The body is streamed to this handler rather than buffered by tornado, so `prepare`
    sees the headers before a byte of the body is read: without the right secret (only
    Telegram knows WEBHOOK_SECRET) the answer is 403 and the connection is closed
    unread, whatever length the request announced.
    """

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, app: AnyApp, secret: str) -> None:
        self._app = app
        self._secret = secret.encode()
        self._body = bytearray()

    def prepare(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):  # constant time: no timing oracle
            log.debug("webhook: refused a request without the right secret from %s",
                      self.request.remote_ip)
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        declared = _declared_length(self.request.headers.get("Content-Length"))
        if declared is not None and declared > MAX_BODY_SIZE:
            raise tornado.web.HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)

    def data_received(self, chunk: bytes) -> None:
        """Keep the body, up to MAX_BODY_SIZE: the handler does not rely on the server's
        own limit (HttpServer sets the same one, which stops chunked bodies first)."""
        if len(self._body) + len(chunk) > MAX_BODY_SIZE:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)  # tornado then closes
            return
        self._body += chunk

    async def post(self) -> None:
        try:
            update = _parse_update(self._body, self._app)
        except Exception as exc:  # Telegram never sends this: refuse it, carry on
            # The type only: messages can quote the body, which is the sender's to choose.
            log.warning("webhook: refused a body that is not an Update (%s, %d bytes)",
                        type(exc).__name__, len(self._body))
            log.debug("webhook: the refused body's error: %s", _first_line(exc))
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST) from None
        self._app.bot.insert_callback_data(update)  # no-op unless arbitrary callback data
        await self._app.update_queue.put(update)
        self.set_status(HTTPStatus.OK)
        self.finish()


def _declared_length(value: str | None) -> int | None:
    """Content-Length as a number; None when absent or malformed (tornado refuses those)."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _parse_update(body: bytes | bytearray, app: AnyApp) -> Update:
    """The Update a webhook body holds; ValueError (or what PTB raises) when it holds none.

    PTB's de_json takes anything shaped like an object (`{"update_id": "x"}` too), so the
    one field every update has is checked here.
    """
    data = json.loads(body)
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        raise ValueError("not a JSON object with an integer update_id")
    return Update.de_json(data, app.bot)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Requests at DEBUG: health probes every few seconds must not flood the log."""
    request = handler.request
    log.debug("%d %s %s %.1fms", handler.get_status(), request.method, request.path,
              1000 * request.request_time())


@dataclass(frozen=True, slots=True)
class WebhookRoute:
    """Where and for whom the webhook handler takes updates."""

    path: str
    app: AnyApp
    secret: str


def web_app(check: HealthCheck, webhook: WebhookRoute | None = None,
            feeds: Feeds | None = None) -> tornado.web.Application:
    """The tornado app: /healthz always, the webhook path and the Atom feeds when given.

    An app with the webhook route faces the internet, so its /healthz gives the verdict
    only (`{"status": "ok"}` 200, or `{"status": "error"}` 503); without it, as on
    HEALTH_PORT, the full report of `health`. The feeds are public on either
    (bot.feeds_http); the webhook path may not lie under /feeds/ (bot.config).
    """
    health_options = {"check": check, "details": webhook is None}
    routes: list[Any] = [(HEALTH_PATH, _HealthHandler, health_options)]
    if feeds is not None:
        routes += feed_routes(feeds)
    if webhook is not None:
        path = "/" + webhook.path.strip("/")
        # Like PTB's own server: the path with or without a trailing slash.
        pattern = "/" if path == "/" else rf"{re.escape(path)}/?"
        routes.append((pattern, _WebhookHandler, {"app": webhook.app, "secret": webhook.secret}))
    return tornado.web.Application(routes, log_function=_log_request)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a connection may wait, in seconds; the tests shorten them."""

    idle: float = IDLE_TIMEOUT
    body: float = BODY_TIMEOUT


TIMEOUTS: Final = Timeouts()


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A tornado HTTPServer bound to listen:port (port 0: one the OS picks)."""

    server: HTTPServer
    listen: str
    port: int

    @classmethod
    def start(cls, app: tornado.web.Application, listen: str, port: int,
              timeouts: Timeouts = TIMEOUTS) -> HttpServer:
        """Bind now, on the running event loop; OSError when the port is taken.

        Every server gets the limits: the health server too, in case HEALTH_PORT is
        reachable from further than intended.
        """
        sockets = bind_sockets(port, address=listen or None)
        server = HTTPServer(
            app,
            max_header_size=MAX_HEADER_SIZE,
            max_body_size=MAX_BODY_SIZE,
            max_buffer_size=MAX_BODY_SIZE,  # what one connection may make us buffer
            idle_connection_timeout=timeouts.idle,  # also the header timeout
            body_timeout=timeouts.body,
        )
        server.add_sockets(sockets)
        return cls(server, listen, int(sockets[0].getsockname()[1]))

    async def stop(self) -> None:
        """Stop accepting, then close the connections still open (keep-alive clients)."""
        self.server.stop()
        await self.server.close_all_connections()


# --- the container probe: python -m bot.health -------------------------------------------


def probe_url(settings: Settings) -> str | None:
    """The /healthz this configuration serves, seen from inside the same host or container.

    HEALTH_PORT when set; else the webhook server's port in webhook mode; else None.
    """
    port = settings.health_port or (settings.webhook_port if settings.webhook_url else None)
    if port is None:
        return None
    host = settings.webhook_listen
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{HEALTH_PATH}"


def probe(timeout: float = 5.0) -> int:
    """Exit status for a HEALTHCHECK: 0 healthy or nothing to probe, 1 otherwise."""
    try:
        url = probe_url(load_settings())
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1
    if url is None:
        return 0  # no health server configured: nothing to check
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            print(response.read().decode("utf-8", "replace"))
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode("utf-8", "replace"), file=sys.stderr)
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(probe())
