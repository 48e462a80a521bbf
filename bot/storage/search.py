"""Full-text search over the archive: the only module that knows SQLite FTS5 from PostgreSQL.

SQLite: an FTS5 table `paper_fts` whose rowid is papers.id, with one row per paper
holding its title, authors, abstract, every appearance's summary and takeaways, and
its tags. Tokenizer `porter unicode61 remove_diacritics 2`, so English word forms
match (Gaussians finds Gaussian, rendered finds rendering).

How text becomes tokens (every CJK character a token of its own, user text reduced
to letters and digits) is search_text.py's business: the same on both dialects.

User text never reaches MATCH as written: `split_terms` keeps only letters and digits,
and the expression is built from double-quoted phrases joined with AND, so quotes,
NEAR, `*`, `-`, column filters or SQL in the query are just words (or nothing).

PostgreSQL: a table `paper_search` (paper_id, document tsvector, authors tsvector)
with GIN indexes. The document is built with the `english` configuration from the same
CJK-spaced texts, weighted A (title, authors), B (tags, summaries), C (takeaways), D
(abstract); each query term is a phraseto_tsquery, bound as a parameter, the terms
joined with &&; ranking by ts_rank_cd. Differences from SQLite: English stop words
are not indexed (a query of only stop words finds nothing), Snowball instead of Porter
stemming, four weight classes instead of six.

Ranking very common terms (both dialects). Relevance ranking costs a score per
matching paper, and 模型 matches 71% of a 100k archive: ranking 70 000 papers to show
ten took 80-150 ms. So only the newest RANK_WINDOW (2 000) matches, by id, which is
the order papers arrived in, are ranked by relevance; when more match, the older ones
follow, newest first. The total is still exact. A term in more than half the archive
gets almost no weight from bm25 anyway (its idf is clamped to ~0: the order among its
matches comes from column weights and term counts alone), so what is lost is an older
paper that would have ranked on page one; a second term, a tag or a date narrows the
matches below the window and brings back the full ranking. Below the window one
statement ranks and counts the matches, so the index is read once, not twice.

Listings without text (a tag, dates, authors alone) are newest first. Grouping every
matching appearance to find ten took most of their time, so above
NARROW_LISTINGS_ABOVE matches the newest appearances are read off an index first and
only the papers they name are grouped (same order, see `_newest`).

Everything dialect specific sits in the `_SQLite` and `_PostgreSQL` classes at the end
of this module; the rest (planning a query, filters, exact ids, paging) is shared.
Writing the index is here too (`index_paper_texts`, `delete_paper_texts`): the archive
calls them in the transaction that stores the papers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Protocol

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    TextClause,
    and_,
    bindparam,
    column,
    desc,
    distinct,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.models import SearchHit, SearchQuery
from bot.domain.query import normalize_arxiv_id
from bot.storage.loading import chunked, load_archived_by_id
from bot.storage.search_text import (
    PaperText,
    PaperTextBuilder,
    Term,
    author_term,
    cjk_index_text,
    clean,
    split_terms,
)
from bot.storage.tables import AppearanceRow, PaperRow

FTS_TABLE: Final = "paper_fts"  # SQLite
PG_TABLE: Final = "paper_search"  # PostgreSQL
FTS_COLUMNS: Final = ("title", "authors", "abstract", "summary", "takeaways", "tags")
FTS_TOKENIZER: Final = "porter unicode61 remove_diacritics 2"
WEIGHTS: Final = {"title": 10.0, "authors": 8.0, "abstract": 1.0, "summary": 3.0,
                  "takeaways": 2.0, "tags": 5.0}
"""bm25 column weights: title and author matches first, abstract-only matches last."""

MAX_AUTHORS: Final = 8
MAX_TAGS: Final = 32
MAX_ARXIV_IDS: Final = 50
MAX_CANDIDATES: Final = 5000  # papers bound as parameters when a listing is narrowed
NARROW_LISTINGS_ABOVE: Final = 2000  # matching papers; see _newest

RANK_WINDOW: Final = 2000
"""At most this many text matches are ranked by relevance: the newest ones when more
match (see the module docstring)."""

EXACT_RANK: Final = math.inf
"""SearchHit.rank of an exact arXiv id match. Text hits have a positive score, higher is
better (-bm25 on SQLite, ts_rank_cd on PostgreSQL); filter-only listings 0.0."""


# --- schema -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchDDL:
    """Statements that create and drop the search index of one dialect."""

    create: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


def search_ddl_v1(dialect: str) -> SearchDDL:
    """The search index as migration 0001 creates it. Frozen: a change needs a new
    function and a new migration, so old migrations keep replaying the same DDL."""
    if dialect == "sqlite":
        columns = ", ".join(FTS_COLUMNS)
        return SearchDDL(
            create=(
                f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5({columns}, "
                f"tokenize = '{FTS_TOKENIZER}')",
            ),
            drop=(f"DROP TABLE IF EXISTS {FTS_TABLE}",),
        )
    if dialect == "postgresql":
        return SearchDDL(
            create=(
                f"CREATE TABLE {PG_TABLE} ("
                " paper_id INTEGER NOT NULL PRIMARY KEY"
                " REFERENCES papers (id) ON DELETE CASCADE,"
                " document TSVECTOR NOT NULL,"
                " authors TSVECTOR NOT NULL)",
                f"CREATE INDEX ix_{PG_TABLE}_document ON {PG_TABLE} USING gin (document)",
                f"CREATE INDEX ix_{PG_TABLE}_authors ON {PG_TABLE} USING gin (authors)",
            ),
            drop=(f"DROP TABLE IF EXISTS {PG_TABLE}",),
        )
    return SearchDDL()


def search_tuning_v2(dialect: str) -> SearchDDL:
    """Index settings as migration 0004 applies them (frozen, like search_ddl_v1).

    SQLite: FTS5 keeps up to `hashsize` bytes of new index data in memory before it
    writes a segment (default 1 MiB). With 32 MiB a bulk ingest writes a few large
    segments per transaction instead of many small ones that are merged again and
    again; a daily scan never comes near it. FTS5 stores the setting in the index
    (paper_fts_config), so it is set once here, not per connection.
    """
    if dialect == "sqlite":
        command = f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('hashsize', {{}})"
        return SearchDDL(create=(command.format(32 * 1024 * 1024),),
                         drop=(command.format(1024 * 1024),))
    return SearchDDL()


def is_search_object(name: str | None) -> bool:
    """True for the search tables (FTS5 with its shadow tables, or paper_search), which
    are created by hand in migrations and must not be autogenerated."""
    return bool(name) and str(name).startswith((FTS_TABLE, PG_TABLE))


# --- index maintenance --------------------------------------------------------------------


IndexRow = tuple[Any, ...]
"""One row of the index as written: paper_id, then the FTS_COLUMNS texts (CJK spaced)."""


async def index_paper_texts(session: AsyncSession, texts: Sequence[PaperText]) -> None:
    """Add index rows for papers that have none (new ones, or just deleted); one executemany.

    Rows go in in id order, after any deletes of the same transaction: SQLite's FTS5
    flushes its in-memory segment whenever a rowid is not above the last one it saw.
    """
    if texts:
        rows = [
            (paper.paper_id, *(cjk_index_text(v) for v in paper.columns().values()))
            for paper in sorted(texts, key=lambda t: t.paper_id)
        ]
        await _backend(session).insert_rows(session, rows)


async def delete_paper_texts(session: AsyncSession, paper_ids: Iterable[int]) -> None:
    """Remove the index rows of these papers (deleted papers, or before a reindex)."""
    ids = sorted(set(paper_ids))
    backend = _backend(session)
    for part in chunked(ids):
        await session.execute(backend.delete_statement, {"ids": list(part)})


async def paper_texts(session: AsyncSession, paper_ids: Iterable[int]) -> list[PaperText]:
    """What the index should hold for these papers, read from papers + appearances.

    Ids of papers that no longer exist are left out.
    """
    ids = sorted(set(paper_ids))
    builder = PaperTextBuilder()
    for part in chunked(ids):
        rows = await session.execute(
            select(PaperRow.id, PaperRow.title, PaperRow.authors, PaperRow.abstract)
            .where(PaperRow.id.in_(part))
        )
        for row in rows:
            builder.paper(row.id, row.title, row.authors, row.abstract)
        apps = await session.execute(
            select(AppearanceRow.paper_id, AppearanceRow.topic, AppearanceRow.summary,
                   AppearanceRow.takeaways)
            .where(AppearanceRow.paper_id.in_(part))
            .order_by(AppearanceRow.date, AppearanceRow.topic)
        )
        for app in apps:
            builder.appearance(app.paper_id, app.topic, app.summary, app.takeaways)
    return builder.build()


# --- searching ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """A SearchQuery made safe: cleaned values, parsed terms."""

    terms: list[Term]
    authors: list[Term]
    tags: list[str]
    arxiv_ids: list[str]
    since: date | None
    until: date | None

    @classmethod
    def of(cls, query: SearchQuery) -> _Plan:
        authors = [a for a in (author_term(x) for x in query.authors) if a is not None]
        tags = [t for t in dict.fromkeys(clean(t) for t in query.tags) if t]
        ids: list[str] = []
        for raw in query.arxiv_ids:
            cleaned = clean(raw, 100)
            norm = normalize_arxiv_id(cleaned)
            ids.append(norm[0] if norm else cleaned)
        return cls(
            terms=split_terms(query.text),
            authors=list(dict.fromkeys(authors))[:MAX_AUTHORS],
            tags=tags[:MAX_TAGS],
            arxiv_ids=[i for i in dict.fromkeys(ids) if i][:MAX_ARXIV_IDS],
            since=query.since,
            until=query.until,
        )

    @property
    def appearance_conditions(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if self.tags:
            conds.append(AppearanceRow.topic.in_(self.tags))
        if self.since is not None:
            conds.append(AppearanceRow.date >= self.since)
        if self.until is not None:
            conds.append(AppearanceRow.date <= self.until)
        return conds


async def search(
    session: AsyncSession, query: SearchQuery, *, limit: int = 10, offset: int = 0
) -> tuple[list[SearchHit], int]:
    """Papers matching the query, best first, and how many match in all.

    Exact arXiv ids come first, then full-text matches by relevance (weighted bm25 on
    SQLite, ts_rank_cd on PostgreSQL). Tags (any of them), dates (one appearance in
    range, with one of the tags) and authors (all of them) filter both. With no usable
    text and no ids, the filters alone list papers newest first; with nothing usable at
    all the answer is ([], 0). Never raises on odd user input.
    """
    backend = _backend(session)
    limit, offset = max(0, limit), max(0, offset)
    plan = _Plan.of(query)
    conds = plan.appearance_conditions
    filter_ids = select(AppearanceRow.paper_id).where(*conds) if conds else None
    author_ids = backend.match(plan.authors, ()).ids if plan.authors else None

    exact: list[int] = []
    if plan.arxiv_ids:
        stmt = select(PaperRow.id, PaperRow.arxiv_id).where(PaperRow.arxiv_id.in_(plan.arxiv_ids))
        if filter_ids is not None:
            stmt = stmt.where(PaperRow.id.in_(filter_ids))
        if author_ids is not None:
            stmt = stmt.where(PaperRow.id.in_(author_ids))
        found = {row.arxiv_id: row.id for row in await session.execute(stmt)}
        exact = [found[i] for i in plan.arxiv_ids if i in found]

    ranked: list[tuple[int, float]] = []
    rest_total = 0
    rest_offset = max(0, offset - len(exact))
    rest_limit = max(0, limit - max(0, len(exact) - offset))
    if plan.terms:
        match = backend.match(plan.authors, plan.terms)
        where: list[ColumnElement[bool]] = [match.condition]
        if filter_ids is not None:
            where.append(match.filter_id.in_(filter_ids))
        if exact:
            where.append(match.filter_id.not_in(exact))
        ranked, rest_total = await _ranked(session, match, where, rest_limit, rest_offset)
    elif not plan.arxiv_ids and (conds or plan.authors):
        authors = backend.match(plan.authors, ()) if plan.authors else None
        ranked, rest_total = await _newest(session, conds, authors, rest_limit, rest_offset)

    page = [(pid, EXACT_RANK) for pid in exact[offset : offset + limit]] + ranked
    by_id = await load_archived_by_id(session, [pid for pid, _ in page])
    hits = [SearchHit(by_id[pid], rank) for pid, rank in page if pid in by_id]
    return hits, len(exact) + rest_total


async def _count(
    session: AsyncSession, match: _Match, where: Sequence[ColumnElement[bool]]
) -> int:
    """How many rows of the match meet `where` (a full read of the match)."""
    count = select(func.count()).select_from(match.source).where(*where)
    return int((await session.execute(count)).scalar_one())


async def _ranked(
    session: AsyncSession,
    match: _Match,
    where: Sequence[ColumnElement[bool]],
    limit: int,
    offset: int,
) -> tuple[list[tuple[int, float]], int]:
    """One page of matches by relevance, and how many match.

    The newest RANK_WINDOW matches are ranked (that is all of them, usually) in one
    statement that also counts them, so below RANK_WINDOW matches the index is read
    once, not once to count and once to rank. Beyond it (see the module docstring) the
    older matches follow, newest first, and a separate count gives the total.
    """
    score = match.score.label("score")
    matches = (select(match.paper_id.label("paper_id"), score)
               .select_from(match.source).where(*where))
    page: list[tuple[int, float]] = []
    total: int | None = None
    if limit and offset < RANK_WINDOW:
        window = matches.order_by(match.paper_id.desc()).limit(RANK_WINDOW).subquery()
        stmt = (select(window.c.paper_id, window.c.score, func.count().over().label("n"))
                .order_by(desc(window.c.score), window.c.paper_id)
                .limit(min(limit, RANK_WINDOW - offset)).offset(offset))
        rows = (await session.execute(stmt)).all()
        page = [(row.paper_id, float(row.score)) for row in rows]
        if rows and rows[0].n < RANK_WINDOW:
            total = int(rows[0].n)
        elif not rows and offset == 0:
            total = 0
    if total is None:
        total = await _count(session, match, where)
    if limit and offset + limit > RANK_WINDOW and offset < total:
        start = max(offset, RANK_WINDOW)
        stmt = (matches.order_by(match.paper_id.desc())
                .limit(offset + limit - start).offset(start))
        page += [(row.paper_id, float(row.score)) for row in await session.execute(stmt)]
    return page, total


async def _newest(
    session: AsyncSession,
    conds: list[ColumnElement[bool]],
    authors: _Match | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[int, float]], int]:
    """Papers with a matching appearance, by their latest matching date, newest first.

    Grouping every matching appearance (10 000 for a big tag) to show ten took most of
    a listing's time. So the page is found in two steps: the date of the last paper the
    page needs, from the newest matching appearances (read off an index, newest first);
    then the exact ordering among the few papers with a matching appearance on or after
    that date, which the papers of the page all have.
    """
    if conds:
        count = select(func.count(distinct(AppearanceRow.paper_id))).where(*conds)
        if authors is not None:
            count = count.where(AppearanceRow.paper_id.in_(authors.ids))
        total = int((await session.execute(count)).scalar_one())
    else:  # authors alone: each paper has one index row and at least one appearance
        assert authors is not None
        total = await _count(session, authors, [authors.condition])
    if not limit or offset >= total:
        return [], total
    narrow = total > NARROW_LISTINGS_ABOVE
    where = list(conds)
    if authors is not None:
        # With many matches, `paper_id + 0` keeps SQLite from looking up the appearances
        # of every matching paper (20 000 for a common surname) and sorting them: it
        # reads the date index newest first instead, checking each row against the
        # matches, and stops after a page (60 ms -> 4 ms). With few matches the lookup
        # is the cheaper way.
        paper_id = AppearanceRow.paper_id + 0 if narrow else AppearanceRow.paper_id
        where.append(paper_id.in_(authors.ids))
    candidates = await _newest_candidates(session, where, offset + limit) if narrow else None
    if candidates is not None:
        where.append(AppearanceRow.paper_id.in_(candidates))
    last = func.max(AppearanceRow.date).label("last")
    rows = await session.execute(
        select(AppearanceRow.paper_id, last)
        .where(*where)
        .group_by(AppearanceRow.paper_id)
        .order_by(desc(last), func.min(AppearanceRow.position), AppearanceRow.paper_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [(row.paper_id, 0.0) for row in rows], total


async def _newest_candidates(
    session: AsyncSession, where: Sequence[ColumnElement[bool]], need: int
) -> list[int] | None:
    """The papers with a matching appearance on or after the date by which `need`
    distinct papers have one (None: fewer papers match than that, take them all)."""
    fetch = 2 * need + 16
    while True:
        rows = (await session.execute(
            select(AppearanceRow.paper_id, AppearanceRow.date)
            .where(*where).order_by(AppearanceRow.date.desc()).limit(fetch)
        )).all()
        seen: set[int] = set()
        for row in rows:
            seen.add(row.paper_id)
            if len(seen) == need:
                since = row.date
                ids = dict.fromkeys(await session.scalars(  # no DISTINCT: it would
                    select(AppearanceRow.paper_id)  # read the paper_id index, not by date
                    .where(*where, AppearanceRow.date >= since)
                    .limit(MAX_CANDIDATES + 1)
                ))
                return list(ids) if len(ids) <= MAX_CANDIDATES else None
        if len(rows) < fetch:
            return None
        fetch *= 4


# --- the dialects -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Match:
    """Papers matching some terms: rows of `source` meeting `condition`."""

    source: FromClause
    paper_id: ColumnElement[int]
    score: ColumnElement[float]  # higher is better
    condition: ColumnElement[bool]
    filter_id: ColumnElement[int]  # paper_id as the operand of IN / NOT IN filters

    @property
    def ids(self) -> Select[int]:
        return select(self.paper_id).select_from(self.source).where(self.condition)


class _Backend(Protocol):
    """What search needs from a dialect: statements that write the index, and a match."""

    delete_statement: TextClause  # params: ids (expanding)

    async def insert_rows(self, session: AsyncSession, rows: Sequence[IndexRow]) -> None:
        """Add index rows: (paper_id, *FTS_COLUMNS texts), in one executemany."""

    def match(self, authors: Sequence[Term], terms: Sequence[Term]) -> _Match: ...


def _fts5_phrase(term: Term) -> str:
    """The term as an FTS5 string, double quotes doubled (there are none, but still)."""
    body = " ".join(term.tokens).replace('"', '""')
    return f'"{body}"'


def match_expression(terms: Sequence[Term], authors: Sequence[Term] = ()) -> str:
    """The FTS5 MATCH string: every term, and every author phrase in the authors column."""
    parts = [_fts5_phrase(t) for t in terms] + [f"authors : {_fts5_phrase(a)}" for a in authors]
    return " AND ".join(parts)


class _SQLite:
    """FTS5: MATCH with a quoted-phrase expression, bm25 with per-column weights."""

    _table = table(FTS_TABLE, column("rowid", Integer))
    _self: ColumnElement[Any] = literal_column(FTS_TABLE)
    # `+rowid`, not `rowid`: SQLite hands `rowid IN (subquery)` to FTS5 as a rowid
    # constraint, and FTS5 then runs the whole MATCH (and bm25) once per id of the
    # subquery: 20 s instead of 30 ms for a tag filter plus a common word at 100k papers.
    # The unary plus keeps the filter out of the virtual table's plan: FTS5 yields the
    # matches once and SQLite checks each against the subquery's list.
    _filter_id: ColumnElement[int] = literal_column(f"+{FTS_TABLE}.rowid", Integer)
    # Positional, straight to the driver: these rows are most of an ingest's writes, and
    # SQLAlchemy's per-row parameter processing (nothing to convert: all text) cost more
    # than SQLite's own insert.
    _insert_sql = (f"INSERT INTO {FTS_TABLE} (rowid, {', '.join(FTS_COLUMNS)}) "
                   f"VALUES (?{', ?' * len(FTS_COLUMNS)})")
    delete_statement = text(f"DELETE FROM {FTS_TABLE} WHERE rowid IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )

    async def insert_rows(self, session: AsyncSession, rows: Sequence[IndexRow]) -> None:
        connection = await session.connection()
        await connection.exec_driver_sql(self._insert_sql, list(rows))

    def match(self, authors: Sequence[Term], terms: Sequence[Term]) -> _Match:
        weights = [literal(WEIGHTS[c]) for c in FTS_COLUMNS]
        return _Match(
            source=self._table,
            paper_id=self._table.c.rowid,
            score=-func.bm25(self._self, *weights),
            condition=self._self.op("MATCH")(match_expression(terms, authors)),
            filter_id=self._filter_id,
        )


class _PostgreSQL:
    """tsvector + GIN: phraseto_tsquery per term joined with &&, ranked by ts_rank_cd."""

    _table = table(PG_TABLE, column("paper_id", Integer), column("document", TSVECTOR),
                   column("authors", TSVECTOR))
    # ts_rank_cd weights of the classes D (abstract), C (takeaways), B (tags, summaries)
    # and A (title, authors).
    _weights: ColumnElement[Any] = literal_column("'{0.1, 0.2, 0.4, 1.0}'::float4[]")
    insert_statement = text(
        f"INSERT INTO {PG_TABLE} (paper_id, document, authors) VALUES (:paper_id, "
        "setweight(to_tsvector('english', :title), 'A')"
        " || setweight(to_tsvector('english', :authors), 'A')"
        " || setweight(to_tsvector('english', :tags), 'B')"
        " || setweight(to_tsvector('english', :summary), 'B')"
        " || setweight(to_tsvector('english', :takeaways), 'C')"
        " || setweight(to_tsvector('english', :abstract), 'D'),"
        " to_tsvector('simple', :authors))"
    )
    delete_statement = text(f"DELETE FROM {PG_TABLE} WHERE paper_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )

    async def insert_rows(self, session: AsyncSession, rows: Sequence[IndexRow]) -> None:
        names = ("paper_id", *FTS_COLUMNS)
        await session.execute(self.insert_statement, [dict(zip(names, r, strict=True))
                                                      for r in rows])

    @staticmethod
    def _query(config: str, terms: Sequence[Term]) -> ColumnElement[Any]:
        """phraseto_tsquery of each term (user text only ever as a bound value), &&-ed."""
        regconfig: ColumnElement[Any] = literal_column(f"'{config}'::regconfig")
        parts = [func.phraseto_tsquery(regconfig, literal(" ".join(t.tokens))) for t in terms]
        query: ColumnElement[Any] = parts[0]
        for part in parts[1:]:
            query = query.op("&&")(part)
        return query

    def match(self, authors: Sequence[Term], terms: Sequence[Term]) -> _Match:
        conditions: list[ColumnElement[bool]] = []
        score: ColumnElement[float] = literal(0.0)
        if terms:
            query = self._query("english", terms)
            conditions.append(self._table.c.document.op("@@")(query))
            score = func.ts_rank_cd(self._weights, self._table.c.document, query)
        if authors:
            conditions.append(self._table.c.authors.op("@@")(self._query("simple", authors)))
        return _Match(
            source=self._table,
            paper_id=self._table.c.paper_id,
            score=score,
            condition=and_(*conditions),
            filter_id=self._table.c.paper_id,
        )


_BACKENDS: dict[str, _Backend] = {"sqlite": _SQLite(), "postgresql": _PostgreSQL()}


def _backend(session: AsyncSession) -> _Backend:
    name = session.get_bind().dialect.name
    try:
        return _BACKENDS[name]
    except KeyError:
        raise NotImplementedError(f"no full-text search for the {name} dialect") from None
