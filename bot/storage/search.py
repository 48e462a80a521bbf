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
follow, newest first. A term in more than half the archive gets almost no weight from
bm25 anyway (its idf is clamped to ~0: the order among its matches comes from column
weights and term counts alone), so what is lost is an older paper that would have
ranked on page one; a second term, a tag or a date narrows the matches below the window
and brings back the full ranking. Below the window one statement ranks and counts the
matches, so the index is read once, not twice.

Counting (SQLite). Ranking a phrase costs at least one read of all its matches however
few are shown: bm25 weighs each phrase by the share of the archive it occurs in, and
FTS5 counts that by reading the phrase's whole doclist (xQueryPhrase), with positions
for a phrase or a CJK term. An exact total past the window is a second such read, the
same length again (模型: 12 ms each at 100k papers). So a caller that shows "1000+"
passes `count_up_to` and the window's own count answers it (see `search`).

Filters with text (SQLite). A tag or date filter is a list of paper ids each match is
checked against (`+rowid`, see _SQLite). A tag with a date also bounds the rowids FTS5
reads (_id_bounds): ids grow with arrival, so `until:2023` skips the newer matches.

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
from functools import lru_cache
from typing import Any, Final, Protocol, TypeAlias

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
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
from sqlalchemy.orm import Session

from bot.domain.models import SearchHit, SearchQuery
from bot.domain.query import normalize_arxiv_id
from bot.storage.loading import archived_by_id, chunked
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

_Query: TypeAlias = "Select[*tuple[Any, ...]]"  # a SELECT of any columns

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
#
# Every statement is built once per query shape (which filters, how many terms on
# PostgreSQL) and cached, the values going in as parameters: building and fingerprinting
# a fresh statement cost SQLAlchemy about 1.2 ms of Python per search, a tenth of a
# typical one.


def _int(name: str) -> Any:
    """An integer parameter (a LIMIT, an OFFSET)."""
    return bindparam(name, type_=Integer)


@dataclass(frozen=True, slots=True)
class _Filter:
    """Which appearance filters a query has; their values are the parameters tags (a
    list), since and until."""

    tags: bool = False
    since: bool = False
    until: bool = False

    def __bool__(self) -> bool:
        return self.tags or self.since or self.until

    def conditions(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if self.tags:
            conds.append(AppearanceRow.topic.in_(bindparam("tags", expanding=True)))
        if self.since:
            conds.append(AppearanceRow.date >= bindparam("since"))
        if self.until:
            conds.append(AppearanceRow.date <= bindparam("until"))
        return conds

    def paper_ids(self) -> Select[int]:
        return select(AppearanceRow.paper_id).where(*self.conditions())


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
    def filter(self) -> _Filter:
        return _Filter(bool(self.tags), self.since is not None, self.until is not None)

    @property
    def params(self) -> dict[str, Any]:
        return {"tags": self.tags, "since": self.since, "until": self.until}


def search(
    session: Session, query: SearchQuery, *, limit: int = 10, offset: int = 0,
    count_up_to: int | None = None,
) -> tuple[list[SearchHit], int]:
    """Papers matching the query, best first, and how many match in all.

    Exact arXiv ids come first, then full-text matches by relevance (weighted bm25 on
    SQLite, ts_rank_cd on PostgreSQL). Tags (any of them), dates (one appearance in
    range, with one of the tags) and authors (all of them) filter both. With no usable
    text and no ids, the filters alone list papers newest first; with nothing usable at
    all the answer is ([], 0). Never raises on odd user input.

    `count_up_to`: count only as far as needed to tell that at least this many match,
    and more than this page reaches: the total is at most max(count_up_to, offset +
    limit + 1), exact below that bound, and "that many or more" at it. Up to RANK_WINDOW
    this costs nothing beyond the ranking, whereas an exact count of a very common term
    reads all its matches once more (as long again as ranking them). None: exact.

    Blocking code, so that a search runs whole in a worker thread on SQLite (see
    engine.run_read); an AsyncSession runs it with run_sync.
    """
    backend = _backend(session)
    limit, offset = max(0, limit), max(0, offset)
    plan = _Plan.of(query)
    params = plan.params

    exact: list[int] = []
    if plan.arxiv_ids:
        stmt = _exact_statement(backend, len(plan.authors), plan.filter)
        rows = session.execute(stmt, {**params, **backend.match_params(plan.authors, ()),
                                      "ids": plan.arxiv_ids})
        found = {row.arxiv_id: row.id for row in rows}
        exact = [found[i] for i in plan.arxiv_ids if i in found]

    ranked: list[tuple[int, float]] = []
    rest_total = 0
    rest_offset = max(0, offset - len(exact))
    rest_limit = max(0, limit - max(0, len(exact) - offset))
    if plan.terms:
        statements = _text_statements(backend, len(plan.authors), len(plan.terms),
                                      plan.filter, bool(exact))
        text_params = {**params, **backend.match_params(plan.authors, plan.terms),
                       "exact": exact}
        ranked, rest_total = _ranked(session, statements, text_params, rest_limit,
                                     rest_offset, count_up_to)
    elif not plan.arxiv_ids and (plan.filter or plan.authors):
        ranked, rest_total = _newest(
            session, backend, len(plan.authors), plan.filter,
            {**params, **backend.match_params(plan.authors, ())},
            rest_limit, rest_offset, count_up_to)

    page = [(pid, EXACT_RANK) for pid in exact[offset : offset + limit]] + ranked
    by_id = archived_by_id(session, [pid for pid, _ in page])
    hits = [SearchHit(by_id[pid], rank) for pid, rank in page if pid in by_id]
    total = len(exact) + rest_total
    if count_up_to is not None:  # the same bound for listings, whose count is exact
        total = min(total, max(count_up_to, offset + limit + 1))
    return hits, total


@lru_cache(maxsize=256)
def _exact_statement(backend: _Backend, authors: int, filter_: _Filter) -> _Query:
    """Papers by arXiv id (parameter ids), within the filters."""
    stmt = select(PaperRow.id, PaperRow.arxiv_id).where(
        PaperRow.arxiv_id.in_(bindparam("ids", expanding=True)))
    if filter_:
        stmt = stmt.where(PaperRow.id.in_(filter_.paper_ids()))
    if authors:
        stmt = stmt.where(PaperRow.id.in_(backend.match(authors, 0).ids))
    return stmt


@dataclass(frozen=True, slots=True)
class _TextStatements:
    """A text search of one shape. Parameters: the match's, the filter's, exact (ids
    shown first, left out here); window, limit and offset; up_to."""

    ranked: _Query  # the newest `window` matches ranked: page `limit`/`offset`, and n
    older: _Query  # matches newest first: `limit` from `offset`
    count: _Query
    count_up_to: _Query  # count(*) of at most `up_to` matches


@lru_cache(maxsize=512)
def _text_statements(backend: _Backend, authors: int, terms: int, filter_: _Filter,
                     exact: bool) -> _TextStatements:
    match = backend.match(authors, terms)
    where: list[ColumnElement[bool]] = [match.condition]
    if filter_:
        where.append(match.filter_id.in_(filter_.paper_ids()))
        if filter_.tags and (filter_.since or filter_.until):
            where.append(match.paper_id.between(*_id_bounds(filter_)))
    if exact:
        where.append(match.filter_id.not_in(bindparam("exact", expanding=True)))
    matches = (select(match.paper_id.label("paper_id"), match.score.label("score"))
               .select_from(match.source).where(*where))
    newest = matches.order_by(match.paper_id.desc())
    window = newest.limit(_int("window")).subquery()
    at_most = (select(literal_column("1")).select_from(match.source).where(*where)
               .limit(_int("up_to")).subquery())
    return _TextStatements(
        ranked=select(window.c.paper_id, window.c.score, func.count().over().label("n"))
        .order_by(desc(window.c.score), window.c.paper_id)
        .limit(_int("limit")).offset(_int("offset")),
        older=newest.limit(_int("limit")).offset(_int("offset")),
        count=select(func.count()).select_from(match.source).where(*where),
        count_up_to=select(func.count()).select_from(at_most),
    )


def _id_bounds(filter_: _Filter) -> tuple[Any, Any]:
    """The smallest and largest id of the papers a tag and date filter lets through, as
    scalar subqueries of one CTE read off the (topic, date, paper_id) index (NULL: none;
    about 1 ms for a tag's year at 100k papers).

    A text search hands them to the index as a rowid range, so a date filter reads only
    its part of the index, ids growing with the date papers arrive: `tag:NeRF until:2023
    图像` then reads a third of 图像's matches. Only with a tag: without one the date
    index is not covering (10 ms for a year at 100k papers), and a tag alone mostly
    spans every id.
    """
    paper_id = AppearanceRow.paper_id
    bounds = (select(func.min(paper_id).label("low"), func.max(paper_id).label("high"))
              .where(*filter_.conditions()).cte("bounds"))
    return select(bounds.c.low).scalar_subquery(), select(bounds.c.high).scalar_subquery()


def _ranked(
    session: Session,
    statements: _TextStatements,
    params: dict[str, Any],
    limit: int,
    offset: int,
    count_up_to: int | None,
) -> tuple[list[tuple[int, float]], int]:
    """One page of matches by relevance, and how many match (see search: count_up_to).

    The newest RANK_WINDOW matches are ranked (that is all of them, usually) in one
    statement that also counts them, so below RANK_WINDOW matches the index is read
    once, not once to count and once to rank. Beyond it (see the module docstring) the
    older matches follow, newest first, and a separate count gives the total, unless
    the window already shows there are at least count_up_to.
    """
    if count_up_to is not None:  # the caller must see whether a next page exists
        count_up_to = max(count_up_to, offset + limit + 1)
    page: list[tuple[int, float]] = []
    total: int | None = None
    if limit and offset < RANK_WINDOW:
        rows = (session.execute(statements.ranked, {
            **params, "window": RANK_WINDOW, "limit": min(limit, RANK_WINDOW - offset),
            "offset": offset})).all()
        page = [(row.paper_id, float(row.score)) for row in rows]
        if rows and rows[0].n < RANK_WINDOW:
            total = int(rows[0].n)
        elif rows and count_up_to is not None and count_up_to <= RANK_WINDOW:
            total = count_up_to  # a full window: at least RANK_WINDOW match
        elif not rows and offset == 0:
            total = 0
    if total is None:
        if count_up_to is None:
            total = int(session.execute(statements.count, params).scalar_one())
        else:
            total = int(session.execute(statements.count_up_to,
                                        {**params, "up_to": count_up_to}).scalar_one())
    if limit and offset + limit > RANK_WINDOW and offset < total:
        start = max(offset, RANK_WINDOW)
        older = session.execute(statements.older, {
            **params, "limit": offset + limit - start, "offset": start})
        page += [(row.paper_id, float(row.score)) for row in older]
    return page, total


@dataclass(frozen=True, slots=True)
class _ListingStatements:
    """A listing of one shape. Parameters: the match's and the filter's; limit, offset;
    fetch; first_date; candidates; up_to."""

    count: _Query
    count_up_to: _Query  # count(*) of at most `up_to` papers
    newest: _Query  # the newest `fetch` matching appearances: paper_id, date
    since_first: _Query  # paper ids with a matching appearance on or after first_date
    page: _Query  # papers by latest matching date: `limit` from `offset`
    page_of: _Query  # the same among `candidates`


@lru_cache(maxsize=256)
def _listing_statements(backend: _Backend, authors: int, filter_: _Filter,
                        narrow: bool) -> _ListingStatements:
    match = backend.match(authors, 0) if authors else None
    where = filter_.conditions()
    if match is not None:
        # With many matches, `paper_id + 0` keeps SQLite from looking up the appearances
        # of every matching paper (20 000 for a common surname) and sorting them: it
        # reads the date index newest first instead, checking each row against the
        # matches, and stops after a page (60 ms -> 4 ms). With few matches the lookup
        # is the cheaper way.
        paper_id = AppearanceRow.paper_id + 0 if narrow else AppearanceRow.paper_id
        where.append(paper_id.in_(match.ids))
    if filter_:
        count = select(func.count(distinct(AppearanceRow.paper_id))).where(*where)
        papers = select(AppearanceRow.paper_id).where(*where).distinct()
    else:  # authors alone: each paper has one index row and at least one appearance
        assert match is not None
        count = select(func.count()).select_from(match.source).where(match.condition)
        papers = select(match.paper_id).select_from(match.source).where(match.condition)
    last = func.max(AppearanceRow.date).label("last")
    page = (select(AppearanceRow.paper_id, last)
            .group_by(AppearanceRow.paper_id)
            .order_by(desc(last), func.min(AppearanceRow.position),
                      AppearanceRow.paper_id.desc())
            .limit(_int("limit")).offset(_int("offset")))
    return _ListingStatements(
        count=count,
        count_up_to=select(func.count()).select_from(
            papers.limit(_int("up_to")).subquery()),
        newest=select(AppearanceRow.paper_id, AppearanceRow.date).where(*where)
        .order_by(AppearanceRow.date.desc()).limit(_int("fetch")),
        # no DISTINCT: it would read the paper_id index, not by date
        since_first=select(AppearanceRow.paper_id)
        .where(*where, AppearanceRow.date >= bindparam("first_date"))
        .limit(_int("fetch")),
        page=page.where(*where),
        page_of=page.where(*where, AppearanceRow.paper_id.in_(
            bindparam("candidates", expanding=True))),
    )


def _newest(
    session: Session,
    backend: _Backend,
    authors: int,
    filter_: _Filter,
    params: dict[str, Any],
    limit: int,
    offset: int,
    count_up_to: int | None,
) -> tuple[list[tuple[int, float]], int]:
    """Papers with a matching appearance, by their latest matching date, newest first,
    and how many there are (see search: count_up_to).

    Grouping every matching appearance (10 000 for a big tag) to show ten took most of
    a listing's time. So the page is found in two steps: the date of the last paper the
    page needs, from the newest matching appearances (read off an index, newest first);
    then the exact ordering among the few papers with a matching appearance on or after
    that date, which the papers of the page all have.
    """
    counting = _listing_statements(backend, authors, filter_, False)
    if count_up_to is None:
        total = int(session.execute(counting.count, params).scalar_one())
    else:
        up_to = max(count_up_to, offset + limit + 1, NARROW_LISTINGS_ABOVE + 1)
        total = int(session.execute(counting.count_up_to,
                                    {**params, "up_to": up_to}).scalar_one())
    if not limit or offset >= total:
        return [], total
    narrow = total > NARROW_LISTINGS_ABOVE
    statements = _listing_statements(backend, authors, filter_, narrow)
    page_params = {**params, "limit": limit, "offset": offset}
    candidates = _newest_candidates(session, statements, params, offset + limit) \
        if narrow else None
    if candidates is None:
        rows = session.execute(statements.page, page_params)
    else:
        rows = session.execute(statements.page_of, {**page_params, "candidates": candidates})
    return [(row.paper_id, 0.0) for row in rows], total


def _newest_candidates(
    session: Session, statements: _ListingStatements, params: dict[str, Any],
    need: int,
) -> list[int] | None:
    """The papers with a matching appearance on or after the date by which `need`
    distinct papers have one (None: fewer papers match than that, take them all)."""
    fetch = 2 * need + 16
    while True:
        rows = session.execute(statements.newest, {**params, "fetch": fetch}).all()
        seen: set[int] = set()
        for row in rows:
            seen.add(row.paper_id)
            if len(seen) == need:
                ids: dict[int, None] = dict.fromkeys(session.scalars(
                    statements.since_first,
                    {**params, "first_date": row.date, "fetch": MAX_CANDIDATES + 1}))
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

    def __hash__(self) -> int: ...  # statements are cached per backend

    async def insert_rows(self, session: AsyncSession, rows: Sequence[IndexRow]) -> None:
        """Add index rows: (paper_id, *FTS_COLUMNS texts), in one executemany."""

    def match(self, authors: int, terms: int) -> _Match:
        """Papers matching this many author phrases and terms, whose values are the
        parameters match_params gives."""

    def match_params(self, authors: Sequence[Term], terms: Sequence[Term]) -> dict[str, Any]:
        """The parameters of match(len(authors), len(terms))."""


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

    _score: ColumnElement[float] = -func.bm25(_self, *(literal(WEIGHTS[c]) for c in FTS_COLUMNS))

    def match(self, authors: int, terms: int) -> _Match:
        return _Match(
            source=self._table,
            paper_id=self._table.c.rowid,
            score=self._score,
            condition=self._self.op("MATCH")(bindparam("match", type_=String)),
            filter_id=self._filter_id,
        )

    def match_params(self, authors: Sequence[Term], terms: Sequence[Term]) -> dict[str, Any]:
        return {"match": match_expression(terms, authors)}


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
    def _query(config: str, prefix: str, count: int) -> ColumnElement[Any]:
        """phraseto_tsquery of each term (user text only ever as a bound value), &&-ed."""
        regconfig: ColumnElement[Any] = literal_column(f"'{config}'::regconfig")
        parts = [func.phraseto_tsquery(regconfig, bindparam(f"{prefix}{i}", type_=String))
                 for i in range(count)]
        query: ColumnElement[Any] = parts[0]
        for part in parts[1:]:
            query = query.op("&&")(part)
        return query

    def match(self, authors: int, terms: int) -> _Match:
        conditions: list[ColumnElement[bool]] = []
        score: ColumnElement[float] = literal(0.0)
        if terms:
            query = self._query("english", "term", terms)
            conditions.append(self._table.c.document.op("@@")(query))
            score = func.ts_rank_cd(self._weights, self._table.c.document, query)
        if authors:
            conditions.append(
                self._table.c.authors.op("@@")(self._query("simple", "author", authors)))
        return _Match(
            source=self._table,
            paper_id=self._table.c.paper_id,
            score=score,
            condition=and_(*conditions),
            filter_id=self._table.c.paper_id,
        )

    def match_params(self, authors: Sequence[Term], terms: Sequence[Term]) -> dict[str, Any]:
        return {**{f"term{i}": " ".join(t.tokens) for i, t in enumerate(terms)},
                **{f"author{i}": " ".join(a.tokens) for i, a in enumerate(authors)}}


_BACKENDS: dict[str, _Backend] = {"sqlite": _SQLite(), "postgresql": _PostgreSQL()}


def _backend(session: AsyncSession | Session) -> _Backend:
    name = session.get_bind().dialect.name
    try:
        return _BACKENDS[name]
    except KeyError:
        raise NotImplementedError(f"no full-text search for the {name} dialect") from None
