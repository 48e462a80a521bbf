"""Ingest over a real folder and a real SQLite archive: change detection, skips, deletes."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import IngestReport
from bot.services.ingest import CHUNK_FILES, GC_THRESHOLD, Ingestor
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo
from tests.fixtures.expected import (
    FIXTURE_DIGESTS,
    FIXTURE_DISTINCT_IDS,
    FIXTURE_NON_DIGESTS,
    NON_DIGEST_PATH,
    SAME_DAY_TWO_TOPICS_ID,
    TWO_VERSIONS_ID,
)
from tests.fixtures.folder import copy_fixture_folder
from tests.services.folders import swap

NOW = 1_800_000_000.0  # the injected clock; fixture files are dated an hour before
OLD = NOW - 3600

NEW_SECTION = """
## A Brand New Paper About Gaussians

**Authors:Ada Lovelace, Alan Turing**

We study new things.

[PDF](http://arxiv.org/abs/2402.09999v1)

**Summary**
全新的论文。

**Key Takeaways**
- 第一点。

**[ChatPaperFree](https://huggingface.co/spaces/Kedreamix/ChatPaperFree)**

Analysis text.
"""


class Clock:
    """A settable clock, so settle times are tested without sleeping."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def age(path: Path, when: float = OLD) -> None:
    os.utime(path, (when, when))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_fixture_folder(tmp_path / "digests", mtime=OLD)


@pytest.fixture
def archive(repo: ArchiveRepo) -> ArchiveRepo:
    """The archive on each backend under test (tests/conftest.py)."""
    return repo


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def ingestor(archive: ArchiveRepo, folder: Path, clock: Clock) -> Ingestor:
    return Ingestor(archive, folder, clock=clock)


async def test_first_scan_reads_every_digest_and_explains_skips(ingestor: Ingestor) -> None:
    report = await ingestor.scan()
    assert report.files_seen == FIXTURE_DIGESTS + FIXTURE_NON_DIGESTS
    assert report.files_read == FIXTURE_DIGESTS + FIXTURE_NON_DIGESTS
    assert report.papers_new == FIXTURE_DISTINCT_IDS
    assert len(set(report.new_papers)) == FIXTURE_DISTINCT_IDS
    assert [path for path, _ in report.skipped] == [NON_DIGEST_PATH]
    assert "not a digest" in report.skipped[0][1]
    assert all(w.path and w.line >= 0 for w in report.warnings)


async def test_same_paper_in_two_topics_is_one_paper_with_both_tags(
    ingestor: Ingestor, archive: ArchiveRepo
) -> None:
    await ingestor.scan()
    paper = await archive.get_paper(SAME_DAY_TWO_TOPICS_ID)
    assert paper is not None
    assert set(paper.tags) == {"NeRF", "3DGS"}
    two_versions = await archive.get_paper(TWO_VERSIONS_ID)
    assert two_versions is not None
    assert two_versions.paper.version == 2
    assert len(two_versions.sources) == 2


async def test_unchanged_folder_changes_nothing(ingestor: Ingestor) -> None:
    await ingestor.scan()
    again = await ingestor.scan()
    assert again.files_read == 0
    assert again.files_unchanged == FIXTURE_DIGESTS + FIXTURE_NON_DIGESTS
    assert (again.papers_new, again.papers_updated, again.new_papers) == (0, 0, [])


async def test_touched_file_with_same_content_is_not_parsed(
    ingestor: Ingestor, folder: Path
) -> None:
    await ingestor.scan()
    age(folder / "2024-02-01" / "NeRF.md", OLD + 60)
    report = await ingestor.scan()
    assert report.files_read == 0
    assert report.new_papers == []


async def test_changed_file_counts_only_really_new_papers(
    ingestor: Ingestor, folder: Path, archive: ArchiveRepo
) -> None:
    await ingestor.scan()
    path = folder / "2024-02-01" / "NeRF.md"
    path.write_text(path.read_text(encoding="utf-8") + NEW_SECTION, encoding="utf-8")
    age(path, OLD + 60)
    report = await ingestor.scan()
    assert report.files_read == 1
    assert report.new_papers == ["2402.09999"]
    assert report.papers_new == 1
    assert ("2402.09999", "2024-02-01/NeRF.md") in report.new_appearances
    stored = await archive.get_paper("2402.09999")
    assert stored is not None
    assert stored.paper.authors == ("Ada Lovelace", "Alan Turing")


async def test_file_still_being_written_waits_for_next_scan(
    ingestor: Ingestor, folder: Path, clock: Clock
) -> None:
    await ingestor.scan()
    day = folder / "2024-06-01"
    day.mkdir()
    fresh = day / "NeRF.md"
    fresh.write_text("---\ntitle: NeRF\ntags:\n  - NeRF\n---\n# 2024-06-01 更新\n" + NEW_SECTION,
                     encoding="utf-8")
    age(fresh, NOW - 1)
    waiting = await ingestor.scan()
    assert waiting.files_waiting == 1
    assert waiting.new_papers == []
    clock.now += 60
    later = await ingestor.scan()
    assert later.new_papers == ["2402.09999"]


async def test_deleted_file_leaves_the_archive(
    ingestor: Ingestor, folder: Path, archive: ArchiveRepo
) -> None:
    await ingestor.scan()
    assert await archive.get_paper("2402.00002") is not None
    (folder / "2024-02-01" / "NeRF.md").unlink()
    report = await ingestor.scan()
    assert report.files_deleted == 1
    assert await archive.get_paper("2402.00002") is None  # listed only there
    shared = await archive.get_paper(SAME_DAY_TWO_TOPICS_ID)
    assert shared is not None
    assert shared.tags == ("3DGS",)  # still listed by the 3DGS digest
    again = await ingestor.scan()
    assert again.files_deleted == 0


def remove_all_but_one(folder: Path) -> None:
    for file in sorted(folder.rglob("*.md"))[1:]:
        file.unlink()


async def test_an_emptied_folder_removes_nothing_and_says_so(
    ingestor: Ingestor, folder: Path, archive: ArchiveRepo, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unmounted volume or a sync tool rewriting the folder: every file gone at once.
    Nothing leaves the archive, one WARNING names the counts, and when the same files
    come back (with their old times) nothing is new."""
    first = await ingestor.scan()
    papers = len([p async for p in archive.export()])
    away = tmp_path / "away"
    swap(folder, away)
    with caplog.at_level(logging.WARNING, logger="bot.services.ingest"):
        empty = await ingestor.scan()
    assert empty.files_deleted == 0
    assert empty.deletions_held == first.files_seen
    assert len([p async for p in archive.export()]) == papers
    [warning] = [r for r in caplog.records if "removing none" in r.getMessage()]
    assert f"{first.files_seen} of the {first.files_seen}" in warning.getMessage()
    swap(away, folder)
    back = await ingestor.scan()
    assert (back.deletions_held, back.files_deleted, back.papers_new) == (0, 0, 0)
    assert back.new_appearances == []


async def test_most_files_gone_are_held_but_prune_removes_them(
    ingestor: Ingestor, folder: Path, archive: ArchiveRepo
) -> None:
    first = await ingestor.scan()
    remove_all_but_one(folder)  # more than half, and more than a handful
    held = await ingestor.scan()
    assert held.deletions_held == first.files_seen - 1
    assert held.files_deleted == 0
    pruned = await ingestor.scan(prune=True)
    assert pruned.files_deleted == first.files_seen - 1
    assert pruned.deletions_held == 0


async def test_bad_file_never_stops_the_folder(ingestor: Ingestor, folder: Path) -> None:
    bad = folder / "2024-02-01" / "Broken.md"
    bad.write_bytes(b"\xff\xfe\x00garbage\x80\x81 not a digest at all")
    age(bad)
    report = await ingestor.scan()
    assert report.papers_new == FIXTURE_DISTINCT_IDS
    reasons = dict(report.skipped)
    assert "2024-02-01/Broken.md" in reasons
    assert any(w.path == "2024-02-01/Broken.md" and "UTF-8" in w.message
               for w in report.warnings)


async def test_missing_folder_is_reported_not_raised(archive: ArchiveRepo, tmp_path: Path) -> None:
    report = await Ingestor(archive, tmp_path / "nowhere").scan()
    assert report.files_seen == 0
    assert report.skipped
    assert "does not exist" in report.skipped[0][1]


SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "digests"


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/digests is not beside the checkout")
async def test_real_sample_ingests_every_digest(archive: ArchiveRepo) -> None:
    """The developer sample: 529 distinct arXiv ids, only the two non-digest files skipped."""
    report = await Ingestor(archive, SHARED, clock=lambda: 4e9).scan()
    assert report.papers_new == 529
    skipped = {path for path, _ in report.skipped}
    assert skipped == {"Awesome-Talking-Head-Synthesis.md", "README.md"}
    stats = await archive.stats()
    assert stats.papers == 529
    again = await Ingestor(archive, SHARED, clock=lambda: 4e9).scan()
    assert (again.files_read, again.papers_new) == (0, 0)


async def test_batching_does_not_change_the_outcome(
    folder: Path, tmp_path: Path, clock: Clock
) -> None:
    outcomes = []
    # The last run parses in a separate process, as a large scan does.
    for batch_size, batch_bytes, process_above in ((1, 10**9, 10**9), (3, 10**9, 10**9),
                                                   (64, 2000, 10**9), (64, 10**9, 0)):
        db = tmp_path / f"b{batch_size}-{batch_bytes}-{process_above}.db"
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        await migrate(engine)
        repo = ArchiveRepo(make_sessionmaker(engine))
        ingestor = Ingestor(repo, folder, clock=clock, batch_size=batch_size,
                            batch_bytes=batch_bytes, process_above=process_above)
        report = await ingestor.scan()
        outcomes.append((sorted(report.new_papers), sorted(report.new_appearances),
                         report.papers_updated, report.skipped, len(report.warnings),
                         [t.papers for t in await repo.tags()]))
        await engine.dispose()
    assert outcomes[0] == outcomes[1] == outcomes[2] == outcomes[3]


async def test_large_scan_parsed_in_a_process_reports_like_a_small_one(
    archive: ArchiveRepo, folder: Path, clock: Clock
) -> None:
    bad = folder / "2024-02-01" / "Broken.md"
    bad.write_bytes(b"\xff\xfe not a digest at all")
    age(bad)
    seen: list[tuple[int, int]] = []
    ingestor = Ingestor(archive, folder, clock=clock, process_above=0,
                        read_while_starting=False)
    report = await ingestor.scan(progress=lambda done, total: seen.append((done, total)))
    assert report.papers_new == FIXTURE_DISTINCT_IDS
    assert "2024-02-01/Broken.md" in dict(report.skipped)
    assert seen[-1] == (report.files_seen, report.files_seen)
    assert [done for done, _ in seen] == list(range(1, report.files_seen + 1))
    again = await ingestor.scan()
    assert again.files_read == 0


@pytest.mark.parametrize("process_above", [0, 10**9], ids=["large", "small"])
async def test_a_scan_collects_garbage_less_often_only_while_it_runs(
    archive: ArchiveRepo, folder: Path, clock: Clock, process_above: int
) -> None:
    before = gc.get_threshold()
    during: list[int] = []
    report = await Ingestor(archive, folder, clock=clock, process_above=process_above).scan(
        progress=lambda done, total: during.append(gc.get_threshold()[0]))
    assert report.files_read == report.files_seen  # every file went through the loop
    assert min(during) >= GC_THRESHOLD > before[0]
    assert gc.get_threshold() == before


class LateParser(ThreadPoolExecutor):
    """Stands for a parser process that takes long to start: its first task (the start)
    ends only once `up` is set; it counts the chunks it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.up = threading.Event()
        self.chunks = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self.chunks == 0 and not self.up.is_set() and not args:  # the start
            return super().submit(self.up.wait)
        self.chunks += 1
        return super().submit(fn, *args, **kwargs)


async def test_a_large_scan_reads_the_first_files_itself_while_the_process_starts(
    folder: Path, tmp_path: Path, clock: Clock
) -> None:
    add_digests(folder, 7 * CHUNK_FILES)  # with the fixture files: 8 chunks
    expected = await scan_into_new_archive(tmp_path / "thread.db", folder, clock,
                                           process_above=10**9)
    pool = LateParser()

    def started_after_two_chunks(done: int, total: int) -> None:
        if done >= 2 * CHUNK_FILES:
            pool.up.set()

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'late.db'}")
    try:
        await migrate(engine)
        repo = ArchiveRepo(make_sessionmaker(engine))
        report = await Ingestor(repo, folder, clock=clock, process_above=0,
                                parser_executor=lambda: pool).scan(
            progress=started_after_two_chunks)
        got = report, [t.papers for t in await repo.tags()]
    finally:
        pool.up.set()  # whatever happened, its thread must not wait forever
        await engine.dispose()
    assert got == expected
    assert 0 < pool.chunks <= 8 - 2  # the process took over once it was up


# --- the parser process dies ------------------------------------------------------


class DyingParserProcess(ProcessPoolExecutor):
    """A real one-process pool whose worker exits (`os._exit`) instead of running task
    number `dies_at` (0-based), as if the OOM killer had taken it then."""

    def __init__(self, dies_at: int) -> None:
        super().__init__(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self.dies_at = dies_at
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        if self.submitted - 1 == self.dies_at:
            return super().submit(os._exit, 1)
        return super().submit(fn, *args, **kwargs)


def dead_on_arrival() -> Executor:
    """A pool whose worker exits while starting, before it runs any task."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=os._exit, initargs=(1,))


def add_digests(folder: Path, count: int) -> None:
    """`count` more one-paper digests, so that a large scan sends several chunks."""
    day = folder / "2024-07-01"
    day.mkdir()
    for i in range(count):
        section = NEW_SECTION.replace("2402.09999", f"2407.{10000 + i}").replace(
            "A Brand New Paper", f"Paper Number {i}")
        path = day / f"Topic {i:03d}.md"
        path.write_text(f"---\ntitle: T{i}\ntags:\n  - T{i}\n---\n# 2024-07-01 更新\n{section}",
                        encoding="utf-8")
        age(path)


async def scan_into_new_archive(
    db: Path, folder: Path, clock: Clock, **options: Any
) -> tuple[IngestReport, list[int]]:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await migrate(engine)
        repo = ArchiveRepo(make_sessionmaker(engine))
        report = await Ingestor(repo, folder, clock=clock, **options).scan()
        return report, [t.papers for t in await repo.tags()]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("dies_at", [0, 2, "start", "before"],
                         ids=["first-chunk", "third-chunk", "on-start", "before-the-scan"])
async def test_scan_goes_on_in_a_thread_when_the_parser_process_dies(
    folder: Path, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture,
    dies_at: int | str,
) -> None:
    add_digests(folder, 3 * CHUNK_FILES)  # with the fixture files: 4 chunks
    expected = await scan_into_new_archive(tmp_path / "thread.db", folder, clock,
                                           process_above=10**9)
    assert expected[0].papers_new == FIXTURE_DISTINCT_IDS + 3 * CHUNK_FILES

    pools: list[DyingParserProcess] = []

    def make_pool() -> Executor:
        if dies_at == "start":
            return dead_on_arrival()
        if dies_at == "before":  # already broken: submitting raises at once
            pool = dead_on_arrival()
            with pytest.raises(BrokenProcessPool):
                pool.submit(int).result()
            return pool
        assert isinstance(dies_at, int)
        pools.append(DyingParserProcess(dies_at))
        return pools[-1]

    with caplog.at_level(logging.WARNING, logger="bot.services.ingest"):
        got = await scan_into_new_archive(tmp_path / "process.db", folder, clock,
                                          process_above=0, parser_executor=make_pool,
                                          read_while_starting=False)
    assert got == expected  # the same report, the same archive
    died = [r for r in caplog.records if r.name == "bot.services.ingest"]
    assert len(died) == 1
    assert died[0].levelno == logging.WARNING
    assert "parser process died" in died[0].getMessage()
    assert all(pool.submitted > pool.dies_at for pool in pools)  # the pool was used
