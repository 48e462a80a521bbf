"""Fixtures for Telegram-facing tests: the fake Bot API server (tests.botapi) and the
bot running against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.botapi.fixtures import botapi, manual_clock
from tests.botapi.server import FakeBotApi
from tests.tg.bot_harness import BotUnderTest, running_bot

__all__ = ["bot", "botapi", "manual_clock"]


@pytest.fixture
async def bot(botapi: FakeBotApi, tmp_path: Path) -> AsyncIterator[BotUnderTest]:
    """paperfeed running against the fake server, on the ingested fixture folder."""
    async with running_bot(tmp_path, botapi) as running:
        yield running
