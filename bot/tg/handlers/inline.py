"""Inline mode: `@bot QUERY` in any chat offers paper cards to share.

The shared message is the same card a subscriber gets, with only its URL buttons: the
people who read it may never have talked to the bot.
"""

from __future__ import annotations

import hashlib
import html
import logging
from datetime import date

from cachetools import TTLCache
from telegram import (
    InlineQueryResultArticle,
    InputTextMessageContent,
    Update,
    User,
)
from telegram.constants import InlineQueryResultLimit
from telegram.ext import ContextTypes

from bot.domain.models import ArchivedPaper, Chat, SearchQuery
from bot.domain.query import parse_query
from bot.domain.rendering import format_authors
from bot.domain.tgtext import clean_text, is_blank, truncate
from bot.tg.cards import card_for, preview_options
from bot.tg.deps import Deps
from bot.tg.keyboards import strict_int, url_markup
from bot.tg.texts import lang_of

log = logging.getLogger(__name__)

INLINE_PAGE = 20  # results per answer; Telegram allows 50
CACHE_SECONDS = 30  # short: new digests should show up soon
CACHE_ENTRIES = 1024  # pages kept (query, offset, language, card style)
MAX_OFFSET = 100_000  # beyond any real archive; keeps a forged offset harmless
TITLE_LEN = 100
DESCRIPTION_LEN = 200
RESULT_ID_BYTES = int(InlineQueryResultLimit.MAX_ID_LENGTH)

_Page = tuple[tuple[InlineQueryResultArticle, ...], str]  # results, next_offset

# An empty query lists everything newest first: a date filter alone does exactly that.
EVERYTHING = SearchQuery(since=date.min)


def _line(text: str) -> str:
    """A digest field as one line of plain text, for titles and descriptions."""
    return " ".join(clean_text(html.unescape(text)).replace("**", "").split())


def result_id(arxiv_id: str) -> str:
    """The arXiv id itself (what chosen_inline_result reports), hashed if ever too long."""
    if arxiv_id and len(arxiv_id.encode("utf-8")) <= RESULT_ID_BYTES:
        return arxiv_id
    return hashlib.sha1(arxiv_id.encode("utf-8", "surrogatepass")).hexdigest()


def parse_offset(offset: str) -> int:
    """Telegram echoes our next_offset back; anything else starts at the beginning."""
    number = strict_int(offset)
    return min(number, MAX_OFFSET) if number is not None else 0


class Inline:
    """Answers inline queries with cards in the asking user's language and style."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        # Typing "@bot gaussian" sends a query per keystroke, often the same ones from
        # many people: a page is searched and rendered once per CACHE_SECONDS.
        self._cache: TTLCache[tuple[str, int, str, str], _Page] = TTLCache(
            CACHE_ENTRIES, CACHE_SECONDS)

    async def viewer(self, user: User) -> Chat:
        """The user's own chat settings if they have talked to the bot, else defaults in
        their Telegram language. Nothing is stored: an inline query is not a subscription."""
        known = await self.deps.chats.get(user.id)
        return known or Chat(chat_id=user.id, lang=lang_of(user.language_code))

    def article(self, paper: ArchivedPaper, chat: Chat) -> InlineQueryResultArticle:
        card = card_for(paper, chat, self.deps.settings.blog_base_url)
        p = paper.paper
        summary = _line(p.summary) or next(
            (_line(a.summary) for a in sorted(paper.appearances, key=lambda a: a.date)
             if a.summary.strip()), "")
        description = summary or _line(format_authors(p.authors, 3, 2, lang=chat.lang))
        title = _line(p.title)
        if is_blank(title):  # e.g. only zero-width spaces: Telegram wants a visible title
            title = paper.arxiv_id
        return InlineQueryResultArticle(
            id=result_id(paper.arxiv_id),
            title=truncate(title, TITLE_LEN),
            input_message_content=InputTextMessageContent(
                card.html, parse_mode="HTML", link_preview_options=preview_options(card)),
            reply_markup=url_markup(card.buttons),
            description=truncate(description, DESCRIPTION_LEN) or None,
            thumbnail_url=card.preview_url,
        )

    async def answer(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """One page of results; next_offset carries the position of the next page.

        is_personal: cards follow the user's language and style, so one user's cached
        answer must not be shown to another.
        """
        inline = update.inline_query
        assert inline is not None
        text = inline.query.strip()
        offset = parse_offset(inline.offset)
        chat = await self.viewer(inline.from_user)
        key = (text, offset, chat.lang, chat.style)
        page = self._cache.get(key)
        if page is None:
            page = self._cache[key] = await self._page(text, offset, chat)
        results, next_offset = page
        await inline.answer(results, cache_time=CACHE_SECONDS, is_personal=True,
                            next_offset=next_offset)

    async def _page(self, text: str, offset: int, chat: Chat) -> _Page:
        query = parse_query(text) if text else EVERYTHING
        # count_up_to=1: whether a next page exists is all the total is needed for
        hits, total = await self.deps.archive.search(query, INLINE_PAGE, offset, count_up_to=1)
        seen: set[str] = set()
        results: list[InlineQueryResultArticle] = []
        for hit in hits:
            article = self.article(hit.paper, chat)
            if article.id not in seen:
                seen.add(article.id)
                results.append(article)
        after = offset + len(hits)
        return tuple(results), (str(after) if hits and after < total else "")
