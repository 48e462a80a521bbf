"""Benchmark 2, search: mixed queries over the generated archive, p50 / p95 / p99 latency.

Each query is what a user would type after /search (or in inline mode), run the way the
bot's /search runs it: `ArchiveRepo.search(parse_query(text), limit=10, count_up_to=…)`,
which ranks the matches, counts those of words or authors up to 1 000 ("1000+ papers",
bot.tg.handlers.browse.counted_up_to) and loads the first page of papers. Each query
also runs with an exact count (`count_up_to=None`, as `paperfeed search` runs it), the
two alternating so that both see the same machine. Queries are drawn (seeded) from the
real sample and the archive itself, in six kinds:

* words: one or two English words of real titles and abstracts;
* phrases: two or three consecutive title words, quoted;
* chinese: a two-character term from a real summary or takeaway (扩散, 高斯, ...);
* authors: `author:"Full Name"` or `author:Surname`, sometimes with a word;
* ids: an archived arXiv id as bare id, `arXiv:` id, versioned id or abs/pdf URL (and
  some ids that are not archived);
* tags: `tag:` / `#` filters alone, with a word, or with since:/until:.

The database file is read once first, so that an archive kept by --workdir (or pushed
out of the page cache by other work) is searched from memory, as one ingested in the
same run is: the figures are of the search, not of the disk. A few queries then run to
warm SQLite's own caches; they are not counted.
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Row, Workspace, percentile, sqlite_url
from bench.gen import TOPICS, load_sample
from bench.ingest import ensure_archive
from bot.domain.query import parse_query
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo
from bot.tg.handlers.browse import COUNT_UP_TO, counted_up_to

TARGET_P95_MS = 15.0
TARGET_P99_MS = 25.0
WARMUP = 20
MIX = {"words": 0.20, "phrases": 0.15, "chinese": 0.20, "authors": 0.15, "ids": 0.10,
       "tags": 0.20}

_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_STOP = frozenset((
    "with", "from", "that", "this", "these", "those", "their", "which", "while", "where",
    "have", "been", "into", "than", "then", "them", "they", "over", "such", "also",
    "only", "more", "most", "both", "each", "other", "based", "using", "used", "paper",
    "method", "methods", "approach", "propose", "proposed", "show", "shows", "results",
    "model", "models",
))


@dataclass(slots=True)
class SearchResult:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    exact: list[float] = field(default_factory=list)  # the same queries, counted exactly
    slowest: list[tuple[float, str, int]] = field(default_factory=list)  # (ms, query, total)

    @property
    def all(self) -> list[float]:
        return [v for values in self.latencies.values() for v in values]


def make_queries(db: Path, count: int, seed: int = 7) -> list[tuple[str, str]]:
    """(kind, text) pairs in a seeded random order."""
    rng = random.Random(seed)
    sample = load_sample()
    words = [w for text in sample.titles + sample.sentences for w in _WORD.findall(text)
             if w.lower() not in _STOP]
    title_words = [t.split() for t in sample.titles if len(t.split()) >= 3]
    chinese = [run[i:i + 2] for text in sample.summaries + sample.takeaways
               for run in _CJK_RUN.findall(text) for i in range(len(run) - 1)]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT arxiv_id FROM papers ORDER BY random() "
                                          "LIMIT 2000")]
        first, last = conn.execute("SELECT min(date), max(date) FROM appearances").fetchone()
    authors = sample.authors
    years = list(range(int(first[:4]), int(last[:4]) + 1))

    def word_query() -> str:
        return " ".join(rng.choice(words).lower() for _ in range(rng.choice((1, 1, 2))))

    def phrase_query() -> str:
        title = rng.choice(title_words)
        size = rng.choice((2, 3))
        start = rng.randrange(0, len(title) - size + 1)
        return '"' + " ".join(title[start:start + size]) + '"'

    def author_query() -> str:
        name = rng.choice(authors)
        if rng.random() < 0.6 or " " not in name:
            text = f'author:"{name}"'
        else:
            text = f"author:{name.split()[-1]}"
        return text + (f" {rng.choice(words).lower()}" if rng.random() < 0.2 else "")

    def id_query() -> str:
        if rng.random() < 0.2:
            return f"{rng.choice(ids)[:5]}{rng.randrange(99000, 99999)}"  # not archived
        arxiv_id = rng.choice(ids)
        return rng.choice((arxiv_id, f"arXiv:{arxiv_id}", f"{arxiv_id}v2",
                           f"https://arxiv.org/abs/{arxiv_id}v1",
                           f"https://arxiv.org/pdf/{arxiv_id}"))

    def tag_query() -> str:
        topic = rng.choice(TOPICS)
        tag = f'tag:"{topic}"' if " " in topic else rng.choice((f"tag:{topic}", f"#{topic}"))
        extra = rng.random()
        if extra < 0.35:
            return tag
        if extra < 0.7:
            return f"{tag} {rng.choice(words).lower()}"
        year = rng.choice(years)
        if extra < 0.85:
            return f"{tag} since:{year}-{rng.randrange(1, 13):02d}"
        return f"{tag} until:{year} {rng.choice(chinese)}"

    makers: dict[str, Callable[[], str]] = {
        "words": word_query, "phrases": phrase_query, "chinese": lambda: rng.choice(chinese),
        "authors": author_query, "ids": id_query, "tags": tag_query,
    }
    queries: list[tuple[str, str]] = []
    for kind, share in MIX.items():
        queries += [(kind, makers[kind]()) for _ in range(round(count * share))]
    rng.shuffle(queries)
    return queries[:count]


def read_through(db: Path) -> None:
    """Read the database file (and its WAL) once, into the operating system's cache."""
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            with path.open("rb") as f:
                while f.read(1 << 20):
                    pass


async def run_queries(db: Path, queries: list[tuple[str, str]]) -> SearchResult:
    read_through(db)
    engine = make_engine(sqlite_url(db))
    result = SearchResult()
    try:
        await migrate(engine)  # an archive kept from a run of older code
        repo = ArchiveRepo(make_sessionmaker(engine))

        async def timed(text: str, exact: bool) -> tuple[float, int]:
            started = time.perf_counter()
            query = parse_query(text)
            up_to = None if exact else counted_up_to(query)
            _, total = await repo.search(query, limit=10, count_up_to=up_to)
            return (time.perf_counter() - started) * 1000, total

        for _, text in queries[:WARMUP]:
            await timed(text, False)
        for i, (kind, text) in enumerate(queries):
            if i % 2:
                exact_ms, _ = await timed(text, True)
            ms, total = await timed(text, False)
            if not i % 2:
                exact_ms, _ = await timed(text, True)
            result.latencies[kind].append(ms)
            result.exact.append(exact_ms)
            result.slowest.append((ms, text, total))
    finally:
        await engine.dispose()
    result.slowest.sort(reverse=True)
    del result.slowest[10:]
    return result


def run(ws: Workspace, log: Callable[[str], None] = print) -> list[Row]:
    db = ensure_archive(ws)
    queries = make_queries(db, ws.scale.queries)
    assert ws.gen is not None
    log(f"search: {len(queries)} queries over {ws.gen.papers:,} papers")
    result = asyncio.run(run_queries(db, queries))
    ws.extras["search"] = result
    everything = result.all
    p50, p95, p99 = (percentile(everything, p) for p in (50, 95, 99))
    name = f"search {ws.gen.papers // 1000}k"
    exact = [percentile(result.exact, p) for p in (50, 95, 99)]
    rows = [
        Row(name, "p50 latency", "", f"{p50:.1f} ms", None,
            f"{len(everything)} queries, counted up to {COUNT_UP_TO:,} as the bot does; "
            f"max {max(everything):.1f} ms"),
        Row(name, "p95 latency", f"< {TARGET_P95_MS:.0f} ms", f"{p95:.1f} ms",
            p95 < TARGET_P95_MS),
        Row(name, "p99 latency", f"< {TARGET_P99_MS:.0f} ms", f"{p99:.1f} ms",
            p99 < TARGET_P99_MS),
        Row(name, "exact counts", "", f"{exact[1]:.1f} ms", None,
            f"the same queries counting every match (paperfeed search): p50 {exact[0]:.1f}, "
            f"p95 {exact[1]:.1f}, p99 {exact[2]:.1f} ms"),
    ]
    by_kind = ", ".join(
        f"{kind} {percentile(values, 50):.1f}/{percentile(values, 95):.1f}"
        for kind, values in sorted(result.latencies.items()))
    rows.append(Row(name, "p50/p95 ms by kind", "", "", None, by_kind))
    slow = "; ".join(f"{text!r} {ms:.0f} ms ({total:,} hits)"
                     for ms, text, total in result.slowest[:5])
    rows.append(Row(name, "slowest queries", "", "", None, slow))
    return rows
