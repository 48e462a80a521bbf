"""The command menus Telegram shows: everyone's, the operators', in English and Chinese."""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import TelegramError

log = logging.getLogger(__name__)

PUBLIC = (
    ("start", "Welcome and subscribe", "欢迎与订阅"),
    ("help", "What I can do", "使用说明"),
    ("subscribe", "Follow topics", "订阅主题"),
    ("unsubscribe", "Stop following topics", "取消订阅"),
    ("tags", "All topics and what you follow", "全部主题"),
    ("latest", "The newest papers of your topics", "你订阅主题的最新论文"),
    ("search", "Search the archive", "搜索资料库"),
    ("tag", "Papers of one topic", "按主题浏览"),
    ("paper", "One paper by arXiv id", "按 arXiv 编号查看"),
    ("saved", "Your saved papers", "我的收藏"),
    ("trends", "Papers per topic per week, as a chart", "各主题每周论文趋势图"),
    ("settings", "Delivery, filters, style, language", "推送、过滤、样式、语言"),
)
OPERATOR = (
    ("stats", "Subscribers, papers, deliveries", "统计"),
    ("rescan", "Scan the digest folder now", "立即扫描日报"),
    ("repost", "Send papers again", "重新推送"),
)


def _commands(items: tuple[tuple[str, str, str], ...], zh: bool) -> list[BotCommand]:
    return [BotCommand(name, zh_text if zh else en_text) for name, en_text, zh_text in items]


async def publish_commands(bot: Bot, operator_ids: frozenset[int]) -> None:
    """setMyCommands for everyone and, per operator chat, the longer list."""
    for zh in (False, True):
        await bot.set_my_commands(_commands(PUBLIC, zh), scope=BotCommandScopeDefault(),
                                  language_code="zh" if zh else None)
    await publish_operator_commands(bot, operator_ids)


async def publish_operator_commands(bot: Bot, operator_ids: frozenset[int]) -> None:
    """The operators' longer menu, in their private chats with the bot."""
    for zh in (False, True):
        lang = "zh" if zh else None
        for user_id in sorted(operator_ids):
            try:
                await bot.set_my_commands(_commands(PUBLIC + OPERATOR, zh),
                                          scope=BotCommandScopeChat(user_id),
                                          language_code=lang)
            except TelegramError as exc:  # the operator has not started the bot yet
                log.info("operator commands for %s not set: %s", user_id, exc)
