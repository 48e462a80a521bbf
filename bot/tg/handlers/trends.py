"""/trends [TOPIC] [WEEKS]: papers per topic per week as a chart, with a two-line caption.

The chart is drawn in a worker thread by bot.services.trends and kept until the archive
changes; the photo Telegram stored for it is then sent again by its file_id, so asking
twice uploads once.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Final

from telegram import Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.domain.trends import DEFAULT_WEEKS, MAX_WEEKS
from bot.errors import UnknownTag
from bot.services.trends import ChartKey, TrendChart
from bot.tg.chats import current_chat
from bot.tg.deps import Deps
from bot.tg.handlers.browse import argument_text
from bot.tg.tags import unknown_tag_text
from bot.tg.texts import COMMON, tr

log = logging.getLogger(__name__)

FILE_IDS: Final = 256  # charts whose Telegram file_id is remembered
_NUMBER = re.compile(r"[+-]?[0-9]+")  # ASCII digits: "٣" is part of a name

TEXTS = {
    "en": {
        "bad_weeks": ("WEEKS is a number of weeks from 1 to {max}: /trends 26, or "
                      "/trends NeRF 26 for one topic over half a year."),
    },
    "zh": {
        "bad_weeks": ("周数须为 1 到 {max} 之间的整数：/trends 26，或 /trends NeRF 26 "
                      "查看一个主题半年的趋势。"),
    },
}


class TrendCharts:
    """/trends; remembers which chart Telegram already holds as a photo."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._file_ids: OrderedDict[ChartKey, str] = OrderedDict()

    async def trends(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/trends [TOPIC] [WEEKS]: every topic (or one) over the last WEEKS weeks (12)."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        words = argument_text(message).split()
        weeks = DEFAULT_WEEKS
        if words and _NUMBER.fullmatch(words[-1]) and not await self._is_tag(words):
            number = words.pop()
            weeks = int(number) if len(number) <= 6 else 0
            if not 1 <= weeks <= MAX_WEEKS:
                await message.reply_text(tr(TEXTS, chat.lang, "bad_weeks", max=MAX_WEEKS))
                return
        tag = " ".join(words) or None
        if tag is not None:
            try:
                tag = await self.deps.archive.resolve_tag(tag)
            except UnknownTag as exc:
                await message.reply_text(await unknown_tag_text(self.deps.archive, chat.lang,
                                                                exc))
                return
        await message.reply_chat_action(ChatAction.UPLOAD_PHOTO)
        chart = await self.deps.trends.chart(tag, weeks, chat.lang)
        if chart is None:
            await message.reply_text(tr(COMMON, chat.lang, "no_papers"))
            return
        await self._send(message, chart)

    async def _is_tag(self, words: list[str]) -> bool:
        """Whether all the words, a number last, name a tag ("/trends GPT 4"): then the
        number belongs to the name. A lone number is always WEEKS."""
        if len(words) < 2:
            return False
        try:
            await self.deps.archive.resolve_tag(" ".join(words))
        except UnknownTag:
            return False
        return True

    async def _send(self, message: Message, chart: TrendChart) -> None:
        """The chart as a photo: by the file_id Telegram gave it last time, else uploaded."""
        caption = chart.caption  # two short lines, far under Telegram's 1024
        file_id = self._file_ids.get(chart.key)
        if file_id is not None:
            try:
                await message.reply_photo(file_id, caption=caption, parse_mode=ParseMode.HTML)
                self._file_ids.move_to_end(chart.key)
                return
            except BadRequest as exc:  # Telegram forgot it: upload again
                log.info("trends chart file_id refused (%s); uploading it again", exc)
                del self._file_ids[chart.key]
        sent = await message.reply_photo(chart.png, caption=caption,
                                         parse_mode=ParseMode.HTML, filename="trends.png")
        if sent.photo:
            self._file_ids[chart.key] = sent.photo[-1].file_id
            while len(self._file_ids) > FILE_IDS:
                self._file_ids.popitem(last=False)
