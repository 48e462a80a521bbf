"""Reading the archive in a chat: /latest, /search with its pages, /tag, /paper and the
buttons on cards, end to end against the strict fake Bot API (it rejects what Telegram
would, so every message here is known to be valid)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from pathlib import Path

import pytest
from telegram import Bot
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from bot.domain.models import Chat
from bot.tg.cards import card_for, send_analysis, send_card, send_figures
from tests.botapi.server import ApiCall, FakeBotApi, FakeChat, FakeUser, SentMessage
from tests.fixtures.expected import FIXTURE_DIR, FIXTURE_DISTINCT_IDS
from tests.fixtures.folder import copy_fixture_folder
from tests.tg.bot_harness import BotUnderTest, running_bot

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "digests"

HOSTILE_QUERIES = [
    '"', '""', '"unclosed phrase', "*", "gauss*", "NEAR(radiance teapot)", "a AND OR NOT b",
    "'; DROP TABLE papers; --", "1 OR 1=1", "title:teapot", "-", "^", "()", "{}[]",
    "<b>bold</b> & <i>co", "&amp; &lt;", "tag:", "tag:\"", "since:banana until:", "author:\"",
    "😀🔥🧪", "👨‍👩‍👧‍👦" * 40, "\u202eevil", "扩散模型 \"未闭合", "x" * 10_000,
    "radiance " * 500, "#", "#NeRF", "arXiv:", "https://arxiv.org/abs/", "\\", "%_%",
]


def refused(server: FakeBotApi) -> list[ApiCall]:
    """Calls Telegram would have refused, ignoring the operators' command menus at start
    (the operator never talked to the fake, so those are refused by design)."""
    return [c for c in server.errors() if c.method != "setMyCommands"]


def chat_with(server: FakeBotApi, name: str, lang: str = "en") -> tuple[FakeUser, FakeChat]:
    user = server.user(name, language_code=lang)
    return user, server.private_chat(user)


async def ask(bot: BotUnderTest, chat: FakeChat, user: FakeUser, command: str,
              thread: int | None = None) -> list[SentMessage]:
    """Send a command; return what the bot sent in reply."""
    before = len(bot.server.sent_to(chat.id))
    bot.server.send_command(chat, user, command, message_thread_id=thread)
    await bot.settle()
    return bot.server.sent_to(chat.id)[before:]


async def press(bot: BotUnderTest, chat: FakeChat, user: FakeUser, message: SentMessage,
                data: str) -> list[SentMessage]:
    before = len(bot.server.sent_to(chat.id))
    bot.server.press_button(chat, user, message.message_id, data)
    await bot.settle()
    return bot.server.sent_to(chat.id)[before:]


# --- /latest -----------------------------------------------------------------------------


async def test_latest_is_one_paged_list_newest_first(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Ann")
    [listing] = await ask(bot, chat, user, "/latest")
    lines = (listing.plain_text or "").splitlines()
    assert lines[0] == "📰 Latest papers: 24 papers, newest first"
    assert lines[2:5] == ["1. First Run Paper A · 2024-05-20 · #DiffusionModels",
                          "2. First Run Paper B · 2024-05-20 · #DiffusionModels",
                          "3. Only In The Second Run · 2024-05-20 · #DiffusionModels"]
    assert lines[-1] == "Page 1 of 5"
    assert listing.callback_data[:5] == ["pp:2405.00061", "pp:2405.00062", "pp:2405.00063",
                                         *listing.callback_data[3:5]]
    [card] = await press(bot, chat, user, listing, "pp:2405.00061")
    assert "First Run Paper A" in (card.plain_text or "")
    assert "arXiv" in [b["text"] for b in card.buttons]
    next_page = listing.callback_data[-1]
    assert next_page.startswith("pg:")
    await press(bot, chat, user, listing, next_page)
    edited = bot.server.message(chat.id, listing.message_id)
    assert "Page 2 of 5" in edited["text"]
    assert refused(bot.server) == []


async def test_latest_of_a_tag_lists_that_topic(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Ben")
    [listing] = await ask(bot, chat, user, "/latest nerf")
    text = listing.plain_text or ""
    assert text.startswith("📰 Latest in NeRF: ")
    assert "Radiance Fields for Tiny Teapots" in text
    assert all("#NeRF" in line for line in text.splitlines()[2:] if line[:1].isdigit())

    [two_words] = await ask(bot, chat, user, "/latest Talking Head Generation")
    assert (two_words.plain_text or "").startswith("📰 Latest in Talking Head Generation: ")


async def test_latest_follows_the_chats_topics(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Bea")
    await ask(bot, chat, user, "/subscribe NeRF, 3DGS")
    [listing] = await ask(bot, chat, user, "/latest")
    text = listing.plain_text or ""
    assert text.startswith("📰 Latest in NeRF, 3DGS: ") or text.startswith(
        "📰 Latest in 3DGS, NeRF: ")
    shown = [line for line in text.splitlines() if line[:1].isdigit()]
    assert shown
    assert all("#NeRF" in line or "#3DGS" in line for line in shown)
    await ask(bot, chat, user, "/subscribe all")
    [everything] = await ask(bot, chat, user, "/latest")
    assert (everything.plain_text or "").startswith("📰 Latest papers: 24 papers")


async def test_latest_unknown_tag_suggests_like_subscribe(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Cid")
    [latest] = await ask(bot, chat, user, "/latest nerff")
    [subscribe] = await ask(bot, chat, user, "/subscribe nerff")
    assert latest.plain_text == subscribe.plain_text
    assert "Did you mean NeRF?" in (latest.plain_text or "")
    assert "Known tags: 3DGS, Diffusion Models" in (latest.plain_text or "")


async def test_latest_on_an_empty_archive(botapi: FakeBotApi, tmp_path: Path) -> None:
    async with running_bot(tmp_path, botapi, ingest=False) as bot:
        user, chat = chat_with(botapi, "Eli")
        [reply] = await ask(bot, chat, user, "/latest")
        assert "archive is empty" in (reply.plain_text or "")
        [search] = await ask(bot, chat, user, "/search teapot")
        assert "No papers match “teapot”" in (search.plain_text or "")


async def test_latest_of_a_tag_whose_digests_were_empty(botapi: FakeBotApi,
                                                        tmp_path: Path) -> None:
    folder = copy_fixture_folder(tmp_path / "digests")
    empty = (FIXTURE_DIR / "2024-05-06" / "NeRF.md").read_text(encoding="utf-8")
    (folder / "2024-06-01").mkdir()
    (folder / "2024-06-01" / "Quiet Topic.md").write_text(
        empty.replace("NeRF", "Quiet Topic").replace("2024-05-06", "2024-06-01"),
        encoding="utf-8")
    for file in folder.rglob("*.md"):
        os.utime(file, (1_000_000_000, 1_000_000_000))
    async with running_bot(tmp_path, botapi) as bot:
        user, chat = chat_with(botapi, "Fox")
        [reply] = await ask(bot, chat, user, "/latest quiet topic")
        assert reply.plain_text == ("No papers under Quiet Topic yet. Its last digest, on "
                                    "2024-06-01, listed none.")
        [listing] = await ask(bot, chat, user, "/tag Quiet Topic")
        assert listing.plain_text == "No papers under Quiet Topic yet."


# --- /search ------------------------------------------------------------------------------


async def test_search_pages_by_editing_one_message(bot: BotUnderTest) -> None:
    s = bot.server
    user, chat = chat_with(s, "Gus")
    [listing] = await ask(bot, chat, user, "/search tag:3DGS")
    text = listing.plain_text or ""
    assert text.startswith("🔎 8 papers match “tag:3DGS”")
    assert "1. Figures Everywhere · 2024-04-02 · #3DGS" in text
    assert "Page 1 of 2" in text
    assert [b["text"] for b in listing.buttons] == ["1", "2", "3", "4", "5", "▶"]
    rows = (listing.reply_markup or {})["inline_keyboard"]
    assert len(rows) == 2
    assert all(len(row) <= 8 for row in rows)
    forward = listing.callback_data[-1]
    assert forward.startswith("pg:")
    assert forward.endswith(":2")

    assert await press(bot, chat, user, listing, forward) == []  # edited, nothing new
    edit = s.edits[-1]
    assert (edit.method, edit.message_id) == ("editMessageText", listing.message_id)
    assert "6. " in (edit.plain_text or "")
    assert "Page 2 of 2" in (edit.plain_text or "")
    labels = [b["text"] for row in edit.reply_markup["inline_keyboard"] for b in row]  # type: ignore[index]
    assert labels == ["6", "7", "8", "◀"]
    assert s.unanswered_callback_queries() == []

    current = s.message(chat.id, listing.message_id)
    back = next(b["callback_data"] for row in current["reply_markup"]["inline_keyboard"]
                for b in row if b["text"] == "◀")
    s.press_button(chat, user, listing.message_id, back)
    await bot.settle()
    assert "1. Figures Everywhere" in (s.edits[-1].plain_text or "")
    assert s.unanswered_callback_queries() == []
    assert refused(s) == []


async def test_result_button_sends_that_papers_card(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Hal")
    [listing] = await ask(bot, chat, user, "/search teapots")
    assert (listing.plain_text or "").startswith("🔎 1 paper matches “teapots”")
    assert listing.callback_data == ["pp:2401.00001"]
    [card] = await press(bot, chat, user, listing, "pp:2401.00001")
    assert "Radiance Fields for Tiny Teapots" in (card.plain_text or "")
    assert card.callback_data == ["an:2401.00001", "fg:2401.00001", "sv:2401.00001",
                                  "rl:2401.00001", "bx:2401.00001"]
    assert bot.server.unanswered_callback_queries() == []


async def test_search_alone_explains_the_syntax(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Ivy")
    [usage] = await ask(bot, chat, user, "/search")
    text = usage.plain_text or ""
    for example in ("tag:NeRF", "since:2024-06-01", "author:", "2409.12156", "\"neural "
                    "radiance\"", "扩散模型"):
        assert example in text


async def test_search_finds_chinese_ids_and_authors(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Jon")
    [chinese] = await ask(bot, chat, user, "/search 茶壶")
    assert "Radiance Fields for Tiny Teapots" in (chinese.plain_text or "")
    [by_id] = await ask(bot, chat, user, "/search https://arxiv.org/abs/2402.00002v1")
    assert "Sparse Views, Dense Dreams" in (by_id.plain_text or "")
    [nothing] = await ask(bot, chat, user, "/search zebra unicorn")
    assert "No papers match “zebra unicorn”" in (nothing.plain_text or "")
    [misspelt] = await ask(bot, chat, user, "/search tag:nerff teapot")
    assert "Did you mean NeRF?" in (misspelt.plain_text or "")


async def test_hostile_queries_are_just_words(bot: BotUnderTest) -> None:
    s = bot.server
    chats = []  # a chat each: one private chat takes one message a second
    for n, query in enumerate(HOSTILE_QUERIES):
        user, chat = chat_with(s, f"Kim{n}")
        s.send_command(chat, user, f"/search {query}")
        chats.append(chat)
    await bot.settle(30)
    replies = []
    for query, chat in zip(HOSTILE_QUERIES, chats, strict=True):
        [reply] = s.sent_to(chat.id)
        assert len(reply.plain_text or "") < 1000, query  # the echo is cut short
        replies.append(reply)
    html_echo = replies[HOSTILE_QUERIES.index("<b>bold</b> & <i>co")].plain_text or ""
    assert "“<b>bold</b> & <i>co”" in html_echo  # shown as typed, not as markup
    assert refused(s) == []


# --- /tag ---------------------------------------------------------------------------------


async def test_tag_with_a_multi_word_name_and_a_query(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Lea")
    [listing] = await ask(bot, chat, user, "/tag Talking Head Generation")
    text = listing.plain_text or ""
    assert text.startswith("🏷 Talking Head Generation: 3 papers, newest first")
    assert "2. Less Than <3% Error on A&A Benchmarks" in text
    assert listing.callback_data == ["pp:2404.00041", "pp:2404.00042", "pp:hep-th/9901001"]

    [narrowed] = await ask(bot, chat, user, "/tag talking head generation traps")
    assert (narrowed.plain_text or "").startswith(
        "🏷 Talking Head Generation: 1 paper matching “traps”")
    assert narrowed.callback_data == ["pp:2404.00041"]

    [old_style] = await press(bot, chat, user, listing, "pp:hep-th/9901001")
    assert "An Old-Style Identifier" in (old_style.plain_text or "")


async def test_tag_pages_newest_first_and_unknown_tags(bot: BotUnderTest) -> None:
    s = bot.server
    user, chat = chat_with(s, "Max")
    [listing] = await ask(bot, chat, user, "/tag 3DGS")
    assert "Page 1 of 2" in (listing.plain_text or "")
    assert (listing.plain_text or "").index("2024-04-02") < (listing.plain_text or "").index(
        "2024-02-01")
    await press(bot, chat, user, listing, listing.callback_data[-1])
    assert (s.edits[-1].plain_text or "").startswith("🏷 3DGS: 8 papers, newest first")
    [unknown] = await ask(bot, chat, user, "/tag Talkin Head lip sync")
    assert "Did you mean Talking Head Generation?" in (unknown.plain_text or "")
    [usage] = await ask(bot, chat, user, "/tag")
    assert "/tag NAME" in (usage.plain_text or "")


# --- /paper and the card's buttons ----------------------------------------------------------


async def test_paper_by_id_url_and_unknown(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Ned")
    [by_id] = await ask(bot, chat, user, "/paper 2402.00002")
    assert (by_id.plain_text or "").startswith("Sparse Views, Dense Dreams")
    assert by_id.link_preview_options == {"url": "https://img.example.org/fig/2402.00002-1.jpg",
                                          "show_above_text": True, "prefer_large_media": True}
    [by_url] = await ask(bot, chat, user, "/paper https://arxiv.org/abs/2401.00001v1")
    assert "Radiance Fields for Tiny Teapots" in (by_url.plain_text or "")
    [missing] = await ask(bot, chat, user, "/paper 2499.99999")
    assert missing.plain_text == "No paper 2499.99999 in the archive."
    [usage] = await ask(bot, chat, user, "/paper")
    assert "/paper 2409.12156" in (usage.plain_text or "")
    assert refused(bot.server) == []


async def test_card_buttons_send_analysis_and_figures(bot: BotUnderTest) -> None:
    s = bot.server
    user, chat = chat_with(s, "Oda")
    [card] = await ask(bot, chat, user, "/paper 2401.00001")
    analysis = await press(bot, chat, user, card, "an:2401.00001")
    assert analysis
    assert "第二版的分析" in (analysis[-1].plain_text or "")  # of v2
    [photo] = await press(bot, chat, user, card, "fg:2401.00001")
    assert photo.method == "sendPhoto"  # v2 lists a single figure
    [many] = await ask(bot, chat, user, "/paper 2404.00052")
    assert "🖼 Figures (3)" in [b["text"] for b in many.buttons]
    album = await press(bot, chat, user, many, "fg:2404.00052")
    assert [m.method for m in album] == ["sendMediaGroup"] * 3
    assert len({m.media_group_id for m in album}) == 1
    assert s.unanswered_callback_queries() == []
    assert refused(s) == []


async def test_a_button_for_a_paper_that_left_the_archive(bot: BotUnderTest) -> None:
    s = bot.server
    user, chat = chat_with(s, "Pip")
    [card] = await ask(bot, chat, user, "/paper 2402.00002")
    await bot.deps.archive.delete_file("2024-02-01/NeRF.md")  # its only digest
    assert await press(bot, chat, user, card, "an:2402.00002") == []
    answer = list(s.callback_answers.values())[-1]
    assert answer.show_alert
    assert answer.text == "No paper 2402.00002 in the archive."


async def test_forum_topic_replies_stay_in_the_topic(bot: BotUnderTest) -> None:
    s = bot.server
    admin = s.user("Quinn")
    group = s.supergroup("Readers", forum=True)
    topic = s.add_topic(group, "Papers")
    s.set_member(group, admin, "administrator")
    [card] = await ask(bot, group, admin, "/paper 2402.00003", thread=topic)
    assert card.message_thread_id == topic
    analysis = await press(bot, group, admin, card, "an:2402.00003")
    assert analysis
    assert all(m.message_thread_id == topic for m in analysis)
    [listing] = await ask(bot, group, admin, "/search gaussian", thread=topic)
    assert listing.message_thread_id == topic
    [picked] = await press(bot, group, admin, listing, listing.callback_data[0])
    assert picked.message_thread_id == topic
    assert refused(s) == []


async def test_chinese_user_gets_chinese_texts(bot: BotUnderTest) -> None:
    user, chat = chat_with(bot.server, "Rui", lang="zh-hans")
    [usage] = await ask(bot, chat, user, "/search")
    assert "搜索资料库" in (usage.plain_text or "")
    [latest] = await ask(bot, chat, user, "/latest")
    assert (latest.plain_text or "").startswith("📰 最新论文：24 篇论文，按时间倒序")
    [card] = await press(bot, chat, user, latest, latest.callback_data[0])
    assert "总结：" in (card.plain_text or "")
    [listing] = await ask(bot, chat, user, "/tag 3DGS")
    assert "第 1/2 页" in (listing.plain_text or "")
    [unknown] = await ask(bot, chat, user, "/latest nerff")
    assert "您是不是要找 NeRF？" in (unknown.plain_text or "")
    [missing] = await ask(bot, chat, user, "/paper 2499.99999")
    assert missing.plain_text == "资料库中没有论文 2499.99999。"
    [nothing] = await ask(bot, chat, user, "/search 斑马")
    assert "没有与“斑马”相关的论文" in (nothing.plain_text or "")


async def test_every_fixture_paper_renders_in_every_style(bot: BotUnderTest) -> None:
    """/paper for every fixture paper, full and compact, English and Chinese."""
    ids = [p.arxiv_id async for p in bot.deps.archive.export()]
    assert len(ids) == FIXTURE_DISTINCT_IDS
    readers = []  # one chat per card: a private chat takes one message a second
    for n, (style, lang) in enumerate([("full", "en"), ("compact", "en"), ("full", "zh"),
                                       ("compact", "zh")]):
        for arxiv_id in ids:
            user, chat = chat_with(bot.server, f"Reader{n}-{arxiv_id}", lang=lang)
            await bot.deps.chats.ensure(chat.id, "private", lang=lang)
            await bot.deps.chats.update_settings(chat.id, style=style, lang=lang)
            bot.server.send_command(chat, user, f"/paper {arxiv_id}")
            readers.append(chat)
    await bot.settle(30)
    for chat in readers:
        [card] = bot.server.sent_to(chat.id)
        assert card.parse_mode == "HTML"
    assert refused(bot.server) == []


# --- the developer sample -----------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/digests is not beside the checkout")
async def test_every_shared_paper_is_accepted_by_telegram(botapi: FakeBotApi,
                                                          tmp_path: Path) -> None:
    """Every real paper as a card (full and compact, en and zh), its analysis and its
    figures, sent through the fake server; plus /paper through the bot for a sample.

    The cards go through a plain Bot (no rate limiter) so the 2000-odd messages take
    seconds, not the minute the bot's own 30-a-second limiter would need.
    """
    async with running_bot(tmp_path, botapi, digest_dir=SHARED) as bot:
        papers = [p async for p in bot.deps.archive.export()]
        assert len(papers) > 500
        readers = {}
        for style in ("full", "compact"):
            for lang in ("en", "zh"):
                user, chat = chat_with(botapi, f"{style}-{lang}", lang=lang)
                await ask(bot, chat, user, "/help")  # Telegram knows the chat from now on
                readers[style, lang] = (user, chat, Chat(chat.id, style=style, lang=lang))
        failures: list[str] = []
        limit = asyncio.Semaphore(16)
        request = HTTPXRequest(connection_pool_size=16)
        async with Bot(botapi.token, base_url=botapi.base_url, request=request) as plain:

            async def send(what: str, job: Awaitable[object]) -> None:
                async with limit:
                    try:
                        await job
                    except TelegramError as exc:
                        failures.append(f"{what}: {exc}")

            jobs = []
            blog = "https://blog.example.org"
            for paper in papers:
                for (style, lang), (_, chat, record) in readers.items():
                    jobs.append(send(f"{paper.arxiv_id} {style} {lang}",
                                     send_card(plain, chat.id, card_for(paper, record, blog))))
                chat = readers["full", "en"][1]
                jobs.append(send(f"{paper.arxiv_id} analysis",
                                 send_analysis(plain, chat.id, paper)))
                jobs.append(send(f"{paper.arxiv_id} figures",
                                 send_figures(plain, chat.id, paper)))
            await asyncio.gather(*jobs)
        assert failures == []

        # Each /paper from a reader of its own: one private chat takes a message a second.
        asked = []
        for (style, lang) in readers:
            for n, paper in enumerate(papers[::25]):
                user, chat = chat_with(botapi, f"{style}-{lang}-{n}", lang=lang)
                await bot.deps.chats.ensure(chat.id, "private", lang=lang)
                await bot.deps.chats.update_settings(chat.id, style=style, lang=lang)
                botapi.send_command(chat, user, f"/paper {paper.arxiv_id}")
                asked.append(chat)
        await bot.settle(60)
        for chat in asked:
            [card] = botapi.sent_to(chat.id)
            assert card.method == "sendMessage"
        assert refused(botapi) == []
