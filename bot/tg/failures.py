"""What happens when a handler (or a job, or a background task) fails.

The user is answered politely, in their language, and a pressed button always stops
spinning. The operators (ADMIN_IDS) hear of each distinct failure at most once per
``every`` seconds, with how often it happened since they last heard of it, and the
traceback they get is redacted like the logs. A flood of one bug (say, every /search
failing while the database is down) is one message per ten minutes, not thousands.
"""

from __future__ import annotations

import html
import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cachetools import TTLCache
from telegram import Update
from telegram.constants import ChatType
from telegram.error import Conflict, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

import bot
from bot.redaction import Redactor
from bot.tg.deps import Deps
from bot.tg.polling import PollingRequest
from bot.tg.texts import lang_of, tr

log = logging.getLogger(__name__)

NOTICE_EVERY = 600.0
"""Seconds between two notices of the same failure to the operators."""
MAX_TRACE = 3000
"""Characters of traceback in a notice (Telegram's limit is 4096 with the header)."""
MAX_KINDS = 1000
"""Distinct failures remembered; the oldest is forgotten first, and any a day after it
last happened."""
_OUR_CODE = str(Path(bot.__file__).parent) + os.sep

TEXTS = {
    "en": {
        "sorry": "😕 Sorry, something went wrong on my side. The operators have been told; "
                 "please try again in a moment.",
        "sorry_short": "😕 Something went wrong; please try again.",
        "notice": "⚠️ <b>paperfeed error</b>{where}",
        "notice_again": "⚠️ <b>paperfeed error</b>{where}: {count} times since the last "
                        "notice",
    },
    "zh": {
        "sorry": "😕 抱歉，我这边出了点问题，已通知管理员，请稍后再试。",
        "sorry_short": "😕 出了点问题，请再试一次。",
        "notice": "⚠️ <b>paperfeed error</b>{where}",
        "notice_again": "⚠️ <b>paperfeed error</b>{where}：距上次通知又发生了 {count} 次",
    },
}


def fingerprint(error: BaseException) -> str:
    """What makes two failures "the same": the exception type and the innermost frame
    of our own code it passed through (the line that failed, not the message, which
    may hold a chat id or a query)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_OUR_CODE)]
    where = (ours or frames)[-1] if (ours or frames) else None
    place = f"{Path(where.filename).name}:{where.lineno}" if where else "?"
    return f"{type(error).__module__}.{type(error).__qualname__}@{place}"


@dataclass(slots=True)
class _Kind:
    last_notice: float
    since: int = 0  # occurrences since last_notice, not yet reported


class FailureReporter:
    """python-telegram-bot's error handler (Application.add_error_handler)."""

    def __init__(self, deps: Deps, polling: PollingRequest, redact: Redactor, *,
                 every: float = NOTICE_EVERY, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.deps = deps
        self.polling = polling
        self.redact = redact
        self.every = every
        self.clock = clock
        self._kinds: TTLCache[str, _Kind] = TTLCache(MAX_KINDS, max(every, 86_400.0))

    async def __call__(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        if isinstance(error, Conflict):
            self._conflict(context)
            return
        log.error("error while handling an update", exc_info=error)
        if error is None:
            return
        await self._notify_operators(update, error, context)
        if isinstance(update, Update):
            await self._answer_user(update)
            # The user has their apology: no later handler (the fallbacks) answers too.
            raise ApplicationHandlerStop

    def _conflict(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        if self.polling.answered == 0:  # we never got an answer: we are the newcomer
            log.critical("another paperfeed is already running with this token (Telegram "
                         "answered Conflict to getUpdates); stopping this one")
            context.application.stop_running()
        else:
            log.warning("a newer process polled with this token; it will stop itself")

    async def _answer_user(self, update: Update) -> None:
        """A short apology where the user looks; a pressed button stops spinning."""
        user = update.effective_user
        lang = lang_of(user.language_code if user else None)
        try:
            if update.callback_query is not None:
                # Already answered by the handler? Then Telegram refuses this; fine.
                await update.callback_query.answer(tr(TEXTS, lang, "sorry_short"),
                                                   show_alert=True)
                return
            message = update.effective_message
            chat = update.effective_chat
            if message is not None and chat is not None and chat.type != ChatType.CHANNEL:
                await message.reply_text(tr(TEXTS, lang, "sorry"), do_quote=False)
        except TelegramError as exc:
            log.debug("could not tell the user about the failure: %s", exc)

    async def _notify_operators(self, update: object, error: BaseException,
                                context: ContextTypes.DEFAULT_TYPE) -> None:
        key = fingerprint(error)
        now = self.clock()
        kind = self._kinds.get(key)
        if kind is not None and now - kind.last_notice < self.every:
            kind.since += 1
            self._kinds[key] = kind
            return
        count = (kind.since + 1) if kind is not None else 1
        self._kinds[key] = _Kind(now)
        where = ""
        if isinstance(update, Update) and update.effective_chat is not None:
            where = f" in chat {update.effective_chat.id}"
        header = tr(TEXTS, "en", "notice" if count == 1 else "notice_again",
                    where=html.escape(where), count=count)
        trace = self.redact("".join(traceback.format_exception(error)))
        text = f"{header}\n<pre>{html.escape(trace[-MAX_TRACE:])}</pre>"
        for admin in sorted(self.deps.settings.admin_ids):
            try:
                await context.bot.send_message(admin, text, parse_mode="HTML")
            except TelegramError:  # an operator who never started the bot; logged above
                log.debug("could not notify operator %s", admin)
