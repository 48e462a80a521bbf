"""The chat table follows where the bot really is: added, blocked, kicked, migrated."""

from __future__ import annotations

from tests.tg.bot_harness import BotUnderTest


async def test_blocking_user_is_deactivated_and_start_brings_them_back(
    bot: BotUnderTest,
) -> None:
    s = bot.server
    ann = s.user("Ann")
    chat = s.private_chat(ann)
    s.send_command(chat, ann, "/subscribe all")
    await bot.settle()
    s.my_chat_member(chat, ann, "kicked", old_status="member")
    await bot.settle()
    stored = await bot.deps.chats.get(chat.id)
    assert stored is not None
    assert not stored.active
    assert stored.disabled_reason == "bot status in chat: kicked"
    s.my_chat_member(chat, ann, "member", old_status="kicked")
    s.send_command(chat, ann, "/start")
    await bot.settle()
    stored = await bot.deps.chats.get(chat.id)
    assert stored is not None
    assert stored.active
    assert stored.all_topics  # the subscription survived the pause


async def test_added_to_a_group_says_hello_and_kicked_stops(bot: BotUnderTest) -> None:
    s = bot.server
    admin = s.user("Admin")
    group = s.group("Journal club")
    s.my_chat_member(group, admin, "member", old_status="left")
    await bot.settle()
    assert "/subscribe" in s.sent_to(group.id)[-1].plain_text
    s.set_member(group, admin, "administrator")
    s.send_command(group, admin, "/subscribe NeRF")
    await bot.settle()
    s.my_chat_member(group, admin, "kicked", old_status="member")
    await bot.settle()
    stored = await bot.deps.chats.get(group.id)
    assert stored is not None
    assert not stored.active


async def test_group_migration_keeps_subscription_under_new_id(bot: BotUnderTest) -> None:
    s = bot.server
    admin = s.user("Admin")
    group = s.group("Lab")
    s.set_member(group, admin, "creator")
    s.send_command(group, admin, "/subscribe 3DGS")
    await bot.settle()
    target = s.migrate_group(group, admin)
    await bot.settle()
    assert await bot.deps.chats.get(group.id) is None
    moved = await bot.deps.chats.get(target.id)
    assert moved is not None
    assert (moved.kind, moved.tags) == ("supergroup", ("3DGS",))
