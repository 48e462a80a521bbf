"""A new user meets the bot: /start, deep links, /help, /subscribe, /tags, fallbacks."""

from __future__ import annotations

import base64

from tests.tg.bot_harness import OPERATOR_ID, BotUnderTest


async def test_start_welcomes_and_offers_subscription_buttons(bot: BotUnderTest) -> None:
    s = bot.server
    alice = s.user("Alice")
    chat = s.private_chat(alice)
    s.send_command(chat, alice, "/start")
    [reply] = await s.wait_for_sent(1, chat_id=chat.id)
    assert "Welcome to paperfeed" in reply.plain_text
    assert "24 papers" in reply.plain_text
    assert reply.callback_data == ["sb:*", "sb:menu"]
    s.press_button(chat, alice, reply.message_id, "sb:*")
    await bot.settle()
    stored = await bot.deps.chats.get(chat.id)
    assert stored is not None
    assert stored.all_topics


async def test_deep_link_subscribes_to_a_topic(bot: BotUnderTest) -> None:
    s = bot.server
    bob = s.user("Bob", language_code="zh-hans")
    chat = s.private_chat(bob)
    s.send_command(chat, bob, "/start sub-talkingheadgeneration")
    cjk = base64.urlsafe_b64encode("元宇宙/虚拟人".encode()).decode().rstrip("=")
    s.send_command(chat, bob, f"/start sub-{cjk}")
    await bot.settle()
    stored = await bot.deps.chats.get(chat.id)
    assert stored is not None
    assert stored.tags == ("Talking Head Generation", "元宇宙/虚拟人")
    assert stored.lang == "zh"
    assert "已订阅" in s.sent_to(chat.id)[0].plain_text


async def test_subscribe_by_name_unknown_tag_and_toggles(bot: BotUnderTest) -> None:
    s = bot.server
    carol = s.user("Carol")
    chat = s.private_chat(carol)
    s.send_command(chat, carol, "/subscribe nerf, Talking Head Generation")
    s.send_command(chat, carol, "/subscribe nerff")
    await bot.settle()
    ok, unknown = s.sent_to(chat.id)
    assert "Subscribed to NeRF, Talking Head Generation" in ok.plain_text
    assert "Did you mean NeRF?" in unknown.plain_text
    assert "Known tags: 3DGS, Diffusion Models" in unknown.plain_text

    s.send_command(chat, carol, "/subscribe")
    await bot.settle()
    menu = s.sent_to(chat.id)[-1]
    labels = [b["text"] for b in menu.buttons]
    assert "✅ NeRF" in labels
    assert "3DGS" in labels
    three_dgs = menu.callback_data[labels.index("3DGS")]
    s.press_button(chat, carol, menu.message_id, three_dgs)
    await bot.settle()
    stored = await bot.deps.chats.get(chat.id)
    assert stored is not None
    assert stored.tags == ("3DGS", "NeRF", "Talking Head Generation")
    edited = s.edits[-1]
    assert "✅ 3DGS" in [b["text"] for row in edited.reply_markup["inline_keyboard"]
                        for b in row]


async def test_tags_lists_counts_and_what_is_followed(bot: BotUnderTest) -> None:
    s = bot.server
    dan = s.user("Dan")
    chat = s.private_chat(dan)
    s.send_command(chat, dan, "/subscribe NeRF")
    s.send_command(chat, dan, "/tags")
    await bot.settle()
    listing = s.sent_to(chat.id)[-1].plain_text
    assert "✅ NeRF" in listing
    assert "▫️ 3DGS" in listing
    assert "元宇宙/虚拟人" in listing


async def test_unsubscribe_all_and_everything_but(bot: BotUnderTest) -> None:
    s = bot.server
    eve = s.user("Eve")
    chat = s.private_chat(eve)
    s.send_command(chat, eve, "/subscribe all")
    s.send_command(chat, eve, "/unsubscribe NeRF")
    await bot.settle()
    stored = await bot.deps.chats.get(chat.id)
    assert stored is not None
    assert not stored.all_topics
    assert "NeRF" not in stored.tags
    assert "3DGS" in stored.tags
    s.send_command(chat, eve, "/unsubscribe all")
    await bot.settle()
    stored = await bot.deps.chats.get(chat.id)
    assert stored is not None
    assert not stored.subscribed


async def test_help_unknown_command_and_free_text(bot: BotUnderTest) -> None:
    s = bot.server
    fay = s.user("Fay")
    chat = s.private_chat(fay)
    s.send_command(chat, fay, "/help")
    s.send_command(chat, fay, "/frobnicate")
    s.send_text(chat, fay, "hello?")
    await bot.settle()
    help_text, unknown, searched = s.sent_to(chat.id)
    assert "/subscribe" in help_text.plain_text
    assert "/repost" not in help_text.plain_text
    assert "don't know that command" in unknown.plain_text
    assert "No papers match “hello?”" in searched.plain_text  # plain text is a search
    op = s.user("Operator", user_id=OPERATOR_ID)
    op_chat = s.private_chat(op)
    s.send_command(op_chat, op, "/help")
    await bot.settle()
    assert "/repost" in s.sent_to(op_chat.id)[-1].plain_text


async def test_group_subscription_needs_a_group_admin(bot: BotUnderTest) -> None:
    s = bot.server
    admin, member = s.user("Admin"), s.user("Member")
    group = s.supergroup("Reading group", forum=True)
    topic = s.add_topic(group, "Papers")
    s.set_member(group, admin, "administrator")
    s.set_member(group, member, "member")
    s.send_command(group, member, "/subscribe NeRF")
    await bot.settle()
    assert "Only the admins" in s.sent_to(group.id)[-1].plain_text
    s.send_text(group, admin, "/subscribe NeRF", message_thread_id=topic)
    await bot.settle()
    stored = await bot.deps.chats.get(group.id)
    assert stored is not None
    assert stored.tags == ("NeRF",)
    assert stored.thread_id == topic
    assert s.sent_to(group.id)[-1].message_thread_id == topic


async def test_operator_subscribes_a_channel(bot: BotUnderTest) -> None:
    s = bot.server
    channel = s.channel("Paper channel", username="papers")
    s.add_chat(channel)
    s.set_bot_status(channel, "administrator", can_post_messages=True)
    op = s.user("Operator", user_id=OPERATOR_ID)
    op_chat = s.private_chat(op)
    stranger = s.user("Stranger")
    stranger_chat = s.private_chat(stranger)
    s.send_command(stranger_chat, stranger, "/subscribe @papers")
    s.send_command(op_chat, op, "/subscribe @papers 3DGS")
    await bot.settle()
    assert s.sent_to(stranger_chat.id)[-1].plain_text == (
        "Only an admin of @papers (or the bot's operator) can change what it receives.")
    assert "@papers now receives 3DGS" in s.sent_to(op_chat.id)[-1].plain_text
    stored = await bot.deps.chats.get(channel.id)
    assert stored is not None
    assert (stored.kind, stored.tags) == ("channel", ("3DGS",))


async def test_commands_are_published_in_english_and_chinese(bot: BotUnderTest) -> None:
    english = {c["command"]: c["description"] for c in bot.server.commands_for()}
    chinese = {c["command"]: c["description"] for c in bot.server.commands_for(None, "zh")}
    assert {"start", "subscribe", "search", "settings"} <= set(english)
    assert "repost" not in english
    assert english.keys() == chinese.keys()
    assert chinese["search"] == "搜索资料库"
