"""Being interrupted less: silent delivery, pause and resume, the daily digest list, and
channel admins who manage their own channel from a private chat. End to end: commands
and buttons through the fake Bot API server, papers through a real scan and drain."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.domain.models import Chat
from bot.services.planning import HELD, LIST_BACKLOG_OVER
from bot.services.scan import scan_once
from tests.botapi.server import FakeChat, FakeUser, SentMessage
from tests.tg.bot_harness import BotUnderTest
from tests.tg.delivery_support import SynthPaper, add_digest

DAY = date(2024, 7, 1)


def papers(prefix: str, count: int, start: int = 1) -> list[SynthPaper]:
    return [SynthPaper(f"2407.{prefix}{n:03d}", f"{prefix} paper number {n}",
                       summary=f"第 {n} 篇的一句话总结。") for n in range(start, start + count)]


def buttons(message: SentMessage) -> list[dict[str, Any]]:
    return [b for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]


async def deliver(bot: BotUnderTest) -> None:
    """A scan finds what landed; the drain sends what is due."""
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    await bot.deps.delivery.drain()
    await bot.settle()


async def daily_time_comes(bot: BotUnderTest, chat: FakeChat) -> None:
    """The chat's daily time has come: what waited for it is due now."""
    await bot.deps.outbox.reschedule_chat(chat.id, datetime.now(UTC))
    await bot.deps.delivery.drain()
    await bot.settle()


def await_chat(bot: BotUnderTest, chat: FakeChat) -> Chat:
    """The chat as the planner sees it before it has talked to the bot: the defaults."""
    return Chat(chat.id)


async def command(bot: BotUnderTest, chat: FakeChat, user: FakeUser, text: str) -> str:
    bot.server.send_command(chat, user, text)
    await bot.settle()
    return bot.server.sent_to(chat.id)[-1].plain_text or ""


def assert_clean(bot: BotUnderTest) -> None:
    assert bot.server.unanswered_callback_queries() == []
    assert [(c.method, c.description) for c in bot.server.errors()
            if c.method != "setMyCommands"] == []


# --- silent --------------------------------------------------------------------------


async def test_a_silent_chat_gets_its_papers_without_a_sound(bot: BotUnderTest) -> None:
    s = bot.server
    quiet_user, loud_user = s.user("Quiet"), s.user("Loud")
    quiet, loud = s.private_chat(quiet_user), s.private_chat(loud_user)
    for chat, user in ((quiet, quiet_user), (loud, loud_user)):
        await command(bot, chat, user, "/subscribe all")
    reply = await command(bot, quiet, quiet_user, "/settings silent")
    assert reply.startswith("🔕 Deliveries now arrive silently.")
    assert "Notifications: silent" in reply
    before = {c.id: len(s.sent_to(c.id)) for c in (quiet, loud)}
    add_digest(bot.digest_dir, "Quiet Topic", DAY, papers("1", 2))
    await deliver(bot)
    got_quiet = s.sent_to(quiet.id)[before[quiet.id]:]
    got_loud = s.sent_to(loud.id)[before[loud.id]:]
    assert len(got_quiet) == len(got_loud) == 3  # the header and two cards
    assert all(m.disable_notification for m in got_quiet)
    assert not any(m.disable_notification for m in got_loud)
    reply = await command(bot, quiet, quiet_user, "/settings silent off")
    assert reply.startswith("🔔 Deliveries now arrive with a notification sound.")
    assert_clean(bot)


async def test_the_sound_switch_is_a_button_too_in_chinese(bot: BotUnderTest) -> None:
    s = bot.server
    user = s.user("静", language_code="zh-hans")
    chat = s.private_chat(user)
    s.send_command(chat, user, "/settings")
    await bot.settle()
    menu = s.sent_to(chat.id)[-1]
    assert "通知：有提示音" in (menu.plain_text or "")
    s.press_button(chat, user, menu.message_id, "st:silent:on")
    await bot.settle()
    assert "通知：<b>静音</b>" in (s.edits[-1].text or "")
    record = await bot.deps.chats.get(chat.id)
    assert record is not None
    assert record.silent
    assert_clean(bot)


# --- pause and resume ------------------------------------------------------------------


async def test_papers_that_arrive_during_a_pause_wait_and_come_on_resume(
    bot: BotUnderTest,
) -> None:
    s = bot.server
    user = s.user("Pausing")
    chat = s.private_chat(user)
    await command(bot, chat, user, "/subscribe all")
    reply = await command(bot, chat, user, "/settings pause")
    assert reply.startswith("⏸ Paused. New papers are kept until you resume")
    assert "⏸ Paused: new papers are kept" in reply
    before = len(s.sent_to(chat.id))
    add_digest(bot.digest_dir, "Paused Topic", DAY, papers("2", 3))
    await deliver(bot)
    assert len(s.sent_to(chat.id)) == before  # nothing while paused
    pending = await bot.deps.outbox.for_chat(chat.id, state="pending")
    assert len(pending) == 4
    assert all(r.due_at == HELD for r in pending)
    # An operator's repost waits too: a pause means nothing arrives.
    await bot.deps.delivery.enqueue_repost(
        [p for p in [await bot.deps.archive.get_paper("2407.2001")] if p], [chat.id])
    await bot.deps.delivery.drain()
    await bot.settle()
    assert len(s.sent_to(chat.id)) == before
    reply = await command(bot, chat, user, "/settings resume")
    assert reply.startswith("▶️ Resumed: 4 waiting papers are on their way.")  # 3 + repost
    await bot.deps.delivery.drain()
    await bot.settle()
    got = [m.plain_text or "" for m in s.sent_to(chat.id)[before + 1:]]
    assert len(got) == 5  # header, three cards, the repost
    assert "Paused Topic" in got[0]
    assert "3 new papers" in got[0]
    assert [t.split("\n")[0] for t in got[1:4]] == [f"2 paper number {n}" for n in (1, 2, 3)]
    assert await bot.deps.outbox.for_chat(chat.id, state="pending") == []
    assert (await command(bot, chat, user, "/settings resume")).startswith("Already so.")
    assert_clean(bot)


async def test_a_long_backlog_is_summarised_as_lists_on_resume(bot: BotUnderTest) -> None:
    s = bot.server
    user = s.user("Away")
    chat = s.private_chat(user)
    await command(bot, chat, user, "/subscribe all")
    s.send_command(chat, user, "/settings")
    await bot.settle()
    menu = s.sent_to(chat.id)[-1]
    s.press_button(chat, user, menu.message_id, "st:pause:on")
    await bot.settle()
    assert "⏸ <b>Paused</b>" in (s.edits[-1].text or "")
    first = LIST_BACKLOG_OVER - 3
    add_digest(bot.digest_dir, "Backlog A", DAY, papers("3", first))
    add_digest(bot.digest_dir, "Backlog B", DAY, papers("4", 5))
    await deliver(bot)
    before = len(s.sent_to(chat.id))
    query = s.press_button(chat, user, menu.message_id, "st:pause:off")
    await bot.settle()
    assert (s.callback_answers[query].text or "").startswith(
        f"▶️ Resumed: {first + 5} papers waited, so they come as lists")
    await bot.deps.delivery.drain()
    await bot.settle()
    lists = s.sent_to(chat.id)[before:]
    assert len(lists) == 2  # one message per digest instead of 14 cards and 2 headers
    assert "Backlog A" in (lists[0].plain_text or "")
    assert f"{first} new papers" in (lists[0].plain_text or "")
    assert [b["callback_data"] for b in buttons(lists[0])] == [
        f"pp:2407.3{n:03d}" for n in range(1, first + 1)]
    assert len(buttons(lists[1])) == 5
    rows = await bot.deps.outbox.for_chat(chat.id)
    assert {r.state for r in rows} == {"sent"}
    assert {r.message_id for r in rows} == {m.message_id for m in lists}
    assert_clean(bot)


# --- the daily digest ------------------------------------------------------------------


async def test_a_digest_chat_gets_one_list_per_topic_and_day(bot: BotUnderTest) -> None:
    s = bot.server
    user = s.user("Digest Reader")
    chat = s.private_chat(user)
    await command(bot, chat, user, "/subscribe all")
    reply = await command(bot, chat, user, "/settings digest 08:00")
    assert reply.startswith("✅ Papers now arrive once a day at 08:00")
    assert "one list message per topic" in reply
    add_digest(bot.digest_dir, "Digest A", DAY, papers("5", 12))
    add_digest(bot.digest_dir, "Digest B", DAY, papers("6", 2))
    add_digest(bot.digest_dir, "Digest A", date(2024, 7, 2), papers("7", 1))
    before = len(s.sent_to(chat.id))
    await deliver(bot)
    assert len(s.sent_to(chat.id)) == before  # not before its time
    await daily_time_comes(bot, chat)
    got = s.sent_to(chat.id)[before:]
    texts = [m.plain_text or "" for m in got]
    # Digest A of the 1st takes two messages (ten lines each at most), then B, then A of
    # the 2nd: one message per topic and day, in the order the cards would have come.
    assert len(got) == 4
    assert texts[0].startswith("📚 Digest A · 2024-07-01 · 12 new papers (1/2)")
    assert texts[1].startswith("📚 Digest A · 2024-07-01 · 12 new papers (2/2)")
    assert texts[2].startswith("📚 Digest B · 2024-07-01 · 2 new papers")
    assert texts[3].startswith("📚 Digest A · 2024-07-02 · 1 new paper")
    assert "1. 5 paper number 1\n第 1 篇的一句话总结。" in texts[0]
    assert "11. 5 paper number 11" in texts[1]
    assert [len(buttons(m)) for m in got] == [10, 2, 2, 1]
    assert not any(m.disable_notification for m in got)
    # A button opens the full card in the chat.
    s.press_button(chat, user, got[2].message_id, "pp:2407.6002")
    await bot.settle()
    card = s.sent_to(chat.id)[-1]
    assert (card.plain_text or "").startswith("6 paper number 2")
    assert await bot.deps.outbox.for_chat(chat.id, state="pending") == []
    assert_clean(bot)


async def test_a_chinese_group_gets_its_digest_in_chinese(bot: BotUnderTest) -> None:
    s = bot.server
    admin = s.user("管理员", language_code="zh")
    group = s.add_chat(s.group("论文小组"))
    s.set_member(group, admin, "administrator")
    await command(bot, group, admin, "/subscribe all")
    reply = await command(bot, group, admin, "/settings digest")
    assert reply.startswith("✅ 已改为每天")
    add_digest(bot.digest_dir, "群组主题", DAY, papers("8", 3))
    before = len(s.sent_to(group.id))
    await deliver(bot)
    await daily_time_comes(bot, group)
    [listing] = s.sent_to(group.id)[before:]
    assert (listing.plain_text or "").startswith("📚 群组主题 · 2024-07-01 · 3 篇新论文")
    member = s.user("成员", language_code="zh")
    s.press_button(group, member, listing.message_id, "pp:2407.8003")
    await bot.settle()
    assert (s.sent_to(group.id)[-1].plain_text or "").startswith("8 paper number 3")
    assert_clean(bot)


async def test_switching_back_to_cards_before_the_time_sends_cards(bot: BotUnderTest) -> None:
    """The list is chosen when the papers go out, so a chat that leaves the digest mode
    before its time gets cards."""
    s = bot.server
    user = s.user("Changes Mind")
    chat = s.private_chat(user)
    await command(bot, chat, user, "/subscribe all")
    await command(bot, chat, user, "/settings digest 08:00")
    add_digest(bot.digest_dir, "Mind Topic", DAY, papers("9", 2))
    await deliver(bot)
    await command(bot, chat, user, "/settings daily")
    before = len(s.sent_to(chat.id))
    await daily_time_comes(bot, chat)
    got = s.sent_to(chat.id)[before:]
    assert len(got) == 3
    assert "Mind Topic" in (got[0].plain_text or "")
    assert (got[1].plain_text or "").startswith("9 paper number 1")
    assert_clean(bot)


# --- channels --------------------------------------------------------------------------


async def test_a_channel_admin_manages_their_channel_from_a_private_chat(
    bot: BotUnderTest,
) -> None:
    s = bot.server
    channel = s.add_chat(s.channel("Admin's channel", username="adminpapers"))
    admin = s.user("Channel Admin")
    s.set_member(channel, admin, "administrator")
    private = s.private_chat(admin)
    add_digest(bot.digest_dir, "Digest C", DAY, papers("0", 1))
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    reply = await command(bot, private, admin, "/subscribe @adminpapers Digest C")
    assert reply == "✅ @adminpapers now receives Digest C."
    reply = await command(bot, private, admin, "/settings @adminpapers digest 07:00")
    assert "Delivery: daily digest at 07:00" in reply
    reply = await command(bot, private, admin, "/settings @adminpapers silent")
    record = await bot.deps.chats.get(channel.id)
    assert record is not None
    assert (record.mode, record.silent, record.tags) == ("digest", True, ("Digest C",))
    add_digest(bot.digest_dir, "Digest C", date(2024, 7, 3), papers("0", 2, start=2))
    before = len(s.sent_to(channel.id))
    await deliver(bot)
    await daily_time_comes(bot, channel)
    [listing] = s.sent_to(channel.id)[before:]
    assert listing.disable_notification
    assert (listing.plain_text or "").startswith("📚 Digest C · 2024-07-03 · 2 new papers")
    # A reader's tap is answered privately: never by posting into the channel.
    reader = s.user("Channel Reader")
    query = s.press_button(channel, reader, listing.message_id, "pp:2407.0003")
    await bot.settle()
    assert s.callback_answers[query].show_alert
    assert "open a chat with @" in (s.callback_answers[query].text or "")
    reader_chat = s.private_chat(reader)
    await command(bot, reader_chat, reader, "/start")
    query = s.press_button(channel, reader, listing.message_id, "pp:2407.0003")
    await bot.settle()
    assert s.callback_answers[query].text == "Sent to you in our private chat."
    assert (s.sent_to(reader_chat.id)[-1].plain_text or "").startswith("0 paper number 3")
    assert s.sent_to(channel.id)[-1].message_id == listing.message_id
    # Rights are checked with Telegram each time: a former admin is refused.
    s.set_member(channel, admin, "member")
    reply = await command(bot, private, admin, "/unsubscribe @adminpapers")
    assert reply == ("Only an admin of @adminpapers (or the bot's operator) can change what "
                     "it receives.")
    record = await bot.deps.chats.get(channel.id)
    assert record is not None
    assert record.tags == ("Digest C",)
    assert_clean(bot)


# --- the weekly roundup ----------------------------------------------------------------


async def test_a_weekly_chat_gets_one_roundup_on_monday_with_the_chart(
    bot: BotUnderTest,
) -> None:
    s = bot.server
    user, other = s.user("Weekly", language_code="en"), s.user("每周", language_code="zh")
    chat, other_chat = s.private_chat(user), s.private_chat(other)
    monday, _ = bot.deps.delivery.roundup_time(await_chat(bot, chat), datetime.now(UTC))
    add_digest(bot.digest_dir, "Roundup Topic", monday - timedelta(days=3), papers("11", 2))
    add_digest(bot.digest_dir, "Quiet Week Topic", monday - timedelta(days=30),
               papers("12", 1))
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    for who, where in ((user, chat), (other, other_chat)):
        await command(bot, where, who, "/subscribe Roundup Topic, Quiet Week Topic")
        await command(bot, where, who, "/settings daily 00:00")  # Monday 00:00 has passed
    reply = await command(bot, chat, user, "/settings weekly on")
    assert reply.startswith("📈 Every Monday at 00:00 (UTC) you get the week's papers")
    s.send_command(other_chat, other, "/settings")
    await bot.settle()
    menu = s.sent_to(other_chat.id)[-1]
    s.press_button(other_chat, other, menu.message_id, "st:weekly:on")
    await bot.settle()
    assert "每周回顾：<b>开启</b>" in (s.edits[-1].text or "")
    # Switched on this week: the first roundup is next Monday's, not one at once.
    assert await bot.deps.delivery.plan_roundups() == 0
    # A week later (as far as the chats' records say), Monday's time has come:
    for where in (chat, other_chat):
        await bot.deps.chats.roundups_from(where.id, monday - timedelta(days=7))
    assert await bot.deps.delivery.plan_roundups() == 2
    assert await bot.deps.delivery.plan_roundups() == 0  # once a week, however often asked
    await bot.deps.delivery.drain()
    await bot.settle()
    english, chinese = s.sent_to(chat.id)[-1], s.sent_to(other_chat.id)[-1]
    assert (english.method, chinese.method) == ("sendPhoto", "sendPhoto")
    start = (monday - timedelta(days=7)).isoformat()
    end = (monday - timedelta(days=1)).isoformat()
    assert (english.plain_text or "").startswith(
        f"📈 Your week · {start} – {end}\nRoundup Topic: 2\nQuiet Week Topic: 0")
    assert (chinese.plain_text or "").startswith(f"📈 本周回顾 · {start} – {end}\nRoundup Topic：2")
    assert await bot.deps.outbox.for_chat(chat.id, state="pending") == []
    assert_clean(bot)


async def test_a_paused_chat_gets_no_roundup(bot: BotUnderTest) -> None:
    s = bot.server
    user = s.user("Paused Weekly")
    chat = s.private_chat(user)
    await command(bot, chat, user, "/subscribe all")
    await command(bot, chat, user, "/settings daily 00:00")
    await command(bot, chat, user, "/settings weekly")
    await command(bot, chat, user, "/settings pause")
    monday, _ = bot.deps.delivery.roundup_time(await_chat(bot, chat), datetime.now(UTC))
    await bot.deps.chats.roundups_from(chat.id, monday - timedelta(days=7))
    assert await bot.deps.delivery.plan_roundups() == 0
    await command(bot, chat, user, "/settings resume")
    assert await bot.deps.delivery.plan_roundups() == 1
    assert_clean(bot)
