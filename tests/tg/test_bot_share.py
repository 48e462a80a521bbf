"""Sharing the bot: /tags links that subscribe whoever opens them, /start's "add to a
group" and "add to a channel" buttons, groups subscribed by a `?startgroup=` link, and
the descriptions a new user reads before pressing Start."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from telegram.error import BadRequest

from bot.tg.app import startup
from bot.tg.profile import TEXTS as PROFILE
from tests.botapi.server import FakeBotApi, FakeChat, FakeUser, SentMessage
from tests.botapi.telegram_html import utf16_len
from tests.fixtures.expected import FIXTURE_DIR, FIXTURE_TOPICS
from tests.fixtures.folder import copy_fixture_folder
from tests.tg.bot_harness import BotUnderTest, running_bot
from tests.tg.test_bot_many_topics import TOPICS, many_topics

BOT = "paperfeed_test_bot"
LONG_TAG = "面向大规模多模态基础模型的高效参数微调与知识蒸馏方法"  # > 43 UTF-8 bytes


def linked_names(message: SentMessage) -> dict[str, str]:
    """Each linked text of a message and the URL it opens."""
    text = message.plain_text or ""
    units = text.encode("utf-16-le")
    return {
        units[2 * e["offset"]:2 * (e["offset"] + e["length"])].decode("utf-16-le"): e["url"]
        for e in message.entities if e["type"] == "text_link"
    }


def start_payload(url: str) -> str:
    """The payload a private-chat link passes to /start (checked against Telegram's rule)."""
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "t.me", f"/{BOT}")
    [payload] = parse_qs(parts.query)["start"]
    assert 1 <= len(payload) <= 64
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in payload)
    return payload


async def tag_links(bot: BotUnderTest, chat: FakeChat, user: FakeUser) -> dict[str, str]:
    """/tags in ``chat``: every tag name and the payload its link passes."""
    before = len(bot.server.sent_to(chat.id))
    bot.server.send_command(chat, user, "/tags" if chat.type == "private"
                            else f"/tags@{BOT}")
    await bot.settle()
    links: dict[str, str] = {}
    for message in bot.server.sent_to(chat.id)[before:]:
        links |= {name: start_payload(url) for name, url in linked_names(message).items()}
    return links


async def opened_by(bot: BotUnderTest, name: str, lang: str, payload: str) -> tuple[str, ...]:
    """A new user opens a link (Telegram sends `/start <payload>`): what they follow."""
    s = bot.server
    user = s.user(name, language_code=lang)
    chat = s.private_chat(user)
    s.send_command(chat, user, f"/start {payload}")
    await bot.settle()
    stored = await bot.deps.chats.get(chat.id)
    assert stored is not None
    assert not stored.all_topics
    reply = s.last_sent(chat.id).plain_text or ""
    assert ("已订阅" if lang == "zh" else "Subscribed to") in reply
    return stored.tags


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_tags_links_subscribe_whoever_opens_them(bot: BotUnderTest, lang: str) -> None:
    s = bot.server
    sharer = s.user("Sharer", language_code=lang)
    links = await tag_links(bot, s.private_chat(sharer), sharer)
    assert set(links) == set(FIXTURE_TOPICS)
    assert links["NeRF"] == "sub-NeRF"
    assert links["Talking Head Generation"] == "sub-Talking_Head_Generation"
    footer = s.last_sent(sharer.id).plain_text or ""
    assert ("分享链接" if lang == "zh" else "share link") in footer
    for i, tag in enumerate(FIXTURE_TOPICS):  # each opener follows exactly that topic
        assert await opened_by(bot, f"Friend {i}", lang, links[tag]) == (tag,)
    stored = await bot.deps.chats.get(sharer.id)
    assert stored is not None
    assert not stored.subscribed  # showing the links subscribed nobody


async def test_in_a_group_the_links_still_invite_people_privately(bot: BotUnderTest) -> None:
    s = bot.server
    group = s.group("Reading group")
    member = s.user("Member")
    links = await tag_links(bot, group, member)
    assert links["元宇宙/虚拟人"].startswith("sub64-")
    group_chat = await bot.deps.chats.get(group.id)
    assert group_chat is not None
    assert not group_chat.subscribed
    assert await opened_by(bot, "Reader", "zh", links["元宇宙/虚拟人"]) == ("元宇宙/虚拟人",)


async def test_long_names_get_a_hashed_link_that_still_works(tmp_path: Path,
                                                             botapi: FakeBotApi) -> None:
    folder = copy_fixture_folder(tmp_path / "digests")
    source = FIXTURE_DIR / "2024-02-01" / "NeRF.md"
    text = source.read_text(encoding="utf-8").replace("NeRF", LONG_TAG)
    (folder / "2024-02-01" / "long.md").write_text(text, encoding="utf-8")
    shutil.copystat(source, folder / "2024-02-01" / "long.md")
    async with running_bot(tmp_path, botapi, digest_dir=folder) as bot:
        asker = botapi.user("Asker")
        links = await tag_links(bot, botapi.private_chat(asker), asker)
        assert links[LONG_TAG].startswith("subh-")
        assert await opened_by(bot, "Opener", "zh", links[LONG_TAG]) == (LONG_TAG,)


async def test_a_long_tag_list_keeps_every_link(tmp_path: Path, botapi: FakeBotApi) -> None:
    """Telegram drops formatting past a message's 100th entity: split before that."""
    async with running_bot(tmp_path, botapi, digest_dir=many_topics(tmp_path)) as bot:
        ann = botapi.user("Ann")
        chat = botapi.private_chat(ann)
        links = await tag_links(bot, chat, ann)
        assert len(links) == TOPICS
        parts = botapi.sent_to(chat.id)
        assert len(parts) > 1
        assert all(len(m.entities) <= 100 for m in parts)
        assert not [c for c in botapi.errors() if c.method == "sendMessage"]


async def test_old_hand_made_links_still_work_and_unknown_ones_say_so(
        bot: BotUnderTest) -> None:
    assert await opened_by(bot, "Old", "en", "sub-talkingheadgeneration") == (
        "Talking Head Generation",)
    s = bot.server
    lost = s.user("Lost")
    chat = s.private_chat(lost)
    s.send_command(chat, lost, "/start sub-NeRFF")
    s.send_command(chat, lost, "/start subh-AAAAAAAAAAAAAAAAAAAAAA")
    await bot.settle()
    unknown, gone = s.sent_to(chat.id)
    assert "Did you mean NeRF?" in (unknown.plain_text or "")
    assert "no longer in the archive" in (gone.plain_text or "")


@pytest.mark.parametrize(("lang", "group_label", "channel_label"), [
    ("en", "➕ Add to a group", "📢 Add to a channel"),
    ("zh", "➕ 加入群组", "📢 加入频道"),
])
async def test_start_offers_to_add_the_bot_to_a_group_or_channel(
        bot: BotUnderTest, lang: str, group_label: str, channel_label: str) -> None:
    s = bot.server
    newcomer = s.user("Newcomer", language_code=lang)
    chat = s.private_chat(newcomer)
    s.send_command(chat, newcomer, "/start")
    await bot.settle()
    welcome = s.last_sent(chat.id)
    assert welcome.callback_data == ["sb:*", "sb:menu"]
    urls = {b["text"]: b["url"] for b in welcome.buttons if "url" in b}
    assert urls == {
        group_label: f"https://t.me/{BOT}?startgroup",
        channel_label: f"https://t.me/{BOT}?startchannel&admin=post_messages",
    }
    # In a group the welcome has no such buttons: the bot is already there.
    group = s.group("Lab")
    s.send_command(group, newcomer, f"/start@{BOT}")
    await bot.settle()
    assert not [b for b in s.last_sent(group.id).buttons if "url" in b]


async def test_a_startgroup_link_subscribes_the_group_its_admin_chose(
        bot: BotUnderTest) -> None:
    s = bot.server
    admin, member = s.user("Admin"), s.user("Member", language_code="zh")
    group = s.group("Journal club")
    s.set_member(group, admin, "creator")
    # `?startgroup=sub-…`: Telegram adds the bot, then sends /start@bot <payload> there.
    s.my_chat_member(group, admin, "member", old_status="left")
    s.send_command(group, admin, f"/start@{BOT} sub-Talking_Head_Generation")
    await bot.settle()
    stored = await bot.deps.chats.get(group.id)
    assert stored is not None
    assert stored.tags == ("Talking Head Generation",)
    assert "Subscribed to Talking Head Generation" in (s.last_sent(group.id).plain_text or "")
    # A plain member cannot change what the group follows with a link either.
    s.send_command(group, member, f"/start@{BOT} sub-NeRF")
    await bot.settle()
    stored = await bot.deps.chats.get(group.id)
    assert stored is not None
    assert stored.tags == ("Talking Head Generation",)


async def test_descriptions_are_set_once_in_english_and_chinese(bot: BotUnderTest) -> None:
    s = bot.server
    assert s.descriptions == {"": PROFILE["en"]["description"],
                              "zh": PROFILE["zh"]["description"]}
    assert s.short_descriptions == {"": PROFILE["en"]["short_description"],
                                    "zh": PROFILE["zh"]["short_description"]}
    for texts in PROFILE.values():
        assert utf16_len(texts["description"]) <= 512
        assert utf16_len(texts["short_description"]) <= 120
    sets = len(s.calls("setMyDescription")) + len(s.calls("setMyShortDescription"))
    reads = len(s.calls("getMyDescription"))
    assert sets == 4
    await startup(bot.app, bot.deps)  # a restart: reads, writes nothing
    assert len(s.calls("setMyDescription")) + len(s.calls("setMyShortDescription")) == sets
    assert len(s.calls("getMyDescription")) == reads + 2


async def test_a_description_telegram_refuses_does_not_stop_the_bot(
        tmp_path: Path, botapi: FakeBotApi, caplog: pytest.LogCaptureFixture) -> None:
    botapi.script_fault("http_502", method="setMyDescription")
    with caplog.at_level(logging.WARNING, logger="bot.tg.profile"):
        async with running_bot(tmp_path, botapi) as bot:
            user = botapi.user("Early")
            chat = botapi.private_chat(user)
            botapi.send_command(chat, user, "/start")
            await bot.settle()
            assert "Welcome to paperfeed" in (botapi.last_sent(chat.id).plain_text or "")
    assert "" not in botapi.descriptions  # English failed; the next start tries again
    assert botapi.descriptions["zh"] == PROFILE["zh"]["description"]
    assert "bot description (en) not set" in caplog.text


async def test_the_fake_refuses_descriptions_telegram_would(bot: BotUnderTest) -> None:
    with pytest.raises(BadRequest, match="at most 512"):
        await bot.app.bot.set_my_description("x" * 513)
    with pytest.raises(BadRequest, match="at most 120"):
        await bot.app.bot.set_my_short_description("x" * 121, language_code="zh")
    with pytest.raises(BadRequest, match=r"(?i)invalid language code"):
        await bot.app.bot.set_my_description("hi", language_code="chinese")
