"""The webhook server's limits, over real HTTP to the real tornado server on loopback.

Why raw sockets besides httpx: httpx always sends whole, well-formed requests, while the
requests these limits are for are the ones a stranger writes by hand: headers that
promise a body never sent, headers that never end, nothing at all, a body far too big.
Each raw exchange reads until the server closes the connection, bounded by `BOUND`, so
a server that waits (for a body, for headers) fails the test instead of hanging it.

Why a real, never started Application for the refusals: the handler only touches it to
queue an Update, and a refused request must queue nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from telegram.ext import ApplicationBuilder

from bot.health import MAX_BODY_SIZE, TIMEOUTS, HttpServer, Timeouts, WebhookRoute, web_app
from bot.tg.app import AnyApp
from tests.tg.bot_harness import BotUnderTest
from tests.tg.test_webhook import HEADER, SECRET, start_update

BOUND = 5.0
"""Seconds a test waits for the server's reaction; well under BODY_TIMEOUT (10 s) and
IDLE_TIMEOUT (30 s), so a server that waited for the body or the headers fails."""

SHORT = Timeouts(idle=0.3, body=0.3)
"""For the tests that wait for a timeout on purpose."""


async def healthy() -> tuple[int, dict[str, Any]]:
    return 200, {"status": "ok"}


@pytest.fixture
def idle_app() -> AnyApp:
    """A real Application, never started: refused requests must leave its queue empty."""
    return ApplicationBuilder().token("123:TEST").updater(None).build()


@asynccontextmanager
async def serving(app: AnyApp, timeouts: Timeouts = TIMEOUTS) -> AsyncIterator[int]:
    """The webhook server (POST /hook, GET /healthz) on a loopback port; yields the port."""
    server = HttpServer.start(web_app(healthy, WebhookRoute("/hook", app, SECRET)),
                              "127.0.0.1", 0, timeouts)
    try:
        yield server.port
    finally:
        await server.stop()


async def exchange(port: int, data: bytes) -> bytes:
    """Send `data` on a new connection; all the server answers until it closes it.

    Plain socket calls, not asyncio streams: a server that refuses a request mid-body
    closes with the rest unread, so the kernel resets the connection, and a stream
    transport failing to write would drop the answer already received with it.
    """
    loop = asyncio.get_running_loop()
    answer = bytearray()
    with socket.socket() as sock:
        sock.setblocking(False)
        async with asyncio.timeout(BOUND):
            await loop.sock_connect(sock, ("127.0.0.1", port))
            with contextlib.suppress(ConnectionError):  # closed before all of it went out
                await loop.sock_sendall(sock, data)
            with contextlib.suppress(ConnectionResetError):  # closed with data unread
                while chunk := await loop.sock_recv(sock, 65536):
                    answer += chunk
    return bytes(answer)


def post_head(content_length: int, secret: str | None) -> bytes:
    """The request line and headers of a POST to /hook, without its body."""
    lines = ["POST /hook HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {content_length}",
             "Content-Type: application/json"]
    if secret is not None:
        lines.append(f"{HEADER}: {secret}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def padded_update(size: int) -> bytes:
    """A valid Update's JSON, padded with spaces to exactly `size` bytes."""
    body = json.dumps({"update_id": 7}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


# --- the body limit ----------------------------------------------------------------------


async def test_a_body_at_the_limit_is_taken(idle_app: AnyApp) -> None:
    async with serving(idle_app) as port, httpx.AsyncClient(timeout=BOUND) as client:
        answer = await client.post(f"http://127.0.0.1:{port}/hook",
                                   content=padded_update(MAX_BODY_SIZE), headers={HEADER: SECRET})
    assert answer.status_code == 200
    assert idle_app.update_queue.qsize() == 1


@pytest.mark.parametrize("size", [MAX_BODY_SIZE + 1, 2_000_000])
async def test_a_body_over_the_limit_is_413(idle_app: AnyApp, size: int) -> None:
    async with serving(idle_app) as port:
        answer = await exchange(port, post_head(size, SECRET) + padded_update(size))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert idle_app.update_queue.empty()


async def test_a_promised_body_over_the_limit_is_413_before_it_is_sent(
    idle_app: AnyApp,
) -> None:
    async with serving(idle_app) as port:  # headers only: the answer cannot wait for it
        answer = await exchange(port, post_head(100_000_000, SECRET))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]


async def test_a_chunked_body_over_the_limit_is_cut_off(idle_app: AnyApp) -> None:
    """No Content-Length to judge by: tornado counts the chunks and stops at the limit."""
    head = (f"POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            f"{HEADER}: {SECRET}\r\n\r\n").encode()
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    async with serving(idle_app) as port:
        answer = await exchange(port, head + chunk * 32 + b"0\r\n\r\n")  # 2 MiB
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]  # tornado's, not the handler's
    assert idle_app.update_queue.empty()


# --- the secret, before the body -----------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "not-the-secret", SECRET + "x"])
@pytest.mark.parametrize("length", [500_000, 100_000_000])  # within the limit, and far over
async def test_without_the_secret_the_body_is_never_read(
    idle_app: AnyApp, secret: str | None, length: int,
) -> None:
    # Headers only: a server that waited for the promised body would answer only after
    # BODY_TIMEOUT, beyond BOUND. The connection is closed once the 403 is out.
    async with serving(idle_app) as port:
        answer = await exchange(port, post_head(length, secret))
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:100]
    assert idle_app.update_queue.empty()


async def test_other_methods_are_405(idle_app: AnyApp) -> None:
    async with serving(idle_app) as port, httpx.AsyncClient(timeout=BOUND) as client:
        hook = f"http://127.0.0.1:{port}/hook"
        assert (await client.get(hook, headers={HEADER: SECRET})).status_code == 405
        assert (await client.put(hook, content=b"{}", headers={HEADER: SECRET})).status_code == 405
        assert (await client.post(f"http://127.0.0.1:{port}/healthz")).status_code == 405


NOT_UPDATES = [
    b"",
    b"[1, 2",
    b"null",
    b"[]",
    b"{}",
    b'{"update_id": "MARKER"}',
    b'{"update_id": 1, "message": "MARKER"}',
    b'{"update_id": 1, "message": {"date": "MARKER"}}',
    b"\xffMARKER",
    b"[" * 100_000,  # deeper than the JSON parser recurses
]


async def test_bodies_that_are_not_updates_are_400_quietly(
    idle_app: AnyApp, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(idle_app) as port, httpx.AsyncClient(timeout=BOUND) as client:
        for body in NOT_UPDATES:
            answer = await client.post(f"http://127.0.0.1:{port}/hook", content=body,
                                       headers={HEADER: SECRET})
            assert answer.status_code == 400, body[:40]
    assert idle_app.update_queue.empty()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(NOT_UPDATES)  # one line each, and nothing from tornado
    for record in warnings:
        assert record.exc_info is None  # no traceback
        assert "MARKER" not in record.getMessage()  # nor anything the sender wrote


# --- timeouts ------------------------------------------------------------------------------


async def test_a_connection_that_says_nothing_is_closed(idle_app: AnyApp) -> None:
    async with serving(idle_app, SHORT) as port:
        assert await exchange(port, b"") == b""


async def test_headers_that_never_end_are_cut_off(idle_app: AnyApp) -> None:
    async with serving(idle_app, SHORT) as port:
        answer = await exchange(port, b"POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert answer == b""  # closed without an answer


async def test_a_body_that_stops_short_is_cut_off(idle_app: AnyApp) -> None:
    async with serving(idle_app, SHORT) as port:
        answer = await exchange(port, post_head(100, SECRET) + b'{"update_id": 1')
    assert answer == b""
    assert idle_app.update_queue.empty()


async def test_an_idle_keep_alive_connection_is_closed(idle_app: AnyApp) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"  # HTTP/1.1: keep-alive
    async with serving(idle_app, SHORT) as port:
        answer = await exchange(port, request)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"status": "ok"}')  # answered, then closed once idle


# --- a real update still flows ---------------------------------------------------------------


async def test_a_valid_update_is_answered(bot: BotUnderTest) -> None:
    server = bot.server
    user = server.user("Ada")
    chat = server.add_chat(server.private_chat(user))
    async with serving(bot.app) as port, httpx.AsyncClient(timeout=BOUND) as client:
        answer = await client.post(f"http://127.0.0.1:{port}/hook/",  # slash: as PTB's
                                   json=start_update(1, chat, user), headers={HEADER: SECRET})
        assert answer.status_code == 200
        [reply] = await server.wait_for_sent(1, chat_id=chat.id, timeout=20)
    assert reply.plain_text
