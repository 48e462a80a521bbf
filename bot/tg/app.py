"""Builds the Telegram Application: every handler registered in one readable place."""

from __future__ import annotations

import asyncio
import html
import logging
import math
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.constants import FloodLimit
from telegram.error import Conflict
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.config import Settings
from bot.tg.commands import publish_commands
from bot.tg.deps import Deps
from bot.tg.handlers.admin import Admin
from bot.tg.handlers.browse import Browse
from bot.tg.handlers.inline import Inline
from bot.tg.handlers.membership import Membership
from bot.tg.handlers.repost import Repost
from bot.tg.handlers.settings import SettingsMenu
from bot.tg.handlers.start import Start
from bot.tg.handlers.subscriptions import Subscriptions
from bot.tg.polling import PollingRequest

log = logging.getLogger(__name__)

AnyApp = Application[Any, Any, Any, Any, Any, Any]
_Result = bool | dict[str, Any] | list[dict[str, Any]]  # what a Bot API request returns

SEND_LIMIT: int = FloodLimit.MESSAGES_PER_SECOND
"""Messages overall in any SEND_WINDOW: Telegram's documented 30 (replies included)."""
SEND_WINDOW: float = 1.0
"""Seconds: Telegram's second. Exact, because the pacer never starts a send until the one
SEND_LIMIT sends before it has been answered a whole window earlier (see Pacer)."""


class _Send:
    """One paced request: its answer (or failure) ends it."""

    __slots__ = ("ended",)

    def __init__(self, ended: asyncio.Future[float]) -> None:
        self.ended = ended


class Pacer:
    """At most ``limit`` sends in any ``window`` seconds as the server counts them,
    spread evenly.

    Slots lie on an absolute schedule, ``window / limit`` apart: a caller that wakes
    late (a busy event loop) does not push the later slots back, so lateness does not
    accumulate into a lower rate, and an idle pacer gives no credit for a burst. On top
    of that, a send starts only once the send ``limit`` places before it was *answered*
    ``window`` ago. The server counts each request somewhere between its start and its
    answer, so that holds on the server's clock too, whatever delays the requests on
    the way (network, a pause of either process): measured against the start of the
    earlier send instead, 30 ms of such jitter drew 429s from the test server. The cost
    is the answer time once every ``limit`` sends: 29.9 a second at a 3 ms round trip.
    """

    def __init__(self, limit: int, window: float, *,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._interval = window / limit
        self._clock = clock  # None: the running event loop's clock
        self._sleep = sleep
        self._next = -math.inf  # the earliest free slot
        self._sends: deque[_Send] = deque(maxlen=limit)  # the last `limit` sends

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def wait(self) -> _Send:
        """Return at this caller's slot (in the order callers came); pass the result to
        :meth:`done` once the request is answered or has failed."""
        now = self._now()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)
        while len(self._sends) == self.limit:
            ended = await asyncio.shield(self._sends[0].ended)  # waits while in flight
            free, now = ended + self.window, self._now()
            if free <= now:
                break
            await self._sleep(free - now)
        send = _Send(asyncio.get_running_loop().create_future())
        self._sends.append(send)
        return send

    def done(self, send: _Send) -> None:
        if not send.ended.done():
            send.ended.set_result(self._now())


class PacedRateLimiter(AIORateLimiter):
    """python-telegram-bot's AIORateLimiter (group limits, waiting out 429s) with the
    overall limit kept by a :class:`Pacer` instead of aiolimiter's bucket.

    Why: a bucket of 30 lets 60 messages through in the first second and bursts after
    every pause, which earns 429s; a bucket of one loses every moment the event loop
    is late (26.8 a second where it was set to 28, in the benchmark).
    The pacer takes a slot for each attempt at a request to a chat, inside the group
    limiter and the 429 handling of AIORateLimiter, so a retry takes a slot of its own.
    """

    def __init__(self, limit: int, window: float, **options: Any) -> None:
        super().__init__(overall_max_rate=0, **options)  # 0: no aiolimiter bucket overall
        self.pacer = Pacer(limit, window)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, _Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> _Result:
        """Like AIORateLimiter: only requests to a chat count (paid broadcasts apart)."""
        if data.get("chat_id") is None or data.get("allow_paid_broadcast"):
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)

        async def paced(*call_args: Any, **call_kwargs: Any) -> _Result:
            send = await self.pacer.wait()
            try:
                return await callback(*call_args, **call_kwargs)
            finally:
                self.pacer.done(send)

        return await super().process_request(paced, args, kwargs, endpoint, data,
                                             rate_limit_args)


def rate_limiter() -> PacedRateLimiter:
    """Telegram's limits: SEND_LIMIT messages in any SEND_WINDOW overall, 20 a minute
    into one group; a 429 that still comes is waited out (up to 5 times) before the
    send fails with FloodWait."""
    return PacedRateLimiter(SEND_LIMIT, SEND_WINDOW, group_max_rate=20, group_time_period=60,
                            max_retries=5)


def make_bot(settings: Settings, polling: PollingRequest) -> ExtBot[int]:
    """The bot object, pointed at BOT_API_URL and flood-controlled.

    Built before the Application so the delivery service can hold it too.
    """
    api = settings.bot_api_url
    return ExtBot(settings.telegram_token, base_url=f"{api}/bot",
                  base_file_url=f"{api}/file/bot", rate_limiter=rate_limiter(),
                  get_updates_request=polling)


def build_application(deps: Deps, bot: ExtBot[int], polling: PollingRequest,
                      **builder_options: Any) -> AnyApp:
    """The Application around that bot, with every handler registered."""
    builder = Application.builder().bot(bot)
    for name, value in builder_options.items():
        getattr(builder, name)(value)
    app = builder.build()
    register_handlers(app, deps)
    app.add_error_handler(_error_handler(deps, polling))
    return app


def register_handlers(app: AnyApp, deps: Deps) -> None:
    """Every command, button and fallback; order matters only where commented."""
    subscriptions = Subscriptions(deps)
    start = Start(deps, subscriptions)
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
    app.add_handler(CallbackQueryHandler(browse.open_paper, pattern=r"^(pp|an|fg):"))
    app.add_handler(InlineQueryHandler(Inline(deps).answer))

    settings_menu = SettingsMenu(deps)
    app.add_handler(CommandHandler("settings", settings_menu.settings))
    app.add_handler(CallbackQueryHandler(settings_menu.button, pattern=r"^st:"))
    admin = Admin(deps, delivery_counts=deps.outbox.counts)
    app.add_handler(CommandHandler("stats", admin.stats))
    app.add_handler(CommandHandler("rescan", admin.rescan))
    repost = Repost(deps)
    app.add_handler(CommandHandler("repost", repost.repost))
    app.add_handler(CallbackQueryHandler(repost.confirm, pattern=r"^rp:"))

    # Fallbacks last: anything no handler above took.
    app.add_handler(MessageHandler(filters.COMMAND, start.unknown_command))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, start.free_text))


async def startup(app: AnyApp, deps: Deps) -> None:
    """Once the bot is connected: publish the command menus."""
    await publish_commands(app.bot, deps.settings.admin_ids)


def _error_handler(deps: Deps, polling: PollingRequest) -> Any:
    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log first, then tell the operators (never the user) what broke."""
        if isinstance(context.error, Conflict):
            if polling.answered == 0:  # we never got an answer: we are the newcomer
                log.critical("another paperfeed is already running with this token (Telegram "
                             "answered Conflict to getUpdates); stopping this one")
                context.application.stop_running()
            else:
                log.warning("a newer process polled with this token; it will stop itself")
            return
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
