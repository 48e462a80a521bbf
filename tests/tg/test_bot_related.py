""""🔗 Related" end to end: the button on every card, the list of the 5 nearest papers (the
real model, embedded in a child process as the bot does), their buttons, forged presses,
a channel's card, in English and Chinese, against the strict fake Bot API."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.runner import _prepare, assemble
from bot.services.scan import scan_once
from bot.storage.engine import migrate
from tests.botapi.ptb_harness import running_application
from tests.botapi.server import (
    ApiCall,
    CallbackAnswer,
    FakeBotApi,
    FakeChat,
    FakeUser,
    SentMessage,
)
from tests.fixtures.expected import FIXTURE_DISTINCT_IDS
from tests.tg.bot_harness import BotUnderTest, ask, make_settings, person
from tests.tg.delivery_support import SynthPaper, add_digest

GAUSSIAN_ONE = "2402.00011"
LABEL = {"en": "🔗 Related", "zh": "🔗 相关"}
HEADER = {"en": "🔗 Papers related to Gaussian Heading One",
          "zh": "🔗 与 Gaussian Heading One 相关的论文"}
STALE = "This button has expired."


async def press(bot: BotUnderTest, chat: FakeChat, user: FakeUser, message: SentMessage,
                data: str, *, forged: bool = False) -> tuple[CallbackAnswer, list[SentMessage]]:
    """Press a button of a message: the answer the presser saw, and what the chat got."""
    s = bot.server
    before = len(s.sent_to(chat.id))
    query_id = (s.forge_press(chat, user, message.message_id, data) if forged
                else s.press_button(chat, user, message.message_id, data))
    await bot.settle()
    return s.callback_answers[query_id], s.sent_to(chat.id)[before:]


def refused(bot: BotUnderTest) -> list[ApiCall]:
    return [c for c in bot.server.errors() if c.method != "setMyCommands"]


@pytest.fixture
async def embedded(bot: BotUnderTest) -> BotUnderTest:
    """The bot with its archive embedded, as its first background refresh leaves it."""
    assert await bot.deps.related.refresh() == FIXTURE_DISTINCT_IDS
    return bot


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_related_lists_five_papers_about_the_same_thing(embedded: BotUnderTest,
                                                              lang: str) -> None:
    bot = embedded
    user, chat = person(bot, "Ann", lang)
    [card] = await ask(bot, chat, user, f"/paper {GAUSSIAN_ONE}")
    first_row = (card.reply_markup or {})["inline_keyboard"][0]
    assert {b["text"]: b.get("callback_data") for b in first_row}[LABEL[lang]] == \
        f"rl:{GAUSSIAN_ONE}"
    assert len(first_row) <= 4
    answer, [listing] = await press(bot, chat, user, card, f"rl:{GAUSSIAN_ONE}")
    assert not answer.show_alert
    lines = (listing.plain_text or "").splitlines()
    assert lines[0] == HEADER[lang]
    numbered = [line for line in lines if line[:1].isdigit()]
    assert len(numbered) == 5
    # The four other "Gaussian Heading" papers of the same digest come first, each
    # showing the topic it shares; the paper itself is not listed.
    assert numbered[:4] == [f"{i}. Gaussian Heading {n} · 2024-02-01 · #3DGS"
                            for i, n in enumerate(("Two", "Three", "Four", "Five"), 1)]
    assert "Gaussian Heading One" not in "\n".join(numbered)
    assert listing.callback_data[:4] == ["pp:2402.00012", "pp:2402.00013",
                                         "pp:2402.00014", "pp:2402.00015"]
    assert len(listing.callback_data) == 5
    assert [b["text"] for b in listing.buttons] == ["1", "2", "3", "4", "5"]
    # A listed paper's button opens its card, with its own Related button.
    _, [opened] = await press(bot, chat, user, listing, "pp:2402.00013")
    assert (opened.plain_text or "").startswith("Gaussian Heading Three")
    assert "rl:2402.00013" in opened.callback_data
    assert refused(bot) == []


async def test_forged_related_presses_are_refused(embedded: BotUnderTest) -> None:
    bot = embedded
    user, chat = person(bot, "Mallory")
    [card] = await ask(bot, chat, user, f"/paper {GAUSSIAN_ONE}")
    for data in ("rl:", "rl:../../etc", "rl:2402.00011:x", "rl:<b>", "rl:2402.00011 ",
                 "rl:\u202e2402.00011", "rl:" + "9" * 61, "rl:²"):
        answer, sent = await press(bot, chat, user, card, data, forged=True)
        assert (answer.text, answer.show_alert, sent) == (STALE, True, []), data
    answer, sent = await press(bot, chat, user, card, "rl:2409.99999", forged=True)
    assert answer.text == "No paper 2409.99999 in the archive."
    assert answer.show_alert
    assert sent == []
    assert refused(bot) == []


async def test_before_the_archive_is_embedded_the_press_says_so(bot: BotUnderTest) -> None:
    user, chat = person(bot, "Early", "zh")
    [card] = await ask(bot, chat, user, f"/paper {GAUSSIAN_ONE}")
    answer, sent = await press(bot, chat, user, card, f"rl:{GAUSSIAN_ONE}")
    assert answer.show_alert
    assert answer.text == "🔗 这篇论文的相关论文还在计算中，请过一分钟再试。"
    assert sent == []


async def test_a_channel_cards_related_goes_to_the_presser_privately(
        embedded: BotUnderTest) -> None:
    bot = embedded
    s = bot.server
    channel = s.add_chat(s.channel("Papers channel", username="paperschan"))
    await bot.deps.chats.ensure(channel.id, channel.type, title="Papers channel")
    await bot.deps.chats.subscribe(channel.id, ["3DGS"])
    add_digest(bot.digest_dir, "3DGS", date(2024, 6, 10),
               [SynthPaper("2406.10001", "Gaussian Splatting for Tiny Teapots",
                           abstract="Abstract one.")])
    await scan_once(bot.deps.ingestor, bot.deps.scan_status)
    assert await bot.deps.related.refresh() == 1
    [card] = [m for m in s.sent_to(channel.id) if "rl:2406.10001" in m.callback_data]
    posted = len(s.sent_to(channel.id))

    reader = s.user("Reader")
    answer, _ = await press(bot, channel, reader, card, "rl:2406.10001")
    assert answer.show_alert
    assert "open a chat with @" in (answer.text or "")
    reader_chat = s.add_chat(s.private_chat(reader))
    await ask(bot, reader_chat, reader, "/start")
    answer, _ = await press(bot, channel, reader, card, "rl:2406.10001")
    assert answer.text == "Sent to you in our private chat."
    listing = s.sent_to(reader_chat.id)[-1]
    assert (listing.plain_text or "").startswith(
        "🔗 Papers related to Gaussian Splatting for Tiny Teapots")
    assert len(listing.callback_data) == 5
    assert len(s.sent_to(channel.id)) == posted  # nothing posted into the channel
    assert refused(bot) == []


async def test_each_scan_embeds_its_papers_in_the_background(botapi: FakeBotApi,
                                                             tmp_path: Path) -> None:
    """As `paperfeed run` assembles it: once delivery has queued a scan's papers, they
    are embedded (in a child process) without the scan waiting for it."""
    parts = assemble(make_settings(tmp_path, botapi), embed_after_scan=True)
    related = parts.deps.related
    try:
        await migrate(parts.engine)
        await scan_once(parts.deps.ingestor, parts.deps.scan_status)
        await related.wait()
        assert await parts.services.vectors.count_missing(related.model) == 0
        assert related.index is not None
        assert len(related.index) == FIXTURE_DISTINCT_IDS
    finally:
        await related.close()
        await parts.engine.dispose()


async def test_an_archive_stored_before_is_embedded_after_the_active_instances_scan(
        botapi: FakeBotApi, tmp_path: Path) -> None:
    """An archive ingested before "Related" existed: the start (as `paperfeed run`
    prepares it, in a standby instance too) embeds nothing; the scan that the active
    instance runs on election, with nothing new to read, sets the embedding off in the
    background, and the papers get their vectors."""
    parts = assemble(make_settings(tmp_path, botapi), embed_after_scan=True)
    related, vectors = parts.deps.related, parts.services.vectors
    try:
        await migrate(parts.engine)
        await parts.deps.ingestor.scan()  # stored without the hooks: no vectors
        assert await vectors.count_missing(related.model) == FIXTURE_DISTINCT_IDS
        async with running_application(parts.app, botapi):
            await _prepare(parts)
            await related.wait()
            assert await vectors.count_missing(related.model) == FIXTURE_DISTINCT_IDS
            report = await scan_once(parts.deps.ingestor, parts.deps.scan_status)
            assert report.files_read == 0
            await related.wait()
        assert await vectors.count_missing(related.model) == 0
        assert related.index is not None
        assert len(related.index) == FIXTURE_DISTINCT_IDS
    finally:
        await related.close()
        await parts.engine.dispose()
