"""Chats, subscriptions and settings on a real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.chats import SAVED_QUERY_TTL, ChatRepo
from bot.storage.engine import make_sessionmaker
from bot.storage.tables import ConfirmationRow, SavedQueryRow


@pytest.fixture
def chats(engine: AsyncEngine) -> ChatRepo:
    return ChatRepo(make_sessionmaker(engine))


async def test_first_contact_creates_defaults(chats: ChatRepo) -> None:
    chat = await chats.ensure(42, "private", "Ada", lang="zh")
    assert (chat.kind, chat.title, chat.lang, chat.mode, chat.style) == (
        "private", "Ada", "zh", "instant", "full")
    assert not chat.subscribed
    again = await chats.ensure(42, "private", "Ada L.")
    assert again.title == "Ada L."
    assert again.lang == "zh"  # settings survive


async def test_subscribe_tags_everything_and_back(chats: ChatRepo) -> None:
    await chats.ensure(1, "private")
    chat = await chats.subscribe(1, ["NeRF", "3DGS", "NeRF"])
    assert chat.tags == ("3DGS", "NeRF")
    chat = await chats.unsubscribe(1, ["NeRF"])
    assert chat.tags == ("3DGS",)
    chat = await chats.subscribe(1, everything=True)
    assert chat.all_topics
    assert chat.tags == ()
    chat = await chats.unsubscribe(1, everything=True)
    assert not chat.subscribed
    assert [c.chat_id for c in await chats.subscribers()] == []


async def test_forum_thread_is_remembered(chats: ChatRepo) -> None:
    await chats.ensure(-100, "supergroup", "Lab")
    chat = await chats.subscribe(-100, ["NeRF"], thread_id=7)
    assert chat.thread_id == 7


async def test_settings_update_and_reject_unknown(chats: ChatRepo) -> None:
    await chats.ensure(5, "private")
    chat = await chats.update_settings(5, mode="daily", daily_time=time(7, 30),
                                       timezone=ZoneInfo("Asia/Tokyo"),
                                       include=("gaussian",), style="compact")
    assert (chat.mode, chat.daily_time, chat.timezone, chat.include, chat.style) == (
        "daily", time(7, 30), ZoneInfo("Asia/Tokyo"), ("gaussian",), "compact")
    again = await chats.get(5)  # stored as text, read back as the domain's types
    assert again == chat
    with pytest.raises(ValueError, match="not chat settings"):
        await chats.update_settings(5, active=False)


async def test_deactivate_hides_from_subscribers_until_reactivated(chats: ChatRepo) -> None:
    await chats.ensure(9, "private")
    await chats.subscribe(9, everything=True)
    await chats.deactivate(9, "Forbidden: bot was blocked by the user")
    assert await chats.subscribers() == []
    gone = await chats.get(9)
    assert gone is not None
    assert gone.disabled_reason == "Forbidden: bot was blocked by the user"
    await chats.reactivate(9)
    assert [c.chat_id for c in await chats.subscribers()] == [9]


async def test_roundup_subscribers_are_the_weekly_unpaused_followers(chats: ChatRepo) -> None:
    for chat_id in (1, 2, 3, 4, 5):
        await chats.ensure(chat_id, "private")
    for chat_id in (1, 2, 3, 5):
        await chats.subscribe(chat_id, ["NeRF", "GAN"] if chat_id == 1 else ["3DGS"])
    for chat_id in (1, 2, 4, 5):
        await chats.update_settings(chat_id, weekly=True)
    await chats.update_settings(2, paused=True)
    await chats.deactivate(5, "Forbidden: bot was blocked by the user")
    # 2 paused, 3 not weekly, 4 follows nothing, 5 blocked the bot
    [one] = await chats.subscribers(roundups_only=True)
    assert one == await chats.get(1)
    assert one.tags == ("GAN", "NeRF")
    assert sorted(c.chat_id for c in await chats.subscribers()) == [1, 2, 3]


async def test_counts_say_how_many_chats_follow_something(chats: ChatRepo) -> None:
    for chat_id in (1, 2, 3, 4, 5):
        await chats.ensure(chat_id, "private")
    await chats.subscribe(1, everything=True)
    await chats.subscribe(2, ["NeRF", "GAN"])  # two rows, one chat
    await chats.subscribe(5, ["NeRF"])
    await chats.deactivate(5, "Forbidden: bot was blocked by the user")
    # 3 and 4 follow nothing; 5 blocked the bot
    assert await chats.counts() == {"chats": 5, "subscribed": 2, "inactive": 1}
    assert len(await chats.subscribers()) == 2


async def test_group_migration_keeps_the_subscription(chats: ChatRepo) -> None:
    await chats.ensure(-5, "group", "Reading group")
    await chats.subscribe(-5, ["NeRF", "GAN"])
    await chats.update_settings(-5, mode="daily")
    moved = await chats.migrate(-5, -1005)
    assert moved is not None
    assert (moved.chat_id, moved.kind, moved.tags, moved.mode) == (
        -1005, "supergroup", ("GAN", "NeRF"), "daily")
    assert await chats.get(-5) is None


async def test_saved_queries_round_trip(chats: ChatRepo) -> None:
    qid = await chats.save_query(1, 'tag:NeRF "neural fields"')
    assert await chats.saved_query(qid, 1) == 'tag:NeRF "neural fields"'
    assert await chats.saved_query(qid + 1000, 1) is None
    # The same search again reuses its row: buttons already sent keep working.
    assert await chats.save_query(1, 'tag:NeRF "neural fields"') == qid


async def test_a_saved_query_is_only_its_chats(chats: ChatRepo) -> None:
    """Paging buttons carry a number; another chat guessing it learns nothing."""
    qid = await chats.save_query(1, "secret project")
    assert await chats.saved_query(qid, 2) is None
    other = await chats.save_query(2, "secret project")
    assert other != qid
    assert await chats.saved_query(other, 2) == "secret project"


async def test_saved_queries_expire(chats: ChatRepo, engine: AsyncEngine) -> None:
    qid = await chats.save_query(1, "old search")
    async with make_sessionmaker(engine).begin() as session:  # a week and a bit ago
        await session.execute(update(SavedQueryRow).values(
            used_at=datetime.now(UTC) - SAVED_QUERY_TTL - timedelta(minutes=1)))
    assert await chats.saved_query(qid, 1) is None
    await chats.save_query(1, "new search")  # cleans expired rows on the way
    async with make_sessionmaker(engine)() as session:
        texts = (await session.scalars(select(SavedQueryRow.text))).all()
    assert texts == ["new search"]


async def test_confirmations_are_answered_once_by_their_asker(chats: ChatRepo) -> None:
    token = await chats.ask("repost", 7, {"args": ["2024-02-01"]}, timedelta(minutes=10))
    assert await chats.answer(token, "repost", 8) is None  # someone else
    assert await chats.answer(token, "other", 7) is None  # another kind of question
    assert await chats.answer(token, "repost", 7) == {"args": ["2024-02-01"]}
    assert await chats.answer(token, "repost", 7) is None  # answered already
    assert await chats.answer("nonsense", "repost", 7) is None


async def test_confirmations_expire_and_are_cleaned_up(chats: ChatRepo,
                                                       engine: AsyncEngine) -> None:
    late = await chats.ask("repost", 7, {}, timedelta(seconds=-1))  # expired at once
    assert await chats.answer(late, "repost", 7) is None
    stale = await chats.ask("repost", 7, {}, timedelta(seconds=-1))
    await chats.ask("repost", 7, {}, timedelta(minutes=10))
    async with make_sessionmaker(engine)() as session:
        assert await session.get(ConfirmationRow, stale) is None  # removed by the next ask


async def test_concurrent_answers_take_a_confirmation_once(chats: ChatRepo) -> None:
    token = await chats.ask("repost", 7, {"n": 1}, timedelta(minutes=10))
    answers = await asyncio.gather(*(chats.answer(token, "repost", 7) for _ in range(6)))
    assert [a for a in answers if a is not None] == [{"n": 1}]
