"""The Telegram side of delivery: send one Outgoing with python-telegram-bot.

Rate limiting is bot.tg.ratelimit's limiter on the bot: every send here is marked
``Priority.BROADCAST``, so replies to users go first, and a 429 is raised at once (as
FloodWait) for the delivery to reschedule. This module only turns a message into
``send_message`` arguments (the same preview and keyboard as bot.tg.cards, so
deliveries look like command replies) and Telegram's answers into the exceptions of
bot.services.ports:

==============================================  ==========================================
Telegram says                                   raised here (delivery then ...)
==============================================  ==========================================
ChatMigrated (group upgraded to supergroup)     ChatMigrated (moves the rows, resends)
RetryAfter (429)                                FloodWait (row waits, never dropped)
Forbidden (403: blocked, kicked, deactivated)   ChatGone (deactivates, cancels the rows)
BadRequest: chat not found, PEER_ID_INVALID     ChatGone: the chat cannot receive anything
                                                  from us until someone acts (/start)
BadRequest: no rights to send, topic closed or  ChatPaused: the chat stays subscribed; its
  deleted, message thread not found               rows wait and are tried again hourly
BadRequest, anything else                       MessageRejected (resent as plain text;
  (can't parse entities, too long, empty, a       if that is refused too, the row fails
  button or preview Telegram refuses)             with the error)
TimedOut, NetworkError, 5xx, other errors       TransientSendError (retry with backoff)
InvalidToken                                    not caught: a configuration error
==============================================  ==========================================

Other BadRequests are treated as a problem of the message rather than of the chat
because that is what a card can get wrong (a URL Telegram dislikes, an entity); the
plain-text resend drops formatting, buttons and preview, so it only fails when the
chat itself refuses, and then the row fails visibly instead of being dropped.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions
from telegram import error as tg_error
from telegram.constants import ParseMode
from telegram.ext import ExtBot

from bot.domain.models import Chat
from bot.domain.rendering import Button, Card
from bot.errors import ChatGone, ChatPaused
from bot.services.ports import (
    ChatMigrated,
    FloodWait,
    MessageRejected,
    Outgoing,
    TransientSendError,
)
from bot.tg.cards import preview_options
from bot.tg.keyboards import markup
from bot.tg.ratelimit import Priority, retry_seconds

__all__ = ["TelegramSender"]

_GONE: Final = ("chat not found", "peer_id_invalid")
"""BadRequest descriptions that mean the chat, not the message, is gone."""

_PAUSED: Final = (
    "need administrator rights",
    "not enough rights to send",
    "have no rights to send",
    "chat_write_forbidden",
    "message thread not found",
    "topic_deleted",
    "topic_closed",
)
"""BadRequest descriptions that mean the bot may not post there for now: the chat stays
subscribed and its rows wait (a topic may reopen, an admin may give the right back)."""

_NO_PREVIEW: Final = LinkPreviewOptions(is_disabled=True)
MAX_ADMINS_TOLD: Final = 10
"""Private messages at most per notice: a large group's admins are told, not spammed."""
Buttons = tuple[tuple[Button, ...], ...]


class TelegramSender:
    """Implements bot.services.ports.Sender with ``bot.send_message``.

    A broadcast sends the same few cards to thousands of chats, so the keyboards and
    preview options built for them are kept (python-telegram-bot's objects are
    immutable, so sharing them is safe) instead of being rebuilt for every message.
    """

    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        # Replies to users go before deliveries (bot.tg.ratelimit); only a bot with a
        # rate limiter takes the argument.
        limited = isinstance(bot, ExtBot) and bot.rate_limiter is not None
        self._priority: dict[str, Any] = (
            {"rate_limit_args": Priority.BROADCAST} if limited else {})

    async def send(self, chat: Chat, message: Outgoing) -> int:
        """Send and return the message id; failures as described in the module docstring."""
        if message.html is None:
            text, parse_mode, keyboard = message.plain_fallback, None, None
            preview = _NO_PREVIEW
        else:
            # The same Bot API shape as a card sent in reply to a command (bot.tg.cards).
            text, parse_mode = message.html, ParseMode.HTML
            preview = _preview(message.preview_url)
            try:
                keyboard = _keyboard(message.buttons)
            except ValueError as exc:  # callback data Telegram would refuse
                raise MessageRejected(f"bad button: {exc}") from exc
        try:
            if message.photo is not None and message.html is not None:
                sent = await self._bot.send_photo(
                    chat_id=chat.chat_id, photo=message.photo, caption=text,
                    parse_mode=parse_mode, reply_markup=keyboard,
                    message_thread_id=chat.thread_id,
                    disable_notification=chat.silent or None, **self._priority)
                return sent.message_id
            sent = await self._bot.send_message(
                chat_id=chat.chat_id,
                text=text,
                parse_mode=parse_mode,
                link_preview_options=preview,
                reply_markup=keyboard,
                message_thread_id=chat.thread_id,
                disable_notification=chat.silent or None,  # the chat muted its deliveries
                **self._priority,
            )
        except tg_error.ChatMigrated as exc:
            raise ChatMigrated(chat.chat_id, int(exc.new_chat_id)) from exc
        except tg_error.RetryAfter as exc:
            raise FloodWait(retry_seconds(exc)) from exc
        except tg_error.Forbidden as exc:
            raise ChatGone(chat.chat_id, exc.message) from exc
        except tg_error.BadRequest as exc:
            described = exc.message.casefold()
            if any(marker in described for marker in _GONE):
                raise ChatGone(chat.chat_id, exc.message) from exc
            if any(marker in described for marker in _PAUSED):
                raise ChatPaused(chat.chat_id, exc.message) from exc
            raise MessageRejected(exc.message) from exc
        except tg_error.TimedOut as exc:
            raise TransientSendError(f"timed out: {exc.message}") from exc
        except tg_error.InvalidToken:
            raise
        except tg_error.TelegramError as exc:  # NetworkError (5xx, dropped connections), ...
            raise TransientSendError(exc.message or type(exc).__name__) from exc
        return sent.message_id


    async def tell_admins(self, chat: Chat, message: Outgoing) -> bool:
        """Implements bot.services.ports.AdminNotifier: a paused chat's people hear why.

        A closed or deleted topic leaves the rest of a forum writable, so the General
        topic is tried first; then each human admin in their private chat with the bot,
        which works for those who have started it. Every refusal is expected and quiet.
        """
        text, parse_mode = (message.plain_fallback, None) if message.html is None else (
            message.html, ParseMode.HTML)
        if chat.thread_id is not None:
            try:
                await self._bot.send_message(chat_id=chat.chat_id, text=text,
                                             parse_mode=parse_mode,
                                             link_preview_options=_NO_PREVIEW,
                                             **self._priority)
                return True
            except tg_error.TelegramError:
                pass
        try:
            admins = await self._bot.get_chat_administrators(chat.chat_id, **self._priority)
        except tg_error.TelegramError:
            return False
        told = False
        people = [a.user for a in admins if not a.user.is_bot][:MAX_ADMINS_TOLD]
        for person in people:
            try:
                await self._bot.send_message(chat_id=person.id, text=text,
                                             parse_mode=parse_mode,
                                             link_preview_options=_NO_PREVIEW,
                                             **self._priority)
                told = True
            except tg_error.TelegramError:
                continue
        return told


@functools.lru_cache(maxsize=256)
def _preview(url: str | None) -> LinkPreviewOptions:
    return preview_options(Card("", url))


@functools.lru_cache(maxsize=256)
def _keyboard(buttons: Buttons) -> InlineKeyboardMarkup | None:
    return markup(buttons)  # a ValueError is not cached: it is raised again each time
