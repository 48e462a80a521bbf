"""The real paperfeed Application, on a real archive, against the fake Bot API server.

Every end-to-end test of the bot starts here: the fixture folder is ingested into a
fresh SQLite file, everything is built by `bot.runner.assemble` exactly as `paperfeed
run` builds it (only BOT_API_URL points at the loopback server), and polling runs until
the test ends. Jobs are not registered: tests scan and drain when they choose to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.runner import assemble
from bot.storage.engine import migrate
from bot.tg.app import AnyApp, startup
from bot.tg.deps import Deps
from tests.botapi.ptb_harness import running_application, settle
from tests.botapi.server import FakeBotApi, FakeChat, FakeUser, SentMessage
from tests.fixtures.folder import copy_fixture_folder

OPERATOR_ID = 9000


@dataclass
class BotUnderTest:
    """What a test needs to drive the bot and look at its state."""

    server: FakeBotApi
    app: AnyApp
    deps: Deps
    digest_dir: Path

    async def settle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await settle(self.server, self.app, timeout)


def make_settings(tmp_path: Path, server: FakeBotApi, **settings: Any) -> Settings:
    """Settings for a bot on a fresh database; the fixture folder unless `digest_dir=`."""
    digest_dir = Path(settings.pop("digest_dir", tmp_path / "digests"))
    if not digest_dir.exists():
        copy_fixture_folder(digest_dir)
    values: dict[str, Any] = {
        "telegram_token": server.token,
        "bot_api_url": server.base_url.removesuffix("/bot"),
        "digest_dir": digest_dir,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "admin_ids": frozenset({OPERATOR_ID}),
    }
    values.update(settings)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def running_bot(tmp_path: Path, server: FakeBotApi, *, ingest: bool = True,
                      **settings: Any) -> AsyncIterator[BotUnderTest]:
    parts = assemble(make_settings(tmp_path, server, **settings))
    await migrate(parts.engine)
    if ingest:  # as the bot's first scan leaves it: nobody subscribed to announce to yet
        await parts.deps.ingestor.scan()
        await parts.deps.delivery.announce_pending()
    try:
        async with running_application(parts.app, server):
            await startup(parts.app, parts.deps)
            yield BotUnderTest(server, parts.app, parts.deps, parts.deps.settings.digest_dir)
    finally:
        await parts.engine.dispose()


def person(bot: BotUnderTest, name: str, lang: str = "en") -> tuple[FakeUser, FakeChat]:
    """A new user and their private chat with the bot."""
    user = bot.server.user(name, language_code=lang)
    return user, bot.server.add_chat(bot.server.private_chat(user))


async def ask(bot: BotUnderTest, chat: FakeChat, user: FakeUser, command: str
              ) -> list[SentMessage]:
    """Send a command and wait for the bot: what the chat got in answer."""
    before = len(bot.server.sent_to(chat.id))
    bot.server.send_command(chat, user, command)
    await bot.settle()
    return bot.server.sent_to(chat.id)[before:]
