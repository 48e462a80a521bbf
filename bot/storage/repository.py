"""The archive repository: takes and returns domain objects, one transaction per call.

One paper per arXiv id, whatever the version. A digest lists papers; each listing is
an appearance with that digest's topic, date, summary and takeaways. Storing a file
again diffs it by arXiv id, and a paper no file lists any more leaves the archive.
What a store changes is decided in store_plan.py and written by store_writer.py, in a
fixed number of statements per batch of files.
"""

from __future__ import annotations

import datetime as dt
import difflib
import unicodedata
from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any, Final

from sqlalchemy import Date, Integer, cast, distinct, func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.domain.models import ArchivedPaper, Digest, SearchHit, SearchQuery, TagInfo
from bot.domain.query import normalize_arxiv_id
from bot.errors import UnknownTag
from bot.storage import search as fulltext
from bot.storage.engine import bulk_write, dialect_insert
from bot.storage.loading import archived_by_id, chunked, load_archived
from bot.storage.records import (
    Announcement,
    ArchiveStats,
    DigestPapers,
    FileState,
    StoreResult,
)
from bot.storage.session import Repository
from bot.storage.store_plan import FileChange
from bot.storage.store_writer import store_files
from bot.storage.tables import AppearanceRow, Base, DigestFileRow, PaperRow

__all__ = [
    "Announcement", "ArchiveRepo", "ArchiveStats", "DigestPapers", "FileState", "StoreResult",
]

EXPORT_BATCH: Final = 500

_papers = Base.metadata.tables["papers"]
_apps = Base.metadata.tables["appearances"]
_files = Base.metadata.tables["digest_files"]
_listings = Base.metadata.tables["announced_listings"]


def tag_fold(name: str) -> str:
    """What two spellings of a tag share: letters and digits, case-folded, NFKC.

    "Talking Head Generation", "talking head generation", "TalkingHeadGeneration" and
    "#talking-head-generation" all give "talkingheadgeneration"; "元宇宙_虚拟人" matches
    the tag "元宇宙/虚拟人".
    """
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


class ArchiveRepo(Repository):
    """Papers, digests and tags; every public method is its own transaction."""

    # files ----------------------------------------------------------------------------

    async def file_states(self) -> dict[str, FileState]:
        """Every file as last read, digest or not, by path: what the next scan compares to."""
        async with self._read() as session:
            rows = await session.execute(
                select(DigestFileRow.path, DigestFileRow.content_hash, DigestFileRow.size,
                       DigestFileRow.mtime_ns, DigestFileRow.skipped_reason)
            )
            return {
                r.path: FileState(r.path, r.content_hash, r.size, r.mtime_ns, r.skipped_reason)
                for r in rows
            }

    async def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        """Same content, new stat (touched, copied): remember the stat, read nothing."""
        async with self._write() as session:
            await session.execute(
                update(_files).where(_files.c.path == path).values(size=size, mtime_ns=mtime_ns)
            )

    async def record_skip(self, state: FileState) -> StoreResult:
        """Remember a file that is not a digest (or cannot be read) with its reason, so an
        unchanged one is not read again; papers it listed before lose that appearance."""
        async with self._write() as session:
            return (await store_files(session, [FileChange(state, None)]))[0]

    async def store_digest(self, digest: Digest, state: FileState) -> StoreResult:
        """Store a new or changed digest file (see the module docstring for the rules)."""
        return (await self.store_digests([(digest, state)]))[0]

    async def store_digests(
        self, files: Sequence[tuple[Digest | None, FileState]]
    ) -> list[StoreResult]:
        """Store many digest files in one transaction; results in the same order.

        The same as calling store_digest for each in turn (record_skip for a None
        digest: a file that is not one), but the statement count does not grow with the
        number of files: what a first ingest wants.
        """
        changes = []
        for digest, state in files:
            if digest is not None and digest.path != state.path:
                raise ValueError(f"digest {digest.path!r} stored under {state.path!r}")
            changes.append(FileChange(state, digest))
        if not changes:
            return []
        async with self._write() as session, bulk_write(session):
            return await store_files(session, changes)

    async def delete_file(self, path: str) -> StoreResult:
        """The file left the folder: its appearances go, and papers no file lists any more."""
        async with self._write() as session:
            state = FileState(path, "", 0, 0, None)
            return (await store_files(session, [FileChange(state, None, delete=True)]))[0]

    # announcements --------------------------------------------------------------------

    async def unannounced(self) -> list[Announcement]:
        """Appearances stored by an ingest that delivery has not queued yet, oldest first.

        An ingest writes its appearances unannounced in the same transaction as the
        papers; delivery marks them once their outbox rows exist. What a crash left in
        between is found here again.
        """
        async with self._read() as session:
            stmt = (
                select(_apps.c.id, _papers.c.arxiv_id, _apps.c.digest_path, _apps.c.topic,
                       _apps.c.date)
                .join(_papers, _papers.c.id == _apps.c.paper_id)
                .where(~_apps.c.announced)
                .order_by(_apps.c.id)
            )
            return [Announcement(r.id, r.arxiv_id, r.digest_path, r.topic, r.date)
                    for r in await session.execute(stmt)]

    async def announced_before(self, pending: Sequence[Announcement]) -> set[int]:
        """Of these appearances, those whose listing (paper, topic, day) was announced
        already, under any file: a restored, renamed or re-synced digest."""
        wanted = sorted({a.listing for a in pending if a.date is not None})
        known: set[tuple[str, str, dt.date | None]] = set()
        async with self._read() as session:
            for part in chunked(wanted):
                rows = await session.execute(
                    select(_listings.c.arxiv_id, _listings.c.topic, _listings.c.date).where(
                        tuple_(_listings.c.arxiv_id, _listings.c.topic,
                               _listings.c.date).in_(part)))
                known.update((r.arxiv_id, r.topic, r.date) for r in rows)
        return {a.id for a in pending if a.listing in known}

    async def mark_announced(self, ids: Sequence[int]) -> None:
        """Delivery has queued these appearances (or decided not to send them); their
        listings are remembered for good (see announced_before)."""
        async with self._write() as session:
            for part in chunked(sorted(set(ids))):
                await session.execute(
                    update(_apps).where(_apps.c.id.in_(part)).values(announced=True)
                )
                listed = (select(_papers.c.arxiv_id, _apps.c.topic, _apps.c.date)
                          .join(_papers, _papers.c.id == _apps.c.paper_id)
                          .where(_apps.c.id.in_(part)).distinct())
                rows = [{"arxiv_id": r.arxiv_id, "topic": r.topic, "date": r.date}
                        for r in await session.execute(listed)]
                if rows:
                    await session.execute(
                        dialect_insert(session, _listings).on_conflict_do_nothing(), rows)

    # papers ---------------------------------------------------------------------------

    async def get_paper(self, arxiv_id: str) -> ArchivedPaper | None:
        """The paper with this arXiv id (any version, an abs/pdf URL also works)."""
        papers = await self.get_papers([arxiv_id])
        return papers[0] if papers else None

    async def get_papers(self, arxiv_ids: Sequence[str]) -> list[ArchivedPaper]:
        """Papers by arXiv id, in the order asked; unknown ids are left out."""
        wanted = [_arxiv_key(a) for a in arxiv_ids]

        def run(session: Session) -> list[ArchivedPaper]:
            ids: dict[str, int] = {}
            for part in chunked(sorted(set(wanted))):
                rows = session.execute(
                    select(PaperRow.arxiv_id, PaperRow.id).where(PaperRow.arxiv_id.in_(part))
                )
                ids.update({r.arxiv_id: r.id for r in rows})
            found = [ids[a] for a in wanted if a in ids]
            by_id = archived_by_id(session, found)
            return [by_id[pid] for pid in dict.fromkeys(found) if pid in by_id]

        return await self._read_blocking(run)

    async def search(
        self, query: SearchQuery, limit: int = 10, offset: int = 0,
        count_up_to: int | None = None,
    ) -> tuple[list[SearchHit], int]:
        """Hits for one page and the total; tags are matched like resolve_tag (an unknown
        tag simply matches nothing: call resolve_tag first to offer suggestions).
        `count_up_to`: count only that far, and past this page (see search.search).
        Runs whole in a worker thread on SQLite (see Repository._read_blocking)."""

        def run(session: Session) -> tuple[list[SearchHit], int]:
            tagged = query
            if query.tags:
                canonical = _canonical_tags(session)
                tags = tuple(canonical.get(tag_fold(t), t) for t in query.tags)
                tagged = SearchQuery(query.text, tags, query.authors, query.arxiv_ids,
                                     query.since, query.until)
            return fulltext.search(session, tagged, limit=limit, offset=offset,
                                   count_up_to=count_up_to)

        return await self._read_blocking(run)

    async def papers_by_tag(
        self, tag: str, limit: int = 10, offset: int = 0
    ) -> tuple[list[ArchivedPaper], int]:
        """Papers listed under this tag, newest first, and how many there are."""
        hits, total = await self.search(SearchQuery(tags=(tag,)), limit, offset)
        return [hit.paper for hit in hits], total

    async def export(self, tag: str | None = None) -> AsyncIterator[ArchivedPaper]:
        """Every paper (or every paper of a tag) in archive order, read in batches; no
        transaction stays open while the caller handles a batch."""
        last_id = 0
        while True:
            async with self._read() as session:
                stmt = (select(PaperRow.id).where(PaperRow.id > last_id)
                        .order_by(PaperRow.id).limit(EXPORT_BATCH))
                if tag is not None:
                    canonical = await session.run_sync(_canonical_tags)
                    topic = canonical.get(tag_fold(tag), tag)
                    stmt = stmt.where(PaperRow.id.in_(
                        select(AppearanceRow.paper_id).where(AppearanceRow.topic == topic)))
                ids = list((await session.scalars(stmt)).all())
                papers = await load_archived(session, ids)
            for paper in papers:
                yield paper
            if len(ids) < EXPORT_BATCH:
                return
            last_id = ids[-1]

    # digests --------------------------------------------------------------------------

    async def latest_digest_date(self, tag: str | None = None) -> date | None:
        """The newest day with a non-empty digest (of this tag)."""
        return await self._read_blocking(lambda session: _latest_date(session, tag))

    async def papers_of_latest_digests(self, tag: str | None = None) -> list[DigestPapers]:
        """The digests of the newest day (of this tag), each with its papers in order."""

        def run(session: Session) -> list[DigestPapers]:
            day = _latest_date(session, tag)
            return [] if day is None else _papers_on(session, day, tag)

        return await self._read_blocking(run)

    async def papers_on(self, day: date, tag: str | None = None) -> list[DigestPapers]:
        """The digests of one day (of one tag), sorted by topic, papers in digest order."""
        return await self._read_blocking(lambda session: _papers_on(session, day, tag))

    async def digest_papers(self, path: str) -> DigestPapers | None:
        """One digest file's papers in order; None if the path is not a stored digest."""

        def run(session: Session) -> DigestPapers | None:
            found = session.execute(
                select(DigestFileRow.topic, DigestFileRow.date).where(
                    DigestFileRow.path == path, DigestFileRow.skipped_reason.is_(None))
            ).first()
            if found is None or found.topic is None or found.date is None:
                return None
            stmt = select(AppearanceRow.digest_path, AppearanceRow.paper_id).where(
                AppearanceRow.digest_path == path
            )
            digests = _digests(session, stmt)
            return digests[0] if digests else DigestPapers(path, found.topic, found.date)

        return await self._read_blocking(run)

    # trends ---------------------------------------------------------------------------

    async def weekly_counts(self, end: date, weeks: int, topics: Sequence[str] | None = None
                            ) -> list[tuple[str, date, int]]:
        """Distinct papers per topic per week over the `weeks` weeks ending on `end` (a
        week: 7 days ending on `end`, `end - 7`, …), as (topic, first day of the week,
        papers), weeks without papers left out; only these stored `topics` if given.

        One grouped query, the week computed in SQL (the dialects differ only in how two
        dates subtract) so a paper listed on several days of a week counts once.
        """
        first = end - dt.timedelta(days=7 * weeks - 1)
        async with self._read() as session:
            days = _days_between(session, AppearanceRow.date, end)
            listed = (select(AppearanceRow.topic, AppearanceRow.paper_id,
                             (days // 7).label("ago"))
                      .where(AppearanceRow.date.between(first, end)))
            if topics is not None:
                listed = listed.where(AppearanceRow.topic.in_(list(topics)))
            inner = listed.subquery()
            rows = await session.execute(
                select(inner.c.topic, inner.c.ago,
                       func.count(distinct(inner.c.paper_id)).label("papers"))
                .group_by(inner.c.topic, inner.c.ago)
            )
            return [(r.topic, end - dt.timedelta(days=7 * int(r.ago) + 6), int(r.papers))
                    for r in rows if r.topic]

    # tags -----------------------------------------------------------------------------

    async def tags(self) -> list[TagInfo]:
        """Every tag with its number of papers and last digest date, by name (case-folded)."""
        async with self._read() as session:
            last = dict((await session.execute(
                select(DigestFileRow.topic, func.max(DigestFileRow.date))
                .where(DigestFileRow.topic.is_not(None))
                .group_by(DigestFileRow.topic)
            )).all())
            counts = dict((await session.execute(
                select(AppearanceRow.topic, func.count(distinct(AppearanceRow.paper_id)))
                .group_by(AppearanceRow.topic)
            )).all())
        names = sorted({n for n in (*last, *counts) if n}, key=lambda n: (n.casefold(), n))
        return [TagInfo(name, counts.get(name, 0), last.get(name)) for name in names]

    async def resolve_tag(self, name: str) -> str:
        """The tag as stored, matched ignoring case, spaces and punctuation.

        Raises UnknownTag with up to five close names when nothing matches.
        """
        canonical = await self._read_blocking(_canonical_tags)
        key = tag_fold(name)
        if key and key in canonical:
            return canonical[key]
        raise UnknownTag(name, _suggest(key, canonical))

    async def version(self) -> tuple[int, ...]:
        """A fingerprint of the stored files that changes whenever a store could have
        changed a paper: what a cache of rendered archive views (the Atom feeds) checks
        on every request, one aggregate over `digest_files` instead of a render.

        Every store, skip and deletion writes the file's row, and a file is read again
        only when its size or modification time changed; so the count, the sum of sizes
        and the sum and maximum of the modification times (in ms, whose sum stays within
        64 bits up to millions of files) move with every change. A `touch` moves them
        too, costing one needless render.
        """
        async with self._read() as session:
            row = (await session.execute(select(
                func.count(), func.coalesce(func.sum(DigestFileRow.size), 0),
                func.coalesce(func.sum(DigestFileRow.mtime_ns // 1_000_000), 0),
                func.coalesce(func.max(DigestFileRow.mtime_ns), 0),
            ))).one()
        return tuple(int(value) for value in row)

    # maintenance ----------------------------------------------------------------------

    async def stats(self) -> ArchiveStats:
        """Counts for doctor and /stats."""
        async with self._read() as session:
            papers = (await session.execute(select(func.count()).select_from(_papers))).scalar_one()
            apps = (await session.execute(select(func.count()).select_from(_apps))).scalar_one()
            files = (await session.execute(
                select(DigestFileRow.skipped_reason.is_(None), func.count())
                .group_by(DigestFileRow.skipped_reason.is_(None))
            )).all()
            span = (await session.execute(
                select(func.count(distinct(AppearanceRow.topic)), func.min(AppearanceRow.date),
                       func.max(AppearanceRow.date))
            )).one()
        by_kind = {bool(is_digest): n for is_digest, n in files}
        return ArchiveStats(papers=papers, appearances=apps, digests=by_kind.get(True, 0),
                            skipped_files=by_kind.get(False, 0), tags=span[0],
                            first_date=span[1], last_date=span[2])


def _arxiv_key(text: str) -> str:
    norm = normalize_arxiv_id(text)
    return norm[0] if norm else text.strip()


def _topic_names() -> Any:
    """Every topic of a stored digest, with one index seek per topic (a recursive "next
    topic after this one") rather than by scanning every file."""
    topic = DigestFileRow.topic
    names_cte = select(func.min(topic).label("name")).cte("names", recursive=True)
    following = select(func.min(topic)).where(topic > names_cte.c.name).scalar_subquery()
    names_cte = names_cte.union_all(
        select(following).where(names_cte.c.name.is_not(None))
    )
    return select(names_cte.c.name).where(names_cte.c.name.is_not(None))


_TOPIC_NAMES: Final = _topic_names()  # built once: every tag search runs it


def _canonical_tags(session: Session) -> dict[str, str]:
    """tag_fold -> tag name, for every topic of a stored digest (every tag filter
    starts here). Blocking code: search runs it in its thread; others with run_sync."""
    names: Sequence[str | None] = session.scalars(_TOPIC_NAMES).all()
    canonical: dict[str, str] = {}
    for name in sorted(n for n in names if n):
        canonical.setdefault(tag_fold(name), name)
    return canonical


def _days_between(session: AsyncSession, column: Any, end: date) -> Any:
    """Whole days from a date column to `end`: PostgreSQL subtracts dates, SQLite has
    them as ISO text and subtracts their Julian day numbers."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(literal(end, Date), Date) - column
    return cast(func.julianday(literal(end, Date)) - func.julianday(column), Integer)


def _lenient_tag(session: Session, tag: str) -> str:
    return _canonical_tags(session).get(tag_fold(tag), tag)


def _latest_date(session: Session, tag: str | None) -> date | None:
    stmt = select(func.max(AppearanceRow.date))
    if tag is not None:
        stmt = stmt.where(AppearanceRow.topic == _lenient_tag(session, tag))
    return session.execute(stmt).scalar_one()


def _papers_on(session: Session, day: date, tag: str | None) -> list[DigestPapers]:
    stmt = select(AppearanceRow.digest_path, AppearanceRow.paper_id).where(
        AppearanceRow.date == day
    )
    if tag is not None:
        stmt = stmt.where(AppearanceRow.topic == _lenient_tag(session, tag))
    return _digests(session, stmt)


def _suggest(key: str, canonical: dict[str, str], limit: int = 5) -> tuple[str, ...]:
    """Tags containing (or contained in) what was typed first, then difflib's closest."""
    if not key:
        return ()
    keys = sorted(canonical)
    partial = [k for k in keys if key in k or k in key]
    close = difflib.get_close_matches(key, keys, n=limit, cutoff=0.5)
    return tuple(canonical[k] for k in dict.fromkeys(partial + close))[:limit]


def _digests(session: Session, stmt: Any) -> list[DigestPapers]:
    """Group (digest_path, paper_id) rows into DigestPapers, papers in digest order."""
    rows = session.execute(stmt.order_by(AppearanceRow.digest_path,
                                         AppearanceRow.position)).all()
    if not rows:
        return []
    paths = sorted({r.digest_path for r in rows})
    meta = {
        r.path: (r.topic or "", r.date)
        for r in session.execute(
            select(DigestFileRow.path, DigestFileRow.topic, DigestFileRow.date)
            .where(DigestFileRow.path.in_(paths))
        )
    }
    papers = archived_by_id(session, [r.paper_id for r in rows])
    grouped: dict[str, list[ArchivedPaper]] = {}
    for r in rows:
        if r.paper_id in papers:
            grouped.setdefault(r.digest_path, []).append(papers[r.paper_id])
    digests = [DigestPapers(path, meta[path][0], meta[path][1], tuple(found))
               for path, found in grouped.items()]
    digests.sort(key=lambda d: (d.date, d.topic.casefold(), d.path))
    return digests

