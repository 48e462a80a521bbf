"""The bot's public face: its description and short description (what a new user sees
before pressing Start), and its username (what share links are made of).

The descriptions are set at every start, in English (the default, for every language
without its own) and Chinese, but only where Telegram's copy differs: a restart reads
four texts and writes none, since Telegram rate-limits these methods. A failure is
logged and never stops the bot: the texts are a courtesy, the feed works without them.
"""

from __future__ import annotations

import logging
from typing import Final

from telegram import Bot
from telegram.constants import BotDescriptionLimit
from telegram.error import InvalidToken, TelegramError
from telegram.request import HTTPXRequest

from bot.config import Settings
from bot.errors import PaperfeedError
from bot.redaction import Redactor, hide_password
from bot.tg.texts import tr

log = logging.getLogger(__name__)

TEXTS = {
    "en": {
        # Shown in an empty chat with the bot, under "What can this bot do?" (≤ 512).
        "description": (
            "paperfeed sends you new arXiv papers from daily research digests, topic by "
            "topic: title, authors, a one-line summary, key takeaways and links — as soon "
            "as a digest arrives, or once a day.\n\n"
            "Press Start to subscribe to everything or choose topics. Search the archive by "
            "words, author or arXiv id. Add me to a group to give it its own feed, or share "
            "a topic's link from /tags."
        ),
        # On the bot's profile page and in shared links (≤ 120).
        "short_description": "New arXiv papers from daily digests, by topic: summaries, "
                             "takeaways, links. Subscribe, search, share.",
    },
    "zh": {
        "description": (
            "paperfeed 按主题把每日论文速递中的新 arXiv 论文推送给您：标题、作者、一句话总结、"
            "要点和链接——日报一到即推送，也可以每天定时汇总。\n\n"
            "点击“开始”即可订阅全部或选择主题；可以按关键词、作者或 arXiv 编号搜索资料库。"
            "把我加入群组，群里就有自己的订阅；也可以在 /tags 中分享某个主题的订阅链接。"
        ),
        "short_description": "按主题推送每日速递中的新 arXiv 论文：总结、要点、链接。"
                             "订阅、搜索、分享。",
    },
}

LANGUAGES: Final = (("en", None), ("zh", "zh"))
"""Our interface language and the language_code Telegram keeps its texts under."""

DESCRIPTION_LIMIT: Final = int(BotDescriptionLimit.MAX_DESCRIPTION_LENGTH)
SHORT_DESCRIPTION_LIMIT: Final = int(BotDescriptionLimit.MAX_SHORT_DESCRIPTION_LENGTH)
TELEGRAM_TIMEOUT: Final = 10.0
"""Seconds for getMe outside the bot (`paperfeed links`): a blocked network fails fast."""


async def publish_profile(bot: Bot) -> None:
    """Bring the description and short description up to date, in each language."""
    for lang, code in LANGUAGES:
        description = tr(TEXTS, lang, "description")
        short = tr(TEXTS, lang, "short_description")
        try:
            current = await bot.get_my_description(language_code=code)
            if current.description != description:
                await bot.set_my_description(description, language_code=code)
                log.info("bot description (%s) updated", lang)
            current_short = await bot.get_my_short_description(language_code=code)
            if current_short.short_description != short:
                await bot.set_my_short_description(short, language_code=code)
                log.info("bot short description (%s) updated", lang)
        except TelegramError as exc:  # flood wait, network: next start tries again
            log.warning("bot description (%s) not set: %s", lang, exc)


async def fetch_username(settings: Settings) -> str:
    """The bot's username, from getMe through BOT_API_URL with TELEGRAM_TOKEN.

    For commands that run without the bot (`paperfeed links`); every failure is one
    PaperfeedError saying to pass the username instead, with no secret in it.
    """
    token = settings.telegram_token.get_secret_value()
    if not token:
        raise PaperfeedError("TELEGRAM_TOKEN is not set, so the bot's username is unknown: "
                             "pass --bot USERNAME")
    api = settings.bot_api_url
    request = HTTPXRequest(connect_timeout=TELEGRAM_TIMEOUT, read_timeout=TELEGRAM_TIMEOUT)
    bot = Bot(token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot", request=request)
    try:
        await bot.initialize()  # getMe
        return bot.username
    except InvalidToken:  # its message quotes the token: never shown
        raise PaperfeedError(f"{hide_password(api)} rejected TELEGRAM_TOKEN: pass --bot "
                             "USERNAME, or copy the token again from @BotFather") from None
    except TelegramError as exc:  # NetworkError, TimedOut: may quote the URL
        reason = Redactor.from_settings(settings)(str(exc))
        raise PaperfeedError(f"cannot ask {hide_password(api)} for the bot's username "
                             f"({reason}): pass --bot USERNAME") from None
    finally:
        await bot.shutdown()
