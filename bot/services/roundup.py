"""The weekly roundup as a message: the week's counts per followed topic (bot.domain
.roundup) with the trend chart of those topics (bot.services.trends) as its picture.

The drain asks for it when the row comes due, so the numbers are those of that moment
and the chart comes from the trends cache when another chat with the same topics got
it already.
"""

from __future__ import annotations

from datetime import date, timedelta

from bot.domain.models import Chat
from bot.domain.rendering import plain_text
from bot.domain.roundup import render_roundup
from bot.domain.trends import DEFAULT_WEEKS
from bot.services.ports import Outgoing
from bot.services.trends import Trends
from bot.storage.repository import ArchiveRepo

__all__ = ["Roundups"]


class Roundups:
    """Implements bot.services.drain's roundup source."""

    def __init__(self, archive: ArchiveRepo, trends: Trends) -> None:
        self._archive = archive
        self._trends = trends

    async def roundup(self, chat: Chat, week: date) -> Outgoing | None:
        """The roundup of the week before ``week`` for this chat; None while the archive
        has no topics at all."""
        topics = list(chat.tags) if not chat.all_topics else [
            t.name for t in await self._archive.tags()]
        if not topics:
            return None
        counts = await self._trends.week_counts(topics, week - timedelta(days=1))
        chart = await self._trends.chart(None, DEFAULT_WEEKS, chat.lang,
                                         topics=None if chat.all_topics else topics)
        html = render_roundup(week, counts, chart.caption if chart else "", lang=chat.lang)
        return Outgoing(html=html, plain_fallback=plain_text(html),
                        photo=chart.png if chart else None)
