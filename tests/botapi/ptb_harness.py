"""Glue for running a real python-telegram-bot ``Application`` against ``FakeBotApi``.

Why: starting/stopping PTB correctly (initialize, polling, start, then the reverse)
and knowing when "the bot has finished reacting" are easy to get subtly wrong, and a
test that sleeps instead is slow and flaky.  ``running_application`` does the
lifecycle and ``settle`` waits for quiescence without any sleep: the fake server
knows when every injected update was fetched and acknowledged, and PTB's update queue
knows when every fetched update was processed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from telegram.ext import Application, ApplicationBuilder

from bot.tg.background import PREFIX as BACKGROUND
from tests.botapi.server import FakeBotApi

__all__ = ["builder_for", "running_application", "settle"]


def builder_for(server: FakeBotApi) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    """An ``ApplicationBuilder`` already pointed at the fake server."""
    return (
        ApplicationBuilder()
        .token(server.token)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
    )


@asynccontextmanager
async def running_application(
    app: Application[Any, Any, Any, Any, Any, Any],
    server: FakeBotApi,
    *,
    poll_timeout: float = 10.0,
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """Run ``app`` with long polling (poll_interval=0) until the block exits.

    Returns once the bot is long-polling, so updates injected afterwards are picked
    up immediately.  A long ``poll_timeout`` costs nothing: stopping cancels the
    pending getUpdates, and the fake server notices the closed connection.
    """
    async with app:
        updater = app.updater
        if updater is None:
            raise RuntimeError("the Application was built without an Updater")
        await updater.start_polling(poll_interval=0.0, timeout=int(poll_timeout))
        await app.start()
        try:
            await server.wait_until_polling()
            yield app
        finally:
            if updater.running:
                await updater.stop()
            if app.running:
                await app.stop()


async def settle(
    server: FakeBotApi,
    app: Application[Any, Any, Any, Any, Any, Any],
    timeout: float = 5.0,  # noqa: ASYNC109 - one deadline for the whole settle
) -> None:
    """Wait until the bot has fetched *and processed* every injected update.

    Handler side effects that go through the Bot API (sendMessage, ...) are complete
    when this returns, because PTB marks an update done only after its handlers ran,
    and so is the work handlers hand off (bot.tg.background's ``bg:`` tasks). Jobs of
    the job queue are not covered.
    """
    async with asyncio.timeout(timeout):
        while True:
            await server.wait_until_idle(timeout)
            await app.update_queue.join()
            handed_off = [t for t in asyncio.all_tasks()
                          if t.get_name().startswith(BACKGROUND) and not t.done()]
            if handed_off:
                await asyncio.wait(handed_off)
                continue
            if server.is_idle:
                return
