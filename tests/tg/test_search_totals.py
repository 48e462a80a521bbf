"""A search whose words match more papers than the bot counts (browse.COUNT_UP_TO, made
small here) says "N+ papers" and keeps ▶ until a page reaches the end; /tag and /latest
count exactly."""

from __future__ import annotations

import pytest

from bot.tg.handlers import browse
from tests.botapi.server import FakeBotApi, FakeChat, FakeUser, SentMessage
from tests.tg.bot_harness import BotUnderTest


def chat_with(server: FakeBotApi, name: str, lang: str = "en") -> tuple[FakeUser, FakeChat]:
    user = server.user(name, language_code=lang)
    return user, server.private_chat(user)


async def ask(bot: BotUnderTest, chat: FakeChat, user: FakeUser,
              command: str) -> list[SentMessage]:
    before = len(bot.server.sent_to(chat.id))
    bot.server.send_command(chat, user, command)
    await bot.settle()
    return bot.server.sent_to(chat.id)[before:]


async def test_a_count_past_the_bound_reads_at_least(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browse, "COUNT_UP_TO", 2)
    s = bot.server
    user, chat = chat_with(s, "Ivy")
    [listing] = await ask(bot, chat, user, "/search a")  # 8 papers match "a"
    text = listing.plain_text or ""
    # counted as far as page 1 needs: past its 5 lines, so at least 6
    assert text.startswith("🔎 6+ papers match “a”")
    assert text.splitlines()[-1] == "Page 1 of 2+"
    assert listing.callback_data[-1].startswith("pg:")

    s.press_button(chat, user, listing.message_id, listing.callback_data[-1])
    await bot.settle()
    last = s.edits[-1].plain_text or ""
    assert last.startswith("🔎 8 papers match “a”")  # the last page counts to the end
    assert last.splitlines()[-1] == "Page 2 of 2"
    labels = [b["text"] for row in s.edits[-1].reply_markup["inline_keyboard"]  # type: ignore[index]
              for b in row]
    assert "▶" not in labels
    assert s.unanswered_callback_queries() == []

    [tagged] = await ask(bot, chat, user, "/search tag:3DGS")  # no words: exact
    assert (tagged.plain_text or "").startswith("🔎 8 papers match “tag:3DGS”")
    assert (tagged.plain_text or "").splitlines()[-1] == "Page 1 of 2"


async def test_at_least_in_chinese(bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browse, "COUNT_UP_TO", 2)
    user, chat = chat_with(bot.server, "Lin", lang="zh")
    [listing] = await ask(bot, chat, user, "/search a")
    text = listing.plain_text or ""
    assert text.startswith("🔎 找到 6+ 篇与“a”相关的论文")
    assert text.splitlines()[-1] == "第 1/2+ 页"
