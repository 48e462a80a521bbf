"""Storing digest files: read what the plan needs, plan (store_plan.py), write the plan.

Set-based so that ingesting a large folder stays fast: a batch of files costs a fixed
number of statements (bulk inserts, executemany), not one round trip per paper.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage import search as fulltext
from bot.storage.bulk import insert_rows
from bot.storage.loading import chunked
from bot.storage.records import StoreResult
from bot.storage.store_plan import (
    FileChange,
    StoredPaper,
    StoredState,
    StorePlan,
    batches,
    listed_ids,
    plan_store,
)
from bot.storage.tables import PAPER_FIELDS, AppearanceRow, Base, DigestFileRow, PaperRow
from bot.storage.vectors import EMBEDDED_FIELDS, forget_vectors

_papers = Base.metadata.tables["papers"]
_apps = Base.metadata.tables["appearances"]
_files = Base.metadata.tables["digest_files"]


async def store_files(session: AsyncSession, changes: Sequence[FileChange]) -> list[StoreResult]:
    """Bring the archive in line with these files, in order; results in the same order."""
    results: list[StoreResult] = []
    for batch in batches(changes):
        stored = await _read_stored(session, batch)
        results.extend(await _execute(session, stored, plan_store(batch, stored)))
    return results


async def _read_stored(session: AsyncSession, changes: Sequence[FileChange]) -> StoredState:
    """The files of the batch as stored with what they list, and the papers they list."""
    files: set[str] = set()
    appearances: dict[str, dict[str, tuple[int, int]]] = {}
    for path_part in chunked([change.state.path for change in changes]):
        for app_row in await session.execute(  # known files and what they listed, at once
            select(DigestFileRow.path, AppearanceRow.id, AppearanceRow.paper_id,
                   PaperRow.arxiv_id)
            .outerjoin(AppearanceRow, AppearanceRow.digest_path == DigestFileRow.path)
            .outerjoin(PaperRow, PaperRow.id == AppearanceRow.paper_id)
            .where(DigestFileRow.path.in_(path_part))
        ):
            files.add(app_row.path)
            if app_row.id is not None:
                appearances.setdefault(app_row.path, {})[app_row.arxiv_id] = (
                    app_row.id, app_row.paper_id)

    papers: dict[str, StoredPaper] = {}
    columns = [PaperRow.id, PaperRow.source_path, *(getattr(PaperRow, n) for n in PAPER_FIELDS)]
    for id_part in chunked(listed_ids(changes)):
        for found in await session.execute(
            select(*columns).where(PaperRow.arxiv_id.in_(id_part))
        ):
            values = {name: found._mapping[name] for name in PAPER_FIELDS}
            papers[found.arxiv_id] = StoredPaper(found.id, values, found.source_path)
    return StoredState(files, appearances, papers)


async def _execute(
    session: AsyncSession, stored: StoredState, plan: StorePlan
) -> list[StoreResult]:
    """Execute the plan; returns its results once it is known which papers left."""
    # Files first: papers and appearances refer to them.
    await insert_rows(session, _files, plan.files_to_insert)
    if plan.files_to_update:
        await session.execute(
            update(_files).where(_files.c.path == bindparam("b_path")),
            [{"b_path": r["path"], **{k: v for k, v in r.items() if k != "path"}}
             for r in plan.files_to_update],
        )

    fresh = plan.papers_to_insert
    fresh_ids: dict[str, int] = {}
    if fresh:
        await insert_rows(session, _papers, [
            {**p.values, "source_path": p.source, "first_seen": p.first_seen} for p in fresh])
        for id_part in chunked([p.arxiv_id for p in fresh]):
            fresh_ids.update((r.arxiv_id, r.id) for r in await session.execute(
                select(_papers.c.id, _papers.c.arxiv_id).where(_papers.c.arxiv_id.in_(id_part))))
    if plan.papers_to_update:
        await session.execute(
            update(_papers).where(_papers.c.id == bindparam("b_id")),
            [{"b_id": p.id, **p.values, "source_path": p.source}
             for p in plan.papers_to_update],
        )
        # A vector goes with the text it was made from: the next refresh embeds it again.
        before = {p.id: p.values for p in stored.papers.values()}
        await forget_vectors(session, [
            p.id for p in plan.papers_to_update
            if any(p.values[f] != before.get(p.id, {}).get(f) for f in EMBEDDED_FIELDS)])
    if plan.sources_to_clear:
        await session.execute(
            update(_papers)
            .where(_papers.c.id == bindparam("b_id"), _papers.c.source_path == bindparam("b_path"))
            .values(source_path=None),
            [{"b_id": paper_id, "b_path": path} for paper_id, path in plan.sources_to_clear],
        )

    for int_part in chunked(plan.appearances_to_delete):
        await session.execute(delete(_apps).where(_apps.c.id.in_(int_part)))
    if plan.appearances_to_update:
        await session.execute(update(_apps).where(_apps.c.id == bindparam("b_id")),
                              [{"b_id": app_id, **app}
                               for app_id, app in plan.appearances_to_update])
    if plan.appearances_to_insert:
        known = stored.papers
        await insert_rows(session, _apps, [
            {"paper_id": fresh_ids[a] if a in fresh_ids else known[a].id, **app}
            for a, app in plan.appearances_to_insert
        ])

    refresh = plan.papers_to_refresh
    first = (select(func.min(_apps.c.date)).where(_apps.c.paper_id == _papers.c.id)
             .scalar_subquery())
    for int_part in chunked(refresh):
        await session.execute(
            update(_papers).where(_papers.c.id.in_(int_part)).values(first_seen=first)
        )

    orphans: list[int] = []
    for int_part in chunked(sorted(plan.may_leave)):
        orphans.extend((await session.scalars(
            select(_papers.c.id).where(
                _papers.c.id.in_(int_part), ~exists().where(_apps.c.paper_id == _papers.c.id)
            )
        )).all())
    for int_part in chunked(orphans):
        await session.execute(delete(_papers).where(_papers.c.id.in_(int_part)))

    for path in plan.files_to_delete:
        await session.execute(delete(_files).where(_files.c.path == path))

    # Refreshed papers (orphans included, whose rows just go) are deleted from the index
    # first, then everything is inserted in rowid order: see index_paper_texts.
    texts = await fulltext.paper_texts(session, refresh)
    await fulltext.delete_paper_texts(session, refresh)
    await fulltext.index_paper_texts(
        session, texts + [p.text(fresh_ids[p.arxiv_id]) for p in fresh])
    return plan.results(orphans)
