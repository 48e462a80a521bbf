"""Fixed interface texts in English and Chinese; `tr` picks one and formats it.

Each handler module keeps its own table next to the code that uses it, so a text
change and its handler live together; this module holds the shared lookup and the
texts more than one module uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain.chat_settings import language
from bot.domain.models import Lang

Table = Mapping[str, Mapping[str, str]]

COMMON: Table = {
    "en": {
        "admins_only": "Only the admins of this group can change its subscription or settings.",
        "operators_only": "Sorry, this command is for the bot's operators.",
        "no_papers": "The archive is empty so far: no digest has been read yet.",
        "unknown_tag": "I don't know the tag “{tag}”.{hint}\nKnown tags: {known}",
        "did_you_mean": " Did you mean {suggestions}?",
        "not_found": "No paper {what} in the archive.",
        "expired": "This list has expired; please run the command again.",
        "stale_button": "This button has expired.",
        "working": "Working…",
    },
    "zh": {
        "admins_only": "只有本群管理员可以修改订阅或设置。",
        "operators_only": "抱歉，此命令仅限机器人管理员使用。",
        "no_papers": "资料库还是空的：尚未读取任何日报。",
        "unknown_tag": "没有找到标签“{tag}”。{hint}\n已有标签：{known}",
        "did_you_mean": "您是不是要找 {suggestions}？",
        "not_found": "资料库中没有论文 {what}。",
        "expired": "此列表已过期，请重新发送命令。",
        "stale_button": "此按钮已过期。",
        "working": "处理中…",
    },
}


def lang_of(code: str | None) -> Lang:
    """Telegram's language_code to one of our interface languages."""
    return language(code)


def tr(table: Table, lang: str, key: str, **values: Any) -> str:
    """The text for `key` in `lang` (English when missing), formatted with `values`."""
    text = table.get(lang, {}).get(key) or table["en"][key]
    return text.format(**values) if values else text
