"""The `paperfeed` command line over the fixture folder and a real SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import bibtexparser
import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.storage.engine import make_engine, make_sessionmaker
from bot.storage.repository import ArchiveRepo
from tests.fixtures.expected import (
    FIXTURE_DISTINCT_IDS,
    NON_DIGEST_PATH,
    SAME_DAY_TWO_TOPICS_ID,
)
from tests.fixtures.folder import copy_fixture_folder

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = copy_fixture_folder(tmp_path / "digests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db' / 'pf.db'}")
    monkeypatch.setenv("DIGEST_DIR", str(folder))
    return folder


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_ingest_twice_adds_nothing_the_second_time(env: Path) -> None:
    first = invoke("ingest")
    assert f"papers new                            │ {FIXTURE_DISTINCT_IDS}" in first
    assert f"skipped {NON_DIGEST_PATH}: not a digest" in first
    second = invoke("ingest")
    assert "papers new                            │ 0 " in second
    assert "files read                            │ 0 " in second


@pytest.mark.parametrize("archive_only", [False, True])
def test_ingest_leaves_papers_for_the_bot_to_send_unless_archive_only(
    env: Path, tmp_path: Path, archive_only: bool
) -> None:
    invoke("ingest", *(["--archive-only"] if archive_only else []))

    async def pending() -> int:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db' / 'pf.db'}")
        try:
            return len(await ArchiveRepo(make_sessionmaker(engine)).unannounced())
        finally:
            await engine.dispose()

    left = asyncio.run(pending())
    assert left == 0 if archive_only else left >= FIXTURE_DISTINCT_IDS


def test_search_json_tags_and_export(env: Path) -> None:
    invoke("ingest")
    lines = invoke("search", SAME_DAY_TWO_TOPICS_ID, "--json").splitlines()
    [paper] = [json.loads(line) for line in lines]
    assert paper["arxiv_id"] == SAME_DAY_TWO_TOPICS_ID
    assert set(paper["tags"]) == {"NeRF", "3DGS"}
    tags = invoke("tags")
    assert "元宇宙/虚拟人" in tags
    exported = [json.loads(line) for line in invoke("export").splitlines()
                if line.startswith("{")]
    assert len(exported) == FIXTURE_DISTINCT_IDS
    required = {"arxiv_id", "version", "title", "authors", "abstract", "summary", "takeaways",
                "tags", "first_seen", "abs_url", "pdf_url", "comment", "links", "figures",
                "sources"}
    assert all(required <= set(p) for p in exported)
    nerf = [json.loads(line) for line in invoke("export", "--tag", "nerf").splitlines()
            if line.startswith("{")]
    assert nerf
    assert all("NeRF" in p["tags"] for p in nerf)


def test_hostile_query_is_just_a_query(env: Path) -> None:
    invoke("ingest")
    for query in ['"', "*", "NEAR(a b)", "-", "'; DROP TABLE papers; --", "🦄" * 50, "x" * 10000]:
        invoke("search", query)
    assert invoke("search", "--json", "nothing-matches-this-zzz") == ""


def test_unknown_tag_suggests_the_closest(env: Path) -> None:
    invoke("ingest")
    result = runner.invoke(app, ["search", "x", "--tag", "nerff"])
    assert result.exit_code == 1
    assert "did you mean NeRF" in result.output
    # The same tag written in the query itself.
    result = runner.invoke(app, ["search", "tag:nerff gaussian"])
    assert result.exit_code == 1
    assert "did you mean NeRF" in result.output
    assert invoke("search", "--json", "tag:nerf")  # case-insensitive, like --tag


def test_search_since_and_until(env: Path) -> None:
    invoke("ingest")

    def papers(*args: str) -> list[dict[str, str]]:
        out = invoke("search", "--json", "--limit", "100", "since:2000", *args)
        return [json.loads(line) for line in out.splitlines()]

    every = papers()
    first = min(p["first_seen"] for p in every)
    last = max(p["last_seen"] for p in every)
    assert first < last
    early = papers("--until", first)
    assert early
    assert len(early) < len(every)
    assert all(p["first_seen"] <= first for p in early)
    late = papers("--since", last)
    assert late
    assert all(p["last_seen"] >= last for p in late)
    month = papers("--until", first[:7])  # a month means its last day
    assert {p["arxiv_id"] for p in early} <= {p["arxiv_id"] for p in month}


def data_only(output: str) -> str:
    """The export itself, without the "exported N papers" line of standard error."""
    return "".join(line for line in output.splitlines(keepends=True)
                   if not line.startswith("exported "))


def test_export_formats(env: Path) -> None:
    invoke("ingest")
    lines = [line for line in invoke("export").splitlines() if line.startswith("{")]
    assert len(lines) == FIXTURE_DISTINCT_IDS  # jsonl stays the default, unchanged
    entries = bibtexparser.loads(invoke("export", "--format", "bibtex")).entries
    assert len(entries) == FIXTURE_DISTINCT_IDS
    assert len({e["ID"] for e in entries}) == FIXTURE_DISTINCT_IDS
    assert {e["eprint"] for e in entries} == {json.loads(line)["arxiv_id"] for line in lines}
    rows = list(csv.DictReader(io.StringIO(data_only(invoke("export", "--format", "csv")))))
    assert len(rows) == FIXTURE_DISTINCT_IDS
    assert rows[0].keys() >= {"arxiv_id", "title", "authors", "tags", "abs_url"}
    nerf = invoke("export", "--format", "csv", "--tag", "nerf", "--since", "2024-03")
    assert 0 < len(list(csv.DictReader(io.StringIO(data_only(nerf))))) < FIXTURE_DISTINCT_IDS
