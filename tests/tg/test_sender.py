"""TelegramSender over the real python-telegram-bot Bot, against the fake Bot API.

Why: the sender is where Telegram's answers become delivery decisions, so it is tested
with what Telegram (as faked by tests/tg) really answers, not with mocks; and the
broadcast test checks that delivery plus the bot's own rate limiter stay inside Telegram's
flood limits, which only an end-to-end run can show.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot

from bot.domain.models import Appearance, ArchivedPaper, Chat, Paper
from bot.domain.rendering import Button, plain_text, render_card
from bot.errors import ChatGone, ChatPaused
from bot.services.delivery import Delivery
from bot.services.ports import (
    ChatMigrated,
    FloodWait,
    MessageRejected,
    Outgoing,
    SystemClock,
    TransientSendError,
)
from bot.storage.chats import ChatRepo
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.outbox import OutboxRepo
from bot.storage.repository import ArchiveRepo
from bot.tg.ratelimit import rate_limiter
from bot.tg.sender import TelegramSender
from tests.botapi.faults import FloodControl, ManualClock
from tests.botapi.ptb_harness import builder_for
from tests.botapi.server import FakeBotApi, FakeChat
from tests.storage.factories import make_digest, make_paper, state_of
from tests.tg.delivery_support import assert_paced

FIGURE = "https://example.org/figures/teaser.png"


def make_bot(server: FakeBotApi) -> Bot:
    return Bot(server.token, base_url=server.base_url, base_file_url=server.base_file_url)


def private(server: FakeBotApi, name: str = "Alice") -> FakeChat:
    return server.add_chat(server.private_chat(server.user(name)))


def as_chat(fake: FakeChat, thread_id: int | None = None) -> Chat:
    kind = "private" if fake.type == "private" else fake.type
    return Chat(chat_id=fake.id, kind=kind, thread_id=thread_id)


def card_message(**changes: Any) -> Outgoing:
    paper = Paper(
        arxiv_id="2406.01234", version=2, title="Splats & <friends>: fast fields",
        authors=("Ada Lovelace", "Alan Turing"), abstract="We study splats.",
        abs_url="https://arxiv.org/abs/2406.01234v2", pdf_url="https://arxiv.org/pdf/2406.01234v2",
        summary="快速。", analysis="Some **analysis**.", figures=(FIGURE,),
    )
    archived = ArchivedPaper(paper, (Appearance("2024-06-01/3DGS.md", "3DGS", date(2024, 6, 1)),))
    card = render_card(archived, blog_base_url="https://blog.example.org")
    message = Outgoing(html=card.html, plain_fallback=plain_text(card.html),
                       preview_url=card.preview_url, buttons=card.buttons)
    return replace(message, **changes)


# --------------------------------------------------------------------------- one message


async def test_a_card_arrives_with_html_preview_buttons_and_thread(botapi: FakeBotApi) -> None:
    forum = botapi.add_chat(botapi.supergroup("Lab", forum=True))
    thread = botapi.add_topic(forum, "Papers")
    message = card_message()
    assert message.html is not None
    async with make_bot(botapi) as bot:
        message_id = await TelegramSender(bot).send(as_chat(forum, thread), message)
    sent = botapi.last_sent(forum.id)
    assert sent.message_id == message_id
    assert (sent.text, sent.parse_mode, sent.message_thread_id) == (message.html, "HTML", thread)
    assert sent.plain_text is not None
    assert sent.plain_text.startswith("Splats & <friends>")
    assert sent.link_preview_options == {
        "url": FIGURE, "show_above_text": True, "prefer_large_media": True}
    assert [[(b["text"], b.get("url") or b.get("callback_data")) for b in row]
            for row in (sent.reply_markup or {})["inline_keyboard"]] == [
        [("📖 Analysis", "an:2406.01234"), ("🖼 Figures (1)", "fg:2406.01234"),
         ("☆ Save", "sv:2406.01234"), ("🔗 Related", "rl:2406.01234")],
        [("BibTeX", "bx:2406.01234"), ("arXiv", "https://arxiv.org/abs/2406.01234v2"),
         ("📄 PDF", "https://arxiv.org/pdf/2406.01234v2"),
         ("📝 Blog", "https://blog.example.org/2024-06-01/3DGS/")],
    ]
    assert botapi.errors() == []


async def test_no_figure_disables_the_preview_and_plain_goes_without_parse_mode(
    botapi: FakeBotApi,
) -> None:
    chat = private(botapi)
    async with make_bot(botapi) as bot:
        sender = TelegramSender(bot)
        await sender.send(as_chat(chat), card_message(preview_url=None, buttons=()))
        first = botapi.last_sent(chat.id)
        await sender.send(as_chat(chat), card_message().as_plain())
        plain = botapi.last_sent(chat.id)
    assert first.link_preview_options == {"is_disabled": True}
    assert first.reply_markup is None
    assert plain.parse_mode is None
    assert plain.reply_markup is None
    assert plain.text == card_message().plain_fallback
    assert plain.link_preview_options == {"is_disabled": True}


async def test_gone_chats_raise_chat_gone(botapi: FakeBotApi) -> None:
    blocked, deactivated = private(botapi, "B"), private(botapi, "D")
    forgotten = private(botapi, "F")
    kicked = botapi.add_chat(botapi.supergroup("Kicked us"))
    botapi.block(blocked)
    botapi.deactivate(deactivated)
    botapi.forget_chat(forgotten)
    botapi.kick_bot(kicked)
    expected = {
        blocked.id: "Forbidden: bot was blocked by the user",
        deactivated.id: "Forbidden: user is deactivated",
        forgotten.id: "Chat not found",
        kicked.id: "Forbidden: bot was kicked from the supergroup chat",
    }
    async with make_bot(botapi) as bot:
        sender = TelegramSender(bot)
        for fake in (blocked, deactivated, forgotten, kicked):
            with pytest.raises(ChatGone) as gone:
                await sender.send(as_chat(fake), card_message())
            assert (gone.value.chat_id, gone.value.reason) == (fake.id, expected[fake.id])


async def test_a_closed_topic_or_a_missing_right_raises_chat_paused(botapi: FakeBotApi) -> None:
    forum = botapi.add_chat(botapi.supergroup("Club", forum=True))
    topic = botapi.add_topic(forum)
    botapi.close_topic(forum, topic)
    muted = botapi.add_chat(botapi.supergroup("Muted"))
    botapi.set_bot_status(muted, "restricted", can_send_messages=False)
    async with make_bot(botapi) as bot:
        sender = TelegramSender(bot)
        with pytest.raises(ChatPaused, match=r"(?i)topic_closed"):
            await sender.send(as_chat(forum, topic), card_message())
        with pytest.raises(ChatPaused, match="thread not found"):
            await sender.send(as_chat(forum, topic + 1000), card_message())
        with pytest.raises(ChatPaused, match="rights"):
            await sender.send(as_chat(muted), card_message())


async def test_a_migrated_group_raises_chat_migrated(botapi: FakeBotApi) -> None:
    group = botapi.add_chat(botapi.group("Old group"))
    supergroup = botapi.migrate_group(group, botapi.user("Admin"))
    async with make_bot(botapi) as bot:
        with pytest.raises(ChatMigrated) as migrated:
            await TelegramSender(bot).send(as_chat(group), card_message())
    assert (migrated.value.old_id, migrated.value.new_id) == (group.id, supergroup.id)


@pytest.mark.parametrize("fault", ["http_500", "http_502", "http_503", "drop"])
async def test_server_errors_and_lost_connections_are_transient(
    botapi: FakeBotApi, fault: str,
) -> None:
    chat = private(botapi)
    botapi.script_fault(fault, method="sendMessage")  # type: ignore[arg-type]
    async with make_bot(botapi) as bot:
        sender = TelegramSender(bot)
        with pytest.raises(TransientSendError):
            await sender.send(as_chat(chat), card_message())
        await sender.send(as_chat(chat), card_message())  # the next try goes through
    assert len(botapi.sent_to(chat.id)) == 1


@pytest.mark.parametrize(("html", "reason"), [
    ("<b>unclosed", "Can't parse entities"),
    ("x" * 4097, "Message is too long"),
    ("<b> </b>", "Message text is empty"),
])
async def test_messages_telegram_refuses_raise_message_rejected(
    botapi: FakeBotApi, html: str, reason: str,
) -> None:
    chat = private(botapi)
    async with make_bot(botapi) as bot:
        with pytest.raises(MessageRejected, match=reason):
            await TelegramSender(bot).send(as_chat(chat), Outgoing(html=html, plain_fallback="x"))


async def test_a_button_telegram_would_refuse_raises_message_rejected(
    botapi: FakeBotApi,
) -> None:
    chat = private(botapi)
    bad = Outgoing(html="<b>x</b>", plain_fallback="x",
                   buttons=((Button("too long", callback="an:" + "9" * 70),),))
    async with make_bot(botapi) as bot:
        with pytest.raises(MessageRejected, match="bad button"):
            await TelegramSender(bot).send(as_chat(chat), bad)
    assert botapi.calls("sendMessage") == []


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_429_that_gets_through_raises_flood_wait(manual_clock: ManualClock) -> None:
    async with FakeBotApi(clock=manual_clock, flood_control=FloodControl()) as server:
        chat = private(server)
        async with make_bot(server) as bot:  # no rate limiter: the 429 reaches the sender
            sender = TelegramSender(bot)
            await sender.send(as_chat(chat), card_message())
            with pytest.raises(FloodWait) as flood:
                await sender.send(as_chat(chat), card_message())
    assert flood.value.seconds == 1.0


# --------------------------------------------------------------------------- broadcast


@dataclass
class Stack:
    archive: ArchiveRepo
    chats: ChatRepo
    outbox: OutboxRepo


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    engine: AsyncEngine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'broadcast.db'}")
    await migrate(engine)
    sessions = make_sessionmaker(engine)
    yield Stack(ArchiveRepo(sessions), ChatRepo(sessions), OutboxRepo(sessions))
    await engine.dispose()


async def _broadcast(server: FakeBotApi, stack: Stack, chats: list[FakeChat], *papers: Paper,
                     repost: bool, chat_buffer: int = 64) -> int:
    """Subscribe the chats, publish the papers, enqueue and drain; the rows queued."""
    for fake in chats:
        await stack.chats.ensure(fake.id, "private")
        await stack.chats.subscribe(fake.id, ["NeRF"])
    digest = make_digest("NeRF", date(2024, 6, 1), papers)
    result = await stack.archive.store_digest(digest, state_of(digest))
    app = builder_for(server).rate_limiter(rate_limiter()).build()
    async with app:
        delivery = Delivery(stack.archive, stack.chats, stack.outbox, TelegramSender(app.bot),
                            SystemClock(), default_tz="UTC", default_daily_time=time(9, 0),
                            blog_base_url=None, owner="test", workers=16,
                            chat_buffer=chat_buffer)
        if repost:
            queued = await delivery.enqueue_repost(
                await stack.archive.get_papers([p.arxiv_id for p in papers]))
        else:
            queued = await delivery.enqueue_new(
                [(a, result.path) for a in result.new_appearances])
        report = await delivery.drain()
    assert (report.sent, report.failed, report.pending_left) == (queued, 0, 0)
    return queued


async def test_broadcast_to_200_chats_within_flood_limits(stack: Stack) -> None:
    async with FakeBotApi() as server:
        flood = server.enable_flood_control()
        chats = [private(server, f"user{i}") for i in range(200)]
        queued = await _broadcast(server, stack, chats, make_paper("2406.00001"),
                                           repost=True)
        assert queued == 200
        for fake in chats:  # exactly once each
            assert [(m.plain_text or "")[:16] for m in server.sent_to(fake.id)] == [
                "Paper 2406.00001"]
        assert_paced(flood, accepted=len(server.sent))
        assert [c.method for c in server.errors()] == ["sendMessage"] * flood.rejected
        # Paced, not bursting: 200 messages at Telegram's 30 a second take over 6.6 s.
        first, last = server.sent[0].at, server.sent[-1].at
        assert last - first >= (queued - 1) / 30 - 0.1, (first, last)
    server.assert_healthy()


async def test_headers_and_cards_to_one_chat_are_paced(stack: Stack) -> None:
    async with FakeBotApi() as server:
        flood = server.enable_flood_control()
        chats = [private(server, f"user{i}") for i in range(20)]
        queued = await _broadcast(server, stack, chats, make_paper("2406.00001"),
                                     make_paper("2406.00002"), repost=False,
                                     chat_buffer=2)  # two passes: the pacing spans them
        assert queued == 20 * 3
        for fake in chats:
            sent = server.sent_to(fake.id)
            assert [(m.plain_text or "").split("\n")[0].split(" ·")[0] for m in sent] == [
                "📚 NeRF", "Paper 2406.00001", "Paper 2406.00002"]
            assert all(b.at - a.at >= 1.0 for a, b in itertools.pairwise(sent))
        assert_paced(flood, accepted=len(server.sent))
    server.assert_healthy()
