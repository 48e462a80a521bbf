"""Benchmark 1, ingest: a whole folder into an empty archive, then a rescan of it unchanged.

The floor is python-frontmatter alone loading the same files (`frontmatter.load` of each
`*.md` the scan would read, as a user script would call it), timed in the same run; the
smaller of two floor timings (before and after the ingest) is used, so noise from other
processes cannot make the ratio look better than it is.

The ingest is the product's own: `Ingestor.scan()` over an `ArchiveRepo` on a fresh,
migrated SQLite file, exactly as `paperfeed run` / `paperfeed ingest` do it (settle time
0, since generated files are written just before). Its CPU time includes the process
that parses the files of a large scan.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import frontmatter

from bench.common import Row, Timer, Workspace, remove_db, sqlite_url
from bench.gen import ensure_generated, sample_dir
from bot.domain.models import IngestReport
from bot.services.ingest import Ingestor, find_markdown
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo

TARGET_RATIO = 3.0
TARGET_RESCAN = 1.0


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

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor_seconds if self.floor_seconds else float("inf")

    @property
    def cpu_ratio(self) -> float:
        return self.cpu / self.floor_cpu if self.floor_cpu else float("inf")


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


async def ingest_folder(folder: Path, db: Path) -> tuple[Timer, IngestReport, Timer, IngestReport]:
    """A full ingest into a new database, then a rescan of the unchanged folder (timed)."""
    remove_db(db)
    engine = make_engine(sqlite_url(db))
    try:
        await migrate(engine)
        repo = ArchiveRepo(make_sessionmaker(engine))
        ingestor = Ingestor(repo, folder, settle_seconds=0)
        with TreeTimer() as full:
            report = await ingestor.scan()
        with TreeTimer() as again:
            rescan = await ingestor.scan()
        # The archive the other benchmarks copy is history the bot has announced, as its
        # own scans leave it; otherwise a bot started on it would queue all of it again.
        await repo.mark_announced([a.id for a in await repo.unannounced()])
    finally:
        await engine.dispose()
    return full, report, again, rescan


def measure(label: str, folder: Path, db: Path) -> IngestResult:
    before = frontmatter_floor(folder)
    full, report, again, rescan = asyncio.run(ingest_folder(folder, db))
    after = frontmatter_floor(folder)
    floor = before if before.wall <= after.wall else after
    return IngestResult(
        label=label, files=report.files_seen, papers=report.papers_new,
        listings=len(report.new_appearances), skipped=len(report.skipped),
        seconds=full.wall, cpu=full.cpu, rescan_seconds=again.wall,
        rescan_unchanged=rescan.files_unchanged, floor_seconds=floor.wall,
        floor_cpu=floor.cpu,
    )


def _rows(result: IngestResult, *, rescan_target: bool) -> list[Row]:
    name = f"ingest {result.label}"
    speed = result.papers / result.seconds if result.seconds else 0.0
    rows = [
        Row(name, "papers per second", "", f"{speed:,.0f}/s", None,
            f"{result.papers:,} papers ({result.listings:,} listings) from {result.files:,} "
            f"files in {result.seconds:.1f} s (CPU {result.cpu:.1f} s)"),
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
        result = measure("real sample", shared, ws.path("shared.db"))
        rows += _rows(result, rescan_target=False)
        ws.extras["ingest-shared"] = result
    else:
        say("ingest: ../shared/digests not found; only the generated folder is measured")
    ensure_folder(ws)
    assert ws.gen is not None
    say(f"ingest: the generated folder ({ws.gen.papers:,} papers, {ws.gen.files:,} files, "
        f"{ws.gen.bytes / 1e6:,.0f} MB)")
    db = archive_path(ws)
    result = measure(f"{ws.gen.papers // 1000}k generated", ws.digests, db)
    _marker(ws).write_text(json.dumps(ws.scale.gen_spec.__repr__()))
    ws.archive_db = db
    ws.extras["ingest-generated"] = result
    rows += _rows(result, rescan_target=True)
    return rows
