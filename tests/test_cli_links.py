"""`paperfeed links`: the share links an operator hands out, from the archive and getMe.

The command runs in a worker thread (it starts its own event loop) while the fake Bot
API serves getMe on the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from bot.cli import app
from tests.botapi.server import FakeBotApi
from tests.fixtures.expected import FIXTURE_TOPICS
from tests.fixtures.folder import copy_fixture_folder
from tests.tg.test_webhook import free_port

runner = CliRunner()


@pytest.fixture
async def server() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(bot_username="share_test_bot") as fake:
        yield fake
    fake.assert_healthy()


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ingested archive of the fixture folder; no token, no Bot API yet."""
    folder = copy_fixture_folder(tmp_path / "digests")
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGRAM_TOKEN", "BOT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db' / 'pf.db'}")
    monkeypatch.setenv("DIGEST_DIR", str(folder))
    result = await cli("ingest", "--archive-only")
    assert result.exit_code == 0, result.output
    return folder


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(runner.invoke, app, list(args))


def said(result: Result) -> str:
    """The output with the terminal's line wrapping undone."""
    return " ".join(result.output.split())


def rows(output: str) -> dict[str, list[str]]:
    return {line.split("\t")[0]: line.split("\t")[1:] for line in output.splitlines()
            if "\t" in line}


async def test_links_asks_telegram_for_the_username(env: Path, server: FakeBotApi,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", server.token)
    monkeypatch.setenv("BOT_API_URL", server.base_url.removesuffix("/bot"))
    result = await cli("links")
    assert result.exit_code == 0, result.output
    assert server.calls("getMe")
    table = rows(result.stdout)
    base = "https://t.me/share_test_bot"
    assert table["subscribe to everything"] == [f"{base}?start=sub-all"]
    assert table["add to a group"] == [f"{base}?startgroup"]
    assert table["add to a channel"] == [f"{base}?startchannel&admin=post_messages"]
    assert set(FIXTURE_TOPICS) <= set(table)
    assert table["Talking Head Generation"] == [
        f"{base}?start=sub-Talking_Head_Generation",
        f"{base}?startgroup=sub-Talking_Head_Generation"]
    assert table["元宇宙/虚拟人"][0] == f"{base}?start=sub64-5YWD5a6H5a6ZL-iZmuaLn-S6ug"
    assert server.token not in result.output


async def test_one_tag_with_a_given_username_needs_no_network(env: Path) -> None:
    result = await cli("links", "--tag", "talking head generation", "--bot", "@other_bot")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Talking Head Generation\thttps://t.me/other_bot?start=sub-Talking_Head_Generation"
        "\thttps://t.me/other_bot?startgroup=sub-Talking_Head_Generation"]
    unknown = await cli("links", "--tag", "nerff", "--bot", "other_bot")
    assert unknown.exit_code == 1
    assert "unknown tag 'nerff' (did you mean NeRF?)" in said(unknown)


async def test_without_a_username_or_telegram_a_clear_error(
        env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_token = await cli("links")
    assert no_token.exit_code == 1
    assert "TELEGRAM_TOKEN is not set" in said(no_token)
    assert "--bot USERNAME" in said(no_token)
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:secret_token_value")
    monkeypatch.setenv("BOT_API_URL", f"http://127.0.0.1:{free_port()}")
    offline = await cli("links")
    assert offline.exit_code == 1
    assert "cannot ask http://127.0.0.1:" in said(offline)
    assert "--bot USERNAME" in said(offline)
    assert "secret_token_value" not in said(offline)
    bad = await cli("links", "--bot", "not a name")
    assert bad.exit_code == 2
    assert "not a Telegram username" in said(bad)
