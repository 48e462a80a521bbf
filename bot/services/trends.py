"""Trend charts (papers per topic per week) for /trends, `paperfeed trends` and the
weekly roundup: counted by the archive, shaped by bot.domain.trends, drawn by
bot.services.chart.

Drawing takes a few hundred milliseconds of CPU, so it runs in a worker thread
(`asyncio.to_thread`), one chart at a time, and never on the event loop. A chart is
kept, with its caption, until the archive changes (`ArchiveRepo.version`, one aggregate
query per request): asking again is instant until a scan stores something. A second
request for a chart being drawn waits for it instead of drawing it again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from bot.domain.chat_settings import language
from bot.domain.trends import DEFAULT_WEEKS, MAX_WEEKS, TrendSeries, build_series, caption
from bot.services.chart import render_png
from bot.storage.repository import ArchiveRepo

CACHED_CHARTS: Final = 64
"""Charts kept per archive version (about 60 KB each), least recently used dropped."""

Renderer = Callable[[TrendSeries, str], bytes]
"""Series and language to PNG bytes; run in a worker thread."""
ChartKey = tuple[str | None, tuple[str, ...] | None, int, str, tuple[int, ...]]
"""(tag, topics, weeks, language, archive version): what a chart depends on."""


@dataclass(frozen=True, slots=True)
class TrendChart:
    """A drawn chart: the PNG, its two-line caption (Telegram HTML) and what it shows."""

    png: bytes
    caption: str
    series: TrendSeries
    key: ChartKey  # equal keys, equal charts: a sent photo's file_id may be reused


class Trends:
    """Trend charts and weekly counts, cached per archive version. One per process."""

    def __init__(self, archive: ArchiveRepo, *, render: Renderer = render_png,
                 cached: int = CACHED_CHARTS) -> None:
        self._archive = archive
        self.renderer = render  # public so a test can hold a drawing to watch the loop
        self._cached = cached
        self._charts: OrderedDict[ChartKey, TrendChart] = OrderedDict()
        self._lock = asyncio.Lock()  # one drawing at a time, and no chart drawn twice
        self.renders = 0  # charts drawn so far (cache misses), for tests and stats

    async def chart(self, tag: str | None = None, weeks: int = DEFAULT_WEEKS,
                    lang: str = "en", *, topics: Sequence[str] | None = None
                    ) -> TrendChart | None:
        """The chart of the last `weeks` weeks up to the newest digest: of every topic,
        of one `tag` (any spelling `resolve_tag` takes; UnknownTag if none), or of these
        stored `topics` (a chat's, for the roundup). None while the archive is empty."""
        if not 1 <= weeks <= MAX_WEEKS:
            raise ValueError(f"weeks must be 1..{MAX_WEEKS}, not {weeks}")
        if tag is not None and topics is not None:
            raise ValueError("a chart of one tag or of several topics, not both")
        lang = language(lang)
        resolved = None if tag is None else await self._archive.resolve_tag(tag)
        chosen = None if topics is None else tuple(sorted(set(topics)))
        async with self._lock:
            # The version is read before the counts: a scan in between leaves a chart
            # of newer data under the older version, redrawn on the next request,
            # never stale data under the newer one.
            version = await self._archive.version()
            key: ChartKey = (resolved, chosen, weeks, lang, version)
            found = self._charts.get(key)
            if found is not None:
                self._charts.move_to_end(key)
                return found
            series = await self.series(resolved, weeks, topics=chosen)
            if series is None:
                return None
            png = await asyncio.to_thread(self.renderer, series, lang)
            self.renders += 1
            made = TrendChart(png, caption(series, lang), series, key)
            for old in [k for k in self._charts if k[-1] != version]:
                del self._charts[old]
            self._charts[key] = made
            while len(self._charts) > self._cached:
                self._charts.popitem(last=False)
            return made

    async def series(self, tag: str | None, weeks: int, *,
                     topics: Sequence[str] | None = None) -> TrendSeries | None:
        """The numbers behind a chart (a stored tag name, or stored topic names), ending
        on the newest digest date; None while the archive is empty."""
        end = await self._archive.latest_digest_date()
        if end is None:
            return None
        only = [tag] if tag is not None else topics
        rows = await self._archive.weekly_counts(end, weeks, only)
        return build_series(rows, end, weeks, tag=tag)

    async def week_counts(self, topics: Sequence[str], last_day: date | None = None
                          ) -> dict[str, int]:
        """Papers listed under each of these stored topics in the 7 days ending on
        `last_day` (default: the newest digest date); 0 for a quiet topic."""
        counts = dict.fromkeys(topics, 0)
        end = last_day or await self._archive.latest_digest_date()
        if end is None or not counts:
            return counts
        for topic, _, papers in await self._archive.weekly_counts(end, 1, list(counts)):
            counts[topic] = papers
        return counts
