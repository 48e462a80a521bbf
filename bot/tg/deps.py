"""What every handler needs, passed in once by the composition root (no bot_data lookups):
the shared services (bot.bootstrap.Services) and the delivery that sends through this
bot. Only bot.tg and the runner that builds the bot use it."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.bootstrap import Services
from bot.config import Settings
from bot.services.delivery import Delivery
from bot.services.ingest import Ingestor
from bot.services.related import Related
from bot.services.scan import ScanStatus
from bot.services.trends import Trends
from bot.storage.chats import ChatRepo
from bot.storage.outbox import OutboxRepo
from bot.storage.repository import ArchiveRepo
from bot.storage.saved import SavedRepo


@dataclass(frozen=True, slots=True)
class Deps:
    """The services a Telegram handler may call; typed, unlike `context.bot_data`."""

    settings: Settings
    archive: ArchiveRepo
    chats: ChatRepo
    ingestor: Ingestor
    outbox: OutboxRepo
    delivery: Delivery
    saved: SavedRepo
    trends: Trends
    related: Related
    scan_status: ScanStatus = field(default_factory=ScanStatus)

    @classmethod
    def of(cls, services: Services, delivery: Delivery) -> Deps:
        return cls(services.settings, services.archive, services.chats, services.ingestor,
                   services.outbox, delivery, services.saved, services.trends,
                   services.related, services.scan_status)

    def is_operator(self, user_id: int | None) -> bool:
        """An admin of the bot itself (ADMIN_IDS), not of a group."""
        return user_id is not None and user_id in self.settings.admin_ids
