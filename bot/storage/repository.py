"""The archive repository: takes and returns domain objects, one transaction per call.

One paper per arXiv id, whatever the version. A digest lists papers; each listing is
an appearance with that digest's topic, date, summary and takeaways. Storing a file
again diffs it by arXiv id, and a paper no file lists any more leaves the archive.

Writes are set-based so that ingesting a large folder stays fast: a batch of files
costs a fixed number of statements (executemany), not one round trip per paper.
"""

from __future__ import annotations

import datetime as dt
import difflib
import unicodedata
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sqlalchemy import (
    bindparam,
    delete,
    distinct,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.models import ArchivedPaper, Digest, Paper, SearchHit, SearchQuery, TagInfo
from bot.domain.query import normalize_arxiv_id
from bot.errors import UnknownTag
from bot.storage import search as fulltext
from bot.storage.engine import WRITE, bulk_write, dialect_insert
from bot.storage.loading import chunked, load_archived, load_archived_by_id
from bot.storage.records import (
    Announcement,
    ArchiveStats,
    DigestPapers,
    FileState,
    StoreResult,
)
from bot.storage.tables import (
    PAPER_FIELDS,
    AppearanceRow,
    Base,
    DigestFileRow,
    PaperRow,
    paper_to_mapping,
)

__all__ = [
    "Announcement", "ArchiveRepo", "ArchiveStats", "DigestPapers", "FileState", "StoreResult",
]

EXPORT_BATCH: Final = 500

_papers = Base.metadata.tables["papers"]
_apps = Base.metadata.tables["appearances"]
_files = Base.metadata.tables["digest_files"]
_listings = Base.metadata.tables["announced_listings"]


def tag_key(name: str) -> str:
    """What two spellings of a tag share: letters and digits, case-folded, NFKC.

    "Talking Head Generation", "talking head generation", "TalkingHeadGeneration" and
    "#talking-head-generation" all give "talkingheadgeneration"; "元宇宙_虚拟人" matches
    the tag "元宇宙/虚拟人".
    """
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


# --- the in-memory side of a store ---------------------------------------------------------


@dataclass(slots=True)
class _Slot:
    """A paper while a batch is applied: as loaded (or created), then as it must be written."""

    arxiv_id: str
    values: dict[str, Any]  # PAPER_FIELDS, JSON columns as lists
    source: str | None
    id: int | None = None  # None until a new paper is inserted
    new: bool = False
    dirty: bool = False  # an existing paper whose row must be rewritten
    first_seen: date | None = None
    # New papers are indexed from memory: what their appearances in this batch say.
    summaries: list[str] = field(default_factory=list)
    takeaways: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)

    def text(self) -> fulltext.PaperText:
        assert self.id is not None
        v = self.values
        return fulltext.PaperText(self.id, v["title"], v["authors"], v["abstract"],
                                  self.summaries, self.takeaways, self.topics)

    @property
    def version(self) -> int:
        return int(self.values["version"])


@dataclass(slots=True)
class _Outcome:
    """StoreResult under construction."""

    path: str
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    new_appearances: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def result(self) -> StoreResult:
        return StoreResult(self.path, tuple(self.new), tuple(self.updated),
                           tuple(self.unchanged), tuple(self.new_appearances),
                           tuple(self.removed), tuple(self.deleted))


def _listed(digest: Digest | None) -> dict[str, tuple[int, Paper]]:
    """arXiv id -> (position, paper); a repeated id keeps its first position, highest version."""
    listed: dict[str, tuple[int, Paper]] = {}
    if digest is None:
        return listed
    for position, paper in enumerate(digest.papers):
        seen = listed.get(paper.arxiv_id)
        if seen is None:
            listed[paper.arxiv_id] = (position, paper)
        elif paper.version > seen[1].version:
            listed[paper.arxiv_id] = (seen[0], paper)
    return listed


@dataclass(frozen=True, slots=True)
class _Item:
    """One file to bring in line: a digest, or None for a skipped or deleted file."""

    state: FileState
    digest: Digest | None
    delete: bool = False


async def _apply(session: AsyncSession, items: Sequence[_Item]) -> list[StoreResult]:
    """Bring the archive in line with these files (distinct paths) in a fixed number of
    statements: load what exists, decide everything in memory, then write in bulk."""
    paths = [item.state.path for item in items]
    listings = [_listed(item.digest) for item in items]

    known: set[str] = set()
    old_apps: dict[str, dict[str, tuple[int, int]]] = {}  # path -> arxiv id -> (app, paper)
    for path_part in chunked(paths):  # known files and what they listed, in one query
        for app_row in await session.execute(
            select(DigestFileRow.path, AppearanceRow.id, AppearanceRow.paper_id,
                   PaperRow.arxiv_id)
            .outerjoin(AppearanceRow, AppearanceRow.digest_path == DigestFileRow.path)
            .outerjoin(PaperRow, PaperRow.id == AppearanceRow.paper_id)
            .where(DigestFileRow.path.in_(path_part))
        ):
            known.add(app_row.path)
            if app_row.id is not None:
                old_apps.setdefault(app_row.path, {})[app_row.arxiv_id] = (
                    app_row.id, app_row.paper_id)

    slots: dict[str, _Slot] = {}
    wanted = sorted({arxiv_id for listed in listings for arxiv_id in listed})
    columns = [PaperRow.id, PaperRow.source_path, *(getattr(PaperRow, n) for n in PAPER_FIELDS)]
    for id_part in chunked(wanted):
        for found in await session.execute(
            select(*columns).where(PaperRow.arxiv_id.in_(id_part))
        ):
            values = {name: found._mapping[name] for name in PAPER_FIELDS}
            slots[found.arxiv_id] = _Slot(found.arxiv_id, values, found.source_path, id=found.id)

    outcomes: list[_Outcome] = []
    file_inserts: list[dict[str, Any]] = []
    file_updates: list[dict[str, Any]] = []
    new_apps: list[tuple[_Slot, dict[str, Any]]] = []
    kept_apps: list[dict[str, Any]] = []
    removed_app_ids: list[int] = []
    removed_from: dict[int, tuple[str, int]] = {}  # paper id -> (arxiv id, outcome index)
    unsource: list[dict[str, Any]] = []
    touched: set[int] = set()  # existing papers whose index row or first_seen may change

    for index, (item, listed) in enumerate(zip(items, listings, strict=True)):
        state, digest = item.state, item.digest
        path = state.path
        outcome = _Outcome(path)
        outcomes.append(outcome)
        file_row: dict[str, Any] = {
            "path": path, "content_hash": state.content_hash, "size": state.size,
            "mtime_ns": state.mtime_ns,
            "topic": digest.topic if digest else None,
            "date": digest.date if digest else None,
            "paper_count": len(listed),
            "skipped_reason": None if digest else (state.skipped_reason or "skipped"),
        }
        if not item.delete:
            (file_updates if path in known else file_inserts).append(file_row)
        old = old_apps.get(path, {})
        for arxiv_id, (position, paper) in listed.items():
            assert digest is not None
            values = paper_to_mapping(paper)
            slot = slots.get(arxiv_id)
            if slot is None:
                slot = _Slot(arxiv_id, values, path, new=True, first_seen=digest.date)
                slots[arxiv_id] = slot
                outcome.new.append(arxiv_id)
            elif paper.version > slot.version or (
                paper.version == slot.version and slot.source in (path, None)
            ):
                if values != slot.values:
                    slot.values = values
                    slot.dirty = True
                    outcome.updated.append(arxiv_id)
                else:
                    outcome.unchanged.append(arxiv_id)
                if slot.source != path:
                    slot.source = path
                    slot.dirty = True
            else:
                outcome.unchanged.append(arxiv_id)
            app = {
                "digest_path": path, "topic": digest.topic, "date": digest.date,
                "summary": paper.summary, "takeaways": list(paper.takeaways),
                "position": position,
            }
            if arxiv_id in old:
                kept_apps.append({"b_id": old[arxiv_id][0], **app})
            else:
                new_apps.append((slot, app))
                outcome.new_appearances.append(arxiv_id)
            if slot.new:
                slot.first_seen = min(slot.first_seen or digest.date, digest.date)
                slot.summaries.append(paper.summary)
                slot.takeaways.extend(paper.takeaways)
                slot.topics.append(digest.topic)
            elif slot.id is not None:
                touched.add(slot.id)
        for arxiv_id, (app_id, paper_id) in old.items():
            if arxiv_id in listed:
                continue
            removed_app_ids.append(app_id)
            outcome.removed.append(arxiv_id)
            removed_from[paper_id] = (arxiv_id, index)
            touched.add(paper_id)
            slot = slots.get(arxiv_id)
            if slot is None:
                unsource.append({"b_id": paper_id, "b_path": path})
            elif slot.source == path:
                slot.source = None
                slot.dirty = True

    # Files first: papers and appearances refer to them.
    if file_inserts:
        await session.execute(insert(_files), file_inserts)
    if file_updates:
        await session.execute(
            update(_files).where(_files.c.path == bindparam("b_path")),
            [{"b_path": r["path"], **{k: v for k, v in r.items() if k != "path"}}
             for r in file_updates],
        )

    fresh = [slot for slot in slots.values() if slot.new]
    if fresh:
        returned = await session.execute(
            insert(_papers).returning(_papers.c.id, _papers.c.arxiv_id),
            [{**slot.values, "source_path": slot.source, "first_seen": slot.first_seen}
             for slot in fresh],
        )
        ids = {r.arxiv_id: r.id for r in returned}
        for slot in fresh:
            slot.id = ids[slot.arxiv_id]
    dirty = [slot for slot in slots.values() if slot.dirty and not slot.new]
    if dirty:
        await session.execute(
            update(_papers).where(_papers.c.id == bindparam("b_id")),
            [{"b_id": slot.id, **slot.values, "source_path": slot.source} for slot in dirty],
        )
    if unsource:
        await session.execute(
            update(_papers)
            .where(_papers.c.id == bindparam("b_id"), _papers.c.source_path == bindparam("b_path"))
            .values(source_path=None),
            unsource,
        )

    for int_part in chunked(removed_app_ids):
        await session.execute(delete(_apps).where(_apps.c.id.in_(int_part)))
    if kept_apps:
        await session.execute(update(_apps).where(_apps.c.id == bindparam("b_id")), kept_apps)
    if new_apps:
        await session.execute(insert(_apps), [{"paper_id": s.id, **app} for s, app in new_apps])

    survivors = sorted(touched)
    first = (select(func.min(_apps.c.date)).where(_apps.c.paper_id == _papers.c.id)
             .scalar_subquery())
    for int_part in chunked(survivors):
        await session.execute(
            update(_papers).where(_papers.c.id.in_(int_part)).values(first_seen=first)
        )

    orphans: list[int] = []
    for int_part in chunked(sorted(removed_from)):
        orphans.extend((await session.scalars(
            select(_papers.c.id).where(
                _papers.c.id.in_(int_part), ~exists().where(_apps.c.paper_id == _papers.c.id)
            )
        )).all())
    for paper_id in orphans:
        arxiv_id, index = removed_from[paper_id]
        outcomes[index].deleted.append(arxiv_id)
    for int_part in chunked(orphans):
        await session.execute(delete(_papers).where(_papers.c.id.in_(int_part)))

    for item in items:
        if item.delete:
            await session.execute(delete(_files).where(_files.c.path == item.state.path))

    # Survivors (orphans included, whose rows just go) are deleted from the index first,
    # then everything is inserted in rowid order: see index_paper_texts.
    texts = await fulltext.paper_texts(session, survivors)
    await fulltext.delete_paper_texts(session, survivors)
    await fulltext.index_paper_texts(session, texts + [slot.text() for slot in fresh])
    return [outcome.result() for outcome in outcomes]


def _batches(items: Sequence[_Item]) -> list[list[_Item]]:
    """Split so that no path occurs twice in one batch (later wins, in order)."""
    batches: list[list[_Item]] = [[]]
    seen: set[str] = set()
    for item in items:
        if item.state.path in seen:
            batches.append([])
            seen = set()
        batches[-1].append(item)
        seen.add(item.state.path)
    return [b for b in batches if b]


# --- the repository -----------------------------------------------------------------------


class ArchiveRepo:
    """Papers, digests and tags; every public method is its own transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=dict(WRITE))
            yield session

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
            return (await _apply(session, [_Item(state, None)]))[0]

    async def store_digest(self, digest: Digest, state: FileState) -> StoreResult:
        """Store a new or changed digest file (see the module docstring for the rules)."""
        return (await self.store_digests([(digest, state)]))[0]

    async def store_digests(
        self, files: Sequence[tuple[Digest, FileState]]
    ) -> list[StoreResult]:
        """Store many digest files in one transaction; results in the same order.

        The same as calling store_digest for each in turn, but the statement count
        does not grow with the number of files: what a first ingest wants.
        """
        items = []
        for digest, state in files:
            if digest.path != state.path:
                raise ValueError(f"digest {digest.path!r} stored under {state.path!r}")
            items.append(_Item(state, digest))
        if not items:
            return []
        results: list[StoreResult] = []
        async with self._write() as session, bulk_write(session):
            for batch in _batches(items):
                results.extend(await _apply(session, batch))
        return results

    async def delete_file(self, path: str) -> StoreResult:
        """The file left the folder: its appearances go, and papers no file lists any more."""
        async with self._write() as session:
            state = FileState(path, "", 0, 0, None)
            return (await _apply(session, [_Item(state, None, delete=True)]))[0]

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
        async with self._read() as session:
            ids: dict[str, int] = {}
            for part in chunked(sorted(set(wanted))):
                rows = await session.execute(
                    select(PaperRow.arxiv_id, PaperRow.id).where(PaperRow.arxiv_id.in_(part))
                )
                ids.update({r.arxiv_id: r.id for r in rows})
            return await load_archived(session, [ids[a] for a in wanted if a in ids])

    async def search(
        self, query: SearchQuery, limit: int = 10, offset: int = 0
    ) -> tuple[list[SearchHit], int]:
        """Hits for one page and the total; tags are matched like resolve_tag (an unknown
        tag simply matches nothing: call resolve_tag first to offer suggestions)."""
        async with self._read() as session:
            if query.tags:
                canonical = await _canonical_tags(session)
                tags = tuple(canonical.get(tag_key(t), t) for t in query.tags)
                query = SearchQuery(query.text, tags, query.authors, query.arxiv_ids,
                                    query.since, query.until)
            return await fulltext.search(session, query, limit=limit, offset=offset)

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
                    canonical = await _canonical_tags(session)
                    topic = canonical.get(tag_key(tag), tag)
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
        async with self._read() as session:
            stmt = select(func.max(AppearanceRow.date))
            if tag is not None:
                stmt = stmt.where(AppearanceRow.topic == await _lenient_tag(session, tag))
            return (await session.execute(stmt)).scalar_one()

    async def papers_of_latest_digests(self, tag: str | None = None) -> list[DigestPapers]:
        """The digests of the newest day (of this tag), each with its papers in order."""
        day = await self.latest_digest_date(tag)
        return [] if day is None else await self.papers_on(day, tag)

    async def papers_on(self, day: date, tag: str | None = None) -> list[DigestPapers]:
        """The digests of one day (of one tag), sorted by topic, papers in digest order."""
        async with self._read() as session:
            stmt = select(AppearanceRow.digest_path, AppearanceRow.paper_id).where(
                AppearanceRow.date == day
            )
            if tag is not None:
                stmt = stmt.where(AppearanceRow.topic == await _lenient_tag(session, tag))
            return await _digests(session, stmt)

    async def digest_papers(self, path: str) -> DigestPapers | None:
        """One digest file's papers in order; None if the path is not a stored digest."""
        async with self._read() as session:
            found = (await session.execute(
                select(DigestFileRow.topic, DigestFileRow.date).where(
                    DigestFileRow.path == path, DigestFileRow.skipped_reason.is_(None))
            )).first()
            if found is None or found.topic is None or found.date is None:
                return None
            stmt = select(AppearanceRow.digest_path, AppearanceRow.paper_id).where(
                AppearanceRow.digest_path == path
            )
            digests = await _digests(session, stmt)
            return digests[0] if digests else DigestPapers(path, found.topic, found.date)

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
        async with self._read() as session:
            canonical = await _canonical_tags(session)
        key = tag_key(name)
        if key and key in canonical:
            return canonical[key]
        raise UnknownTag(name, _suggest(key, canonical))

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

    async def rebuild_search_index(self) -> int:
        """Index every paper again (after a tokenizer change or a suspected drift)."""
        async with self._write() as session:
            return await fulltext.rebuild_index(session)


def _arxiv_key(text: str) -> str:
    norm = normalize_arxiv_id(text)
    return norm[0] if norm else text.strip()


async def _canonical_tags(session: AsyncSession) -> dict[str, str]:
    """tag_key -> tag name, for every topic of a stored digest.

    Every tag filter starts here, so the names are read with one index seek per topic
    (a recursive "next topic after this one") rather than by scanning every file.
    """
    topic = DigestFileRow.topic
    names_cte = select(func.min(topic).label("name")).cte("names", recursive=True)
    following = select(func.min(topic)).where(topic > names_cte.c.name).scalar_subquery()
    names_cte = names_cte.union_all(
        select(following).where(names_cte.c.name.is_not(None))
    )
    names: Sequence[str | None] = (await session.scalars(
        select(names_cte.c.name).where(names_cte.c.name.is_not(None))
    )).all()
    canonical: dict[str, str] = {}
    for name in sorted(n for n in names if n):
        canonical.setdefault(tag_key(name), name)
    return canonical


async def _lenient_tag(session: AsyncSession, tag: str) -> str:
    return (await _canonical_tags(session)).get(tag_key(tag), tag)


def _suggest(key: str, canonical: dict[str, str], limit: int = 5) -> tuple[str, ...]:
    """Tags containing (or contained in) what was typed first, then difflib's closest."""
    if not key:
        return ()
    keys = sorted(canonical)
    partial = [k for k in keys if key in k or k in key]
    close = difflib.get_close_matches(key, keys, n=limit, cutoff=0.5)
    return tuple(canonical[k] for k in dict.fromkeys(partial + close))[:limit]


async def _digests(session: AsyncSession, stmt: Any) -> list[DigestPapers]:
    """Group (digest_path, paper_id) rows into DigestPapers, papers in digest order."""
    rows = (await session.execute(stmt.order_by(AppearanceRow.digest_path,
                                                AppearanceRow.position))).all()
    if not rows:
        return []
    paths = sorted({r.digest_path for r in rows})
    meta = {
        r.path: (r.topic or "", r.date)
        for r in await session.execute(
            select(DigestFileRow.path, DigestFileRow.topic, DigestFileRow.date)
            .where(DigestFileRow.path.in_(paths))
        )
    }
    papers = await load_archived_by_id(session, [r.paper_id for r in rows])
    grouped: dict[str, list[ArchivedPaper]] = {}
    for r in rows:
        if r.paper_id in papers:
            grouped.setdefault(r.digest_path, []).append(papers[r.paper_id])
    digests = [DigestPapers(path, meta[path][0], meta[path][1], tuple(found))
               for path, found in grouped.items()]
    digests.sort(key=lambda d: (d.date, d.topic.casefold(), d.path))
    return digests

