"""Per-user throttling: one person sending faster than a person would cannot crowd out
everyone else.

It runs before every other handler (group -1 in bot.tg.app). A user who sends more
than ``rate`` commands, button presses or inline queries within ``period`` seconds (a
leaky bucket: aiolimiter's AsyncLimiter) gets one short "slow down" answer, and their
updates are then dropped for ``cooldown`` seconds without a single request to Telegram,
so a flood costs the bot almost nothing. Operators are never throttled. Plain messages
in groups are not counted: with privacy mode off the bot sees every conversation, and
people talking to each other are not talking to the bot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter
from cachetools import TTLCache
from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.tg.deps import Deps
from bot.tg.texts import lang_of, tr

log = logging.getLogger(__name__)

RATE = 20
"""Updates a user may send in PERIOD seconds (a person rarely sends more than one every
two seconds for long)."""
PERIOD = 10.0
COOLDOWN = 30.0
"""Seconds a throttled user's updates are dropped."""
MAX_USERS = 100_000
"""Users remembered at once; each is forgotten PERIOD + COOLDOWN after their last update."""

TEXTS = {
    "en": {"slow_down": "🐢 Slow down, please: that was a lot at once. I'll answer again "
                        "in {seconds} seconds."},
    "zh": {"slow_down": "🐢 请慢一点：消息太多太快了。{seconds} 秒后我会继续回复。"},
}


@dataclass(slots=True)
class _User:
    bucket: AsyncLimiter
    quiet_until: float = 0.0
    dropped: int = 0


class Throttle:
    """The group -1 handler: passes an update on, or stops it (ApplicationHandlerStop)."""

    def __init__(self, deps: Deps, *, rate: int = RATE, period: float = PERIOD,
                 cooldown: float = COOLDOWN, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.deps = deps
        self.rate = rate
        self.period = period
        self.cooldown = cooldown
        self.clock = clock
        self._users: TTLCache[int, _User] = TTLCache(MAX_USERS, period + cooldown)

    @staticmethod
    def counts(update: Update) -> bool:
        """Whether this update is someone talking to the bot."""
        if update.callback_query is not None or update.inline_query is not None:
            return True
        message = update.message or update.edited_message
        if message is None or message.from_user is None:
            return False  # channel posts, membership changes, migrations
        if message.chat.type == ChatType.PRIVATE:
            return True
        return bool(message.text and message.text.startswith("/"))

    async def check(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if user is None or not self.counts(update) or self.deps.is_operator(user.id):
            return
        now = self.clock()
        state = self._users.get(user.id)
        if state is None:
            state = _User(AsyncLimiter(self.rate, self.period))
        self._users[user.id] = state  # (re)set: the entry lives on while the user talks
        if now < state.quiet_until:
            state.dropped += 1
            raise ApplicationHandlerStop
        if state.bucket.has_capacity():
            await state.bucket.acquire()  # immediate: there is capacity
            return
        state.quiet_until = now + self.cooldown
        state.dropped = 1
        log.info("user %s sent more than %d updates in %.0f s: ignoring them for %.0f s",
                 user.id, self.rate, self.period, self.cooldown)
        await self._tell(update, context, lang_of(user.language_code))
        raise ApplicationHandlerStop

    async def _tell(self, update: Update, context: ContextTypes.DEFAULT_TYPE, lang: str
                    ) -> None:
        """One short answer, where the user will see it; never an error of its own. An
        inline query has no chat: the user's private chat with the bot, if there is one."""
        text = tr(TEXTS, lang, "slow_down", seconds=int(self.cooldown))
        user = update.effective_user
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text, show_alert=True)
            elif update.effective_message is not None:
                await update.effective_message.reply_text(text, do_quote=False)
            elif user is not None:
                known = await self.deps.chats.get(user.id)
                if known is not None and known.active:
                    await context.bot.send_message(user.id, text)
        except TelegramError as exc:
            log.debug("could not tell user to slow down: %s", exc)
