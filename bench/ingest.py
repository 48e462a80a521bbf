"""Benchmark 1, ingest: a whole folder into an empty archive, then a rescan of it unchanged.

Two floors, timed in the same run as the ingest, round by round (floor, floor, ingest,
then again), so that a change in the machine's load hits all three alike; each figure is
the best of its rounds, so noise from other processes cannot make a ratio look better
than it is:

- **python-frontmatter alone** loading the same files (`frontmatter.load` of each `*.md`
  the scan would read, as a user script would call it);
- **a minimal store-and-index pipeline** (`index_floor`): python-frontmatter, a
  straightforward split of the content into `## ` sections (title, authors line,
  abstract, summary, takeaways, and the file's tag: the fields paperfeed's search
  indexes), and one sqlite3 connection inserting them into a plain FTS5 table with
  paperfeed's tokenizer, in one transaction. It stores nothing else: no paper rows, no
  listings, no analysis or figures, no change detection.

The ingest is the product's own: `Ingestor.scan()` over an `ArchiveRepo` on a fresh,
migrated SQLite file, exactly as `paperfeed run` / `paperfeed ingest` do it (settle time
0, since generated files are written just before). Its CPU time includes the process
that parses the files of a large scan.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import resource
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import frontmatter

from bench.common import Row, Timer, Workspace, load_average, remove_db, sqlite_url
from bench.gen import ensure_generated, sample_dir
from bot.domain.models import IngestReport
from bot.services.ingest import Ingestor, find_markdown
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo
from bot.storage.search import FTS_TOKENIZER

TARGET_RATIO = 3.0  # to python-frontmatter alone
TARGET_INDEX_RATIO = 2.0  # to the minimal store-and-index pipeline
TARGET_RESCAN = 1.0
ROUNDS_SMALL = 15  # rounds of the real sample (well under a second each)
ROUNDS_LARGE = 2  # rounds of the generated folder


@dataclass(frozen=True, slots=True)
class IngestResult:
    label: str
    files: int
    papers: int  # distinct papers stored
    listings: int  # paper sections stored (appearances), cross-listings included
    skipped: int
    seconds: float
    cpu: float
    rescan_seconds: float
    rescan_unchanged: int
    floor_seconds: float
    floor_cpu: float
    index_seconds: float  # the minimal store-and-index pipeline
    index_cpu: float
    index_rows: int  # sections it indexed
    rounds: int
    load: str  # load average after the last round

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor_seconds if self.floor_seconds else float("inf")

    @property
    def cpu_ratio(self) -> float:
        return self.cpu / self.floor_cpu if self.floor_cpu else float("inf")

    @property
    def index_ratio(self) -> float:
        return self.seconds / self.index_seconds if self.index_seconds else float("inf")

    @property
    def index_cpu_ratio(self) -> float:
        return self.cpu / self.index_cpu if self.index_cpu else float("inf")


class TreeTimer(Timer):
    """Timer whose CPU also counts the worker processes the block started (a large scan
    parses in one): they are waited for at the end, as only ended children are counted."""

    def __enter__(self) -> TreeTimer:
        super().__enter__()
        self._children = _children_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        deadline = time.monotonic() + 10
        while multiprocessing.active_children() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.cpu += _children_cpu() - self._children


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def frontmatter_floor(folder: Path) -> Timer:
    """python-frontmatter loading every file the scan reads."""
    with Timer() as timer:
        for found in find_markdown(folder).files:
            frontmatter.load(folder / found.path)
    return timer


_SECTION_START = "\n## "
_BOLD_LINE = re.compile(r"^\*\*[^*\n]+\*\*[:：]?[ \t]*$", re.M)
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+\.)\s*")


def _floor_sections(content: str, tag: str) -> Iterator[tuple[str, ...]]:
    """The index fields of every `## ` section with a PDF line, split the plain way:
    the title is the heading, the authors the `**Authors:` line, the abstract the
    line after it; between the PDF line and `**[ChatPaperFree]`, the line after the
    first bold line is the summary and the list after the second the takeaways."""
    for section in content.split(_SECTION_START)[1:]:
        title, _, body = section.partition("\n")
        head, pdf, rest = body.partition("[PDF](")
        if not pdf:
            continue
        authors = abstract = ""
        lines = [line for line in head.split("\n") if line.strip()]
        for i, line in enumerate(lines):
            if line.startswith("**Authors"):
                authors = line.strip("*").partition(":")[2]
                abstract = lines[i + 1] if i + 1 < len(lines) else ""
                break
        notes = rest.split("**[ChatPaperFree]", 1)[0]
        bold = list(_BOLD_LINE.finditer(notes))
        summary = takeaways = ""
        if bold:
            end = bold[1].start() if len(bold) > 1 else len(notes)
            summary = notes[bold[0].end():end].strip()
        if len(bold) > 1:
            items = notes[bold[1].end():].strip().split("\n")
            takeaways = "\n".join(_LIST_MARK.sub("", item) for item in items if item.strip())
        yield title.strip(), authors, abstract, summary, takeaways, tag


def index_floor(folder: Path, db: Path) -> tuple[Timer, int]:
    """The minimal store-and-index pipeline (module docstring): every file the scan reads
    loaded with python-frontmatter, split into sections, and inserted into one FTS5
    table of the fields paperfeed indexes, in one transaction. Returns its timer and
    the number of sections indexed."""
    remove_db(db)
    rows = 0
    with Timer() as timer:
        connection = sqlite3.connect(db)
        try:
            with connection:  # one transaction, committed at the end
                connection.execute(
                    "CREATE VIRTUAL TABLE papers USING fts5(title, authors, abstract, summary,"
                    f" takeaways, tags, tokenize = '{FTS_TOKENIZER}')")
                for found in find_markdown(folder).files:
                    post = frontmatter.load(folder / found.path)
                    tags = post.metadata.get("tags")
                    tag = str(tags[0]) if isinstance(tags, list) and tags else ""
                    sections = list(_floor_sections(post.content, tag))
                    connection.executemany("INSERT INTO papers VALUES (?, ?, ?, ?, ?, ?)",
                                           sections)
                    rows += len(sections)
        finally:
            connection.close()
    return timer, rows


async def ingest_folder(
    folder: Path, db: Path, *, rescan: bool = True
) -> tuple[Timer, IngestReport, Timer, IngestReport]:
    """A full ingest into a new database, then (timed too) a rescan of the unchanged
    folder; without ``rescan``, the first report and timer stand in for the second."""
    remove_db(db)
    engine = make_engine(sqlite_url(db))
    try:
        await migrate(engine)
        repo = ArchiveRepo(make_sessionmaker(engine))
        ingestor = Ingestor(repo, folder, settle_seconds=0)
        with TreeTimer() as full:
            report = await ingestor.scan()
        if not rescan:
            return full, report, full, report
        with TreeTimer() as again:
            rescan_report = await ingestor.scan()
        # The archive the other benchmarks copy is history the bot has announced, as its
        # own scans leave it; otherwise a bot started on it would queue all of it again.
        await repo.mark_announced([a.id for a in await repo.unannounced()])
    finally:
        await engine.dispose()
    return full, report, again, rescan_report


def _best(timers: list[Timer]) -> Timer:
    return min(timers, key=lambda t: t.wall)


def measure(label: str, folder: Path, db: Path, rounds: int) -> IngestResult:
    """`rounds` rounds of the two floors and the ingest, interleaved; the best of each.
    The last round's ingest is followed by the rescan, and its archive is kept."""
    floors: list[Timer] = []
    indexes: list[Timer] = []
    ingests: list[Timer] = []
    index_db = db.with_name(db.stem + "-floor.db")
    for round_ in range(rounds):
        last = round_ == rounds - 1
        floors.append(frontmatter_floor(folder))
        timer, index_rows = index_floor(folder, index_db)
        indexes.append(timer)
        full, report, again, rescan = asyncio.run(ingest_folder(folder, db, rescan=last))
        ingests.append(full)
    remove_db(index_db)
    floor, index, ingest = _best(floors), _best(indexes), _best(ingests)
    return IngestResult(
        label=label, files=report.files_seen, papers=report.papers_new,
        listings=len(report.new_appearances), skipped=len(report.skipped),
        seconds=ingest.wall, cpu=ingest.cpu, rescan_seconds=again.wall,
        rescan_unchanged=rescan.files_unchanged, floor_seconds=floor.wall,
        floor_cpu=floor.cpu, index_seconds=index.wall, index_cpu=index.cpu,
        index_rows=index_rows, rounds=rounds, load=load_average(),
    )


def _rows(result: IngestResult, *, rescan_target: bool) -> list[Row]:
    name = f"ingest {result.label}"
    speed = result.papers / result.seconds if result.seconds else 0.0
    rows = [
        Row(name, "papers per second", "", f"{speed:,.0f}/s", None,
            f"{result.papers:,} papers ({result.listings:,} listings) from {result.files:,} "
            f"files in {result.seconds:.2f} s (CPU {result.cpu:.1f} s); best of "
            f"{result.rounds} rounds, load average {result.load}"),
        Row(name, "full ingest / store-and-index floor", f"≤ {TARGET_INDEX_RATIO:.0f}×",
            f"{result.index_ratio:.1f}×", result.index_ratio <= TARGET_INDEX_RATIO,
            f"floor {result.index_seconds:.2f} s (CPU {result.index_cpu:.2f} s, "
            f"{result.index_rows:,} sections into one FTS5 table); "
            f"CPU ratio {result.index_cpu_ratio:.1f}×"),
        Row(name, "full ingest / frontmatter floor", f"≤ {TARGET_RATIO:.0f}×",
            f"{result.ratio:.1f}×", result.ratio <= TARGET_RATIO,
            f"floor {result.floor_seconds:.2f} s (CPU {result.floor_cpu:.2f} s); "
            f"CPU ratio {result.cpu_ratio:.1f}×"),
        Row(name, "rescan, unchanged", f"< {TARGET_RESCAN:.0f} s" if rescan_target else "",
            f"{result.rescan_seconds:.2f} s",
            result.rescan_seconds < TARGET_RESCAN if rescan_target else None,
            f"{result.rescan_unchanged:,} files unchanged"),
    ]
    return rows


def archive_path(ws: Workspace) -> Path:
    return ws.path(f"archive-{ws.scale.name}.db")


def _marker(ws: Workspace) -> Path:
    return ws.path(f"archive-{ws.scale.name}.json")


def ensure_folder(ws: Workspace) -> None:
    if ws.gen is None:
        ws.gen = ensure_generated(ws.digests, ws.scale.gen_spec)


def ensure_archive(ws: Workspace) -> Path:
    """The generated folder ingested once; later benchmarks (and later runs with the same
    --workdir) reuse it."""
    ensure_folder(ws)
    db = archive_path(ws)
    wanted = json.dumps(ws.scale.gen_spec.__repr__())
    marker = _marker(ws)
    if ws.archive_db is None:
        if not (db.exists() and marker.exists() and marker.read_text() == wanted):
            asyncio.run(ingest_folder(ws.digests, db))
            marker.write_text(wanted)
        ws.archive_db = db
    return ws.archive_db


def run(ws: Workspace, log: Callable[[str], None] = print) -> list[Row]:
    say = log
    rows: list[Row] = []
    shared = sample_dir()
    if shared.name == "digests" and shared.parent.name == "shared":
        say(f"ingest: the real sample {shared}")
        result = measure("real sample", shared, ws.path("shared.db"), ROUNDS_SMALL)
        rows += _rows(result, rescan_target=False)
        ws.extras["ingest-shared"] = result
    else:
        say("ingest: ../shared/digests not found; only the generated folder is measured")
    ensure_folder(ws)
    assert ws.gen is not None
    say(f"ingest: the generated folder ({ws.gen.papers:,} papers, {ws.gen.files:,} files, "
        f"{ws.gen.bytes / 1e6:,.0f} MB)")
    db = archive_path(ws)
    result = measure(f"{ws.gen.papers // 1000}k generated", ws.digests, db, ROUNDS_LARGE)
    _marker(ws).write_text(json.dumps(ws.scale.gen_spec.__repr__()))
    ws.archive_db = db
    ws.extras["ingest-generated"] = result
    rows += _rows(result, rescan_target=True)
    return rows
