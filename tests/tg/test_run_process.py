"""`paperfeed run` as a real process: it migrates, scans at start, answers, and a second
process with the same token stops with a clear message."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.botapi.server import FakeBotApi
from tests.fixtures.expected import FIXTURE_DISTINCT_IDS
from tests.fixtures.folder import copy_fixture_folder


class BotProcess:
    """A running `python -m bot run` whose log lines can be awaited."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def wait_for_line(self, needle: str, timeout: float = 20.0) -> str:  # noqa: ASYNC109
        assert self.proc.stderr is not None
        for line in self.lines:
            if needle in line:
                return line
        try:
            async with asyncio.timeout(timeout):
                return await self._read_until(needle)
        except TimeoutError:
            raise AssertionError(f"no {needle!r} in:\n" + "".join(self.lines)) from None

    async def _read_until(self, needle: str) -> str:
        assert self.proc.stderr is not None
        while True:
            raw = await self.proc.stderr.readline()
            if not raw:
                raise AssertionError(f"process ended before {needle!r}:\n"
                                     + "".join(self.lines))
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if needle in line:
                return line


def bot_env(tmp_path: Path, server: FakeBotApi) -> dict[str, str]:
    digests = tmp_path / "digests"
    if not digests.exists():
        copy_fixture_folder(digests)
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_IDS",)}
    env.update(
        TELEGRAM_TOKEN=server.token,
        BOT_API_URL=server.base_url.removesuffix("/bot"),
        DIGEST_DIR=str(digests),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
        SCAN_INTERVAL="3600",
        LOG_LEVEL="INFO",
    )
    return env


async def run_to_exit(cwd: Path, env: dict[str, str]) -> tuple[int | None, str]:
    """`python -m bot run` that is expected to stop by itself: exit status, all output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    return proc.returncode, (out + err).decode("utf-8", "replace")


@asynccontextmanager
async def bot_process(tmp_path: Path, server: FakeBotApi) -> AsyncIterator[BotProcess]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=bot_env(tmp_path, server),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    running = BotProcess(proc)
    try:
        yield running
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_run_scans_at_start_and_answers(botapi: FakeBotApi, tmp_path: Path) -> None:
    async with bot_process(tmp_path, botapi) as bot:
        await bot.wait_for_line(f"{FIXTURE_DISTINCT_IDS} papers new")
        await botapi.wait_until_polling()
        user = botapi.user("Ada")
        chat = botapi.private_chat(user)
        botapi.send_command(chat, user, "/start")
        [reply] = await botapi.wait_for_sent(1, chat_id=chat.id, timeout=20)
        assert f"{FIXTURE_DISTINCT_IDS} papers" in reply.plain_text
        assert botapi.commands_for()  # menus published at start
        bot.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await bot.proc.wait() == 0
        assert not any(botapi.token in line for line in bot.lines)  # token never logged


async def test_second_process_with_same_token_stops(botapi: FakeBotApi, tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    async with bot_process(first_dir, botapi) as first:
        await first.wait_for_line("papers new")
        await botapi.wait_until_polling()
        early = botapi.user("Early")
        early_chat = botapi.private_chat(early)
        botapi.send_command(early_chat, early, "/help")  # the first has had polls answered
        await botapi.wait_for_sent(1, chat_id=early_chat.id, timeout=20)
        async with bot_process(second_dir, botapi) as second:
            await second.wait_for_line("another paperfeed is already running")
            async with asyncio.timeout(20):
                await second.proc.wait()
        assert first.proc.returncode is None  # the first one keeps serving
        user = botapi.user("Bo")
        chat = botapi.private_chat(user)
        botapi.send_command(chat, user, "/help")
        await botapi.wait_for_sent(1, chat_id=chat.id, timeout=20)


async def test_run_without_token_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_TOKEN"}
    code, output = await run_to_exit(tmp_path, env)
    assert code == 2
    assert "TELEGRAM_TOKEN" in output
    assert "Traceback" not in output


async def test_an_unreachable_bot_api_is_one_clear_line(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = bot_env(tmp_path, botapi) | {"BOT_API_URL": f"http://127.0.0.1:{port}"}
    code, output = await run_to_exit(tmp_path, env)
    assert code == 1
    assert "Traceback" not in output
    [line] = [line for line in output.splitlines() if "CRITICAL" in line]
    assert f"cannot reach the Bot API at http://127.0.0.1:{port}" in line
    assert "BOT_API_URL" in line


async def test_a_refused_token_is_one_clear_line_without_the_token(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    wrong = "999999:" + "x" * 35
    code, output = await run_to_exit(tmp_path, bot_env(tmp_path, botapi) | {
        "TELEGRAM_TOKEN": wrong})
    assert code == 1
    assert "Traceback" not in output
    assert "TELEGRAM_TOKEN" in output
    assert wrong not in output
