"""Builds the Telegram Application: every handler registered in one readable place."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.config import Settings
from bot.redaction import Redactor
from bot.tg.chats import refuse_button
from bot.tg.commands import publish_commands
from bot.tg.concurrency import ChatOrderedProcessor
from bot.tg.deps import Deps
from bot.tg.failures import FailureReporter
from bot.tg.handlers.admin import Admin
from bot.tg.handlers.browse import Browse
from bot.tg.handlers.inline import Inline
from bot.tg.handlers.membership import Membership
from bot.tg.handlers.related import RelatedButton
from bot.tg.handlers.repost import Repost
from bot.tg.handlers.saved import Saved
from bot.tg.handlers.settings import SettingsMenu
from bot.tg.handlers.start import Start
from bot.tg.handlers.subscriptions import Subscriptions
from bot.tg.handlers.trends import TrendCharts
from bot.tg.polling import PollingRequest
from bot.tg.profile import publish_profile
from bot.tg.ratelimit import rate_limiter
from bot.tg.throttle import Throttle

log = logging.getLogger(__name__)

AnyApp = Application[Any, Any, Any, Any, Any, Any]

def make_bot(settings: Settings, polling: PollingRequest) -> ExtBot[int]:
    """The bot object, pointed at BOT_API_URL and flood-controlled.

    Built before the Application so the delivery service can hold it too.
    """
    api = settings.bot_api_url
    return ExtBot(settings.telegram_token.get_secret_value(), base_url=f"{api}/bot",
                  base_file_url=f"{api}/file/bot", rate_limiter=rate_limiter(),
                  get_updates_request=polling)


def build_application(deps: Deps, bot: ExtBot[int], polling: PollingRequest,
                      **builder_options: Any) -> AnyApp:
    """The Application around that bot, with every handler registered; updates of
    different chats are handled in parallel, each chat's in order (bot.tg.concurrency)."""
    builder = Application.builder().bot(bot)
    for name, value in builder_options.items():
        getattr(builder, name)(value)
    builder.concurrent_updates(ChatOrderedProcessor())
    app = builder.build()
    register_handlers(app, deps)
    app.add_error_handler(FailureReporter(deps, polling, Redactor.from_settings(deps.settings)))
    return app


def register_handlers(app: AnyApp, deps: Deps) -> None:
    """Every command, button and fallback; order matters only where commented."""
    # Before everything (group -1): a user flooding the bot is stopped here.
    app.add_handler(TypeHandler(Update, Throttle(deps).check), group=-1)
    subscriptions = Subscriptions(deps)
    saved = Saved(deps)
    start = Start(deps, subscriptions, saved=saved)
    membership = Membership(deps)

    app.add_handler(ChatMemberHandler(membership.my_chat_member,
                                      ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, membership.migrated))
    app.add_handler(CommandHandler("start", start.start))
    app.add_handler(CommandHandler("help", start.help))
    app.add_handler(CommandHandler("subscribe", subscriptions.subscribe))
    app.add_handler(CommandHandler("unsubscribe", subscriptions.unsubscribe))
    app.add_handler(CommandHandler("tags", subscriptions.tags))
    app.add_handler(CallbackQueryHandler(subscriptions.toggle, pattern=r"^sb:"))

    browse = Browse(deps)
    app.add_handler(CommandHandler("latest", browse.latest))
    app.add_handler(CommandHandler("search", browse.search))
    app.add_handler(CommandHandler("tag", browse.tag))
    app.add_handler(CommandHandler("paper", browse.paper))
    app.add_handler(CallbackQueryHandler(browse.turn_page, pattern=r"^pg:"))
    app.add_handler(CallbackQueryHandler(browse.open_paper, pattern=r"^(pp|an|fg|bx):"))
    app.add_handler(CallbackQueryHandler(RelatedButton(deps).press, pattern=r"^rl:"))
    app.add_handler(CommandHandler("trends", TrendCharts(deps).trends))
    app.add_handler(CommandHandler("saved", saved.saved))
    app.add_handler(CallbackQueryHandler(saved.button, pattern=r"^sv:"))
    app.add_handler(InlineQueryHandler(Inline(deps).answer))

    settings_menu = SettingsMenu(deps)
    app.add_handler(CommandHandler("settings", settings_menu.settings))
    app.add_handler(CallbackQueryHandler(settings_menu.button, pattern=r"^st:"))
    admin = Admin(deps)
    app.add_handler(CommandHandler("stats", admin.stats))
    app.add_handler(CommandHandler("rescan", admin.rescan))
    repost = Repost(deps)
    app.add_handler(CommandHandler("repost", repost.repost))
    app.add_handler(CallbackQueryHandler(repost.confirm, pattern=r"^rp:"))

    # Fallbacks last: anything no handler above took.
    app.add_handler(CallbackQueryHandler(stale_button))
    app.add_handler(MessageHandler(filters.COMMAND, start.unknown_command))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, browse.free_text))


async def stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button no handler knows (an old version's, or forged): answered, not ignored, so
    the client stops its spinner."""
    await refuse_button(update, "no handler for this data")


async def startup(app: AnyApp, deps: Deps) -> None:
    """Once the bot is connected: publish the command menus and the descriptions."""
    await publish_commands(app.bot, deps.settings.admin_ids)
    await publish_profile(app.bot)
