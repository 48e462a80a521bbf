"""Editing a bot message in place: menus, result pages, progress messages.

Telegram refuses an edit that changes nothing ("message is not modified"), which two
quick taps on one button, or two admins on one menu, cause as a matter of course. So an
edit is skipped when the message already shows the wanted text and keyboard, and that
refusal, should a race still produce it, is not an error.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InlineKeyboardMarkup, LinkPreviewOptions, Message
from telegram.error import BadRequest

from bot.domain.tgtext import validate_telegram_html

log = logging.getLogger(__name__)


def shows(message: Message, html: str, keyboard: InlineKeyboardMarkup | None) -> bool:
    """Whether ``message`` already shows ``html`` (as Telegram renders it) and
    ``keyboard``: an edit to them would be refused as "not modified"."""
    if (message.text or "").strip() != validate_telegram_html(html).strip():
        return False
    current = message.reply_markup.to_dict() if message.reply_markup else None
    wanted = keyboard.to_dict() if keyboard and keyboard.inline_keyboard else None
    return current == wanted


def is_not_modified(exc: BadRequest) -> bool:
    return "not modified" in exc.message.lower()


async def edit_in_place(query: CallbackQuery, html: str,
                        keyboard: InlineKeyboardMarkup | None,
                        preview: LinkPreviewOptions | None = None) -> None:
    """Show ``html`` and ``keyboard`` in the message whose button was pressed, unless it
    already does; a concurrent identical edit is not an error."""
    message = query.message
    if isinstance(message, Message) and shows(message, html, keyboard):
        return
    try:
        await query.edit_message_text(html, parse_mode="HTML", reply_markup=keyboard,
                                      link_preview_options=preview)
    except BadRequest as exc:
        if not is_not_modified(exc):
            raise
        log.debug("message already up to date: %s", exc.message)


async def edit_keyboard_in_place(query: CallbackQuery,
                                 keyboard: InlineKeyboardMarkup | None) -> None:
    """Show ``keyboard`` under the message whose button was pressed, its text untouched
    (a card keeps its link preview), unless it already does; a concurrent identical
    edit is not an error."""
    message = query.message
    if isinstance(message, Message):
        current = message.reply_markup.to_dict() if message.reply_markup else None
        wanted = keyboard.to_dict() if keyboard and keyboard.inline_keyboard else None
        if current == wanted:
            return
    try:
        await query.edit_message_reply_markup(reply_markup=keyboard)
    except BadRequest as exc:
        if not is_not_modified(exc):
            raise
        log.debug("keyboard already up to date: %s", exc.message)
