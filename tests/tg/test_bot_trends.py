"""/trends end to end against the strict fake Bot API: a real PNG with a two-line caption,
in English and Chinese, one topic by a name with spaces, the answers to bad input, the
photo sent again by its file_id, and another chat answered while a chart is drawn."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from bot.domain.trends import TrendSeries
from tests.botapi.server import FakeBotApi, FakeChat, FakeUser, SentMessage
from tests.botapi.validation import validate_photo
from tests.tg.bot_harness import BotUnderTest, running_bot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chat_with(server: FakeBotApi, name: str, lang: str = "en") -> tuple[FakeUser, FakeChat]:
    user = server.user(name, language_code=lang)
    return user, server.private_chat(user)


async def ask(bot: BotUnderTest, chat: FakeChat, user: FakeUser, command: str
              ) -> list[SentMessage]:
    before = len(bot.server.sent_to(chat.id))
    bot.server.send_command(chat, user, command)
    await bot.settle(timeout=30)
    return bot.server.sent_to(chat.id)[before:]


def uploaded_png(server: FakeBotApi, n: int = -1) -> bytes:
    upload = server.calls("sendPhoto")[n].files.get("photo")
    assert upload is not None, "the photo was not uploaded"
    return upload.data


async def test_trends_sends_a_chart_of_every_topic_and_reuses_the_photo(
        bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Ann")
    [photo] = await ask(bot, chat, user, "/trends")
    assert photo.method == "sendPhoto"
    assert (chat.id, "upload_photo") in bot.server.chat_actions
    assert (photo.plain_text or "").splitlines() == [
        "📈 Papers per topic per week, 2024-02-27 – 2024-05-20 (12 weeks, 4 topics).",
        "🚀 Fastest-growing: Diffusion Models, 3 papers in the last 4 weeks, up from 0.",
    ]
    assert photo.parse_mode == "HTML"
    png = uploaded_png(bot.server)
    assert png.startswith(PNG_SIGNATURE)
    assert validate_photo(png) == (1200, 700)
    assert photo.media is not None
    [again] = await ask(bot, chat, user, "/trends 12")
    assert again.media == photo.media  # the same file_id, not a second upload
    assert "photo" not in bot.server.calls("sendPhoto")[-1].files
    assert again.plain_text == photo.plain_text
    assert bot.deps.trends.renders == 1
    # Only the operators' menus are refused (the operator never talked to the fake).
    assert [c for c in bot.server.errors() if c.method != "setMyCommands"] == []


async def test_trends_in_chinese(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Lin", "zh-hans")
    [photo] = await ask(bot, chat, user, "/trends")
    assert (photo.plain_text or "").splitlines() == [
        "📈 各主题每周论文数，2024-02-27 – 2024-05-20（12 周，4 个主题）。",
        "🚀 增长最快：Diffusion Models，最近 4 周 3 篇，此前 4 周 0 篇。",
    ]
    [help_text] = await ask(bot, chat, user, "/help")
    assert "/trends [主题] [周数]" in (help_text.plain_text or "")


async def test_one_topic_by_a_name_with_spaces_or_over_half_a_year(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Bo")
    [photo] = await ask(bot, chat, user, "/trends talking head generation 8")
    assert (photo.plain_text or "").splitlines() == [
        "📈 Talking Head Generation: 3 papers in 8 weeks, 2024-03-26 – 2024-05-20.",
        "Last 4 weeks: 0 papers, down from 3 in the 4 before.",
    ]
    assert validate_photo(uploaded_png(bot.server)) == (1200, 700)
    [nerf] = await ask(bot, chat, user, "/trends NeRF 26")
    assert (nerf.plain_text or "").splitlines()[0] == (
        "📈 NeRF: 3 papers in 26 weeks, 2023-11-21 – 2024-05-20.")
    [cjk] = await ask(bot, chat, user, "/trends 元宇宙_虚拟人")
    assert (cjk.plain_text or "").startswith("📈 元宇宙/虚拟人: 2 papers in 12 weeks")
    assert bot.deps.trends.renders == 3
    [help_text] = await ask(bot, chat, user, "/help")
    assert "/trends [topic] [weeks]" in (help_text.plain_text or "")


async def test_bad_weeks_and_unknown_tags_are_explained(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Cy")
    for command in ("/trends 0", "/trends NeRF 105", "/trends -3", "/trends " + "9" * 4000):
        [answer] = await ask(bot, chat, user, command)
        assert answer.text == ("WEEKS is a number of weeks from 1 to 104: /trends 26, or "
                               "/trends NeRF 26 for one topic over half a year.")
    [unknown] = await ask(bot, chat, user, "/trends Nerv 4")
    assert (unknown.text or "").startswith("I don't know the tag “Nerv”. Did you mean NeRF?")
    [extra] = await ask(bot, chat, user, "/trends NeRF papers")
    assert (extra.text or "").startswith("I don't know the tag “NeRF papers”.")
    zh_user, zh_chat = chat_with(bot.server, "Mei", "zh")
    [answer] = await ask(bot, zh_chat, zh_user, "/trends 200")
    assert (answer.text or "").startswith("周数须为 1 到 104 之间的整数")
    assert bot.deps.trends.renders == 0
    assert bot.server.calls("sendPhoto") == []


async def test_an_empty_archive_says_so(botapi: FakeBotApi, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    async with running_bot(tmp_path, botapi, digest_dir=empty) as bot:
        user, chat = chat_with(botapi, "Di")
        [answer] = await ask(bot, chat, user, "/trends")
        assert answer.text == "The archive is empty so far: no digest has been read yet."


async def test_another_chat_is_answered_while_a_chart_is_drawn(bot: BotUnderTest) -> None:
    """The drawing is held in its worker thread until /help in another chat has been
    answered: if it ran on the event loop, that answer could never come."""
    started, release = threading.Event(), threading.Event()
    real = bot.deps.trends.renderer

    def held(series: TrendSeries, lang: str) -> bytes:
        started.set()
        if not release.wait(timeout=30):
            raise TimeoutError("the test never released the drawing")
        return real(series, lang)

    bot.deps.trends.renderer = held
    reader, reader_chat = chat_with(bot.server, "Reader")
    other, other_chat = chat_with(bot.server, "Other")
    bot.server.send_command(reader_chat, reader, "/trends")
    try:
        assert await asyncio.to_thread(started.wait, 30), "the chart was never drawn"
        bot.server.send_command(other_chat, other, "/help")
        await bot.server.wait_for_sent(1, chat_id=other_chat.id, timeout=10)
        assert bot.server.sent_to(reader_chat.id) == []  # still drawing
    finally:
        release.set()
    await bot.settle(timeout=30)
    [photo] = bot.server.sent_to(reader_chat.id)
    assert photo.method == "sendPhoto"
