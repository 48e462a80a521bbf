"""Builds the Telegram Application: every handler registered in one readable place."""

from __future__ import annotations

import html
import logging
import traceback
from typing import Any

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.tg.commands import publish_commands
from bot.tg.deps import Deps
from bot.tg.handlers.start import Start
from bot.tg.handlers.subscriptions import Subscriptions

log = logging.getLogger(__name__)

AnyApp = Application[Any, Any, Any, Any, Any, Any]


def build_application(deps: Deps, **builder_options: Any) -> AnyApp:
    """The Application for these services, pointed at BOT_API_URL, flood-controlled."""
    settings = deps.settings
    api = settings.bot_api_url
    builder = (
        Application.builder()
        .token(settings.telegram_token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .rate_limiter(AIORateLimiter(max_retries=5))
    )
    for name, value in builder_options.items():
        getattr(builder, name)(value)
    app = builder.build()
    register_handlers(app, deps)
    return app


def register_handlers(app: AnyApp, deps: Deps) -> None:
    """Every command, button and fallback; order matters only where commented."""
    subscriptions = Subscriptions(deps)
    start = Start(deps, subscriptions)

    app.add_handler(CommandHandler("start", start.start))
    app.add_handler(CommandHandler("help", start.help))
    app.add_handler(CommandHandler("subscribe", subscriptions.subscribe))
    app.add_handler(CommandHandler("unsubscribe", subscriptions.unsubscribe))
    app.add_handler(CommandHandler("tags", subscriptions.tags))
    app.add_handler(CallbackQueryHandler(subscriptions.toggle, pattern=r"^sb:"))

    # Fallbacks last: anything no handler above took.
    app.add_handler(MessageHandler(filters.COMMAND, start.unknown_command))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, start.free_text))
    app.add_error_handler(_error_handler(deps))


async def startup(app: AnyApp, deps: Deps) -> None:
    """Once the bot is connected: publish the command menus."""
    await publish_commands(app.bot, deps.settings.admin_ids)


def _error_handler(deps: Deps) -> Any:
    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log first, then tell the operators (never the user) what broke."""
        log.error("error while handling an update", exc_info=context.error)
        if context.error is None:
            return
        where = ""
        if isinstance(update, Update) and update.effective_chat is not None:
            where = f" in chat {update.effective_chat.id}"
        lines = traceback.format_exception(context.error)
        text = (f"⚠️ <b>paperfeed error</b>{html.escape(where)}\n"
                f"<pre>{html.escape(''.join(lines)[-3000:])}</pre>")
        for admin in sorted(deps.settings.admin_ids):
            try:
                await context.bot.send_message(admin, text, parse_mode="HTML")
            except Exception:  # an operator who never started the bot; already logged above
                log.debug("could not notify operator %s", admin)

    return on_error
