"""/repost: targets, WHERE, confirmation above ten chats, progress and summary."""

from __future__ import annotations

from pathlib import Path

from tests.botapi.server import FakeBotApi, FakeChat
from tests.tg.bot_harness import OPERATOR_ID, BotUnderTest, running_bot


async def subscribers(bot: BotUnderTest, n: int, tag: str = "NeRF") -> list[FakeChat]:
    chats = []
    for i in range(n):
        user = bot.server.user(f"Reader{i}")
        chat = bot.server.private_chat(user)
        bot.server.add_chat(chat)
        await bot.deps.chats.ensure(chat.id, "private", f"Reader{i}")
        await bot.deps.chats.subscribe(chat.id, [tag])
        chats.append(chat)
    return chats


def operator(bot: BotUnderTest) -> tuple[FakeChat, object]:
    op = bot.server.user("Operator", user_id=OPERATOR_ID)
    return bot.server.private_chat(op), op


async def test_repost_a_digest_to_its_subscribers(bot: BotUnderTest) -> None:
    s = bot.server
    [reader] = await subscribers(bot, 1)
    chat, op = operator(bot)
    s.send_command(chat, op, "/repost 2024-02-01/nerf")
    await bot.settle()
    got = s.sent_to(reader.id)
    assert "NeRF" in (got[0].plain_text or "")
    assert "2024-02-01" in (got[0].plain_text or "")
    assert len(got) == 1 + 3  # header, then the digest's three cards
    summary = s.edits[-1].plain_text or ""
    assert "done: sent 4, failed 0" in summary
    # A repost resends what was already delivered.
    s.send_command(chat, op, "/repost 2024-02-01/NeRF")
    await bot.settle()
    assert len(s.sent_to(reader.id)) == 8


async def test_more_than_ten_chats_asks_first(bot: BotUnderTest) -> None:
    s = bot.server
    readers = await subscribers(bot, 11)
    chat, op = operator(bot)
    s.send_command(chat, op, "/repost 2402.00002")
    await bot.settle()
    question = s.sent_to(chat.id)[-1]
    assert "Repost 1 paper to 11 chats?" in (question.plain_text or "")
    assert all(not s.sent_to(r.id) for r in readers)
    ok, _cancel = question.callback_data
    s.press_button(chat, op, question.message_id, ok)
    await bot.settle()
    assert all(len(s.sent_to(r.id)) == 1 for r in readers)  # a bare paper: no header
    assert "done: sent 11" in (s.edits[-1].plain_text or "")
    assert s.message(chat.id, question.message_id).get("reply_markup") is None  # buttons gone


async def test_cancel_sends_nothing(bot: BotUnderTest) -> None:
    s = bot.server
    readers = await subscribers(bot, 12, tag="3DGS")
    chat, op = operator(bot)
    s.send_command(chat, op, "/repost 3DGS 2024-02-01")
    await bot.settle()
    question = s.sent_to(chat.id)[-1]
    s.press_button(chat, op, question.message_id, question.callback_data[1])
    await bot.settle()
    assert s.edits[-1].plain_text == "Repost cancelled."
    assert all(not s.sent_to(r.id) for r in readers)


async def test_a_confirmation_outlives_the_process_that_asked(
    botapi: FakeBotApi, tmp_path: Path,
) -> None:
    """Asked by one process, pressed in another (a restart, or the next instance behind
    a load balancer): the question is in the database, not in a process's memory."""
    async with running_bot(tmp_path, botapi) as first:
        readers = await subscribers(first, 11)
        chat, op = operator(first)
        botapi.send_command(chat, op, "/repost 2402.00002")
        await first.settle()
        question = botapi.sent_to(chat.id)[-1]
        ok, _cancel = question.callback_data
    async with running_bot(tmp_path, botapi, ingest=False) as second:
        # A double tap: the first press sends, the second finds the question answered.
        presses = [botapi.press_button(chat, op, question.message_id, ok) for _ in range(2)]
        await second.settle()
        assert all(len(botapi.sent_to(r.id)) == 1 for r in readers)
        answers = [botapi.callback_answers[p].text or "" for p in presses]
        assert ["expired" in a for a in answers] == [False, True]


async def test_only_the_operator_who_asked_can_confirm(botapi: FakeBotApi,
                                                       tmp_path: Path) -> None:
    second_operator = OPERATOR_ID + 1
    async with running_bot(tmp_path, botapi,
                           admin_ids=frozenset({OPERATOR_ID, second_operator})) as bot:
        readers = await subscribers(bot, 11)
        op = botapi.user("Operator", user_id=OPERATOR_ID)
        other = botapi.user("Other operator", user_id=second_operator)
        room = botapi.add_chat(botapi.group("Operators"))
        botapi.send_command(room, op, "/repost 2402.00002")
        await bot.settle()
        question = botapi.sent_to(room.id)[-1]
        ok, _cancel = question.callback_data
        pressed = botapi.press_button(room, other, question.message_id, ok)
        await bot.settle()
        assert "expired" in (botapi.callback_answers[pressed].text or "")
        assert all(not botapi.sent_to(r.id) for r in readers)
        botapi.press_button(room, op, question.message_id, ok)  # still the asker's
        await bot.settle()
        assert all(len(botapi.sent_to(r.id)) == 1 for r in readers)


async def test_where_one_chat_or_a_channel(bot: BotUnderTest) -> None:
    s = bot.server
    [reader, other] = await subscribers(bot, 2)
    channel = s.channel("Papers", username="paper_channel")
    s.add_chat(channel)
    s.set_bot_status(channel, "administrator", can_post_messages=True)
    await bot.deps.chats.ensure(channel.id, "channel", "Papers")
    chat, op = operator(bot)
    s.send_command(chat, op, f"/repost 2024-02-01 {reader.id}")
    s.send_command(chat, op, "/repost 2402.00003 @paper_channel")
    await bot.settle(timeout=30)  # eleven messages into one private chat, a second apart
    # The day's 3DGS digest (6 papers), then NeRF's (3, one already sent under 3DGS).
    assert len(s.sent_to(reader.id)) == (1 + 6) + (1 + 2)
    assert s.sent_to(other.id) == []
    [card] = s.sent_to(channel.id)
    assert "2402.00003" in str(card.reply_markup)


async def test_refusals_and_nothing_found(bot: BotUnderTest) -> None:
    s = bot.server
    chat, op = operator(bot)
    s.send_command(chat, op, "/repost ../../etc/passwd")
    s.send_command(chat, op, "/repost 1999-01-01")
    s.send_command(chat, op, "/repost 2024-02-01/nerff")
    s.send_command(chat, op, "/repost 2024-02-01 424242")
    s.send_command(chat, op, "/repost")
    await bot.settle()
    path, nothing, unknown, no_chat, usage = (m.plain_text or "" for m in s.sent_to(chat.id))
    assert "looks like a file path" in path
    assert "Nothing in the archive matches 1999-01-01" in nothing
    assert "Did you mean NeRF?" in unknown
    assert "don't know chat 424242" in no_chat
    assert usage.startswith("Usage: /repost TARGET [WHERE]")
    mallory = s.user("Mallory")
    mchat = s.private_chat(mallory)
    s.send_command(mchat, mallory, "/repost 2024-02-01")
    await bot.settle()
    assert "for the bot's operators" in (s.sent_to(mchat.id)[-1].plain_text or "")
