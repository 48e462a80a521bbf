"""Who is talking: the Chat record for an update, and whether the sender may change it."""

from __future__ import annotations

import logging
import re

from telegram import Bot, Message, Update
from telegram.constants import CallbackQueryLimit, ChatMemberStatus, ChatType, MessageEntityType
from telegram.error import TelegramError

from bot.domain.models import Chat
from bot.tg.deps import Deps
from bot.tg.texts import COMMON, lang_of, tr

log = logging.getLogger(__name__)

ANSWER_LEN = int(CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH)
"""The most a button's answer may say (UTF-16 units)."""

_ADMIN_STATUSES = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
_CHANNEL_REF = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}|-100\d{5,15}")


async def refuse_button(update: Update, why: str) -> None:
    """A button whose data we cannot use (forged, from an old version, garbled): a short
    "expired" answer and one INFO line, never an exception (which would page operators).
    """
    query = update.callback_query
    assert query is not None
    log.info("refused the button %r of user %d: %s", (query.data or "")[:80],
             query.from_user.id, why)
    await query.answer(tr(COMMON, lang_of(query.from_user.language_code), "stale_button"),
                       show_alert=True)


def addressed_text(message: Message, bot_id: int, username: str | None) -> str | None:
    """In a group, the text of a message meant for the bot (without the @mention), or None
    when it is people talking among themselves: the bot answers only a mention of it or a
    reply to one of its messages."""
    text = message.text or ""
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and reply.from_user.id == bot_id:
        return text
    mention = f"@{username}".casefold() if username else None
    for entity in message.entities:
        if entity.type != MessageEntityType.MENTION or mention is None:
            continue
        said = message.parse_entity(entity)
        if said.casefold() == mention:
            return text.replace(said, " ")
    return None


def channel_ref(text: str) -> str | int | None:
    """``@username`` or the numeric id of a channel or supergroup (``-100…``: a private
    channel has no username), as an operator names one in a command; None otherwise."""
    text = text.strip()
    if not _CHANNEL_REF.fullmatch(text):
        return None
    return text if text.startswith("@") else int(text)


def _title(update: Update) -> str:
    chat = update.effective_chat
    if chat is None:
        return ""
    if chat.type == ChatType.PRIVATE:
        return chat.full_name or chat.username or ""
    return chat.title or chat.username or ""


async def current_chat(update: Update, deps: Deps) -> Chat:
    """The chat of this update, created on first contact (language from the user)."""
    tg_chat = update.effective_chat
    assert tg_chat is not None
    user = update.effective_user
    lang = lang_of(user.language_code if user else None)
    return await deps.chats.ensure(tg_chat.id, str(tg_chat.type), _title(update), lang=lang)


async def may_manage(update: Update, bot: Bot, deps: Deps) -> bool:
    """Private chats manage themselves; in groups only the group's admins may.

    An anonymous admin posts as the group itself (sender_chat), which counts as admin.
    Channels are managed by the bot's operators through `/subscribe @channel`.
    """
    chat = update.effective_chat
    message = update.effective_message
    user = update.effective_user
    if chat is None:
        return False
    if chat.type == ChatType.PRIVATE:
        return True
    if update.callback_query is None:  # a message: who (or which chat) sent it counts
        if message is not None and message.sender_chat is not None:
            return message.sender_chat.id == chat.id
        if chat.type == ChatType.CHANNEL:
            return True  # only the channel's admins can post in it
    # A button press: the message is the bot's own, so ask about the user who pressed.
    if user is None:
        return False
    if deps.is_operator(user.id):
        return True
    try:
        member = await bot.get_chat_member(chat.id, user.id)
    except TelegramError as exc:
        log.warning("cannot check admin rights in chat %s: %s", chat.id, exc)
        return False
    return member.status in _ADMIN_STATUSES


async def may_manage_channel(bot: Bot, deps: Deps, user_id: int | None, channel_id: int
                             ) -> bool:
    """Whether this person may manage that channel's (or supergroup's) subscription from
    their private chat: an operator, or an admin of it, as Telegram says right now (a
    right taken away an hour ago no longer counts)."""
    if user_id is None:
        return False
    if deps.is_operator(user_id):
        return True
    try:
        member = await bot.get_chat_member(channel_id, user_id)
    except TelegramError as exc:
        log.info("cannot check whether user %s is an admin of %s: %s", user_id, channel_id,
                 exc)
        return False
    return member.status in _ADMIN_STATUSES


def thread_of(update: Update) -> int | None:
    """The forum topic a message was sent in, so replies and cards go there too."""
    message = update.effective_message
    if message is not None and message.is_topic_message:
        return message.message_thread_id
    return None


async def require_operator(update: Update, deps: Deps, command: str) -> str | None:
    """The chat's language if the sender is an operator; else refuse, log, and None."""
    message = update.effective_message
    assert message is not None
    chat = await current_chat(update, deps)
    user = update.effective_user
    user_id = user.id if user else None
    if deps.is_operator(user_id):
        return chat.lang
    log.warning("user %s tried /%s in chat %s but is not an operator", user_id, command,
                chat.chat_id)
    await message.reply_text(tr(COMMON, chat.lang, "operators_only"))
    return None
