"""Chats, their subscriptions and settings, saved searches and pending confirmations:
the bot's own state.

Saved searches and confirmations expire on the database's clock, so every process of
one bot agrees on what has expired.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import date, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.chat_settings import hhmm, language, mode_of, style_of, time_of, zone_of
from bot.domain.models import Chat
from bot.storage.engine import database_now
from bot.storage.session import Repository
from bot.storage.tables import ChatRow, ConfirmationRow, SavedQueryRow, SubscriptionRow

SAVED_QUERY_TTL: Final = timedelta(days=7)
"""How long a search's ◀ ▶ buttons work after the search was last run."""

SETTING_FIELDS = frozenset({"mode", "daily_time", "timezone", "include", "exclude", "style",
                            "lang", "thread_id", "title", "kind", "silent", "paused",
                            "weekly"})


def _to_chat(row: ChatRow, tags: Iterable[str]) -> Chat:
    """The row's strings as the domain's types: the one place they are converted."""
    return Chat(
        chat_id=row.chat_id, kind=row.kind, title=row.title, active=row.active,
        all_topics=row.all_topics, tags=tuple(sorted(tags, key=str.casefold)),
        thread_id=row.thread_id, mode=mode_of(row.mode), daily_time=time_of(row.daily_time),
        timezone=zone_of(row.timezone), include=tuple(row.include or ()),
        exclude=tuple(row.exclude or ()), style=style_of(row.style),
        lang=language(row.lang), disabled_reason=row.disabled_reason,
        silent=bool(row.silent), paused=bool(row.paused), weekly=bool(row.weekly),
    )


def _column(name: str, value: Any) -> Any:
    """A setting as its column stores it (a time as HH:MM, a zone by its IANA name)."""
    if isinstance(value, time):
        return hhmm(value)
    if isinstance(value, ZoneInfo):
        return value.key
    if name in ("include", "exclude"):
        return list(value)
    return value


class ChatRepo(Repository):
    """Every public method is its own transaction and returns the chat as it now is."""

    @staticmethod
    async def _load(session: AsyncSession, chat_id: int) -> Chat | None:
        row = await session.get(ChatRow, chat_id)
        if row is None:
            return None
        tags = await session.scalars(
            select(SubscriptionRow.tag).where(SubscriptionRow.chat_id == chat_id)
        )
        return _to_chat(row, tags)

    async def get(self, chat_id: int) -> Chat | None:
        async with self._read() as session:
            return await self._load(session, chat_id)

    async def ensure(self, chat_id: int, kind: str, title: str = "", lang: str = "en") -> Chat:
        """The chat, created with defaults on first contact.

        Read first: every command and button press calls this, and a write transaction
        for a chat that exists and has not changed would queue every handler of the bot
        behind SQLite's one writer.
        """
        known = await self.get(chat_id)
        if known is not None and (not title or (known.title, known.kind) == (title, kind)):
            return known
        async with self._write() as session:
            row = await session.get(ChatRow, chat_id)
            if row is None:
                session.add(ChatRow(chat_id=chat_id, kind=kind, title=title, active=True,
                                    all_topics=False, mode="instant", include=[], exclude=[],
                                    style="full", lang=lang))
            elif title and (row.title != title or row.kind != kind):
                row.title, row.kind = title, kind
            await session.flush()
            chat = await self._load(session, chat_id)
            assert chat is not None
            return chat

    async def subscribe(self, chat_id: int, tags: Iterable[str] = (), *,
                        everything: bool = False, thread_id: int | None = None) -> Chat:
        """Follow these tags (or everything); cards go to `thread_id` in forum groups."""
        async with self._write() as session:
            values: dict[str, Any] = {"active": True, "disabled_reason": None,
                                      "thread_id": thread_id}
            if everything:
                values["all_topics"] = True
                await session.execute(delete(SubscriptionRow)
                                      .where(SubscriptionRow.chat_id == chat_id))
            await session.execute(update(ChatRow).where(ChatRow.chat_id == chat_id)
                                  .values(**values))
            existing = set(await session.scalars(
                select(SubscriptionRow.tag).where(SubscriptionRow.chat_id == chat_id)))
            for tag in dict.fromkeys(tags):
                if tag not in existing:
                    session.add(SubscriptionRow(chat_id=chat_id, tag=tag))
            await session.flush()
            chat = await self._load(session, chat_id)
            assert chat is not None
            return chat

    async def unsubscribe(self, chat_id: int, tags: Iterable[str] = (), *,
                          everything: bool = False) -> Chat:
        """Stop following these tags, or everything."""
        async with self._write() as session:
            condition = SubscriptionRow.chat_id == chat_id
            if everything:
                await session.execute(update(ChatRow).where(ChatRow.chat_id == chat_id)
                                      .values(all_topics=False))
                await session.execute(delete(SubscriptionRow).where(condition))
            else:
                await session.execute(delete(SubscriptionRow).where(
                    condition, SubscriptionRow.tag.in_(list(tags))))
            chat = await self._load(session, chat_id)
            assert chat is not None
            return chat

    async def set_subscription(self, chat_id: int, tags: Iterable[str], *,
                               everything: bool, thread_id: int | None) -> Chat:
        """Replace the whole choice at once (the toggle keyboard's result)."""
        async with self._write() as session:
            await session.execute(delete(SubscriptionRow).where(SubscriptionRow.chat_id == chat_id))
            await session.execute(update(ChatRow).where(ChatRow.chat_id == chat_id).values(
                all_topics=everything, thread_id=thread_id))
            if not everything:
                for tag in dict.fromkeys(tags):
                    session.add(SubscriptionRow(chat_id=chat_id, tag=tag))
            await session.flush()
            chat = await self._load(session, chat_id)
            assert chat is not None
            return chat

    async def update_settings(self, chat_id: int, **values: Any) -> Chat:
        """Change settings (mode, daily_time, timezone, include, exclude, style, lang…)."""
        unknown = set(values) - SETTING_FIELDS
        if unknown:
            raise ValueError(f"not chat settings: {sorted(unknown)}")
        values = {name: _column(name, value) for name, value in values.items()}
        async with self._write() as session:
            await session.execute(update(ChatRow).where(ChatRow.chat_id == chat_id)
                                  .values(**values))
            chat = await self._load(session, chat_id)
            if chat is None:
                raise KeyError(chat_id)
            return chat

    async def roundups_from(self, chat_id: int, week: date) -> None:
        """The chat's roundups start after ``week``: it just opted in (or back in), and
        the roundup of a week already begun would come at once."""
        async with self._write(lock=False) as session:
            await session.execute(update(ChatRow).where(ChatRow.chat_id == chat_id)
                                  .values(roundup_week=week))

    async def deactivate(self, chat_id: int, reason: str) -> None:
        """Telegram said the chat is gone: stop sending until it talks to us again."""
        async with self._write() as session:
            await session.execute(update(ChatRow).where(ChatRow.chat_id == chat_id)
                                  .values(active=False, disabled_reason=reason))

    async def reactivate(self, chat_id: int) -> None:
        async with self._write() as session:
            await session.execute(update(ChatRow).where(ChatRow.chat_id == chat_id)
                                  .values(active=True, disabled_reason=None))

    async def migrate(self, old_id: int, new_id: int) -> Chat | None:
        """A group became a supergroup: its subscription moves to the new id."""
        async with self._write() as session:
            old = await self._load(session, old_id)
            if old is None:
                return None
            if await session.get(ChatRow, new_id) is not None:
                await session.execute(delete(ChatRow).where(ChatRow.chat_id == new_id))
            values = {f.name: _column(f.name, getattr(old, f.name)) for f in fields(Chat)
                      if f.name not in ("chat_id", "tags")}
            session.add(ChatRow(chat_id=new_id, **{**values, "kind": "supergroup"}))
            await session.flush()
            for tag in old.tags:
                session.add(SubscriptionRow(chat_id=new_id, tag=tag))
            await session.execute(delete(ChatRow).where(ChatRow.chat_id == old_id))
            await session.flush()
            return await self._load(session, new_id)

    async def subscribers(self, *, roundups_only: bool = False) -> list[Chat]:
        """Active chats that follow something; ``roundups_only``: of those, the ones that
        asked for the weekly roundup and are not paused (a few, read hourly: not every
        subscriber's row)."""
        async with self._read() as session:
            wanted = select(ChatRow).where(ChatRow.active.is_(True))
            tags = select(SubscriptionRow.chat_id, SubscriptionRow.tag)
            if roundups_only:
                wanted = wanted.where(ChatRow.weekly.is_(True), ChatRow.paused.is_(False))
                tags = tags.join(ChatRow, ChatRow.chat_id == SubscriptionRow.chat_id).where(
                    ChatRow.weekly.is_(True), ChatRow.paused.is_(False))
            rows = (await session.scalars(wanted)).all()
            subs: dict[int, list[str]] = {}
            for chat_id, tag in await session.execute(tags):
                subs.setdefault(chat_id, []).append(tag)
            chats = [_to_chat(row, subs.get(row.chat_id, ())) for row in rows]
            return [chat for chat in chats if chat.subscribed]

    async def counts(self) -> dict[str, int]:
        """Chats by state, for /stats."""
        async with self._read() as session:
            total = await session.scalar(select(func.count()).select_from(ChatRow)) or 0
            inactive = await session.scalar(
                select(func.count()).select_from(ChatRow).where(ChatRow.active.is_(False))) or 0
            # Counted in SQL: loading every subscriber (10 000 rows) to count them was the
            # most /stats cost.
            follows = exists().where(SubscriptionRow.chat_id == ChatRow.chat_id)
            subscribed = await session.scalar(
                select(func.count()).select_from(ChatRow).where(
                    ChatRow.active.is_(True), or_(ChatRow.all_topics.is_(True), follows))) or 0
        return {"chats": total, "subscribed": subscribed, "inactive": inactive}

    async def counts_by_kind(self) -> dict[str, int]:
        """Chats per kind (private, group, supergroup, channel), for /stats."""
        async with self._read() as session:
            rows = await session.execute(
                select(ChatRow.kind, func.count()).group_by(ChatRow.kind))
            return {kind: count for kind, count in rows.all()}

    async def save_query(self, chat_id: int, text: str) -> int:
        """Remember a search so paging buttons carry only its id.

        The same search run again in the same chat reuses its row (and its buttons live
        on); expired rows of every chat are removed on the way.
        """
        async with self._write() as session:
            now = await database_now(session)
            await session.execute(delete(SavedQueryRow).where(or_(
                SavedQueryRow.used_at.is_(None), SavedQueryRow.used_at < now - SAVED_QUERY_TTL)))
            row = await session.scalar(select(SavedQueryRow).where(
                SavedQueryRow.chat_id == chat_id, SavedQueryRow.text == text).limit(1))
            if row is None:
                row = SavedQueryRow(chat_id=chat_id, text=text)
                session.add(row)
            row.used_at = now
            await session.flush()
            return row.id

    async def saved_query(self, query_id: int, chat_id: int) -> str | None:
        """The search behind a paging button, if it is this chat's and has not expired."""
        async with self._read() as session:
            row = await session.get(SavedQueryRow, query_id)
            if row is None or row.chat_id != chat_id or row.used_at is None:
                return None
            if row.used_at < await database_now(session) - SAVED_QUERY_TTL:
                return None
            return row.text

    async def ask(self, action: str, user_id: int, payload: Mapping[str, Any],
                  ttl: timedelta) -> str:
        """Store a question that ``user_id`` answers with a button; returns its token.

        Expired questions are removed on the way.
        """
        token = secrets.token_hex(8)
        async with self._write() as session:
            now = await database_now(session)
            await session.execute(delete(ConfirmationRow).where(
                ConfirmationRow.expires_at < now))
            session.add(ConfirmationRow(token=token, action=action, user_id=user_id,
                                        payload=dict(payload), expires_at=now + ttl))
        return token

    async def answer(self, token: str, action: str, user_id: int) -> dict[str, Any] | None:
        """Take the question behind a button: its payload once, to its asker only, before
        it expires; None otherwise (twice pressed, another person, too late)."""
        async with self._write() as session:
            row = await session.get(ConfirmationRow, token)
            if row is None or row.action != action or row.user_id != user_id:
                return None
            payload, expired = dict(row.payload), row.expires_at < await database_now(session)
            taken = await session.execute(delete(ConfirmationRow).where(
                ConfirmationRow.token == token))
            if expired or not getattr(taken, "rowcount", 0):
                return None
            return payload
