"""`GET /feeds/all.atom` and `GET /feeds/<tag>.atom` on the bot's HTTP server (bot.health).

The feeds themselves come from bot.services.feeds (rendered once per archive change);
this is the HTTP edge: the tag from the path (percent-decoded by tornado, UTF-8), the
conditional GET that lets a feed reader poll without downloading an unchanged feed
(ETag / If-None-Match first, as RFC 9110 says, else Last-Modified / If-Modified-Since),
GET and HEAD only (tornado answers 405 to the rest), and short plain-text errors.

The server's limits (header size, timeouts) are bot.health's and apply here too; a
feed request has no body.
"""

from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Final

import tornado.web

from bot.domain.atom import ALL_NAME, CONTENT_TYPE
from bot.errors import UnknownTag
from bot.services.feeds import Feed, Feeds

log = logging.getLogger(__name__)

FEED_PATTERN: Final = r"/feeds/([^/]+)\.atom"
"""The route; `%2F` in a tag (元宇宙/虚拟人) stays inside the one path segment."""
MAX_TAG_LENGTH: Final = 200
"""Longer names are not looked up: no tag is that long."""

NOT_FOUND: Final = ("No feed here: unknown tag. /feeds/all.atom has every tag; "
                    "`/tags` in the bot lists them.\n"
                    "没有这个订阅源：未知标签。/feeds/all.atom 包含所有标签；在机器人中发送 "
                    "`/tags` 可查看全部标签。\n")
UNAVAILABLE: Final = ("The feed is unavailable right now; try again later.\n"
                      "订阅源暂时不可用，请稍后再试。\n")


class FeedHandler(tornado.web.RequestHandler):
    """One Atom feed, with ETag and Last-Modified; 304 when the reader has it already."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    def initialize(self, feeds: Feeds) -> None:
        self._feeds = feeds

    def compute_etag(self) -> str | None:
        """None: tornado's own ETag (a hash of the written body, not written for HEAD) is
        replaced by the cached feed's."""
        return None

    async def get(self, name: str) -> None:
        await self._serve(name, body=True)

    async def head(self, name: str) -> None:
        await self._serve(name, body=False)

    async def _serve(self, name: str, *, body: bool) -> None:
        try:
            if len(name) > MAX_TAG_LENGTH:
                raise UnknownTag(name[:MAX_TAG_LENGTH])
            feed = await self._feeds.feed(None if name == ALL_NAME else name)
        except UnknownTag:
            self._text(HTTPStatus.NOT_FOUND, NOT_FOUND, body=body)
            return
        except Exception as exc:  # the database went away: say so, keep serving
            log.warning("feed %r: %s: %s", name, type(exc).__name__,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            self.set_header("Retry-After", "60")
            self._text(HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE, body=body)
            return
        self.set_header("ETag", feed.etag)
        self.set_header("Last-Modified", feed.last_modified)
        self.set_header("Cache-Control", "no-cache")  # may be stored, revalidated each time
        if self._not_modified(feed):
            self.set_status(HTTPStatus.NOT_MODIFIED)
            self.finish()
            return
        self.set_header("Content-Type", CONTENT_TYPE)
        self.set_header("Content-Length", len(feed.body))
        if body:
            self.write(feed.body)
        self.finish()

    def _not_modified(self, feed: Feed) -> bool:
        """If-None-Match when sent (If-Modified-Since is then ignored), else If-Modified-Since."""
        if self.request.headers.get("If-None-Match") is not None:
            return self.check_etag_header()
        since = self.request.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False  # not an HTTP date: ignored, as RFC 9110 says
        return when.tzinfo is not None and feed.last_modified <= when

    def _text(self, status: int, text: str, *, body: bool) -> None:
        data = text.encode()
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Length", len(data))
        if body:
            self.write(data)
        self.finish()


def feed_routes(feeds: Feeds) -> list[Any]:
    """The route of the feeds, for tornado.web.Application."""
    return [(FEED_PATTERN, FeedHandler, {"feeds": feeds})]
