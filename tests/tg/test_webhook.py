"""Webhook mode: `paperfeed run` with WEBHOOK_URL, as a real process on loopback.

Telegram only posts to https:// URLs (the fake refuses others, as Telegram does), and in
production TLS ends at a reverse proxy that forwards plain HTTP to WEBHOOK_LISTEN:PORT.
Telegram also only posts to ports 443, 80, 88 and 8443 (the fake refuses others too), so
WEBHOOK_URL is https://127.0.0.1:8443/hook, the proxy's address, while the test posts to
http://127.0.0.1:PORT/hook, exactly what the proxy would do.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from tests.botapi.server import FakeBotApi, FakeChat, FakeUser
from tests.fixtures.expected import FIXTURE_DISTINCT_IDS
from tests.tg.test_run_process import BotProcess, bot_env, run_to_exit

SECRET = "s3cret"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
PUBLIC_URL = "https://127.0.0.1:8443/hook"  # the TLS proxy in front of the listener


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it; the bot binds it next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_update(update_id: int, chat: FakeChat, user: FakeUser, text: str = "/start") -> Any:
    """The Update JSON Telegram would post for a command typed in a private chat."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": chat.to_api(),
            "from": user.to_api(),
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }


async def finish(bot: BotProcess, timeout: float = 20.0) -> tuple[int, str]:  # noqa: ASYNC109
    """Wait for the exit and return its status with everything it wrote to stderr."""
    assert bot.proc.stderr is not None
    async with asyncio.timeout(timeout):
        rest = await bot.proc.stderr.read()
        code = await bot.proc.wait()
    return code, "".join(bot.lines) + rest.decode("utf-8", "replace")


@asynccontextmanager
async def webhook_process(tmp_path: Path, server: FakeBotApi,
                          **extra: str) -> AsyncIterator[tuple[BotProcess, int]]:
    """`python -m bot run` in webhook mode; yields it and its webhook port."""
    port = free_port()
    env = bot_env(tmp_path, server)
    env.update(WEBHOOK_URL=PUBLIC_URL, WEBHOOK_LISTEN="127.0.0.1",
               WEBHOOK_PORT=str(port), WEBHOOK_SECRET=SECRET)
    env.pop("HEALTH_PORT", None)
    env.update(extra)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    running = BotProcess(proc)
    try:
        yield running, port
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_webhook_mode_answers_updates_with_the_secret_only(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    async with webhook_process(tmp_path, botapi) as (bot, port):
        await bot.wait_for_line("webhook server listening")
        await bot.wait_for_line(f"{FIXTURE_DISTINCT_IDS} papers new")  # the start-up scan
        [call] = botapi.calls("setWebhook")
        assert call.params["url"] == PUBLIC_URL
        assert call.params["secret_token"] == SECRET
        assert "message" in call.json_param("allowed_updates")
        assert botapi.webhook_url == PUBLIC_URL
        assert not botapi.calls("getUpdates")  # no polling in webhook mode

        intruder = botapi.user("Mallory")
        intruder_chat = botapi.add_chat(botapi.private_chat(intruder))
        user = botapi.user("Ada")
        chat = botapi.add_chat(botapi.private_chat(user))
        hook = f"http://127.0.0.1:{port}/hook"
        # The server closes the connection after refusing a request (without reading its
        # body), so each refused request says "close" instead of racing a keep-alive reuse.
        close = {"Connection": "close"}
        async with httpx.AsyncClient(timeout=10) as client:
            forged = start_update(1, intruder_chat, intruder)
            assert (await client.post(hook, json=forged, headers=close)).status_code == 403
            wrong = {HEADER: "not-the-secret", **close}
            assert (await client.post(hook, json=forged, headers=wrong)).status_code == 403
            garbage = await client.post(hook, content=b"[1, 2", headers={HEADER: SECRET})
            assert garbage.status_code == 400
            answer = await client.post(hook, json=start_update(2, chat, user),
                                       headers={HEADER: SECRET})
            assert answer.status_code == 200

        [reply] = await botapi.wait_for_sent(1, chat_id=chat.id, timeout=20)
        assert f"{FIXTURE_DISTINCT_IDS} papers" in reply.plain_text
        # Updates are handled in order: had a refused one been queued, it came first.
        assert botapi.sent_to(intruder_chat.id) == []
        assert botapi.commands_for()  # menus published at start, as when polling

        bot.proc.send_signal(signal.SIGTERM)
        code, log = await finish(bot)
        assert code == 0, log
        assert botapi.token not in log
        assert SECRET not in log
        assert "Traceback" not in log


async def test_webhook_mode_serves_healthz_on_the_same_port(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    async with webhook_process(tmp_path, botapi) as (bot, port):
        await bot.wait_for_line(f"{FIXTURE_DISTINCT_IDS} papers new")  # the start-up scan
        await bot.wait_for_line("webhook server listening")
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"http://127.0.0.1:{port}/healthz")
        # The public port says only ok / not ok; the details are on HEALTH_PORT
        # (tests/tg/test_health.py).
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_a_failed_set_webhook_is_one_line(botapi: FakeBotApi, tmp_path: Path) -> None:
    botapi.script_fault("http_500", method="setWebhook")
    async with webhook_process(tmp_path, botapi) as (bot, _port):
        await bot.wait_for_line(f"setWebhook failed for WEBHOOK_URL {PUBLIC_URL}")
        code, log = await finish(bot)
        assert code == 1, log
        assert "Traceback" not in log


async def test_a_rejected_token_is_one_line_without_the_token(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    env = {"TELEGRAM_TOKEN": "999:WRONGwrongWRONG"}
    async with webhook_process(tmp_path, botapi, **env) as (bot, _port):
        await bot.wait_for_line("Telegram rejected TELEGRAM_TOKEN")
        code, log = await finish(bot)
        assert code == 1, log
        assert "WRONGwrongWRONG" not in log
        assert "Traceback" not in log


# --- settings ---------------------------------------------------------------------------

WEBHOOK_NAMES = ("WEBHOOK_URL", "WEBHOOK_LISTEN", "WEBHOOK_PORT", "WEBHOOK_SECRET",
                 "HEALTH_PORT")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in WEBHOOK_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return monkeypatch


def test_webhook_settings_default_to_polling(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.webhook_url is None
    assert settings.webhook_listen == "0.0.0.0"
    assert settings.webhook_port == 8443
    assert settings.webhook_secret is None
    assert settings.health_port is None


def test_empty_values_mean_unset(clean_env: pytest.MonkeyPatch) -> None:
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET", "HEALTH_PORT"):
        clean_env.setenv(name, "")
    settings = load_settings()
    assert (settings.webhook_url, settings.webhook_secret, settings.health_port) == (
        None, None, None)


def test_webhook_settings_are_read(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEBHOOK_URL", "https://bot.example.org/tg/hook")
    clean_env.setenv("WEBHOOK_SECRET", "A-z_0" * 51 + "9")  # 256 characters: the most
    clean_env.setenv("WEBHOOK_PORT", "8080")
    clean_env.setenv("HEALTH_PORT", "9000")
    settings = load_settings()
    assert settings.webhook_path == "/tg/hook"
    assert settings.webhook_port == 8080
    assert settings.health_port == 9000
    assert "A-z_0" not in repr(settings)  # the secret stays out of reprs (and logs)


def test_webhook_url_without_secret_is_one_clear_line(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("WEBHOOK_SECRET: required when WEBHOOK_URL is set")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_URL", "http://bot.example.org/hook"),  # Telegram posts to HTTPS only
        ("WEBHOOK_URL", "bot.example.org/hook"),
        ("WEBHOOK_URL", "https://bot.example.org/hook?x=1"),
        ("WEBHOOK_URL", "https://bot.example.org/healthz"),
        ("WEBHOOK_URL", "https://bot.example.org:8080/hook"),  # not a port Telegram posts to
        ("WEBHOOK_URL", "https://bot.example.org:99999/hook"),
        ("WEBHOOK_SECRET", "has spaces"),
        ("WEBHOOK_SECRET", "ünicode"),
        ("WEBHOOK_SECRET", "x" * 257),
        ("WEBHOOK_PORT", "0"),
        ("WEBHOOK_PORT", "70000"),
        ("HEALTH_PORT", "http"),
    ],
)
def test_bad_webhook_values_name_the_variable(
    clean_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    clean_env.setenv(name, value)
    if name != "WEBHOOK_SECRET":
        clean_env.setenv("WEBHOOK_SECRET", SECRET)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{name}:"), message
    assert "\n" not in message


async def test_run_with_webhook_url_but_no_secret_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in WEBHOOK_NAMES}
    env.update(TELEGRAM_TOKEN="123:ABC", WEBHOOK_URL="https://bot.example.org/hook")
    code, output = await run_to_exit(tmp_path, env)
    assert code == 2
    assert "WEBHOOK_SECRET: required when WEBHOOK_URL is set" in output
    assert "Traceback" not in output
