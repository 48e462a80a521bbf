"""Many people at once: updates of different chats in parallel, each chat's in order,
replies ahead of broadcasts, throttling, and failures answered politely, end to end
through python-telegram-bot against the fake Bot API with Telegram's flood limits on.

A slow handler is made slow by the test itself (a command it registers that waits for
an event the test sets), never by sleeping: the assertions are about order, not time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from telegram import Update
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.tg.failures import FailureReporter
from bot.tg.throttle import RATE
from tests.botapi.server import FakeBotApi, FakeChat, FakeUser
from tests.tg.bot_harness import OPERATOR_ID, BotUnderTest, running_bot


@pytest.fixture
async def busy_bot(tmp_path: Path) -> AsyncIterator[BotUnderTest]:
    """The bot against a fake that enforces Telegram's flood limits (30/s overall, 1/s
    into a private chat, 20/min into a group) and answers 429 past them."""
    async with FakeBotApi() as server:
        server.enable_flood_control()
        async with running_bot(tmp_path, server) as bot:
            yield bot
        server.assert_healthy()


def person(server: FakeBotApi, name: str, lang: str = "en") -> tuple[FakeUser, FakeChat]:
    user = server.user(name, language_code=lang)
    return user, server.private_chat(user)


class Gate:
    """A /slow command that holds its chat until the test opens the gate."""

    def __init__(self, bot: BotUnderTest) -> None:
        self.opened = asyncio.Event()
        self.entered = asyncio.Event()

        async def slow(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            self.entered.set()
            await self.opened.wait()
            assert update.effective_message is not None
            await update.effective_message.reply_text("slow done")
            raise ApplicationHandlerStop  # (the fallback for unknown commands must not)

        bot.app.add_handler(CommandHandler("slow", slow), group=-2)


def texts(server: FakeBotApi, chat: FakeChat) -> list[str]:
    return [m.plain_text or "" for m in server.sent_to(chat.id)]


async def test_a_slow_chat_does_not_hold_up_another(busy_bot: BotUnderTest) -> None:
    s = busy_bot.server
    gate = Gate(busy_bot)
    slow_user, slow_chat = person(s, "Slow")
    quick_user, quick_chat = person(s, "Quick")
    s.send_command(slow_chat, slow_user, "/slow")
    await gate.entered.wait()
    s.send_command(quick_chat, quick_user, "/search teapot")
    await s.wait_for_sent(1, chat_id=quick_chat.id)
    assert texts(s, slow_chat) == []  # still held: the other chat was answered first
    gate.opened.set()
    await busy_bot.settle()
    assert texts(s, slow_chat) == ["slow done"]
    assert s.flood_429s == 0


async def test_one_chats_updates_are_handled_in_order(busy_bot: BotUnderTest) -> None:
    s = busy_bot.server
    gate = Gate(busy_bot)
    user, chat = person(s, "Orderly")
    s.send_command(chat, user, "/slow")
    s.send_command(chat, user, "/paper 2405.00061")
    s.send_command(chat, user, "/search teapot")
    await gate.entered.wait()
    other_user, other_chat = person(s, "Other")
    s.send_command(other_chat, other_user, "/help")
    await s.wait_for_sent(1, chat_id=other_chat.id)
    assert texts(s, chat) == []  # /paper and /search wait for /slow, in their chat only
    gate.opened.set()
    await busy_bot.settle()
    slow, card, search = texts(s, chat)
    assert slow == "slow done"
    assert "First Run Paper A" in card
    assert "teapot" in search.lower()
    assert s.flood_429s == 0


async def test_a_hundred_chats_at_once_are_all_answered_without_a_429(
        busy_bot: BotUnderTest) -> None:
    s = busy_bot.server
    commands = ["/start", "/help", "/search gaussian", "/latest", "/paper 2405.00062",
                "/tags", "/settings", "/tag NeRF", "/search 扩散", "/latest nerf"]
    chats = []
    for n in range(100):
        user, chat = person(s, f"P{n}", "zh" if n % 3 == 0 else "en")
        s.send_command(chat, user, commands[n % len(commands)])
        chats.append(chat)
    inline_users = [s.user(f"I{n}") for n in range(20)]
    for n, user in enumerate(inline_users):
        s.inline_query(user, ["gaussian", "", "nerf", "扩散"][n % 4])
    await busy_bot.settle(30)
    for chat in chats:
        assert texts(s, chat), f"chat {chat.id} got no answer"
    assert len(s.inline_answers) == len(inline_users)
    assert s.flood_429s == 0
    assert [c for c in s.errors() if c.method != "setMyCommands"] == []


async def test_presses_on_one_menu_from_two_admins_both_apply(tmp_path: Path) -> None:
    """Two admins of a group tap two topics of the same /subscribe keyboard at once:
    the chat's presses are handled one after the other, so both topics stick and the
    menu ends up showing both, with no edit Telegram would refuse."""
    async with FakeBotApi() as s, running_bot(tmp_path, s) as bot:
        alice, bob = s.user("Alice"), s.user("Bob")
        group = s.group("Readers")
        for admin in (alice, bob):
            s.set_member(group, admin, "administrator")
        s.send_command(group, alice, "/subscribe")
        await bot.settle()
        [menu] = s.sent_to(group.id)
        by_text = {b["text"]: b["callback_data"] for b in menu.buttons}
        s.press_button(group, alice, menu.message_id, by_text["NeRF"])
        s.press_button(group, bob, menu.message_id, by_text["3DGS"])
        await bot.settle()
        record = await bot.deps.chats.get(group.id)
        assert record is not None
        assert set(record.tags) == {"NeRF", "3DGS"}
        shown = s.message(group.id, menu.message_id)["reply_markup"]["inline_keyboard"]
        ticked = {b["text"] for row in shown for b in row if b["text"].startswith("✅")}
        assert ticked == {"✅ NeRF", "✅ 3DGS"}
        assert s.unanswered_callback_queries() == []
        assert [c for c in s.errors() if c.method != "setMyCommands"] == []


async def test_a_flooding_user_is_throttled_while_others_are_answered(
        busy_bot: BotUnderTest) -> None:
    s = busy_bot.server
    flooder, flood_chat = person(s, "Flooder")
    s.send_command(flood_chat, flooder, "/start")
    await busy_bot.settle()
    calm, calm_chat = person(s, "Calm")
    for n in range(RATE + 10):  # typing faster than any person
        s.inline_query(flooder, f"gauss {n}")
    s.send_command(flood_chat, flooder, "/help")  # dropped too, while throttled
    s.send_command(calm_chat, calm, "/search teapot")
    await busy_bot.settle(15)
    answered = [a for a in s.inline_answers.values() if a.user_id == flooder.id]
    # /start counted too; the rest were dropped without a request to Telegram.
    assert len(answered) == RATE - 1
    start, slow_down = texts(s, flood_chat)
    assert "Welcome" in start
    assert slow_down.startswith("🐢 Slow down")
    [search] = texts(s, calm_chat)
    assert "teapot" in search.lower()
    assert s.flood_429s == 0


async def test_operators_are_never_throttled(busy_bot: BotUnderTest) -> None:
    s = busy_bot.server
    op = s.user("Operator", user_id=OPERATOR_ID)
    for n in range(RATE + 5):
        s.inline_query(op, f"q{n}")
    await busy_bot.settle(15)
    assert len(s.inline_answers) == RATE + 5


def _reporter(bot: BotUnderTest) -> FailureReporter:
    handlers = [h for h in bot.app.error_handlers if isinstance(h, FailureReporter)]
    assert len(handlers) == 1
    return handlers[0]


async def test_a_failing_handler_answers_the_user_and_tells_the_operator_once(
        busy_bot: BotUnderTest) -> None:
    s = busy_bot.server
    token = busy_bot.deps.settings.telegram_token.get_secret_value()
    now = [1000.0]
    reporter = _reporter(busy_bot)
    reporter.clock = lambda: now[0]

    async def boom(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise RuntimeError(f"the database is gone (connecting with {token})")

    busy_bot.app.add_handler(CommandHandler("boom", boom), group=-2)
    busy_bot.app.add_handler(CallbackQueryHandler(boom, pattern="^pp:"), group=-2)
    op = s.user("Operator", user_id=OPERATOR_ID)
    op_chat = s.private_chat(op)
    s.send_command(op_chat, op, "/start")
    await busy_bot.settle()
    people = [person(s, f"U{n}", "zh" if n == 0 else "en") for n in range(3)]
    for user, chat in people:
        s.send_command(chat, user, "/boom")
    await busy_bot.settle()
    for n, (_, chat) in enumerate(people):
        [sorry] = texts(s, chat)
        assert sorry.startswith("😕 抱歉" if n == 0 else "😕 Sorry, something went wrong")
    notices = [t for t in texts(s, op_chat) if "paperfeed error" in t]
    assert len(notices) == 1  # three failures, one notice
    assert "RuntimeError" in notices[0]
    assert token not in notices[0]
    assert "<token>" in notices[0]

    # A pressed button whose handler fails still stops spinning, with an apology.
    user, chat = people[1]
    s.send_command(chat, user, "/search teapot")
    await busy_bot.settle()
    listing = s.sent_to(chat.id)[-1]
    query_id = s.press_button(chat, user, listing.message_id, listing.callback_data[0])
    await busy_bot.settle()
    assert s.unanswered_callback_queries() == []
    assert "went wrong" in (s.callback_answers[query_id].text or "")

    now[0] += 600  # ten minutes on: the next one is told, with the count since
    s.send_command(people[2][1], people[2][0], "/boom")
    await busy_bot.settle()
    notices = [t for t in texts(s, op_chat) if "paperfeed error" in t]
    assert len(notices) == 2
    # /boom twice more and the button once were not told; with this one, four.
    assert "4 times since the last notice" in notices[1]
    assert s.flood_429s == 0


async def test_repost_of_a_day_runs_in_the_background_while_search_is_answered(
        busy_bot: BotUnderTest) -> None:
    s = busy_bot.server
    readers = []
    for n in range(3):
        user, chat = person(s, f"Reader{n}")
        s.send_command(chat, user, "/subscribe all")
        readers.append(chat)
    await busy_bot.settle()
    before = {chat.id: len(s.sent_to(chat.id)) for chat in readers}
    op = s.user("Operator", user_id=OPERATOR_ID)
    op_chat = s.private_chat(op)
    searcher, search_chat = person(s, "Searcher")
    s.send_command(op_chat, op, "/repost 2024-05-20")
    await s.wait_for_sent(1, chat_id=op_chat.id)  # the handler answered: "Reposting…"
    s.send_command(search_chat, searcher, "/search teapot")
    await s.wait_for_sent(1, chat_id=search_chat.id)
    # The search was answered while the repost was still sending (each reader gets a
    # header and three cards, a second apart).
    assert all(len(s.sent_to(chat.id)) - before[chat.id] < 4 for chat in readers)
    await busy_bot.settle(30)
    for chat in readers:
        assert len(s.sent_to(chat.id)) - before[chat.id] == 4
    progress = s.sent_to(op_chat.id)[0]
    assert s.message(op_chat.id, progress.message_id)["text"].startswith("✅ Repost of")
    assert s.flood_429s == 0


async def test_replies_go_ahead_of_a_broadcast(busy_bot: BotUnderTest) -> None:
    """A broadcast of 200 messages is draining; a user's command is answered within a
    few of the broadcast's sends, not after them, and the broadcast loses nothing."""
    s = busy_bot.server
    deps = busy_bot.deps
    for n in range(50):
        user, chat = person(s, f"Sub{n}")
        s.send_command(chat, user, "/subscribe all")
    await busy_bot.settle(10)
    subscribed = len(s.sent)
    papers = await deps.archive.papers_on(date(2024, 5, 20))  # a header and 3 cards each
    await deps.delivery.enqueue_repost(papers, None)
    drain = asyncio.ensure_future(deps.delivery.drain())
    await s.wait_for_sent(subscribed + 30, timeout=10)
    user, chat = person(s, "Impatient")
    s.send_command(chat, user, "/help")
    await s.wait_for_sent(1, chat_id=chat.id, timeout=10)
    broadcast_before_reply = len(s.sent) - 1 - subscribed
    report = await drain
    assert report.sent == 200
    # Asked when 30 had gone out: answered within a few more, not after the other 170.
    assert broadcast_before_reply <= 45
    assert len(s.sent) == subscribed + 200 + 1
    assert report.failed == 0
    assert s.flood_429s == 0


async def test_an_inline_page_is_searched_once_for_many_people(busy_bot: BotUnderTest,
                                                               ) -> None:
    s = busy_bot.server
    users = [s.user(f"Typist{n}") for n in range(10)]
    for user in users:
        s.inline_query(user, "gaussian")
    await busy_bot.settle()
    answers = [a for a in s.inline_answers.values() if a.query == "gaussian"]
    assert len(answers) == 10
    assert len({tuple(r["id"] for r in a.results) for a in answers}) == 1
    # A chat's own language and style still shape its cards (the cache is per both).
    zh = s.user("Lin", language_code="zh-hans")
    await busy_bot.deps.chats.ensure(zh.id, "private", lang="zh")
    s.inline_query(zh, "gaussian")
    await busy_bot.settle()
    [answer] = [a for a in s.inline_answers.values() if a.user_id == zh.id]
    assert "总结" in answer.results[0]["input_message_content"]["message_text"]
