"""The digest folder's edges: symbolic links, loops, unreadable folders, vanishing and
oversized files, and the size limits on what a digest may bring."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.domain.limits import Limits
from bot.redaction import Redactor
from bot.services.ingest import Ingestor, Listing, find_markdown
from bot.services.scan import ScanStatus, scan_once
from bot.storage.repository import ArchiveRepo
from tests.services.test_ingest import NOW, Clock, age
from tests.tg.delivery_support import SynthPaper, add_digest, digest_markdown

DAY = date(2024, 6, 3)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "digests"
    add_digest(target, "NeRF", DAY, [SynthPaper("2406.50001", "Inside Paper")])
    return target


def scan_with(repo: ArchiveRepo, folder: Path, **options: object) -> Ingestor:
    return Ingestor(repo, folder, clock=Clock(NOW), **options)  # type: ignore[arg-type]


def test_links_inside_are_followed_and_links_outside_are_not(folder: Path,
                                                              tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    add_digest(outside, "Secret", DAY, [SynthPaper("2406.50002", "Outside Paper")])
    (folder / "2024-06-04").symlink_to(outside / DAY.isoformat())  # a folder out
    (folder / DAY.isoformat() / "Leak.md").symlink_to(outside / DAY.isoformat() / "Secret.md")
    inside = tmp_path / "digests" / "archive" / "2024-06-05"
    add_digest(inside.parent, "GAN", date(2024, 6, 5), [SynthPaper("2406.50007", "GAN")])
    (folder / "2024-06-05").symlink_to(inside)  # a folder inside: followed...
    (folder / "mirror").symlink_to(folder / DAY.isoformat())  # ...once, by its real path
    listing = find_markdown(folder)
    assert [f.path for f in listing.files] == [
        "2024-06-03/NeRF.md", "archive/2024-06-05/GAN.md"]
    reasons = dict(listing.problems)
    assert set(reasons) == {"2024-06-04", "2024-06-03/Leak.md", "2024-06-05", "mirror"}
    assert "out of the digest folder" in reasons["2024-06-04"]
    assert "out of the digest folder" in reasons["2024-06-03/Leak.md"]
    assert "listed already" in reasons["mirror"]


def test_a_link_loop_ends_with_one_problem(folder: Path) -> None:
    (folder / DAY.isoformat() / "again").symlink_to(folder)  # digests/2024-06-03/again -> .
    (folder / "self.md").symlink_to(folder / "self.md")  # a link to itself
    listing = find_markdown(folder)
    assert [f.path for f in listing.files] == ["2024-06-03/NeRF.md"]
    reasons = dict(listing.problems)
    assert "loop" in reasons["2024-06-03/again"]  # the root, again: listed once
    assert "cannot read" in reasons["self.md"]


async def test_problems_are_reported_and_the_scan_goes_on(
    repo: ArchiveRepo, folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    (folder / "loop").symlink_to(folder)
    (folder / "out").symlink_to(tmp_path)
    ingestor = scan_with(repo, folder)
    report = await ingestor.scan()
    assert report.papers_new == 1
    assert {p for p, _ in report.skipped} == {"loop", "out"}
    warned = [r for r in caplog.records if "digest folder:" in r.getMessage()]
    assert len(warned) == 2
    again = await ingestor.scan()  # reported again, logged once
    assert {p for p, _ in again.skipped} == {"loop", "out"}
    assert len([r for r in caplog.records if "digest folder:" in r.getMessage()]) == 2


async def test_an_oversized_file_is_skipped_unread_and_named(
    repo: ArchiveRepo, folder: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    huge = folder / DAY.isoformat() / "Huge.md"
    huge.write_text(digest_markdown("Huge", DAY, [SynthPaper("2406.50003", "Huge Paper")])
                    + "x" * 4096, encoding="utf-8")
    age(huge)
    ingestor = scan_with(repo, folder, max_file_bytes=2048)
    report = await ingestor.scan()
    assert report.papers_new == 1  # the small digest beside it
    reasons = dict(report.skipped)
    assert "DIGEST_MAX_BYTES" in reasons["2024-06-03/Huge.md"]
    assert "2024-06-03/Huge.md" in caplog.text
    assert await repo.get_paper("2406.50003") is None
    again = await ingestor.scan()  # recorded: not looked at again while unchanged
    assert again.files_unchanged == 2
    assert again.skipped == []


async def test_long_analyses_are_cut_with_a_note_and_figures_capped(
    repo: ArchiveRepo, tmp_path: Path,
) -> None:
    folder = tmp_path / "digests"
    path = add_digest(folder, "NeRF", DAY, [SynthPaper("2406.50004", "Long Paper")])
    text = path.read_text(encoding="utf-8")
    figures = "".join(f"![fig{n}](https://example.org/f{n}.png)\n" for n in range(30))
    path.write_text(text + "\n" + "分析很长。\n" * 20_000 + "\n" + figures, encoding="utf-8")
    age(path)
    report = await scan_with(repo, folder, limits=Limits(analysis_bytes=8192,
                                                            figures=5)).scan()
    stored = await repo.get_paper("2406.50004")
    assert stored is not None
    assert len(stored.paper.analysis.encode("utf-8")) <= 8192 + 200
    assert "This analysis was cut at 8 KB" in stored.paper.analysis
    assert len(stored.paper.figures) <= 5
    messages = [w.message for w in report.warnings]
    assert any("ANALYSIS_MAX_BYTES" in m for m in messages)


# ------------------------------------------------ a folder the bot's user cannot read

@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder another user can use: pytest's own are private to this one."""
    path = Path(tempfile.mkdtemp(prefix="paperfeed-perm-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        for sub in path.rglob("*"):
            if sub.is_dir() and not sub.is_symlink():
                sub.chmod(0o755)
        shutil.rmtree(path)


def _paperfeed(work: Path, *args: str) -> str:
    """A paperfeed command, as a user the permissions apply to."""
    env = {**os.environ, "DIGEST_DIR": str(work / "digests"),
           "DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bot.db'}", "HOME": str(work),
           "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=work, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_folder_that_cannot_be_listed_keeps_its_papers(repo: ArchiveRepo,
                                                               tmp_path: Path) -> None:
    """Its files are not "gone" (the scan could not look): their papers stay, even when
    that folder holds most of the archive's files."""
    folder = tmp_path / "digests"
    add_digest(folder, "NeRF", DAY, [SynthPaper("2406.50008", "Readable Paper")])
    locked = date(2024, 6, 4)
    for n in range(3):
        add_digest(folder, f"Topic{n}", locked, [SynthPaper(f"2406.5001{n}", f"Locked {n}")])
    assert (await scan_with(repo, folder).scan()).papers_new == 4

    def scandir(path: Path) -> Any:
        if path.name == locked.isoformat():
            raise PermissionError(13, "Permission denied", str(path))
        return os.scandir(path)

    report = await scan_with(
        repo, folder, lister=lambda root: find_markdown(root, scandir=scandir)).scan()
    assert report.files_deleted == 0
    assert report.deletions_held == 0  # nothing was even a candidate
    assert dict(report.skipped) == {"2024-06-04": "cannot list: Permission denied"}
    assert all([await repo.get_paper(f"2406.5001{n}") for n in range(3)])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder, whatever its mode")
def test_an_unreadable_folder_keeps_its_papers(shared_tmp: Path) -> None:
    """The same with real permissions, through the command line."""
    digests = shared_tmp / "digests"
    add_digest(digests, "NeRF", DAY, [SynthPaper("2406.50005", "Readable Paper")])
    add_digest(digests, "NeRF", date(2024, 6, 4), [SynthPaper("2406.50006", "Locked Paper")])
    for sub in [digests, *digests.rglob("*")]:
        sub.chmod(0o777 if sub.is_dir() else 0o666)
    _paperfeed(shared_tmp, "ingest", "--settle", "0")
    assert len(_paperfeed(shared_tmp, "export").splitlines()) == 2
    (digests / "2024-06-04").chmod(0)
    out = _paperfeed(shared_tmp, "ingest", "--settle", "0")
    assert "skipped 2024-06-04: cannot list" in out
    assert len(_paperfeed(shared_tmp, "export").splitlines()) == 2


async def test_a_failed_scan_is_remembered_without_secrets(repo: ArchiveRepo,
                                                           folder: Path) -> None:
    """/stats and /healthz show the last scan's error: never with a password in it."""
    def lister(root: Path) -> Listing:
        raise RuntimeError("could not reach postgresql://bot:hunter2secret@db/paperfeed")

    status = ScanStatus(redact=Redactor([("database password", "hunter2secret")]))
    with pytest.raises(RuntimeError):
        await scan_once(scan_with(repo, folder, lister=lister), status)
    assert status.last_error is not None
    assert "hunter2secret" not in status.last_error
    assert "<database password>" in status.last_error
