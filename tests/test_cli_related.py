"""`paperfeed related` and the embedding `paperfeed ingest` does, over the fixture folder,
a real SQLite file and the real model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from bot.cli import app
from bot.storage.engine import make_engine
from tests.fixtures.expected import FIXTURE_DISTINCT_IDS
from tests.fixtures.folder import copy_fixture_folder

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    folder = copy_fixture_folder(tmp_path / "digests")
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'db' / 'pf.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DIGEST_DIR", str(folder))
    return url


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def forget_vectors(url: str) -> None:
    """An archive stored before "Related" existed: papers without vectors."""
    async def main() -> None:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM paper_vectors"))
        finally:
            await engine.dispose()

    asyncio.run(main())


def test_ingest_embeds_the_new_papers_once(database: str) -> None:
    assert f"embedded {FIXTURE_DISTINCT_IDS} papers for Related" in invoke("ingest")
    assert "for Related" not in invoke("ingest")


def test_related_prints_the_nearest_papers_with_shared_tags_and_scores(database: str) -> None:
    invoke("ingest")
    output = invoke("related", "https://arxiv.org/abs/2402.00011v1")
    assert "related to 2402.00011 Gaussian Heading One" in output
    rows = [line for line in output.splitlines() if "│ 2" in line or "│ hep" in line]
    assert len(rows) == 5
    for n, row in zip(("Two", "Three", "Four", "Five"), rows, strict=False):
        assert f"Gaussian Heading {n}" in row
        assert "│ 3DGS " in row
        assert "2024-02-01" in row
    assert "Gaussian Heading One" not in "\n".join(rows)

    lines = invoke("related", "2402.00011", "--limit", "2", "--json").splitlines()
    papers = [json.loads(line) for line in lines]
    assert [p["arxiv_id"] for p in papers] == ["2402.00012", "2402.00013"]
    assert [p["shared_tags"] for p in papers] == [["3DGS"], ["3DGS"]]
    assert 0 < papers[1]["score"] <= papers[0]["score"] <= 1
    assert papers[0]["title"] == "Gaussian Heading Two"


def test_related_embeds_an_archive_stored_before_first(database: str) -> None:
    invoke("ingest")
    forget_vectors(database)
    papers = invoke("related", "2402.00011", "--json").splitlines()
    assert len(papers) == 5
    assert "for Related" not in invoke("ingest")  # all embedded by `related`


def test_related_of_an_unknown_paper_is_an_error(database: str) -> None:
    invoke("ingest")
    result = runner.invoke(app, ["related", "2409.99999"])
    assert result.exit_code == 1
    assert "error: no paper '2409.99999' in the archive" in result.output
    result = runner.invoke(app, ["related", "2402.00011", "--limit", "0"])
    assert result.exit_code == 2
