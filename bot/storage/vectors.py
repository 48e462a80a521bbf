"""The papers' vectors for "Related": which papers lack one, storing them, reading them back.

A vector is stored as bytes (int8 codes, bot/domain/neighbours.py) with the name of the
model that made it; a row of another model counts as missing. A vector goes with its
paper (a foreign key ON DELETE CASCADE) and with the text it was made from: a new title
or abstract deletes it (:func:`forget_vectors`, called by store_writer.py), and storing
checks that the text embedded is still the paper's, so a scan that rewrote a paper while
its vector was being computed never leaves a stale one behind. Papers are known here by
their row id, the id the in-memory index uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.domain.models import ArchivedPaper
from bot.domain.query import normalize_arxiv_id
from bot.storage.engine import dialect_insert
from bot.storage.loading import archived_by_id, chunked
from bot.storage.session import Repository
from bot.storage.tables import AppearanceRow, PaperRow, PaperVectorRow

EMBEDDED_FIELDS = ("title", "abstract")
"""The paper fields a vector is made from (bot.services.embedding.paper_parts): a change
of either makes the stored vector stale."""

_vectors = PaperVectorRow.__table__
_TAGS = (  # built once: every press of 🔗 Related reads 50 papers' tags through it
    select(AppearanceRow.paper_id, AppearanceRow.topic)
    .where(AppearanceRow.paper_id.in_(bindparam("ids", expanding=True)))
    .order_by(AppearanceRow.paper_id, AppearanceRow.date, AppearanceRow.topic))


def _tags(session: Session, paper_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, dict[str, None]] = {}
    for part in chunked(sorted(set(paper_ids))):
        for paper_id, topic in session.execute(_TAGS, {"ids": list(part)}):
            found.setdefault(paper_id, {}).setdefault(topic, None)
    return {paper_id: tuple(topics) for paper_id, topics in found.items()}


@dataclass(frozen=True, slots=True)
class PaperText:
    """What a paper is embedded from, with its row id."""

    id: int
    title: str
    abstract: str


async def forget_vectors(session: AsyncSession, paper_ids: Sequence[int]) -> None:
    """Delete the vectors of these papers (their text changed), in the caller's transaction."""
    for part in chunked(sorted(set(paper_ids))):
        await session.execute(delete(PaperVectorRow).where(PaperVectorRow.paper_id.in_(part)))


class VectorRepo(Repository):
    """The vectors of the archive's papers, by paper row id; one transaction per call."""

    async def missing(self, model: str, after: int = 0, limit: int = 1000) -> list[PaperText]:
        """Up to `limit` papers with a row id above `after` and no vector of `model`, by
        id: a caller walks the archive in batches by passing the last id it got."""
        async with self._read() as session:
            rows = await session.execute(
                select(PaperRow.id, PaperRow.title, PaperRow.abstract)
                .outerjoin(PaperVectorRow, (PaperVectorRow.paper_id == PaperRow.id)
                           & (PaperVectorRow.model == model))
                .where(PaperRow.id > after, PaperVectorRow.paper_id.is_(None))
                .order_by(PaperRow.id).limit(limit)
            )
            return [PaperText(r.id, r.title, r.abstract) for r in rows]

    async def count_missing(self, model: str) -> int:
        """Papers without a vector of `model`."""
        async with self._read() as session:
            return int(await session.scalar(
                select(func.count()).select_from(PaperRow)
                .outerjoin(PaperVectorRow, (PaperVectorRow.paper_id == PaperRow.id)
                           & (PaperVectorRow.model == model))
                .where(PaperVectorRow.paper_id.is_(None))) or 0)

    async def store(self, model: str, rows: Sequence[tuple[PaperText, bytes]]) -> list[int]:
        """Store vectors made from these texts, replacing any older one; only for papers
        that are still in the archive with that very title and abstract (the others
        stay missing and are embedded again). Returns the ids stored, ascending."""
        wanted = {text.id: (text, blob) for text, blob in rows}
        if not wanted:
            return []
        # Reads then writes what it read: the write lock, so a scan cannot rewrite a
        # paper between the check and the insert.
        async with self._write() as session:
            current: dict[int, tuple[str, str]] = {}
            for part in chunked(sorted(wanted)):
                found = await session.execute(
                    select(PaperRow.id, PaperRow.title, PaperRow.abstract)
                    .where(PaperRow.id.in_(part)))
                current.update({r.id: (r.title, r.abstract) for r in found})
            keep = [paper_id for paper_id, (text, _) in sorted(wanted.items())
                    if current.get(paper_id) == (text.title, text.abstract)]
            if keep:
                insert = dialect_insert(session, _vectors)
                await session.execute(
                    insert.on_conflict_do_update(
                        index_elements=[_vectors.c.paper_id],
                        set_={"model": insert.excluded.model,
                              "vector": insert.excluded.vector}),
                    [{"paper_id": paper_id, "model": model, "vector": wanted[paper_id][1]}
                     for paper_id in keep])
            return keep

    async def blobs(self, model: str, after: int = 0, limit: int = 10_000
                    ) -> list[tuple[int, bytes]]:
        """Up to `limit` (paper id, vector) pairs of `model` with an id above `after`, by
        id: the whole archive is read a chunk at a time."""
        async with self._read() as session:
            rows = await session.execute(
                select(PaperVectorRow.paper_id, PaperVectorRow.vector)
                .where(PaperVectorRow.model == model, PaperVectorRow.paper_id > after)
                .order_by(PaperVectorRow.paper_id).limit(limit))
            return [(r.paper_id, bytes(r.vector)) for r in rows]

    async def blobs_of(self, model: str, paper_ids: Sequence[int]) -> list[tuple[int, bytes]]:
        """The (paper id, vector) pairs of `model` of these papers that have one."""
        found: list[tuple[int, bytes]] = []
        async with self._read() as session:
            for part in chunked(sorted(set(paper_ids))):
                rows = await session.execute(
                    select(PaperVectorRow.paper_id, PaperVectorRow.vector)
                    .where(PaperVectorRow.model == model, PaperVectorRow.paper_id.in_(part)))
                found.extend((r.paper_id, bytes(r.vector)) for r in rows)
        return found

    async def ids(self, model: str) -> list[int]:
        """The ids of the papers that have a vector of `model`, ascending."""
        async with self._read() as session:
            return list((await session.scalars(
                select(PaperVectorRow.paper_id).where(PaperVectorRow.model == model)
                .order_by(PaperVectorRow.paper_id))).all())

    async def signature(self, model: str) -> tuple[int, int]:
        """(how many, sum of their ids) of the vectors of `model`: one aggregate that tells
        an index in memory whether papers came or went since it was read."""
        async with self._read() as session:
            row = (await session.execute(
                select(func.count(), func.coalesce(func.sum(PaperVectorRow.paper_id), 0))
                .where(PaperVectorRow.model == model))).one()
            return int(row[0]), int(row[1])

    async def paper_id(self, arxiv_id: str) -> int | None:
        """The row id of the paper with this arXiv id (any version; an abs or pdf URL
        works too, as in ArchiveRepo.get_paper)."""
        normalized = normalize_arxiv_id(arxiv_id)
        key = normalized[0] if normalized else arxiv_id.strip()
        async with self._read() as session:
            found = await session.scalar(select(PaperRow.id).where(PaperRow.arxiv_id == key))
            return None if found is None else int(found)

    async def tags(self, paper_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """The tags of these papers by id, in ArchivedPaper.tags' order (first listed
        first): what the ranking of 50 candidates needs, without loading 50 papers. Ids
        no longer in the archive are left out."""
        return await self._read_blocking(lambda session: _tags(session, paper_ids))

    async def tags_then_papers(
        self, paper_ids: Sequence[int],
        choose: Callable[[Mapping[int, tuple[str, ...]]], Sequence[int]],
    ) -> dict[int, ArchivedPaper]:
        """The tags of these papers (as :meth:`tags`), then the papers `choose` picks
        from them, by id, in one transaction: a Related press reads both, and each
        transaction costs about 1.5 ms of its own; one snapshot also means that every
        paper with tags can be loaded."""
        def run(session: Session) -> dict[int, ArchivedPaper]:
            return archived_by_id(session, choose(_tags(session, paper_ids)))

        return await self._read_blocking(run)

    async def papers(self, paper_ids: Sequence[int]) -> dict[int, ArchivedPaper]:
        """The papers with these row ids, by id; ids no longer in the archive are left out."""
        return await self._read_blocking(lambda session: archived_by_id(session, paper_ids))
