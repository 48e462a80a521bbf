"""Type to search, paste to open: plain text in a private chat is a search, a pasted
arXiv, alphaXiv or Hugging Face papers link opens the card; groups only when addressed."""

from __future__ import annotations

import bibtexparser
import pytest

from tests.botapi.server import FakeBotApi, FakeChat, FakeUser
from tests.tg.bot_harness import BotUnderTest


async def said(bot: BotUnderTest, chat: FakeChat, user: FakeUser, text: str,
               **options: object) -> list[str]:
    """What the bot answered to one message, as plain text."""
    before = len(bot.server.sent_to(chat.id))
    bot.server.send_text(chat, user, text, **options)  # type: ignore[arg-type]
    await bot.settle()
    return [m.plain_text or "" for m in bot.server.sent_to(chat.id)[before:]]


async def test_typed_words_are_a_search(bot: BotUnderTest) -> None:
    s = bot.server
    typist, searcher = s.user("Typist"), s.user("Searcher")
    typed = await said(bot, s.private_chat(typist), typist, "teapot")
    commanded = await said(bot, s.private_chat(searcher), searcher, "/search teapot")
    assert typed == commanded
    assert "teapot" in typed[0]


@pytest.mark.parametrize("link", [
    "https://arxiv.org/pdf/2402.00002v1",
    "see https://arxiv.org/abs/2402.00002 for the details",
    "https://www.alphaxiv.org/abs/2402.00002",
    "https://huggingface.co/papers/2402.00002",
    "arXiv:2402.00002v1",
])
async def test_a_pasted_link_opens_the_card(bot: BotUnderTest, link: str) -> None:
    s = bot.server
    reader = s.user("Reader")
    [card] = await said(bot, s.private_chat(reader), reader, link)
    title = (await bot.deps.archive.get_paper("2402.00002"))
    assert title is not None
    assert title.paper.title in card


async def test_a_link_to_a_paper_not_in_the_archive_says_so(bot: BotUnderTest) -> None:
    s = bot.server
    reader = s.user("Reader", language_code="zh")
    chat = s.private_chat(reader)
    [answer] = await said(bot, chat, reader, "https://arxiv.org/abs/2409.99999v3")
    assert "2409.99999" in answer
    assert "资料库中（还）没有" in answer
    sent = s.sent_to(chat.id)[-1]
    assert "https://arxiv.org/abs/2409.99999" in (sent.text or "")


async def test_groups_are_answered_only_when_addressed(bot: BotUnderTest,
                                                       botapi: FakeBotApi) -> None:
    s = bot.server
    member = s.user("Member")
    group = s.add_chat(s.supergroup("Reading group"))
    s.set_bot_status(group, "administrator")  # an admin bot sees every message
    assert await said(bot, group, member, "teapot") == []
    assert await said(bot, group, member, "https://arxiv.org/abs/2402.00002") == []
    answered = await said(bot, group, member, f"@{s.bot.username} teapot")
    assert answered
    assert "teapot" in answered[0]
    bot_message = s.sent_to(group.id)[-1]
    [card] = await said(bot, group, member, "this one: 2402.00002",
                        reply_to_message_id=bot_message.message_id)
    paper = await bot.deps.archive.get_paper("2402.00002")
    assert paper is not None
    assert paper.paper.title in card


async def test_the_bibtex_button_sends_a_copyable_entry(bot: BotUnderTest) -> None:
    s = bot.server
    reader = s.user("Reader")
    chat = s.private_chat(reader)
    s.send_command(chat, reader, "/paper 2402.00002")
    await bot.settle()
    card = s.sent_to(chat.id)[-1]
    s.press_button(chat, reader, card.message_id, "bx:2402.00002")
    await bot.settle()
    sent = s.sent_to(chat.id)[-1]
    assert (sent.text or "").startswith("<pre>@misc{")
    [entry] = bibtexparser.loads(sent.plain_text or "").entries
    assert (entry["eprint"], entry["archiveprefix"]) == ("2402.00002", "arXiv")
    paper = await bot.deps.archive.get_paper("2402.00002")
    assert paper is not None
    assert entry["author"] == " and ".join(paper.paper.authors)
