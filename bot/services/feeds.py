"""The Atom feeds of the archive, rendered once per change of the archive.

A feed reader polls every few minutes, and many may poll the same feed. So a feed is
rendered (50 papers loaded, XML written) only when the archive changed since it was last
rendered, which one aggregate query tells (`ArchiveRepo.version`); otherwise the bytes,
their ETag and their Last-Modified come from memory, and a conditional request gets 304.

- ETag: a hash of the body, so it is the same on every instance and after a restart
  (the body is deterministic, see bot.domain.atom).
- Last-Modified: when this process first rendered that body. A re-render that gives
  the same bytes (a touched file, a change to another tag) keeps it, and a new body's
  is always later than the one before, so If-Modified-Since never hides a change.
- Tag names are resolved like the bot does (`resolve_tag`: case, spaces and punctuation
  ignored); resolutions are cached with the feeds, for the same archive version.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from bot.domain.atom import FEED_SIZE, FeedInfo, feed_info, render_feed
from bot.domain.models import SearchQuery
from bot.services.ports import Clock
from bot.storage.repository import ArchiveRepo

CACHED_FEEDS: Final = 64
"""Rendered feeds kept (least recently used go first): every tag a reader follows,
without letting requests for thousands of tags hold thousands of bodies."""
CACHED_NAMES: Final = 1024
"""Spellings of tag names kept resolved (`nerf`, `NeRF`, `Talking%20Head…`)."""


@dataclass(frozen=True, slots=True)
class Feed:
    """One rendered feed and what conditional requests compare against."""

    tag: str | None  # the tag as stored; None: every tag
    body: bytes
    etag: str  # quoted, strong: `"<sha256 of the body, 32 hex digits>"`
    last_modified: datetime  # UTC, whole seconds (HTTP dates have no fractions)


class Feeds:
    """The newest papers of the archive (or of one tag) as Atom, cached per archive version."""

    def __init__(self, archive: ArchiveRepo, clock: Clock, *, base_url: str | None = None,
                 blog_base_url: str | None = None, size: int = FEED_SIZE) -> None:
        self._archive = archive
        self._clock = clock
        self._base_url = base_url
        self._blog_base_url = blog_base_url
        self._size = size
        self._version: tuple[int, ...] | None = None
        self._rendering = asyncio.Lock()
        self._feeds: OrderedDict[str | None, Feed] = OrderedDict()  # of self._version
        self._names: dict[str, str] = {}  # spelling -> stored tag, of self._version
        # tag -> the ETag and Last-Modified of its newest body, across versions
        self._stamps: OrderedDict[str | None, tuple[str, datetime]] = OrderedDict()

    async def feed(self, name: str | None = None) -> Feed:
        """The feed of the tag called `name` (None: every tag); UnknownTag if none is."""
        await self._check_version()
        tag = None if name is None else await self._resolve(name)
        cached = self._cached(tag)
        if cached is not None:
            return cached
        # One render at a time: each then reads an archive at least as new as the one
        # before, so a newer Last-Modified never goes with older content.
        async with self._rendering:
            version = await self._check_version()
            cached = self._cached(tag)
            if cached is not None:  # rendered while this request waited
                return cached
            feed = self._stamped(tag, await self.render(tag))
            if self._version == version:  # not if a request saw a newer one meanwhile
                self._feeds[tag] = feed
                while len(self._feeds) > CACHED_FEEDS:
                    self._feeds.popitem(last=False)
            return feed

    async def render(self, tag: str | None) -> bytes:
        """The Atom document of a stored tag (None: every tag), rendered now, uncached."""
        query = SearchQuery(since=date.min) if tag is None else SearchQuery(tags=(tag,))
        hits, _ = await self._archive.search(query, limit=self._size)
        return render_feed([hit.paper for hit in hits], self.info(tag))

    def info(self, tag: str | None) -> FeedInfo:
        """The feed's id, title and links (see bot.domain.atom.feed_info)."""
        return feed_info(tag, base_url=self._base_url, blog_base_url=self._blog_base_url)

    async def _check_version(self) -> tuple[int, ...]:
        """Ask the archive's version; forget the rendered feeds and names if it moved."""
        version = await self._archive.version()
        if version != self._version:
            self._version = version
            self._feeds.clear()
            self._names.clear()
        return version

    def _cached(self, tag: str | None) -> Feed | None:
        feed = self._feeds.get(tag)
        if feed is not None:
            self._feeds.move_to_end(tag)
        return feed

    async def _resolve(self, name: str) -> str:
        tag = self._names.get(name)
        if tag is None:
            tag = await self._archive.resolve_tag(name)  # raises UnknownTag
            if len(self._names) >= CACHED_NAMES:
                self._names.clear()
            self._names[name] = tag
        return tag

    def _stamped(self, tag: str | None, body: bytes) -> Feed:
        """The body with its ETag and Last-Modified: kept while the body stays the same,
        else now, and always later than the previous body's (even one seen before: a
        client holding the newer one must not get 304 for it)."""
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        current = self._stamps.get(tag)
        if current is not None and current[0] == etag:
            stamp = current[1]
        else:
            stamp = self._clock.now().replace(microsecond=0)
            if current is not None and stamp <= current[1]:
                stamp = current[1] + timedelta(seconds=1)
        self._stamps[tag] = (etag, stamp)
        self._stamps.move_to_end(tag)
        while len(self._stamps) > 4 * CACHED_FEEDS:
            self._stamps.popitem(last=False)
        return Feed(tag, body, etag, stamp)
