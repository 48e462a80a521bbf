"""Issue acceptance: hostile digests beside real ones. The folder ingests with every good
section stored, and `paperfeed preview --analysis` of each hostile file finishes without
a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.services.ingest import Ingestor
from bot.storage.repository import ArchiveRepo
from tests.fixtures.expected import FIXTURE_DISTINCT_IDS
from tests.fixtures.folder import copy_fixture_folder
from tests.services.test_ingest import NOW, OLD, Clock, age
from tests.unit.test_fuzz_digests import GOOD, HOSTILE, digest_file

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The fixture digests, and one hostile file per kind in a day of their own."""
    target = copy_fixture_folder(tmp_path / "digests", mtime=OLD)
    day = target / "2024-10-12"
    day.mkdir()
    for number, name in enumerate(sorted(HOSTILE)):
        path = day / f"Hostile{number}.md"
        path.write_bytes(digest_file(*HOSTILE[name]()))
    for file in target.rglob("*.md"):
        age(file)
    return target


async def test_a_hostile_folder_ingests_with_every_good_section(repo: ArchiveRepo,
                                                               folder: Path) -> None:
    report = await Ingestor(repo, folder, clock=Clock(NOW)).scan()
    for arxiv_id, title in GOOD:
        stored = await repo.get_paper(arxiv_id)
        assert stored is not None
        assert stored.paper.title == title
        assert len(stored.appearances) == len(HOSTILE)  # from every hostile file
    assert report.papers_new >= FIXTURE_DISTINCT_IDS + len(GOOD)
    assert not [path for path, _ in report.skipped if path.startswith("2024-10-12/")]


def test_preview_of_each_hostile_file_has_no_traceback(
    folder: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(folder.parent)
    for name in ("BLOG_BASE_URL", "DIGEST_DIR", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for path in sorted((folder / "2024-10-12").iterdir()):
        result = runner.invoke(app, ["preview", "--analysis", str(path)],
                               env={**os.environ, "COLUMNS": "120"})
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            path.name, result.exception)
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 1), result.output[-2000:]
