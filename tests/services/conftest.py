"""Fixtures of the service tests."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.chats import ChatRepo
from bot.storage.engine import make_sessionmaker
from bot.storage.outbox import OutboxRepo
from bot.storage.repository import ArchiveRepo
from tests.services.world import FakeClock, FakeSender, World


@pytest.fixture
def world(engine: AsyncEngine) -> World:
    sessions = make_sessionmaker(engine)
    clock = FakeClock()
    return World(ArchiveRepo(sessions), ChatRepo(sessions), OutboxRepo(sessions, clock=clock.now),
                 FakeSender(), clock)
