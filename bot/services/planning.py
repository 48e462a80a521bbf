"""Planning deliveries: which chats get which papers, in what order and when.

:meth:`Planner.enqueue_new` (after an ingest) and :meth:`Planner.enqueue_repost` (an
operator's command) write outbox rows: per chat, one header per digest, then one card
per paper in digest order, due now or, for daily chats, at their next daily time. A chat
gets a paper once, whatever the topics, days or versions it shows up in (the outbox's
unique index is the guarantee). What is queued follows the chat: a new delivery time
moves it (:meth:`Planner.reschedule`), an unsubscription cancels it
(:meth:`Planner.unfollowed`). Sending is bot.services.drain's job; the two share only
the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from bot.domain.matching import wants
from bot.domain.models import ArchivedPaper, Chat, IngestReport
from bot.services.ports import Clock
from bot.storage.chats import ChatRepo
from bot.storage.loading import chunked
from bot.storage.outbox import NewDelivery, OutboxRepo
from bot.storage.records import DigestPapers
from bot.storage.repository import ArchiveRepo

__all__ = ["CHATS_PER_ENQUEUE", "HELD", "LIST_BACKLOG_OVER", "Planner", "next_daily"]

log = logging.getLogger(__name__)

CHATS_PER_ENQUEUE: Final = 200  # chats planned and written per transaction
HELD: Final = datetime(9999, 1, 1, tzinfo=UTC)
"""The due time of a paused chat's rows: never, until it resumes."""
LIST_BACKLOG_OVER: Final = 10
"""A chat resuming with more papers than this waiting gets them as lists (one message per
digest, a line and a button per paper) instead of a card each."""


def next_daily(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first instant at or after ``now`` when the wall clock in ``tz`` shows ``at``, in UTC.

    Computed from the local calendar date, never by adding 24 hours, so it stays right
    across DST changes. A time that falls in a spring-forward gap is read with the
    offset before the change (02:30 becomes 03:30); an ambiguous autumn time is its
    first occurrence.
    """
    local = now.astimezone(tz)
    for days in range(3):
        wall = datetime.combine(local.date() + timedelta(days=days), at.replace(tzinfo=None),
                                tzinfo=tz)
        candidate = wall.astimezone(UTC)
        if candidate >= now:
            return candidate
    raise AssertionError("unreachable: a wall-clock time occurs within three days")


def _interleave(plans: Sequence[Sequence[NewDelivery]]) -> list[NewDelivery]:
    """Round-robin over chats (each chat's rows keep their order), so that one page of the
    outbox spans many chats and the workers have many chats to serve at once."""
    out: list[NewDelivery] = []
    longest = max((len(p) for p in plans), default=0)
    for i in range(longest):
        out.extend(plan[i] for plan in plans if i < len(plan))
    return out


@dataclass(frozen=True, slots=True)
class _Group:
    """Papers to deliver under one header (``path`` None: bare papers, no header)."""

    path: str | None
    topic: str
    day: date | None
    papers: tuple[ArchivedPaper, ...]


def _groups(papers: Sequence[DigestPapers] | Sequence[ArchivedPaper]) -> list[_Group]:
    """Digests keep their header; bare papers go together without one."""
    groups: list[_Group] = []
    loose: list[ArchivedPaper] = []
    for item in papers:
        if isinstance(item, DigestPapers):
            if item.papers:
                groups.append(_Group(item.path, item.topic, item.date, item.papers))
        else:
            loose.append(item)
    if loose:
        groups.append(_Group(None, "", None, tuple(loose)))
    return groups


class Planner:
    """Writes outbox rows for new papers and reposts, and keeps queued rows in step with
    each chat's settings."""

    def __init__(self, archive: ArchiveRepo, chats: ChatRepo, outbox: OutboxRepo,
                 clock: Clock, *, default_tz: str, default_daily_time: time) -> None:
        self._archive = archive
        self._chats = chats
        self._outbox = outbox
        self._clock = clock
        self._default_tz = ZoneInfo(default_tz)
        self._default_time = default_daily_time

    def due_time(self, chat: Chat, now: datetime, *, repost: bool = False) -> datetime:
        """When a paper is due for this chat: now, or its next daily time (a repost is
        due now); never while the chat is paused."""
        if chat.paused:
            return HELD
        if not chat.scheduled or repost:
            return now
        return next_daily(now, chat.daily_time or self._default_time,
                          chat.timezone or self._default_tz)

    async def enqueue_new(
        self, report: IngestReport | Iterable[tuple[str, str]]
    ) -> int:
        """Queue what an ingest newly listed, for every chat that wants it; rows written.

        ``report`` is an IngestReport or its ``new_appearances`` ((arXiv id, digest
        path) pairs). A chat gets papers from digests whose topic it follows (or all),
        filtered by its keywords; a paper listed in several of them comes once, under
        the first digest (by date, then topic), with all its tags on the card. A digest
        that arrives late (files come days or weeks after their date, in batches) is
        news all the same: what decides is that the archive did not list it before.
        """
        pairs = report.new_appearances if isinstance(report, IngestReport) else list(report)
        wanted: dict[str, set[str]] = {}
        for arxiv_id, path in pairs:
            wanted.setdefault(path, set()).add(arxiv_id)
        if not wanted:
            return 0
        chats = await self._chats.subscribers()
        if not chats:
            return 0
        groups: list[_Group] = []
        for path in sorted(wanted):
            digest = await self._archive.digest_papers(path)
            if digest is None:
                continue
            papers = tuple(p for p in digest.papers if p.arxiv_id in wanted[path])
            if papers:
                groups.append(_Group(digest.path, digest.topic, digest.date, papers))
        groups.sort(key=lambda g: (g.day or date.min, g.topic.casefold(), g.path or ""))
        return await self._enqueue(chats, groups, reason="new", follow=True)

    async def announce_pending(self) -> int:
        """Queue every stored appearance not yet announced; rows written.

        Called after each scan, so also at start: what an ingest stored is queued here
        even when the process died between that ingest and its queueing, or when the
        ingest was `paperfeed ingest` on the command line. Queueing is idempotent, so
        rows written before such a crash are not written twice. A listing (paper, topic,
        day) announced before, under whatever file, is not announced again: a folder
        that vanished and came back sends nobody anything.
        """
        pending = await self._archive.unannounced()
        if not pending:
            return 0
        repeats = await self._archive.announced_before(pending)
        if repeats:
            log.info("%d listings were announced before (a digest file restored, renamed or "
                     "synced again): not sent again", len(repeats))
        written = await self.enqueue_new((a.arxiv_id, a.digest_path) for a in pending
                                         if a.id not in repeats)
        await self._archive.mark_announced([a.id for a in pending])
        return written

    async def reschedule(self, chat: Chat) -> int:
        """The chat switched between instant and daily, or moved its time or time zone:
        its queued new papers follow (due now, or at its next daily time)."""
        moved = await self._outbox.reschedule_chat(chat.chat_id,
                                                   self.due_time(chat, self._clock.now()))
        if moved:
            log.info("chat %d changed its delivery time: %d queued rows follow", chat.chat_id,
                     moved)
        return moved

    def roundup_time(self, chat: Chat, now: datetime) -> tuple[date, datetime]:
        """This week's Monday in the chat's time zone, and the moment of its roundup:
        that Monday at the chat's daily time (in UTC)."""
        tz = chat.timezone or self._default_tz
        local = now.astimezone(tz)
        monday = local.date() - timedelta(days=local.weekday())
        at = datetime.combine(monday, (chat.daily_time or self._default_time)
                              .replace(tzinfo=None), tzinfo=tz)
        return monday, at.astimezone(UTC)

    async def plan_roundups(self) -> int:
        """Queue the weekly roundup of every opted-in chat whose Monday time has come and
        that has not had this week's; called every hour. A paused chat gets none (it
        would be stale by the time it resumes). Returns how many were queued."""
        now = self._clock.now()
        queued = 0
        for chat in await self._chats.subscribers(roundups_only=True):
            monday, at = self.roundup_time(chat, now)
            if now >= at and await self._outbox.enqueue_roundup(chat.chat_id, monday,
                                                                now=now):
                queued += 1
        if queued:
            log.info("queued the weekly roundup of %d chats", queued)
        return queued

    async def weekly_on(self, chat: Chat) -> None:
        """The chat opted into roundups: the first is next Monday's, not this week's."""
        monday, _ = self.roundup_time(chat, self._clock.now())
        await self._chats.roundups_from(chat.chat_id, monday)

    async def pause(self, chat: Chat) -> int:
        """The chat paused: everything queued for it waits, reposts included, and what
        arrives meanwhile is queued as held (see :meth:`due_time`). Rows held."""
        held = await self._outbox.reschedule_chat(chat.chat_id, HELD, reposts=True)
        log.info("chat %d paused its deliveries: %d queued rows wait", chat.chat_id, held)
        return held

    async def resume(self, chat: Chat) -> tuple[int, bool]:
        """The chat resumed: what waited is due now (whatever the chat's mode: it asked
        for it), as lists when there are more than LIST_BACKLOG_OVER papers. Returns
        (papers waiting, whether they go as lists)."""
        waiting = await self._outbox.pending_cards(chat.chat_id)
        listed = waiting > LIST_BACKLOG_OVER
        if listed:
            await self._outbox.list_backlog(chat.chat_id)
        await self._outbox.reschedule_chat(chat.chat_id, self._clock.now(), reposts=True)
        log.info("chat %d resumed: %d papers waiting%s", chat.chat_id, waiting,
                 ", sent as lists" if listed else "")
        return waiting, listed

    async def unfollowed(self, chat: Chat) -> int:
        """The chat stopped following some topics (or changed its filters): its queued
        new papers that it no longer wants are cancelled now, not when they come due,
        and a digest header left without cards with them. A paper that another followed
        topic also lists stays. Returns how many rows were cancelled."""
        queued = [item for item in await self._outbox.for_chat(chat.chat_id, state="pending")
                  if item.reason == "new"]
        if not queued:
            return 0
        cards = [item for item in queued if item.kind == "card" and item.arxiv_id]
        papers = {p.arxiv_id: p for p in await self._archive.get_papers(
            [item.arxiv_id for item in cards if item.arxiv_id])}  # one read, not one per row
        dropped: list[int] = []
        kept: set[str | None] = set()
        for item in cards:
            paper = papers.get(item.arxiv_id or "")
            if paper is None or not wants(chat, paper):
                dropped.append(item.id)
            else:
                kept.add(item.digest_path)
        dropped += [item.id for item in queued
                    if item.kind == "header" and item.digest_path not in kept]
        cancelled = await self._outbox.cancel_many(dropped, "the chat no longer follows it")
        if cancelled:
            log.info("chat %d no longer follows %d queued rows: cancelled", chat.chat_id,
                     cancelled)
        return cancelled

    async def repost_audience(
        self, papers: Sequence[DigestPapers] | Sequence[ArchivedPaper]
    ) -> list[Chat]:
        """The subscribers a repost to "all" would reach, so the admin can confirm first."""
        groups = _groups(papers)
        now = self._clock.now()
        return [chat for chat in await self._chats.subscribers()
                if self._plan(chat, groups, reason="repost", follow=True, due=now)]

    async def enqueue_repost(
        self,
        papers: Sequence[DigestPapers] | Sequence[ArchivedPaper],
        chat_ids: Sequence[int] | None = None,
    ) -> int:
        """Queue papers again, even where they were delivered; rows written.

        Digests come with their header; bare papers without one. ``chat_ids`` None sends
        to every subscriber the papers concern (tags and filters as for new papers);
        named chats get everything (inactive or unknown ones are skipped). Due now, also
        for daily chats: a repost is an explicit request.
        """
        groups = _groups(papers)
        if not groups:
            return 0
        if chat_ids is None:
            chats = await self._chats.subscribers()
            return await self._enqueue(chats, groups, reason="repost", follow=True)
        named: list[Chat] = []
        for chat_id in dict.fromkeys(chat_ids):
            chat = await self._chats.get(chat_id)
            if chat is not None and chat.active:
                named.append(chat)
            else:
                log.info("repost: chat %d is unknown or inactive; skipped", chat_id)
        return await self._enqueue(named, groups, reason="repost", follow=False)

    def _plan(self, chat: Chat, groups: Sequence[_Group], *, reason: str, follow: bool,
              due: datetime) -> list[NewDelivery]:
        """A chat's rows: per group a header and the cards it wants, each paper once."""
        followed = {t.casefold() for t in chat.tags}
        seen: set[str] = set()
        rows: list[NewDelivery] = []
        for number, group in enumerate(groups, 1):
            if follow and group.path is not None and not (
                chat.all_topics or group.topic.casefold() in followed
            ):
                continue
            picks = [p for p in group.papers
                     if p.arxiv_id not in seen and (not follow or wants(chat, p))]
            if not picks:
                continue
            seen.update(p.arxiv_id for p in picks)
            if group.path is not None:
                meta = {"topic": group.topic,
                        "date": group.day.isoformat() if group.day else None}
                rows.append(NewDelivery(chat.chat_id, "header", reason, due,
                                        digest_path=group.path, meta=meta, group=number))
            rows.extend(NewDelivery(chat.chat_id, "card", reason, due, arxiv_id=p.arxiv_id,
                                    digest_path=group.path, group=number) for p in picks)
        return rows

    async def _enqueue(self, chats: Sequence[Chat], groups: Sequence[_Group], *, reason: str,
                       follow: bool) -> int:
        now = self._clock.now()
        written = 0
        for part in chunked(list(chats), CHATS_PER_ENQUEUE):
            plans = [self._plan(chat, groups, reason=reason, follow=follow,
                                due=self.due_time(chat, now, repost=reason != "new"))
                     for chat in part]
            rows = _interleave([plan for plan in plans if plan])
            if rows:
                written += await self._outbox.enqueue(rows, now=now)
        if written:
            log.info("queued %d %s deliveries for %d chats", written, reason, len(chats))
        return written

