"""Chat lifecycle: the bot added to or removed from a chat, a group becoming a supergroup."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatMemberStatus
from telegram.ext import ContextTypes

from bot.tg.chats import current_chat
from bot.tg.deps import Deps
from bot.tg.texts import tr

log = logging.getLogger(__name__)

TEXTS = {
    "en": {"added": "👋 Hello! An admin of this group can /subscribe it to paper topics; "
                    "/help lists everything I can do."},
    "zh": {"added": "👋 大家好！群管理员可以用 /subscribe 为本群订阅论文主题；"
                    "/help 查看全部功能。"},
}

_GONE = (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED)
_PRESENT = (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


class Membership:
    """Keeps the chat table in line with where the bot actually is."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def my_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Removed or blocked: stop deliveries at once. Added to a group: say hello."""
        change = update.my_chat_member
        if change is None:
            return
        chat_id = change.chat.id
        old, new = change.old_chat_member.status, change.new_chat_member.status
        if new in _GONE:
            log.info("bot removed from chat %s (%s)", chat_id, new)
            if await self.deps.chats.get(chat_id) is not None:
                await self.deps.chats.deactivate(chat_id, f"bot status in chat: {new}")
            return
        if new in _PRESENT and old in _GONE:
            chat = await current_chat(update, self.deps)
            if not chat.active:
                await self.deps.chats.reactivate(chat_id)
            if change.chat.type in ("group", "supergroup"):
                await context.bot.send_message(chat_id, tr(TEXTS, chat.lang, "added"))
            else:
                log.info("bot added to %s %s (%s)", change.chat.type, chat_id,
                         change.chat.title)

    async def migrated(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group became a supergroup: its subscription moves to the new chat id."""
        message = update.effective_message
        if message is None or message.migrate_to_chat_id is None:
            return
        moved = await self.deps.chats.migrate(message.chat.id, message.migrate_to_chat_id)
        # Queued deliveries follow the chat; left under the old id, the drain would find
        # no chat there and cancel them. (A no-op if delivery already moved them.)
        rows = await self.deps.outbox.move_chat(message.chat.id, message.migrate_to_chat_id)
        if moved is not None:
            log.info("chat %s migrated to %s (%d queued deliveries moved)", message.chat.id,
                     moved.chat_id, rows)
