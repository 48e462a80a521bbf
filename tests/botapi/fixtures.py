"""The fake server as pytest fixtures, for every test folder that talks to it.

Why a fixture: every end-to-end test needs a fresh server (no state leaks between
tests), and every test should fail if the fake itself crashed on a request, because
such a crash would otherwise surface as a puzzling error in the bot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.botapi.faults import ManualClock
from tests.botapi.server import FakeBotApi


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
