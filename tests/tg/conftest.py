"""Fixtures for Telegram-facing tests: a fake Bot API server per test.

Why a fixture: every end-to-end test needs a fresh server (no state leaks between
tests), and every test should fail if the fake itself crashed on a request, because
such a crash would otherwise surface as a puzzling error in the bot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.tg.bot_harness import BotUnderTest, running_bot
from tests.tg.botapi_faults import ManualClock
from tests.tg.botapi_server import FakeBotApi


@pytest.fixture
async def botapi() -> AsyncIterator[FakeBotApi]:
    """A started ``FakeBotApi`` on 127.0.0.1 with an OS-assigned port."""
    async with FakeBotApi() as server:
        yield server
    server.assert_healthy()


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock that only moves on ``advance()``; pass to ``FakeBotApi(clock=...)``."""
    return ManualClock()


@pytest.fixture
async def bot(botapi: FakeBotApi, tmp_path: Path) -> AsyncIterator[BotUnderTest]:
    """paperfeed running against the fake server, on the ingested fixture folder."""
    async with running_bot(tmp_path, botapi) as running:
        yield running
