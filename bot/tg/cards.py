"""Sending papers into a chat: the card, its analysis and its figures.

Rendering is pure (bot.domain.rendering); this module only turns a rendered Card into
Bot API calls, so chat replies and deliveries look the same. The analysis, up to
ANALYSIS_MAX_BYTES of markdown, is rendered in a worker thread: the event loop, which
answers every other chat, never waits on it.
"""

from __future__ import annotations

import asyncio

from telegram import Bot, InputMediaPhoto, LinkPreviewOptions, Message

from bot.domain.models import Appearance, ArchivedPaper, Chat
from bot.domain.rendering import Card, render_analysis, render_card, render_figures
from bot.tg.keyboards import markup


def preview_options(card: Card) -> LinkPreviewOptions:
    """The first figure shown large above the text; no preview without a figure."""
    if card.preview_url is None:
        return LinkPreviewOptions(is_disabled=True)
    return LinkPreviewOptions(url=card.preview_url, show_above_text=True,
                              prefer_large_media=True)


def card_for(paper: ArchivedPaper, chat: Chat, blog_base_url: str | None,
             appearance: Appearance | None = None, *, saved: bool = False) -> Card:
    """The card in this chat's style and language; ``saved``: its save button shows
    ⭐ (only for a card one person opened for themselves, in a private chat)."""
    return render_card(paper, blog_base_url=blog_base_url,
                       style=chat.style,
                       appearance=appearance, lang=chat.lang, saved=saved)


async def send_card(bot: Bot, chat_id: int, card: Card, thread_id: int | None = None
                    ) -> Message:
    return await bot.send_message(
        chat_id, card.html, parse_mode="HTML", link_preview_options=preview_options(card),
        reply_markup=markup(card.buttons), message_thread_id=thread_id,
    )


async def analysis_parts(paper: ArchivedPaper) -> list[str]:
    """The analysis as messages, rendered off the event loop."""
    return await asyncio.to_thread(render_analysis, paper)


async def send_analysis(bot: Bot, chat_id: int, paper: ArchivedPaper,
                        thread_id: int | None = None, *,
                        parts: list[str] | None = None) -> int:
    """The long analysis in as many messages as it needs; returns how many were sent.
    ``parts``: already rendered (by :func:`analysis_parts`)."""
    if parts is None:
        parts = await analysis_parts(paper)
    for part in parts:
        await bot.send_message(chat_id, part, parse_mode="HTML", message_thread_id=thread_id,
                               link_preview_options=LinkPreviewOptions(is_disabled=True))
    return len(parts)


async def send_figures(bot: Bot, chat_id: int, paper: ArchivedPaper,
                       thread_id: int | None = None) -> int:
    """The figures as one album (a single photo when there is only one)."""
    urls = render_figures(paper)
    if len(urls) == 1:
        await bot.send_photo(chat_id, urls[0], message_thread_id=thread_id)
    elif urls:
        await bot.send_media_group(chat_id, [InputMediaPhoto(url) for url in urls],
                                   message_thread_id=thread_id)
    return len(urls)
