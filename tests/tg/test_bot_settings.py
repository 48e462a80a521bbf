"""A chat changes its settings: the /settings menu edited in place, text forms, groups."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.chat_settings import parse_time, resolve_timezone, split_keywords
from bot.domain.models import Chat
from bot.services.scan import scan_once
from bot.tg.handlers.settings import SettingsMenu
from tests.botapi.server import EditRecord, FakeBotApi, FakeChat, FakeUser
from tests.tg.bot_harness import OPERATOR_ID, BotUnderTest
from tests.tg.delivery_support import SynthPaper, add_digest


async def stored(bot: BotUnderTest, chat: FakeChat) -> Chat:
    record = await bot.deps.chats.get(chat.id)
    assert record is not None
    return record


def labels(markup: dict[str, Any] | None) -> list[str]:
    return [b["text"] for row in (markup or {}).get("inline_keyboard", []) for b in row]


def datas(markup: dict[str, Any] | None) -> list[str]:
    return [b["callback_data"] for row in (markup or {}).get("inline_keyboard", [])
            for b in row if "callback_data" in b]


def last_edit(s: FakeBotApi) -> EditRecord:
    assert s.edits, "the menu was never edited"
    return s.edits[-1]


def assert_clean(s: FakeBotApi) -> None:
    """Every tap answered, and Telegram refused nothing (no "message is not modified")."""
    assert s.unanswered_callback_queries() == []
    refused = [(c.method, c.description) for c in s.errors() if c.method != "setMyCommands"]
    assert refused == []  # setMyCommands: the operator never started the bot, as expected


async def open_menu(bot: BotUnderTest, chat: FakeChat, user: FakeUser) -> int:
    bot.server.send_command(chat, user, "/settings")
    await bot.settle()
    return bot.server.sent_to(chat.id)[-1].message_id


async def test_menu_shows_the_current_values(bot: BotUnderTest) -> None:
    s = bot.server
    ann = s.user("Ann")
    chat = s.private_chat(ann)
    await open_menu(bot, chat, ann)
    menu = s.sent_to(chat.id)[-1]
    text = menu.plain_text or ""
    assert "Settings" in text
    assert "Delivery: instant" in text
    assert "Time zone: UTC (bot default)" in text
    assert "Only papers matching: any" in text
    assert "Never papers matching: —" in text
    assert "Card style: full" in text
    assert "Language: English" in text
    assert "✅ ⚡ Instant" in labels(menu.reply_markup)
    assert "✅ English" in labels(menu.reply_markup)
    assert set(menu.callback_data) >= {"st:mode:instant", "st:mode:daily", "st:view:time",
                                       "st:view:tz", "st:view:filters", "st:style:compact",
                                       "st:lang:zh"}
    assert_clean(s)


async def test_daily_then_an_hour_from_the_grid(bot: BotUnderTest) -> None:
    s = bot.server
    ben = s.user("Ben")
    chat = s.private_chat(ben)
    menu_id = await open_menu(bot, chat, ben)

    query = s.press_button(chat, ben, menu_id, "st:mode:daily")
    await bot.settle()
    assert (await stored(bot, chat)).mode == "daily"
    answer = s.callback_answers[query]
    assert answer.text is not None
    assert "once a day at 09:00 (bot default)" in answer.text
    grid = last_edit(s)
    assert grid.message_id == menu_id
    assert "Daily delivery time" in (grid.plain_text or "")
    hours = [d for d in datas(grid.reply_markup) if d.startswith("st:time:")]
    assert hours[:3] == ["st:time:6", "st:time:7", "st:time:8"]
    assert "st:time:23" in hours
    rows = grid.reply_markup["inline_keyboard"] if grid.reply_markup else []
    assert [len(r) for r in rows[:3]] == [6, 6, 6]

    s.press_button(chat, ben, menu_id, "st:time:7")
    await bot.settle()
    record = await stored(bot, chat)
    assert (record.mode, record.daily_time) == ("daily", time(7, 0))
    main = last_edit(s)
    assert "Delivery: daily at 07:00 (UTC)" in (main.plain_text or "")
    assert "✅ 🗓 Daily" in labels(main.reply_markup)
    assert_clean(s)


async def test_timezone_from_the_list_and_no_identical_edits(bot: BotUnderTest) -> None:
    s = bot.server
    cat = s.user("Cat")
    chat = s.private_chat(cat)
    menu_id = await open_menu(bot, chat, cat)
    s.press_button(chat, cat, menu_id, "st:view:tz")
    await bot.settle()
    zones = datas(last_edit(s).reply_markup)
    assert "st:tz:Asia/Tokyo" in zones
    assert "st:tz:Australia/Sydney" in zones
    s.press_button(chat, cat, menu_id, "st:tz:Asia/Tokyo")
    await bot.settle()
    assert (await stored(bot, chat)).timezone == ZoneInfo("Asia/Tokyo")
    assert "Time zone: Asia/Tokyo" in (last_edit(s).plain_text or "")

    # Tapping what is already chosen answers the tap but does not edit the message.
    edits = len(s.edits)
    query = s.press_button(chat, cat, menu_id, "st:mode:instant")
    await bot.settle()
    assert len(s.edits) == edits
    assert s.callback_answers[query].text == "Already so."
    assert_clean(s)


async def test_text_forms_for_time_and_time_zone(bot: BotUnderTest) -> None:
    s = bot.server
    dee = s.user("Dee")
    chat = s.private_chat(dee)
    s.send_command(chat, dee, "/settings tz europe/paris")
    s.send_command(chat, dee, "/settings time 7:30")
    await bot.settle()
    tz_reply, time_reply = s.sent_to(chat.id)
    assert "Time zone: Europe/Paris." in (tz_reply.plain_text or "")
    assert "Delivery: daily at 07:30 (Europe/Paris)" in (time_reply.plain_text or "")
    record = await stored(bot, chat)
    assert (record.timezone, record.mode, record.daily_time) == (ZoneInfo("Europe/Paris"),
                                                                 "daily", time(7, 30))

    s.send_command(chat, dee, "/settings tz Europe/Pari")
    s.send_command(chat, dee, "/settings tz Mars/Olympus_Mons")
    s.send_command(chat, dee, "/settings time 25:00")
    s.send_command(chat, dee, "/settings time soon")
    await bot.settle()
    typo, unknown, late, vague = s.sent_to(chat.id)[-4:]
    assert "I don't know the time zone “Europe/Pari”" in (typo.plain_text or "")
    assert "Did you mean Europe/Paris" in (typo.plain_text or "")
    assert "“Mars/Olympus_Mons”" in (unknown.plain_text or "")
    assert "“25:00” is not a time" in (late.plain_text or "")
    assert "“soon” is not a time" in (vague.plain_text or "")
    assert (await stored(bot, chat)).timezone == ZoneInfo("Europe/Paris")  # unchanged

    s.send_command(chat, dee, "/settings tz tokyo")
    s.send_command(chat, dee, "/settings time default")
    s.send_command(chat, dee, "/settings instant")
    await bot.settle()
    record = await stored(bot, chat)
    assert (record.timezone, record.mode, record.daily_time) == (ZoneInfo("Asia/Tokyo"),
                                                                 "instant", None)
    s.send_command(chat, dee, "/settings tz default")
    s.send_command(chat, dee, "/settings help")
    await bot.settle()
    assert (await stored(bot, chat)).timezone is None
    assert "/settings only word1, word2" in (s.sent_to(chat.id)[-1].plain_text or "")
    assert_clean(s)


async def test_keyword_filters_set_and_cleared(bot: BotUnderTest) -> None:
    s = bot.server
    eli = s.user("Eli")
    chat = s.private_chat(eli)
    menu_id = await open_menu(bot, chat, eli)
    s.press_button(chat, eli, menu_id, "st:view:filters")
    await bot.settle()
    how = last_edit(s)
    assert "/settings only nerf, gaussian splatting" in (how.plain_text or "")
    assert datas(how.reply_markup) == ["st:view:main"]

    s.send_command(chat, eli, "/settings only NeRF, gaussian splatting, nerf")
    s.send_command(chat, eli, "/settings never survey")
    await bot.settle()
    record = await stored(bot, chat)
    assert record.include == ("NeRF", "gaussian splatting")
    assert record.exclude == ("survey",)
    filters_menu = s.sent_to(chat.id)[-1]
    assert "Only papers matching: NeRF, gaussian splatting" in (filters_menu.plain_text or "")
    assert "Never papers matching: survey" in (filters_menu.plain_text or "")

    s.press_button(chat, eli, filters_menu.message_id, "st:only:off")
    await bot.settle()
    assert (await stored(bot, chat)).include == ()
    assert datas(last_edit(s).reply_markup) == ["st:never:off", "st:view:main"]
    s.send_command(chat, eli, "/settings never off")
    await bot.settle()
    assert (await stored(bot, chat)).exclude == ()
    assert "filter is off" in (s.sent_to(chat.id)[-1].plain_text or "")
    assert_clean(s)


async def test_style_and_language_switch_the_menu_itself(bot: BotUnderTest) -> None:
    s = bot.server
    fox = s.user("Fox")
    chat = s.private_chat(fox)
    menu_id = await open_menu(bot, chat, fox)
    s.press_button(chat, fox, menu_id, "st:style:compact")
    await bot.settle()
    assert (await stored(bot, chat)).style == "compact"
    assert "Card style: compact" in (last_edit(s).plain_text or "")

    query = s.press_button(chat, fox, menu_id, "st:lang:zh")
    await bot.settle()
    assert (await stored(bot, chat)).lang == "zh"
    assert s.callback_answers[query].text == "✅ 界面语言：中文。"
    menu = last_edit(s)
    assert "设置" in (menu.plain_text or "")
    assert "推送方式：即时" in (menu.plain_text or "")
    assert "卡片样式：简洁" in (menu.plain_text or "")
    assert "✅ 中文" in labels(menu.reply_markup)
    assert "🔎 关键词过滤" in labels(menu.reply_markup)
    s.send_command(chat, fox, "/settings lang en")
    await bot.settle()
    assert (await stored(bot, chat)).lang == "en"
    assert "Language: English" in (s.sent_to(chat.id)[-1].plain_text or "")
    assert_clean(s)


async def test_in_groups_only_admins_change_settings(bot: BotUnderTest) -> None:
    s = bot.server
    admin, member = s.user("Admin"), s.user("Member")
    group = s.supergroup("Reading group")
    s.set_member(group, admin, "administrator")
    s.set_member(group, member, "member")
    menu_id = await open_menu(bot, group, member)  # anyone may look
    assert "Delivery: instant" in (s.sent_to(group.id)[-1].plain_text or "")

    query = s.press_button(group, member, menu_id, "st:mode:daily")
    s.send_command(group, member, "/settings never survey")
    await bot.settle()
    refusal = s.callback_answers[query]
    assert refusal.show_alert
    assert "Only the admins" in (refusal.text or "")
    assert "Only the admins" in (s.sent_to(group.id)[-1].plain_text or "")
    record = await stored(bot, group)
    assert (record.mode, record.exclude) == ("instant", ())
    assert s.edits == []

    s.press_button(group, admin, menu_id, "st:mode:daily")
    s.send_command(group, admin, "/settings never survey")
    await bot.settle()
    record = await stored(bot, group)
    assert (record.mode, record.exclude) == ("daily", ("survey",))
    assert "Daily delivery time" in (last_edit(s).plain_text or "")
    assert_clean(s)


async def test_a_channel_reader_cannot_press_the_menu(bot: BotUnderTest) -> None:
    """Any reader of a channel can press its buttons, so the presser must be its admin.

    (CommandHandler ignores channel posts, so the menu is posted here directly.)
    """
    s = bot.server
    channel = s.channel("Paper channel", username="papers")
    s.add_chat(channel)
    record = await bot.deps.chats.ensure(channel.id, "channel", "Paper channel")
    view = SettingsMenu(bot.deps).render(record)
    sent = await bot.app.bot.send_message(channel.id, view.html, parse_mode="HTML",
                                          reply_markup=view.keyboard)
    menu = s.sent_to(channel.id)[-1]
    assert menu.message_id == sent.message_id
    reader = s.user("Reader")
    query = s.press_button(channel, reader, menu.message_id, "st:style:compact")
    await bot.settle()
    assert s.callback_answers[query].show_alert
    assert (await stored(bot, channel)).style == "full"
    owner = s.user("Owner")
    s.set_member(channel, owner, "creator")
    s.press_button(channel, owner, menu.message_id, "st:style:compact")
    await bot.settle()
    assert (await stored(bot, channel)).style == "compact"
    assert_clean(s)


async def test_an_operator_changes_a_channels_settings_from_a_private_chat(
    bot: BotUnderTest,
) -> None:
    """Commands posted in a channel never reach the bot as commands: an operator names the
    channel instead, by @username or, for a private channel, by its id."""
    s = bot.server
    public = s.channel("Paper channel", username="papers")
    private = s.channel("Private papers")
    for channel in (public, private):
        s.add_chat(channel)
    op = s.user("Operator", user_id=OPERATOR_ID)
    op_chat = s.private_chat(op)
    s.send_command(op_chat, op, "/subscribe @papers 3DGS")
    s.send_command(op_chat, op, f"/subscribe {private.id}")
    await bot.settle()

    s.send_command(op_chat, op, "/settings @papers daily 08:00")
    await bot.settle()
    reply = s.sent_to(op_chat.id)[-1]
    assert (await stored(bot, public)).mode == "daily"
    assert (await stored(bot, public)).daily_time == time(8, 0)
    text = reply.plain_text or ""
    assert text.startswith("📢 @papers")
    assert "Delivery: daily at 08:00" in text
    assert "/settings @papers daily 08:00" in text  # how to change it, not "tap"
    assert reply.reply_markup is None  # buttons here would change the operator's chat
    assert (await stored(bot, op_chat)).mode == "instant"

    s.send_command(op_chat, op, "/settings @papers only nerf, gaussian splatting")
    s.send_command(op_chat, op, f"/settings {private.id} style compact")
    await bot.settle()
    assert (await stored(bot, public)).include == ("nerf", "gaussian splatting")
    assert (await stored(bot, private)).style == "compact"

    s.send_command(op_chat, op, "/settings @papers")
    await bot.settle()
    assert "Only papers matching: nerf, gaussian splatting" in (
        s.sent_to(op_chat.id)[-1].plain_text or "")
    s.send_command(op_chat, op, "/settings @papers time 25:00")
    await bot.settle()
    assert "is not a time" in (s.sent_to(op_chat.id)[-1].plain_text or "")
    assert (await stored(bot, public)).daily_time == time(8, 0)
    assert_clean(s)


async def test_only_operators_change_a_channel_and_only_a_subscribed_one(
    bot: BotUnderTest,
) -> None:
    s = bot.server
    channel = s.channel("Paper channel", username="papers")
    s.add_chat(channel)
    op = s.user("Operator", user_id=OPERATOR_ID)
    op_chat = s.private_chat(op)
    stranger = s.user("Stranger")
    stranger_chat = s.private_chat(stranger)
    s.send_command(op_chat, op, "/settings @papers daily")  # known to Telegram, not to us
    s.send_command(op_chat, op, "/settings @nosuchchannel daily")
    await bot.settle()
    replies = [m.plain_text or "" for m in s.sent_to(op_chat.id)]
    assert replies == [
        "@papers receives nothing from me yet: subscribe it first with /subscribe @papers.",
        "@nosuchchannel receives nothing from me yet: subscribe it first with "
        "/subscribe @nosuchchannel.",
    ]
    s.send_command(op_chat, op, "/subscribe @papers")
    await bot.settle()
    s.send_command(stranger_chat, stranger, "/settings @papers daily")
    await bot.settle()
    assert s.sent_to(stranger_chat.id)[-1].plain_text == (
        "Only an admin of @papers (or the bot's operator) can change its settings.")
    assert (await stored(bot, channel)).mode == "instant"


def test_parsers() -> None:
    assert parse_time("7") == "07:00"
    assert parse_time("07:05") == "07:05"
    assert parse_time("23：59") == "23:59"
    assert parse_time("24:00") is None
    assert parse_time("7:5") is None
    assert resolve_timezone("utc") == "UTC"
    assert resolve_timezone("new york") == "America/New_York"
    assert resolve_timezone("../etc/passwd") is None
    assert split_keywords('"gaussian splatting" nerf') == ["gaussian splatting", "nerf"]
    assert split_keywords("扩散模型，NeRF、nerf") == ["扩散模型", "NeRF"]


async def test_unsubscribing_drops_what_was_queued_for_later(bot: BotUnderTest) -> None:
    """A daily chat unsubscribes before its time: the papers it queued are cancelled at
    once, and nothing reaches it at its daily time."""
    s = bot.server
    user = s.user("Erin")
    chat = s.private_chat(user)
    s.send_command(chat, user, "/subscribe NeRF")
    s.send_command(chat, user, "/settings daily 09:00")
    await bot.settle()
    add_digest(bot.digest_dir, "NeRF", date(2024, 6, 20),
               [SynthPaper("2406.40002", "Queued Paper")])
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    assert len(await bot.deps.outbox.for_chat(chat.id, state="pending")) == 2
    s.send_command(chat, user, "/unsubscribe NeRF")
    await bot.settle()
    assert await bot.deps.outbox.for_chat(chat.id, state="pending") == []
    assert_clean(s)


async def test_queued_papers_follow_a_switch_to_instant(bot: BotUnderTest) -> None:
    """Papers waiting for a daily delivery go at once when the chat switches to instant
    (and wait again when it switches back), whether by text or by button."""
    s = bot.server
    user = s.user("Dana")
    chat = s.private_chat(user)
    s.send_command(chat, user, "/subscribe NeRF")
    s.send_command(chat, user, "/settings daily 09:00")
    await bot.settle()
    papers = [SynthPaper("2406.40001", "Waiting Paper")]
    add_digest(bot.digest_dir, "NeRF", date(2024, 6, 20), papers)
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    now = datetime.now(UTC)
    assert all(r.due_at > now for r in await bot.deps.outbox.for_chat(chat.id))
    s.send_command(chat, user, "/settings instant")
    await bot.settle()
    rows = await bot.deps.outbox.for_chat(chat.id)
    assert len(rows) == 2
    assert all(r.due_at <= datetime.now(UTC) for r in rows)
    s.send_command(chat, user, "/settings daily 09:00")
    await bot.settle()
    assert all(r.due_at > datetime.now(UTC) for r in await bot.deps.outbox.for_chat(chat.id))
    assert_clean(s)
