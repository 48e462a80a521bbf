"""A chat's settings: /settings shows one menu message that is edited in place as the user
taps (delivery mode and time, time zone, card style, language), plus text forms for what
buttons cannot carry (any time, any time zone, keyword filters).

Callback data: ``st:<setting>:<value>`` (see bot.tg.keyboards) —
``st:view:main|time|tz|filters``, ``st:mode:instant|daily|digest``,
``st:time:<hour>|default``, ``st:tz:<IANA name>|default``, ``st:only:off``,
``st:never:off``, ``st:style:full|compact``, ``st:lang:en|zh``, ``st:silent:on|off``,
``st:pause:on|off``, ``st:weekly:on|off``.

Text forms (all answered with the menu, headed by what changed)::

    /settings                      the menu
    /settings instant | daily [HH:MM] | digest [HH:MM]
    /settings silent [on|off]      /settings pause | resume
    /settings weekly [on|off]
    /settings time HH:MM | default
    /settings tz Area/City | default
    /settings only word1, word2 | off
    /settings never word | off
    /settings style full|compact   /settings lang en|zh
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import time
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.domain.chat_settings import (
    COMMON_ZONES,
    HOURS,
    Change,
    Refusal,
    applied,
    hhmm,
    parse_button,
    parse_form,
)
from bot.domain.models import CARD_STYLES, DELIVERY_MODES, LANGUAGES, Chat
from bot.domain.tgtext import escape, truncate
from bot.tg.chats import ANSWER_LEN, channel_ref, current_chat, may_manage, may_manage_channel
from bot.tg.deps import Deps
from bot.tg.edits import edit_in_place, shows
from bot.tg.keyboards import button, choice, rows_of
from bot.tg.texts import COMMON, tr

log = logging.getLogger(__name__)

HOURS_PER_ROW = 6
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}

TEXTS = {
    "en": {
        "title": "<b>⚙️ Settings</b>",
        "delivery_instant": "Delivery: <b>instant</b> — each paper as soon as its digest is "
                            "found",
        "delivery_daily": "Delivery: <b>daily at {time}</b> ({tz}) — once a day",
        "delivery_digest": "Delivery: <b>daily digest at {time}</b> ({tz}) — one message per "
                           "topic a day, listing its papers",
        "timezone": "Time zone: <b>{tz}</b>",
        "sound_on": "Notifications: <b>with sound</b>",
        "sound_off": "Notifications: <b>silent</b>",
        "weekly_on": "Weekly roundup: <b>on</b>, Mondays at {time} ({tz})",
        "weekly_off": "Weekly roundup: <b>off</b>",
        "paused": "⏸ <b>Paused</b>: new papers are kept and sent when you resume",
        "only": "Only papers matching: <b>{words}</b>",
        "never": "Never papers matching: <b>{words}</b>",
        "any": "any",
        "nothing": "—",
        "style": "Card style: <b>{style}</b>",
        "lang": "Language: <b>{language}</b>",
        "footer": "Tap to change; /settings help lists the text forms.",
        "default": "{value} (bot default)",
        "full": "full",
        "compact": "compact",
        "btn_instant": "⚡ Instant",
        "btn_daily": "🗓 Daily",
        "btn_digest": "📰 Digest",
        "btn_silent": "🔕 Silent",
        "btn_sound": "🔔 Sound",
        "btn_pause": "⏸ Pause",
        "btn_weekly_on": "📈 Weekly roundup",
        "btn_weekly_off": "✅ 📈 Weekly roundup",
        "btn_resume": "▶️ Resume",
        "btn_time": "🕘 {time}",
        "btn_tz": "🌍 {tz}",
        "btn_filters": "🔎 Keyword filters",
        "btn_full": "Full cards",
        "btn_compact": "Compact cards",
        "btn_back": "⬅️ Back",
        "btn_default_time": "Bot default ({time})",
        "btn_default_tz": "Bot default ({tz})",
        "btn_clear_only": "✖️ Clear “only”",
        "btn_clear_never": "✖️ Clear “never”",
        "time_title": "<b>🕘 Daily delivery time</b>",
        "time_body": "Papers arrive once a day at this hour, {tz} time. Now: <b>{time}</b>.\n"
                     "For another time send /settings time HH:MM (e.g. /settings time 07:30).",
        "now_instant": "instant, not daily yet",
        "tz_title": "<b>🌍 Time zone</b>",
        "tz_body": "Daily deliveries follow this zone. Now: <b>{tz}</b>.\n"
                   "For any other zone send /settings tz Area/City "
                   "(e.g. /settings tz Europe/Paris).",
        "filters_title": "<b>🔎 Keyword filters</b>",
        "filters_body": (
            "Words are looked for in the title, authors, abstract, summary, takeaways and "
            "topics, ignoring case.\n\n"
            "/settings only nerf, gaussian splatting — only papers with one of these\n"
            "/settings never survey — never papers with any of these\n"
            "/settings only off, /settings never off — remove a filter\n"
            "Separate words with commas; a phrase counts as one."
        ),
        "usage": (
            "<b>/settings</b> — the menu with buttons, or:\n"
            "/settings instant — each paper as soon as its digest is found\n"
            "/settings daily [HH:MM] — once a day\n"
            "/settings digest [HH:MM] — once a day, one list message per topic\n"
            "/settings time HH:MM — the daily time (/settings time default)\n"
            "/settings silent on|off — deliveries without a notification sound\n"
            "/settings pause, /settings resume — stop deliveries for a while; papers are "
            "kept\n"
            "/settings weekly on|off — every Monday, the week's papers per topic and the "
            "trend chart\n"
            "/settings tz Area/City — the time zone, e.g. Europe/Paris (/settings tz default)\n"
            "/settings only word1, word2 — only papers matching one of these "
            "(/settings only off)\n"
            "/settings never word — never papers matching these (/settings never off)\n"
            "/settings style full|compact — card style\n"
            "/settings lang en|zh — interface language"
        ),
        "set_instant": "✅ Papers now arrive as soon as their digest is found.",
        "set_daily": "✅ Papers now arrive once a day at {time} ({tz}).",
        "set_digest": "✅ Papers now arrive once a day at {time} ({tz}), one list message "
                      "per topic; tap a title for its card.",
        "set_silent": "🔕 Deliveries now arrive silently.",
        "set_weekly_on": "📈 Every Monday at {time} ({tz}) you get the week's papers per "
                         "topic and the trend chart.",
        "set_weekly_off": "📈 No more weekly roundups.",
        "set_sound": "🔔 Deliveries now arrive with a notification sound.",
        "set_paused": "⏸ Paused. New papers are kept until you resume (/settings resume).",
        "set_resumed": "▶️ Resumed: {n} waiting papers are on their way.",
        "set_resumed_list": "▶️ Resumed: {n} papers waited, so they come as lists, one "
                            "message per digest; tap a title for its card.",
        "set_resumed_none": "▶️ Resumed. Nothing arrived while you were paused.",
        "set_tz": "✅ Time zone: {tz}.",
        "set_only": "✅ Only papers matching: {words}.",
        "set_never": "✅ Never papers matching: {words}.",
        "cleared_only": "✅ The “only” filter is off: papers on any subject.",
        "cleared_never": "✅ The “never” filter is off.",
        "set_style": "✅ Card style: {style}.",
        "set_lang": "✅ Language: English.",
        "unchanged": "Already so.",
        "bad_time": "“{value}” is not a time. Send /settings time HH:MM on the 24-hour clock, "
                    "e.g. /settings time 07:30.",
        "bad_tz": "I don't know the time zone “{value}”.{hint} Use an IANA name such as "
                  "Europe/Paris or America/Chicago.",
        "tz_hint": " Did you mean {names}?",
        "no_words": "Send the words after the command, e.g. /settings only nerf, diffusion.",
        "too_many": "That is too many: at most {count} words of up to {length} characters.",
        "bad_choice": "Choose one of: {choices}.",
        "channel_title": "📢 <b>{channel}</b>",
        "channel_footer": "Change them with /settings {channel} followed by a text form, e.g. "
                          "/settings {channel} daily 08:00 (/settings help lists them).",
        "channel_unknown": "{channel} receives nothing from me yet: subscribe it first with "
                           "/subscribe {channel}.",
        "channel_admins_only": "Only an admin of {channel} (or the bot's operator) can change "
                               "its settings.",
    },
    "zh": {
        "title": "<b>⚙️ 设置</b>",
        "delivery_instant": "推送方式：<b>即时</b> — 发现日报后立即逐篇推送",
        "delivery_daily": "推送方式：<b>每日 {time}</b>（{tz}）— 每天一次",
        "delivery_digest": "推送方式：<b>每日摘要 {time}</b>（{tz}）— 每个主题每天一条消息，"
                           "列出当天论文",
        "timezone": "时区：<b>{tz}</b>",
        "sound_on": "通知：<b>有提示音</b>",
        "sound_off": "通知：<b>静音</b>",
        "weekly_on": "每周回顾：<b>开启</b>，每周一 {time}（{tz}）",
        "weekly_off": "每周回顾：<b>关闭</b>",
        "paused": "⏸ <b>已暂停</b>：新论文会保留，恢复后送达",
        "only": "只看包含以下关键词的论文：<b>{words}</b>",
        "never": "不看包含以下关键词的论文：<b>{words}</b>",
        "any": "不限",
        "nothing": "—",
        "style": "卡片样式：<b>{style}</b>",
        "lang": "界面语言：<b>{language}</b>",
        "footer": "点击按钮修改；/settings help 查看文字命令。",
        "default": "{value}（默认）",
        "full": "完整",
        "compact": "简洁",
        "btn_instant": "⚡ 即时",
        "btn_daily": "🗓 每日",
        "btn_digest": "📰 摘要",
        "btn_silent": "🔕 静音",
        "btn_sound": "🔔 提示音",
        "btn_pause": "⏸ 暂停",
        "btn_weekly_on": "📈 每周回顾",
        "btn_weekly_off": "✅ 📈 每周回顾",
        "btn_resume": "▶️ 恢复",
        "btn_time": "🕘 {time}",
        "btn_tz": "🌍 {tz}",
        "btn_filters": "🔎 关键词过滤",
        "btn_full": "完整卡片",
        "btn_compact": "简洁卡片",
        "btn_back": "⬅️ 返回",
        "btn_default_time": "默认（{time}）",
        "btn_default_tz": "默认（{tz}）",
        "btn_clear_only": "✖️ 清除“只看”",
        "btn_clear_never": "✖️ 清除“不看”",
        "time_title": "<b>🕘 每日推送时间</b>",
        "time_body": "每天在此时间（{tz}）推送一次。当前：<b>{time}</b>。\n"
                     "其他时间请发送 /settings time HH:MM（例如 /settings time 07:30）。",
        "now_instant": "即时推送（尚未设为每日）",
        "tz_title": "<b>🌍 时区</b>",
        "tz_body": "每日推送按此时区计时。当前：<b>{tz}</b>。\n"
                   "其他时区请发送 /settings tz 区域/城市（例如 /settings tz Europe/Paris）。",
        "filters_title": "<b>🔎 关键词过滤</b>",
        "filters_body": (
            "在标题、作者、摘要、总结、要点和主题中查找关键词，不区分大小写。\n\n"
            "/settings only nerf, gaussian splatting — 只看包含其中任一关键词的论文\n"
            "/settings never survey — 不看包含这些关键词的论文\n"
            "/settings only off、/settings never off — 取消过滤\n"
            "多个关键词用逗号分隔；短语算作一个关键词。"
        ),
        "usage": (
            "<b>/settings</b> — 按钮菜单，或者：\n"
            "/settings instant — 发现日报后立即推送\n"
            "/settings daily [HH:MM] — 每天推送一次\n"
            "/settings digest [HH:MM] — 每天一次，每个主题一条列表消息\n"
            "/settings silent on|off — 推送时不发出提示音\n"
            "/settings pause、/settings resume — 暂停推送；期间的论文会保留\n"
            "/settings weekly on|off — 每周一发送各主题本周论文数和趋势图\n"
            "/settings time HH:MM — 每日推送时间（/settings time default 恢复默认）\n"
            "/settings tz 区域/城市 — 时区，例如 Asia/Shanghai（/settings tz default）\n"
            "/settings only 关键词1, 关键词2 — 只看包含任一关键词的论文（/settings only off）\n"
            "/settings never 关键词 — 不看包含这些关键词的论文（/settings never off）\n"
            "/settings style full|compact — 卡片样式\n"
            "/settings lang en|zh — 界面语言"
        ),
        "set_instant": "✅ 已改为即时推送。",
        "set_daily": "✅ 已改为每天 {time}（{tz}）推送。",
        "set_digest": "✅ 已改为每天 {time}（{tz}）推送摘要：每个主题一条列表消息，"
                      "点击标题查看卡片。",
        "set_silent": "🔕 推送已设为静音。",
        "set_weekly_on": "📈 每周一 {time}（{tz}）发送各主题本周论文数和趋势图。",
        "set_weekly_off": "📈 已关闭每周回顾。",
        "set_sound": "🔔 推送将发出提示音。",
        "set_paused": "⏸ 已暂停。新论文会保留，直到恢复（/settings resume）。",
        "set_resumed": "▶️ 已恢复：{n} 篇待发论文即将送达。",
        "set_resumed_list": "▶️ 已恢复：期间共有 {n} 篇论文，将以列表形式送达（每期日报一条消息），"
                            "点击标题查看卡片。",
        "set_resumed_none": "▶️ 已恢复。暂停期间没有新论文。",
        "set_tz": "✅ 时区：{tz}。",
        "set_only": "✅ 只看包含以下关键词的论文：{words}。",
        "set_never": "✅ 不看包含以下关键词的论文：{words}。",
        "cleared_only": "✅ 已取消“只看”过滤。",
        "cleared_never": "✅ 已取消“不看”过滤。",
        "set_style": "✅ 卡片样式：{style}。",
        "set_lang": "✅ 界面语言：中文。",
        "unchanged": "无需更改。",
        "bad_time": "“{value}”不是有效时间。请用 24 小时制发送 /settings time HH:MM，"
                    "例如 /settings time 07:30。",
        "bad_tz": "不认识时区“{value}”。{hint}请使用 IANA 名称，例如 Asia/Shanghai 或 "
                  "Europe/Paris。",
        "tz_hint": "您是不是要找 {names}？",
        "no_words": "请在命令后写上关键词，例如 /settings only nerf, diffusion。",
        "too_many": "关键词太多：最多 {count} 个，每个不超过 {length} 个字符。",
        "bad_choice": "请选择：{choices}。",
        "channel_title": "📢 <b>{channel}</b>",
        "channel_footer": "用 /settings {channel} 加文字命令修改，例如 "
                          "/settings {channel} daily 08:00（/settings help 查看全部）。",
        "channel_unknown": "{channel} 尚未订阅：请先发送 /subscribe {channel}。",
        "channel_admins_only": "只有 {channel} 的管理员（或机器人的运营者）可以修改它的设置。",
    },
}


# --- parsing (pure) -----------------------------------------------------------------------

VIEWS = {"time": "time", "tz": "tz", "timezone": "tz", "only": "filters",
         "never": "filters", "filters": "filters", "keywords": "filters"}
"""A text form's first word given alone shows its part of the menu."""
TEXT_FORMS = frozenset({*VIEWS, "instant", "daily", "digest", "style", "lang", "language",
                        "silent", "quiet", "sound", "pause", "resume", "weekly", "roundup"})


def _form(args: list[str]) -> tuple[str, str]:
    """A text form's setting and value: ``["mode", "daily", "07:30"]`` → daily, 07:30."""
    what, rest = args[0].lower(), " ".join(args[1:]).strip()
    if what == "mode" and rest:  # /settings mode daily 07:30
        what, _, rest = rest.partition(" ")
        what, rest = what.lower(), rest.strip()
    return what, rest


# --- rendering (pure apart from the operator defaults) ------------------------------------


@dataclass(frozen=True, slots=True)
class Menu:
    """One state of the menu message: HTML text and its keyboard."""

    html: str
    keyboard: InlineKeyboardMarkup

    def same_as(self, message: Message) -> bool:
        """Whether Telegram would call an edit to this "not modified"."""
        return shows(message, self.html, self.keyboard)


class SettingsMenu:
    """/settings and its buttons."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # -- values as shown -------------------------------------------------------------

    def _default_time(self) -> str:
        return self.deps.settings.daily_time.strftime("%H:%M")

    def _time(self, chat: Chat, *, marked: bool = True) -> str:
        if chat.daily_time:
            return hhmm(chat.daily_time)
        value = self._default_time()
        return tr(TEXTS, chat.lang, "default", value=value) if marked else value

    def _tz(self, chat: Chat, *, marked: bool = True) -> str:
        if chat.timezone:
            return chat.timezone.key
        value = self.deps.settings.timezone
        return tr(TEXTS, chat.lang, "default", value=value) if marked else value

    def _words(self, chat: Chat, words: tuple[str, ...], empty: str) -> str:
        return escape(", ".join(words)) if words else tr(TEXTS, chat.lang, empty)

    # -- the views -------------------------------------------------------------------

    def render(self, chat: Chat, view: str = "main", note: str = "", *,
               footer: bool = True) -> Menu:
        """The menu for this chat; `note` (already HTML) heads it after a change."""
        if view == "time":
            menu = self._time_view(chat)
        elif view == "tz":
            menu = self._tz_view(chat)
        elif view == "filters":
            menu = self._filters_view(chat)
        else:
            menu = self._main_view(chat, footer=footer)
        if note:
            return Menu(f"{note}\n\n{menu.html}", menu.keyboard)
        return menu

    def _main_view(self, chat: Chat, *, footer: bool = True) -> Menu:
        lang = chat.lang
        if chat.scheduled:
            delivery = tr(TEXTS, lang, f"delivery_{chat.mode}", time=escape(self._time(chat)),
                          tz=escape(self._tz(chat, marked=False)))
        else:
            delivery = tr(TEXTS, lang, "delivery_instant")
        lines = [
            tr(TEXTS, lang, "title"),
            *((tr(TEXTS, lang, "paused"),) if chat.paused else ()),
            delivery,
            tr(TEXTS, lang, "timezone", tz=escape(self._tz(chat))),
            tr(TEXTS, lang, "sound_off" if chat.silent else "sound_on"),
            tr(TEXTS, lang, "weekly_on" if chat.weekly else "weekly_off",
               time=escape(self._time(chat, marked=False)),
               tz=escape(self._tz(chat, marked=False))),
            tr(TEXTS, lang, "only", words=self._words(chat, chat.include, "any")),
            tr(TEXTS, lang, "never", words=self._words(chat, chat.exclude, "nothing")),
            tr(TEXTS, lang, "style", style=tr(TEXTS, lang, chat.style)),
            tr(TEXTS, lang, "lang", language=LANGUAGE_NAMES.get(chat.lang, chat.lang)),
            *(("", tr(TEXTS, lang, "footer")) if footer else ()),
        ]
        rows = [
            [choice(tr(TEXTS, lang, f"btn_{mode}"), f"st:mode:{mode}", chat.mode == mode)
             for mode in DELIVERY_MODES],
            [button(tr(TEXTS, lang, "btn_time", time=self._time(chat, marked=False)),
                    "st:view:time"),
             button(tr(TEXTS, lang, "btn_tz", tz=self._tz(chat, marked=False)), "st:view:tz")],
            [button(tr(TEXTS, lang, "btn_sound"), "st:silent:off") if chat.silent
             else button(tr(TEXTS, lang, "btn_silent"), "st:silent:on"),
             button(tr(TEXTS, lang, "btn_resume"), "st:pause:off") if chat.paused
             else button(tr(TEXTS, lang, "btn_pause"), "st:pause:on")],
            [button(tr(TEXTS, lang, "btn_weekly_off"), "st:weekly:off") if chat.weekly
             else button(tr(TEXTS, lang, "btn_weekly_on"), "st:weekly:on")],
            [button(tr(TEXTS, lang, "btn_filters"), "st:view:filters")],
            [choice(tr(TEXTS, lang, f"btn_{style}"), f"st:style:{style}", chat.style == style)
             for style in CARD_STYLES],
            [choice(LANGUAGE_NAMES[code], f"st:lang:{code}", chat.lang == code)
             for code in LANGUAGES],
        ]
        return Menu("\n".join(lines), InlineKeyboardMarkup(rows))

    def _time_view(self, chat: Chat) -> Menu:
        lang = chat.lang
        current = chat.daily_time if chat.scheduled else None
        hours = [choice(f"{hour:02d}:00", f"st:time:{hour}", current == time(hour))
                 for hour in HOURS]
        rows = rows_of(hours, HOURS_PER_ROW)
        default = tr(TEXTS, lang, "btn_default_time", time=self._default_time())
        rows.append([choice(default, "st:time:default",
                            chat.scheduled and chat.daily_time is None)])
        rows.append([button(tr(TEXTS, lang, "btn_back"), "st:view:main")])
        shown = (escape(self._time(chat)) if chat.scheduled
                 else tr(TEXTS, lang, "now_instant"))
        html = "\n".join([
            tr(TEXTS, lang, "time_title"),
            tr(TEXTS, lang, "time_body", tz=escape(self._tz(chat, marked=False)), time=shown),
        ])
        return Menu(html, InlineKeyboardMarkup(rows))

    def _tz_view(self, chat: Chat) -> Menu:
        lang = chat.lang
        current = chat.timezone.key if chat.timezone else None
        zones = [choice(label, f"st:tz:{name}", current == name)
                 for name, label in COMMON_ZONES]
        rows = rows_of(zones, 3)
        default = tr(TEXTS, lang, "btn_default_tz", tz=self.deps.settings.timezone)
        rows.append([choice(default, "st:tz:default", chat.timezone is None)])
        rows.append([button(tr(TEXTS, lang, "btn_back"), "st:view:main")])
        html = "\n".join([tr(TEXTS, lang, "tz_title"),
                          tr(TEXTS, lang, "tz_body", tz=escape(self._tz(chat)))])
        return Menu(html, InlineKeyboardMarkup(rows))

    def _filters_view(self, chat: Chat) -> Menu:
        lang = chat.lang
        html = "\n".join([
            tr(TEXTS, lang, "filters_title"),
            tr(TEXTS, lang, "only", words=self._words(chat, chat.include, "any")),
            tr(TEXTS, lang, "never", words=self._words(chat, chat.exclude, "nothing")),
            "",
            tr(TEXTS, lang, "filters_body"),
        ])
        clear: list[InlineKeyboardButton] = []
        if chat.include:
            clear.append(button(tr(TEXTS, lang, "btn_clear_only"), "st:only:off"))
        if chat.exclude:
            clear.append(button(tr(TEXTS, lang, "btn_clear_never"), "st:never:off"))
        rows = [clear] if clear else []
        rows.append([button(tr(TEXTS, lang, "btn_back"), "st:view:main")])
        return Menu(html, InlineKeyboardMarkup(rows))

    # -- permissions -----------------------------------------------------------------

    async def _update(self, chat_id: int, **values: Any) -> Chat:
        """Change settings; rows already queued follow a new delivery time or a pause,
        and queued papers that new filters leave out are dropped. (A resume is
        :meth:`_apply`'s: its note says what waited.)"""
        chat = await self.deps.chats.update_settings(chat_id, **values)
        if values.get("weekly") is True:
            await self.deps.delivery.weekly_on(chat)
        if values.get("paused") is True:
            await self.deps.delivery.pause(chat)
        elif values.keys() & {"mode", "daily_time", "timezone"}:
            await self.deps.delivery.reschedule(chat)
        if values.keys() & {"include", "exclude"}:
            await self.deps.delivery.unfollowed(chat)
        return chat

    async def _may_change(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
        """may_manage, except that a button in a channel can be pressed by any reader:
        there the presser must be an admin of the channel (or an operator)."""
        chat = update.effective_chat
        user = update.effective_user
        if update.callback_query is not None and chat is not None \
                and chat.type == ChatType.CHANNEL:
            if user is None:
                return False
            if self.deps.is_operator(user.id):
                return True
            try:
                member = await context.bot.get_chat_member(chat.id, user.id)
            except TelegramError as exc:
                log.warning("cannot check admin rights in channel %s: %s", chat.id, exc)
                return False
            return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
        return await may_manage(update, context.bot, self.deps)

    # -- /settings -------------------------------------------------------------------

    async def settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/settings [what value]: the menu, or a change by text (see the module docstring)."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        args = context.args or []
        if args and channel_ref(args[0]) is not None:
            await self._channel_settings(update, context, chat, args[0], args[1:])
            return
        if not args:
            await self._reply(message, self.render(chat))
            return
        what, rest = _form(args)
        if what in VIEWS and not rest:
            await self._reply(message, self.render(chat, VIEWS[what]))
            return
        if what not in TEXT_FORMS:
            await message.reply_html(tr(TEXTS, chat.lang, "usage"))
            return
        if not await self._may_change(update, context):
            await message.reply_text(tr(COMMON, chat.lang, "admins_only"))
            return
        result = await self._apply_text(chat, what, rest)
        if isinstance(result, str):
            await message.reply_text(result)
            return
        chat, note, view = result
        await self._reply(message, self.render(chat, view, note))

    async def _channel_settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE,
                                chat: Chat, channel: str, args: list[str]) -> None:
        """/settings @channel [form]: an operator or the channel's admin (checked with
        Telegram now) reads or changes a channel's settings.

        Telegram does not hand commands posted in a channel to the bot as commands, so a
        channel's settings are changed from a private chat. The reply is the settings
        text without buttons: pressed here, they would change this chat.
        """
        message = update.effective_message
        user = update.effective_user
        assert message is not None
        target = await self._subscribed_channel(context, channel)
        name = escape(channel)
        if target is None:
            await message.reply_html(tr(TEXTS, chat.lang, "channel_unknown", channel=name))
            return
        if not await may_manage_channel(context.bot, self.deps, user.id if user else None,
                                        target.chat_id):
            log.warning("user %s tried to change the settings of %s",
                        user.id if user else None, channel)
            await message.reply_text(tr(TEXTS, chat.lang, "channel_admins_only",
                                        channel=channel))
            return
        note = ""
        what, rest = _form(args) if args else ("", "")
        if what and not (what in VIEWS and not rest):
            if what not in TEXT_FORMS:
                await message.reply_html(tr(TEXTS, chat.lang, "usage"))
                return
            result = await self._apply_text(target, what, rest)
            if isinstance(result, str):
                await message.reply_text(result)
                return
            target, note, _ = result
        menu = self.render(target, "main", note, footer=False)
        await message.reply_html("\n\n".join((
            tr(TEXTS, chat.lang, "channel_title", channel=name), menu.html,
            tr(TEXTS, chat.lang, "channel_footer", channel=name))))

    async def _subscribed_channel(self, context: ContextTypes.DEFAULT_TYPE,
                                  channel: str) -> Chat | None:
        """The channel's record, if the bot knows it (it was subscribed with /subscribe)."""
        ref = channel_ref(channel)
        if isinstance(ref, str):
            try:
                ref = (await context.bot.get_chat(ref)).id
            except TelegramError:
                return None
        return await self.deps.chats.get(ref) if ref is not None else None

    async def _apply_text(self, chat: Chat, what: str, rest: str
                          ) -> str | tuple[Chat, str, str]:
        """Apply a text form: the changed chat, its note and view; or an error text."""
        change = parse_form(what, rest)
        if isinstance(change, Refusal):
            params = dict(change.params)
            if change.text == "bad_tz":
                params["hint"] = (tr(TEXTS, chat.lang, "tz_hint",
                                     names=", ".join(change.suggestions))
                                  if change.suggestions else "")
            return tr(TEXTS, chat.lang, change.text, **params)
        return await self._apply(chat, change)

    async def _apply(self, chat: Chat, change: Change, *, tell_unchanged: bool = False
                     ) -> tuple[Chat, str, str]:
        """The one place a change is applied: the chat as it now is, the note that
        confirms it and the view to show. ``tell_unchanged``: a tap that changes nothing
        says so (a typed form confirms anyway)."""
        values = applied(change, chat.mode)
        unchanged = all(getattr(chat, k) == v for k, v in values.items())
        if unchanged and (tell_unchanged or change.setting == "pause"):
            note = (self._daily_note(chat) if chat.scheduled and change.setting == "mode"
                    and values.get("mode") != "instant"
                    else tr(TEXTS, chat.lang, "unchanged"))
            return chat, note, change.view
        was_paused = chat.paused
        chat = await self._update(chat.chat_id, **values)
        if was_paused and not chat.paused:
            waiting, listed = await self.deps.delivery.resume(chat)
            key = ("set_resumed_none" if not waiting
                   else "set_resumed_list" if listed else "set_resumed")
            return chat, tr(TEXTS, chat.lang, key, n=waiting), change.view
        return chat, self._note(chat, change), change.view

    def _note(self, chat: Chat, change: Change) -> str:
        lang, setting = chat.lang, change.setting
        if setting == "mode" and change.values["mode"] == "instant":
            return tr(TEXTS, lang, "set_instant")
        if setting in ("mode", "time"):
            return self._daily_note(chat)
        if setting == "tz":
            return tr(TEXTS, lang, "set_tz", tz=escape(self._tz(chat)))
        if setting in ("only", "never"):
            words = chat.include if setting == "only" else chat.exclude
            if not words:
                return tr(TEXTS, lang, f"cleared_{setting}")
            return tr(TEXTS, lang, f"set_{setting}", words=escape(", ".join(words)))
        if setting == "style":
            return tr(TEXTS, lang, "set_style", style=tr(TEXTS, lang, chat.style))
        if setting == "silent":
            return tr(TEXTS, lang, "set_silent" if chat.silent else "set_sound")
        if setting == "pause":
            return tr(TEXTS, lang, "set_paused")
        if setting == "weekly":
            return tr(TEXTS, lang, "set_weekly_on" if chat.weekly else "set_weekly_off",
                      time=escape(self._time(chat, marked=False)),
                      tz=escape(self._tz(chat, marked=False)))
        return tr(TEXTS, lang, "set_lang")

    def _daily_note(self, chat: Chat) -> str:
        return tr(TEXTS, chat.lang, "set_digest" if chat.mode == "digest" else "set_daily",
                  time=escape(self._time(chat)), tz=escape(self._tz(chat, marked=False)))

    async def _reply(self, message: Message, menu: Menu) -> None:
        await message.reply_html(menu.html, reply_markup=menu.keyboard)

    # -- buttons ---------------------------------------------------------------------

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap on the menu: change the setting, answer, edit the menu if it changed."""
        query = update.callback_query
        assert query is not None
        chat = await current_chat(update, self.deps)
        setting, _, value = (query.data or "").removeprefix("st:").partition(":")
        if setting == "view":
            await query.answer()
            await self._show(update, chat, value if value in ("time", "tz", "filters")
                             else "main")
            return
        if not await self._may_change(update, context):
            await query.answer(tr(COMMON, chat.lang, "admins_only"), show_alert=True)
            return
        result = await self._apply_button(chat, setting, value)
        if result is None:
            await query.answer(tr(COMMON, chat.lang, "expired"), show_alert=True)
            return
        chat, note, view = result
        await query.answer(truncate(note, ANSWER_LEN))  # UTF-16 units, not code points
        await self._show(update, chat, view)

    async def _apply_button(self, chat: Chat, setting: str, value: str
                            ) -> tuple[Chat, str, str] | None:
        """Apply a tap: the chat as it now is, a toast and the view to show; None if stale."""
        change = parse_button(setting, value)
        return None if change is None else await self._apply(chat, change, tell_unchanged=True)

    async def _show(self, update: Update, chat: Chat, view: str) -> None:
        """Edit the menu in place, unless it already shows exactly this (Telegram refuses
        such edits with "message is not modified"); a menu too old to edit is sent anew."""
        query = update.callback_query
        assert query is not None
        menu = self.render(chat, view)
        message = query.message
        if not isinstance(message, Message):
            await update.get_bot().send_message(chat.chat_id, menu.html, parse_mode="HTML",
                                                reply_markup=menu.keyboard,
                                                message_thread_id=chat.thread_id)
            return
        await edit_in_place(query, menu.html, menu.keyboard)
