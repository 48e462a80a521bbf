"""Saved papers end to end: ☆ on a card, /saved with its pages, the BibTeX file and the
links, in private chats, groups and a channel, in English and Chinese, against the strict
fake Bot API."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from typing import Any

import bibtexparser
import pytest
from telegram import Update

from bot.domain.models import Chat
from bot.services.scan import scan_once
from bot.tg.cards import card_for, send_card
from bot.tg.concurrency import update_key
from tests.botapi.server import ApiCall, CallbackAnswer, FakeChat, FakeUser, SentMessage
from tests.tg.bot_harness import BotUnderTest, ask, person
from tests.tg.delivery_support import SynthPaper, add_digest

SAVE = {"en": "☆ Save", "zh": "☆ 收藏"}
SAVED = {"en": "⭐ Saved", "zh": "⭐ 已收藏"}
NEW_DAY = date(2024, 6, 10)
NEW_PAPER = SynthPaper("2406.10001", "Folded Radiance Fields")


# --------------------------------------------------------------------------- helpers


async def press(bot: BotUnderTest, chat: FakeChat, user: FakeUser, message_id: int,
                data: str, *, forged: bool = False) -> CallbackAnswer:
    """Press a button (or, forged, send any data); the answer the person saw."""
    s = bot.server
    query_id = (s.forge_press(chat, user, message_id, data) if forged
                else s.press_button(chat, user, message_id, data))
    await bot.settle()
    return s.callback_answers[query_id]


def labels(bot: BotUnderTest, chat: FakeChat, message_id: int) -> dict[str, str]:
    """callback data -> label of the message's buttons as they are now (after edits)."""
    rows = bot.server.message(chat.id, message_id).get("reply_markup", {}).get(
        "inline_keyboard", [])
    return {b["callback_data"]: b["text"] for row in rows for b in row if "callback_data" in b}


def url_buttons(message: dict[str, Any]) -> dict[str, str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b["url"] for row in rows for b in row if "url" in b}


async def open_card(bot: BotUnderTest, chat: FakeChat, user: FakeUser, arxiv_id: str
                    ) -> SentMessage:
    [card] = await ask(bot, chat, user, f"/paper {arxiv_id}")
    return card


def refused(bot: BotUnderTest) -> list[ApiCall]:
    return [c for c in bot.server.errors() if c.method != "setMyCommands"]


async def deliver_new_paper(bot: BotUnderTest, *chats: FakeChat) -> dict[int, SentMessage]:
    """Subscribe these chats to NeRF and let a new NeRF digest reach them: each chat's
    delivered card."""
    for fake in chats:
        bot.server.add_chat(fake)
        await bot.deps.chats.ensure(fake.id, fake.type, title=fake.title or "reader")
        await bot.deps.chats.subscribe(fake.id, ["NeRF"])
    add_digest(bot.digest_dir, "NeRF", NEW_DAY, [NEW_PAPER])
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    cards = {}
    for fake in chats:
        [card] = [m for m in bot.server.sent_to(fake.id)
                  if f"sv:{NEW_PAPER.arxiv_id}" in m.callback_data]
        cards[fake.id] = card
    return cards


async def save_quietly(bot: BotUnderTest, user: FakeUser, ids: Sequence[str]) -> None:
    """Setup for the list tests: saved as a press would, without a press per paper (one
    person pressing fast would be throttled)."""
    for arxiv_id in ids:
        assert await bot.deps.saved.toggle(user.id, arxiv_id) is True


# --------------------------------------------------------------------------- private chats


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_star_a_card_then_saved_shows_it(bot: BotUnderTest, lang: str) -> None:
    s = bot.server
    user, chat = person(bot, "Reader", lang)
    card = await open_card(bot, chat, user, "2402.00002")
    assert labels(bot, chat, card.message_id)["sv:2402.00002"] == SAVE[lang]
    text_before = s.message(chat.id, card.message_id)["text"]

    answer = await press(bot, chat, user, card.message_id, "sv:2402.00002")
    assert answer.text == {"en": "⭐ Saved. /saved lists your saved papers.",
                           "zh": "⭐ 已收藏。/saved 查看你的收藏。"}[lang]
    assert not answer.show_alert
    assert labels(bot, chat, card.message_id)["sv:2402.00002"] == SAVED[lang]
    assert s.message(chat.id, card.message_id)["text"] == text_before  # the card untouched
    assert [e.method for e in s.edits] == ["editMessageReplyMarkup"]

    [listing] = await ask(bot, chat, user, "/saved")
    lines = (listing.plain_text or "").splitlines()
    assert lines[0] == {"en": "⭐ Your saved papers: 1 paper, newest first",
                        "zh": "⭐ 你的收藏：1 篇论文，按收藏时间倒序"}[lang]
    paper = await bot.deps.archive.get_paper("2402.00002")
    assert paper is not None
    assert lines[2].startswith(f"1. {paper.paper.title} · 2024-02-01")
    assert listing.callback_data == ["pp:2402.00002", "sv:f:bib", "sv:f:links"]

    # The list's button opens the card, which shows this person's ⭐.
    before = len(s.sent_to(chat.id))
    await press(bot, chat, user, listing.message_id, "pp:2402.00002")
    [reopened] = s.sent_to(chat.id)[before:]
    assert labels(bot, chat, reopened.message_id)["sv:2402.00002"] == SAVED[lang]

    # ⭐ unsaves; the list is then empty, with a hint.
    answer = await press(bot, chat, user, reopened.message_id, "sv:2402.00002")
    assert answer.text == {"en": "Removed from your saved papers.", "zh": "已取消收藏。"}[lang]
    assert labels(bot, chat, reopened.message_id)["sv:2402.00002"] == SAVE[lang]
    [empty] = await ask(bot, chat, user, "/saved")
    assert (empty.plain_text or "").startswith(
        {"en": "You have not saved any papers yet.", "zh": "你还没有收藏论文。"}[lang])
    assert empty.reply_markup is None
    assert refused(bot) == []


async def test_a_card_from_a_pasted_link_and_from_a_list_show_the_state(
    bot: BotUnderTest,
) -> None:
    s = bot.server
    user, chat = person(bot, "Paster")
    await save_quietly(bot, user, ["2402.00002"])
    s.send_text(chat, user, "https://arxiv.org/abs/2402.00002")
    await bot.settle()
    assert labels(bot, chat, s.last_sent(chat.id).message_id)["sv:2402.00002"] == SAVED["en"]
    [listing] = await ask(bot, chat, user, "/latest")
    first = listing.callback_data[0]
    await press(bot, chat, user, listing.message_id, first)
    assert labels(bot, chat, s.last_sent(chat.id).message_id)[
        "sv:" + first.removeprefix("pp:")] == SAVE["en"]  # not saved: ☆


async def test_a_double_tap_saves_once(bot: BotUnderTest) -> None:
    s = bot.server
    user, chat = person(bot, "Quick")
    card = await open_card(bot, chat, user, "2402.00002")
    first = s.press_button(chat, user, card.message_id, "sv:2402.00002")
    second = s.press_button(chat, user, card.message_id, "sv:2402.00002")  # same ☆ shown
    await bot.settle()
    assert s.callback_answers[first].text == s.callback_answers[second].text == (
        "⭐ Saved. /saved lists your saved papers.")
    assert await bot.deps.saved.is_saved(user.id, "2402.00002")
    assert labels(bot, chat, card.message_id)["sv:2402.00002"] == SAVED["en"]
    # Both presses came with the card showing ☆, so both asked for ⭐: Telegram refuses
    # the second, identical edit as "not modified", which the bot takes in its stride.
    assert [(c.method, "not modified" in (c.description or "")) for c in refused(bot)] in (
        [], [("editMessageReplyMarkup", True)])


async def test_saved_pages_past_five(bot: BotUnderTest) -> None:
    s = bot.server
    user, chat = person(bot, "Collector")
    ids = ["2401.00001", "2402.00002", "2402.00003", "2402.00011", "2402.00012",
           "2402.00013", "2402.00014"]
    await save_quietly(bot, user, ids)
    [listing] = await ask(bot, chat, user, "/saved")
    text = listing.plain_text or ""
    assert text.splitlines()[0] == "⭐ Your saved papers: 7 papers, newest first"
    assert text.splitlines()[-1] == "Page 1 of 2"
    newest_first = ids[::-1]
    assert listing.callback_data == [f"pp:{i}" for i in newest_first[:5]] + [
        "sv:p:2", "sv:f:bib", "sv:f:links"]

    await press(bot, chat, user, listing.message_id, "sv:p:2")
    page_two = s.message(chat.id, listing.message_id)
    lines = page_two["text"].splitlines()
    assert lines[-1] == "Page 2 of 2"
    assert [line.split(".")[0] for line in lines if line[:1].isdigit()] == ["6", "7"]
    assert list(labels(bot, chat, listing.message_id)) == [
        f"pp:{i}" for i in newest_first[5:]] + ["sv:p:1", "sv:f:bib", "sv:f:links"]
    await press(bot, chat, user, listing.message_id, "sv:p:1")
    assert s.message(chat.id, listing.message_id)["text"].splitlines()[-1] == "Page 1 of 2"
    assert refused(bot) == []


async def test_the_bibtex_file_and_the_links(bot: BotUnderTest) -> None:
    s = bot.server
    user, chat = person(bot, "Citer", "zh")
    # 2401.00001 and 2402.00002 are both "Smith2024…"-like? Whatever the keys, unique.
    ids = ["2401.00001", "2402.00002", "2402.00003", "2404.00041", "2404.00042",
           "hep-th/9901001", "2403.00031"]
    await save_quietly(bot, user, ids)
    [listing] = await ask(bot, chat, user, "/saved")
    assert url_buttons(s.message(chat.id, listing.message_id)) == {}
    assert labels(bot, chat, listing.message_id)["sv:f:bib"] == "📄 BibTeX 文件"

    await press(bot, chat, user, listing.message_id, "sv:f:bib")
    [call] = s.calls("sendDocument")
    upload = call.files["document"]
    assert upload.filename == "saved-papers.bib"
    sent = s.last_sent(chat.id)
    assert sent.plain_text == "7 篇论文，按收藏时间倒序"
    library = bibtexparser.loads(upload.data.decode("utf-8"))
    assert sorted(e["eprint"] for e in library.entries) == sorted(ids)
    assert len({e["ID"] for e in library.entries}) == len(ids)
    papers = {p.arxiv_id: p for p in await bot.deps.archive.get_papers(ids)}
    for entry in library.entries:
        assert entry["url"] == f"https://arxiv.org/abs/{entry['eprint']}"
        assert entry["author"] == " and ".join(papers[entry["eprint"]].paper.authors)

    before = len(s.sent_to(chat.id))
    await press(bot, chat, user, listing.message_id, "sv:f:links")
    [links] = s.sent_to(chat.id)[before:]
    assert links.parse_mode is None
    lines = (links.plain_text or "").splitlines()
    assert len(lines) == len(ids)
    for line, arxiv_id in zip(lines, ids[::-1], strict=True):
        title = papers[arxiv_id].paper.title
        assert line == f"{title} — {papers[arxiv_id].paper.abs_url}"
    assert refused(bot) == []


async def test_a_paper_that_leaves_the_archive_stays_listed(bot: BotUnderTest) -> None:
    s = bot.server
    user, chat = person(bot, "Keeper")
    await save_quietly(bot, user, ["2402.00002", "2405.00061"])  # newest last
    gone = await bot.deps.archive.get_paper("2405.00061")
    assert gone is not None

    # A changed digest file keeps what it lists saved (and in the archive).
    nerf = bot.digest_dir / "2024-02-01" / "NeRF.md"
    nerf.write_text(nerf.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    os.utime(nerf, (1_000_000_100, 1_000_000_100))
    (bot.digest_dir / "2024-05-20" / "Diffusion Models.md").unlink()
    report = await bot.deps.ingestor.scan()
    assert report.files_deleted == 1
    assert await bot.deps.archive.get_paper("2405.00061") is None

    [listing] = await ask(bot, chat, user, "/saved")
    lines = (listing.plain_text or "").splitlines()
    assert lines[2] == (f"1. {gone.paper.title} · 2024-05-20 · arXiv · "
                        "no longer in the archive")
    assert f'<a href="{gone.paper.abs_url}">arXiv</a>' in (listing.text or "")
    assert lines[3].startswith("2. ")
    assert url_buttons(s.message(chat.id, listing.message_id)) == {"1": gone.paper.abs_url}
    assert listing.callback_data == ["pp:2402.00002", "sv:f:bib", "sv:f:links"]

    await press(bot, chat, user, listing.message_id, "sv:f:bib")
    library = bibtexparser.loads(s.calls("sendDocument")[-1].files["document"].data.decode())
    assert [e["eprint"] for e in library.entries] == ["2405.00061", "2402.00002"]
    assert library.entries[0]["title"] == "{" + gone.paper.title + "}"
    before = len(s.sent_to(chat.id))
    await press(bot, chat, user, listing.message_id, "sv:f:links")
    [links] = s.sent_to(chat.id)[before:]
    assert (links.plain_text or "").splitlines()[0] == (
        f"{gone.paper.title} — {gone.paper.abs_url}")
    assert refused(bot) == []


# --------------------------------------------------------------------------- groups, channels


async def test_a_press_in_a_group_or_a_channel_saves_for_that_person(
    bot: BotUnderTest,
) -> None:
    s = bot.server
    group = s.supergroup("Reading group")
    channel = s.channel("Papers channel", username="paperschan")
    reader, reader_chat = person(bot, "Reader")
    cards = await deliver_new_paper(bot, group, channel, reader_chat)
    data = f"sv:{NEW_PAPER.arxiv_id}"
    for card in cards.values():  # rendered once for every chat: the default label
        assert labels(bot, s.chat(card.chat_id), card.message_id)[data] == SAVE["en"]
    edits_before = len(s.edits)

    ann, bo = s.user("Ann"), s.user("Bo", language_code="zh")
    answer = await press(bot, group, ann, cards[group.id].message_id, data)
    assert answer.text == "⭐ Saved to your private list: send /saved in a chat with me."
    answer = await press(bot, group, bo, cards[group.id].message_id, data)
    assert answer.text == "⭐ 已收藏到你的私人列表：在与我的私聊中发送 /saved 查看。"
    assert await bot.deps.saved.is_saved(ann.id, NEW_PAPER.arxiv_id)
    assert await bot.deps.saved.is_saved(bo.id, NEW_PAPER.arxiv_id)
    assert not await bot.deps.saved.is_saved(reader.id, NEW_PAPER.arxiv_id)
    answer = await press(bot, group, ann, cards[group.id].message_id, data)  # again: unsave
    assert answer.text == "Removed from your private list of saved papers."
    assert not await bot.deps.saved.is_saved(ann.id, NEW_PAPER.arxiv_id)

    cy = s.user("Cy")
    answer = await press(bot, channel, cy, cards[channel.id].message_id, data)
    assert answer.text == "⭐ Saved to your private list: send /saved in a chat with me."
    assert len(s.edits) == edits_before  # shared cards are never edited
    assert labels(bot, group, cards[group.id].message_id)[data] == SAVE["en"]

    # Cy's list, in Cy's private chat: the paper from the channel.
    cy_chat = s.add_chat(s.private_chat(cy))
    [listing] = await ask(bot, cy_chat, cy, "/saved")
    assert f"1. {NEW_PAPER.title} · 2024-06-10 · #NeRF" in (listing.plain_text or "")

    # The reader's own delivered card shows ☆ (rendered for all) and saves on a press.
    answer = await press(bot, reader_chat, reader, cards[reader_chat.id].message_id, data)
    assert answer.text == "⭐ Saved. /saved lists your saved papers."
    assert labels(bot, reader_chat, cards[reader_chat.id].message_id)[data] == SAVED["en"]
    assert refused(bot) == []


async def test_saved_in_a_group_points_to_the_private_chat(bot: BotUnderTest) -> None:
    s = bot.server
    group = s.add_chat(s.group("Lab"))
    member = s.user("Member")
    await save_quietly(bot, member, ["2402.00002"])
    [reply] = await ask(bot, group, member, "/saved")
    assert (reply.plain_text or "").startswith("⭐ Saved papers are private")
    link = f"https://t.me/{s.bot.username}?start=saved"
    assert url_buttons(s.message(group.id, reply.message_id)) == {"⭐ My saved papers": link}
    assert "2402.00002" not in (reply.text or "")

    chat = s.add_chat(s.private_chat(member))
    [listing] = await ask(bot, chat, member, "/start saved")  # what the button opens
    assert (listing.plain_text or "").startswith("⭐ Your saved papers: 1 paper")
    assert refused(bot) == []


async def test_help_and_the_command_menu_name_saved(bot: BotUnderTest) -> None:
    user, chat = person(bot, "Helper", "zh")
    [help_text] = await ask(bot, chat, user, "/help")
    assert "/saved — 你在卡片上用 ☆ 收藏 保存的论文" in (help_text.plain_text or "")
    english = {c["command"]: c["description"] for c in bot.server.commands_for()}
    chinese = {c["command"]: c["description"] for c in bot.server.commands_for(None, "zh")}
    assert (english["saved"], chinese["saved"]) == ("Your saved papers", "我的收藏")


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("data", [
    "sv:", "sv:p:", "sv:p:x", "sv:p:²", "sv:p:-1", "sv:p:9999999999", "sv:f:", "sv:f:nope",
    "sv:2402.00002:x", "sv:../../etc", "sv:2402.00002 ", "sv:<b>", "sv:" + "9" * 61,
    "sv:f:bibx", "sv:\u202e2402.00002",
])
async def test_forged_save_buttons_are_refused(bot: BotUnderTest, data: str) -> None:
    s = bot.server
    user, chat = person(bot, "Forger")
    card = await open_card(bot, chat, user, "2402.00002")
    answer = await press(bot, chat, user, card.message_id, data, forged=True)
    assert (answer.text, answer.show_alert) == ("This button has expired.", True)
    assert await bot.deps.saved.all(user.id) == []
    assert s.unanswered_callback_queries() == []
    assert refused(bot) == []


async def test_forged_presses_that_parse(bot: BotUnderTest) -> None:
    s = bot.server
    user, chat = person(bot, "Forger")
    card = await open_card(bot, chat, user, "2402.00002")
    answer = await press(bot, chat, user, card.message_id, "sv:2409.99999", forged=True)
    assert answer.show_alert
    assert answer.text == "This paper is no longer in the archive, so it cannot be saved."
    # Another paper's id on this card: saved (the archive has it), this card untouched.
    answer = await press(bot, chat, user, card.message_id, "sv:2401.00001", forged=True)
    assert answer.text == "⭐ Saved. /saved lists your saved papers."
    assert labels(bot, chat, card.message_id)["sv:2402.00002"] == SAVE["en"]
    # The list's buttons belong in a private chat only.
    group = s.add_chat(s.group("Lab"))
    [reply] = await ask(bot, group, user, "/saved")
    for data in ("sv:p:1", "sv:f:bib", "sv:f:links"):
        answer = await press(bot, group, user, reply.message_id, data, forged=True)
        assert (answer.text, answer.show_alert) == ("This button has expired.", True)
    assert s.calls("sendDocument") == []
    assert refused(bot) == []


# --------------------------------------------------------------------------- many at once


async def test_a_hundred_people_press_at_once(bot: BotUnderTest) -> None:
    """Each person's own card, pressed at the same moment: every press answered, every
    card edited, and each person ends with exactly their own list."""
    s = bot.server
    ids = ["2402.00002", "2402.00003"]
    people = [person(bot, f"P{n}", "zh" if n % 2 else "en") for n in range(100)]
    papers = {p.arxiv_id: p for p in await bot.deps.archive.get_papers(ids)}
    cards: list[tuple[FakeUser, FakeChat, int, str]] = []
    for n, (user, chat) in enumerate(people):
        await bot.deps.chats.ensure(chat.id, "private", lang="zh" if n % 2 else "en")
        wanted = ids[n % 2]
        sent = await send_card(bot.app.bot, chat.id, card_for(
            papers[wanted], Chat(chat.id, lang="zh" if n % 2 else "en"), None))
        cards.append((user, chat, sent.message_id, wanted))
    await bot.settle()
    queries = [s.press_button(chat, user, message_id, f"sv:{wanted}")
               for user, chat, message_id, wanted in cards]
    also = [s.press_button(chat, user, message_id, f"sv:{wanted}")  # a second tap
            for user, chat, message_id, wanted in cards[::10]]
    await bot.settle(timeout=60)
    assert all(s.callback_answers[q].text for q in queries + also)
    assert s.unanswered_callback_queries() == []
    for n, (user, chat, message_id, wanted) in enumerate(cards):
        assert [e.arxiv_id for e in await bot.deps.saved.all(user.id)] == [wanted]
        lang = "zh" if n % 2 else "en"
        assert labels(bot, chat, message_id)[f"sv:{wanted}"] == SAVED[lang]
    # Only the second taps' identical edits were refused (see the double-tap test).
    assert [c.method for c in refused(bot) if "not modified" not in (c.description or "")
            ] == []


async def test_a_hundred_people_save_one_channel_card(bot: BotUnderTest) -> None:
    """The likeliest rush: a channel's new card. Presses there concern only the presser,
    so they are not queued behind each other like the channel's own updates."""
    s = bot.server
    channel = s.channel("Busy channel", username="busychan")
    cards = await deliver_new_paper(bot, channel)
    data = f"sv:{NEW_PAPER.arxiv_id}"
    readers = [s.user(f"R{n}") for n in range(100)]
    queries = [s.press_button(channel, r, cards[channel.id].message_id, data) for r in readers]
    await bot.settle(timeout=60)
    assert {s.callback_answers[q].text for q in queries} == {
        "⭐ Saved to your private list: send /saved in a chat with me."}
    for reader in readers:
        assert [e.arxiv_id for e in await bot.deps.saved.all(reader.id)] == [
            NEW_PAPER.arxiv_id]
    assert s.edits == []
    assert refused(bot) == []


def test_a_save_press_in_a_shared_chat_is_ordered_with_the_pressers_own_chat() -> None:
    def press_in(chat: dict[str, Any], data: str) -> Update:
        return Update.de_json({"update_id": 1, "callback_query": {
            "id": "1", "chat_instance": "1", "data": data,
            "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
            "message": {"message_id": 7, "date": 0, "chat": chat}}}, None)

    channel = {"id": -1001, "type": "channel", "title": "C"}
    group = {"id": -5, "type": "group", "title": "G"}
    private = {"id": 42, "type": "private", "first_name": "Ann"}
    assert update_key(press_in(channel, "sv:2402.00002")) == 42
    assert update_key(press_in(group, "sv:2402.00002")) == 42
    assert update_key(press_in(private, "sv:2402.00002")) == 42
    assert update_key(press_in(group, "pp:2402.00002")) == -5  # opens a card in the group
    # A channel post's paper buttons answer the presser privately: theirs alone too.
    assert update_key(press_in(channel, "pp:2402.00002")) == 42
    assert update_key(press_in(channel, "an:2402.00002")) == 42
    assert update_key(press_in(channel, "rl:2402.00002")) == 42
    assert update_key(press_in(channel, "st:mode:daily")) == -1001  # edits the channel's menu
