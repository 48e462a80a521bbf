"""The real paperfeed Application, on a real archive, against the fake Bot API server.

Every end-to-end test of the bot starts here: the fixture folder is ingested into a
fresh SQLite file, the Application is built exactly as `paperfeed run` builds it (only
BOT_API_URL points at the loopback server), and polling runs until the test ends.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.services.ingest import Ingestor
from bot.storage.chats import ChatRepo
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo
from bot.tg.app import AnyApp, build_application, startup
from bot.tg.deps import Deps
from tests.fixtures.expected import FIXTURE_DIR
from tests.tg.botapi_server import FakeBotApi
from tests.tg.ptb_harness import running_application, settle

OPERATOR_ID = 9000


@dataclass
class BotUnderTest:
    """What a test needs to drive the bot and look at its state."""

    server: FakeBotApi
    app: AnyApp
    deps: Deps
    digest_dir: Path

    async def settle(self) -> None:
        await settle(self.server, self.app)


def make_deps(tmp_path: Path, server: FakeBotApi, **settings: Any) -> tuple[Deps, AsyncEngine]:
    """Services on a fresh database; `digest_dir=` points the settings *and* the Ingestor
    at another folder (used as it is), else the fixtures are copied to tmp_path/digests."""
    digest_dir = Path(settings.pop("digest_dir", tmp_path / "digests"))
    if not digest_dir.exists():
        shutil.copytree(FIXTURE_DIR, digest_dir)
        for file in digest_dir.rglob("*.md"):
            os.utime(file, (1_000_000_000, 1_000_000_000))
    values: dict[str, Any] = {
        "telegram_token": server.token,
        "bot_api_url": server.base_url.removesuffix("/bot"),
        "digest_dir": digest_dir,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "admin_ids": frozenset({OPERATOR_ID}),
    }
    values.update(settings)
    config = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    engine = make_engine(config.database_url)
    sessions = make_sessionmaker(engine)
    archive = ArchiveRepo(sessions)
    deps = Deps(config, archive, ChatRepo(sessions),
                Ingestor(archive, digest_dir, blog_base_url=config.blog_base_url))
    return deps, engine


@asynccontextmanager
async def running_bot(tmp_path: Path, server: FakeBotApi, *, ingest: bool = True,
                      **settings: Any) -> AsyncIterator[BotUnderTest]:
    deps, engine = make_deps(tmp_path, server, **settings)
    await migrate(engine)
    if ingest:
        await deps.ingestor.scan()
    app = build_application(deps)
    try:
        async with running_application(app, server):
            await startup(app, deps)
            yield BotUnderTest(server, app, deps, deps.settings.digest_dir)
    finally:
        await engine.dispose()
