"""The papers' vectors on a real database: stored and read back, missing until stored,
gone with their paper or with the text they were made from, missing again for another
model."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.services.embedding import paper_parts
from bot.storage.engine import make_sessionmaker
from bot.storage.repository import ArchiveRepo
from bot.storage.vectors import EMBEDDED_FIELDS, PaperText, VectorRepo
from tests.storage.factories import make_digest, make_paper, state_of

DAY = date(2024, 6, 1)
MODEL = "model-a"


@pytest.fixture
def vectors(engine: AsyncEngine) -> VectorRepo:
    return VectorRepo(make_sessionmaker(engine))


def blob(n: int) -> bytes:
    return bytes([n % 128]) * 256


async def archive(repo: ArchiveRepo, *ids: str, topic: str = "NeRF", **paper: Any) -> None:
    digest = make_digest(topic, DAY, tuple(make_paper(i, **paper) for i in ids))
    await repo.store_digest(digest, state_of(digest))


async def store_all(vectors: VectorRepo, model: str = MODEL) -> list[int]:
    missing = await vectors.missing(model, limit=100)
    return await vectors.store(model, [(text, blob(text.id)) for text in missing])


def test_the_embedded_fields_are_what_the_model_reads() -> None:
    paper = make_paper("2406.00001", title="T", abstract="A")
    assert paper_parts(paper) == tuple(getattr(paper, f) for f in EMBEDDED_FIELDS)


async def test_missing_in_batches_then_stored_and_read_back(
        repo: ArchiveRepo, vectors: VectorRepo) -> None:
    await archive(repo, "2406.00001", "2406.00002", "2406.00003", abstract="About splats.")
    assert await vectors.count_missing(MODEL) == 3
    first = await vectors.missing(MODEL, limit=2)
    assert [t.title for t in first] == ["Paper 2406.00001", "Paper 2406.00002"]
    assert all(t.abstract == "About splats." for t in first)
    rest = await vectors.missing(MODEL, after=first[-1].id, limit=2)
    assert [t.title for t in rest] == ["Paper 2406.00003"]

    ids = await vectors.store(MODEL, [(t, blob(t.id)) for t in first])
    assert ids == [t.id for t in first]
    assert [t.title for t in await vectors.missing(MODEL)] == ["Paper 2406.00003"]
    assert await vectors.count_missing(MODEL) == 1
    assert await vectors.blobs(MODEL) == [(t.id, blob(t.id)) for t in first]
    assert await vectors.blobs(MODEL, after=first[0].id, limit=5) == [(first[1].id,
                                                                       blob(first[1].id))]
    assert await vectors.blobs_of(MODEL, [first[1].id, 999]) == [(first[1].id,
                                                                  blob(first[1].id))]
    assert await vectors.ids(MODEL) == ids
    assert await vectors.signature(MODEL) == (2, sum(ids))
    assert await vectors.signature("other") == (0, 0)

    paper_id = await vectors.paper_id("2406.00002")
    assert paper_id == first[1].id
    assert await vectors.paper_id("https://arxiv.org/abs/2406.00002v3") == paper_id
    assert await vectors.paper_id("2406.99999") is None
    papers = await vectors.papers([paper_id, 999])
    assert list(papers) == [paper_id]
    assert papers[paper_id].arxiv_id == "2406.00002"
    assert papers[paper_id].tags == ("NeRF",)


async def test_a_vector_leaves_with_its_paper(repo: ArchiveRepo, vectors: VectorRepo) -> None:
    await archive(repo, "2406.00001", "2406.00002")
    await archive(repo, "2406.00002", topic="3DGS")
    stored = await store_all(vectors)
    assert len(stored) == 2
    await repo.delete_file(make_digest("NeRF", DAY).path)  # 2406.00001 leaves the archive
    [left] = await vectors.blobs(MODEL)
    assert left[0] == await vectors.paper_id("2406.00002")
    assert await vectors.signature(MODEL) == (1, left[0])


async def test_a_new_title_or_abstract_makes_the_vector_stale(
        repo: ArchiveRepo, vectors: VectorRepo) -> None:
    await archive(repo, "2406.00001", "2406.00002", "2406.00003")
    await store_all(vectors)
    await archive(repo, "2406.00001", "2406.00002", "2406.00003", summary="New summary.")
    assert await vectors.count_missing(MODEL) == 0  # the summary is not embedded
    # A digest that rewrites one paper's abstract and another's title (same version,
    # same source file): those two lose their vectors, the third keeps its own.
    papers = (make_paper("2406.00001", abstract="A new abstract."),
              make_paper("2406.00002", title="A new title"), make_paper("2406.00003"))
    digest = make_digest("NeRF", DAY, papers)
    await repo.store_digest(digest, state_of(digest))
    again = await vectors.missing(MODEL)
    assert [(t.title, t.abstract) for t in again] == [
        ("Paper 2406.00001", "A new abstract."), ("A new title", "We study things.")]
    assert len(await vectors.blobs(MODEL)) == 1


async def test_a_vector_of_a_text_that_changed_meanwhile_is_not_stored(
        repo: ArchiveRepo, vectors: VectorRepo) -> None:
    """A refresh read the text, a scan rewrote it while the model ran: storing refuses
    the stale vector (and one of a paper that left), so the paper stays missing."""
    await archive(repo, "2406.00001", "2406.00002")
    read = await vectors.missing(MODEL)
    papers = (make_paper("2406.00001", version=2, title="Version two"),
              make_paper("2406.00002"))
    digest = make_digest("NeRF", DAY, papers)
    await repo.store_digest(digest, state_of(digest))
    gone = PaperText(9999, "Paper that left", "x")
    stored = await vectors.store(MODEL, [(t, blob(t.id)) for t in [*read, gone]])
    assert stored == [read[1].id]
    [still] = await vectors.missing(MODEL)
    assert (still.id, still.title) == (read[0].id, "Version two")


async def test_another_model_counts_as_missing_and_replaces(
        repo: ArchiveRepo, vectors: VectorRepo) -> None:
    await archive(repo, "2406.00001", "2406.00002")
    await store_all(vectors, "old-model")
    assert await vectors.count_missing("new-model") == 2
    assert await vectors.blobs("new-model") == []
    [first, second] = await vectors.missing("new-model")
    await vectors.store("new-model", [(first, b"\x01" * 256)])
    assert await vectors.blobs("new-model") == [(first.id, b"\x01" * 256)]
    assert await vectors.blobs("old-model") == [(second.id, blob(second.id))]
    assert [t.id for t in await vectors.missing("new-model")] == [second.id]
    assert await vectors.store("new-model", []) == []


async def test_tags_of_many_papers_without_loading_them(
        repo: ArchiveRepo, vectors: VectorRepo) -> None:
    """What the related ranking reads for its 50 candidates: each paper's tags, in
    ArchivedPaper.tags' order (first listed first)."""
    await archive(repo, "2406.00001", "2406.00002", topic="NeRF")
    digest = make_digest("3DGS", date(2024, 5, 30), (make_paper("2406.00002"),))
    await repo.store_digest(digest, state_of(digest))  # listed earlier under 3DGS
    await archive(repo, "2406.00002", topic="GAN")
    one, two = [await vectors.paper_id(i) for i in ("2406.00001", "2406.00002")]
    assert one is not None
    assert two is not None
    tags = await vectors.tags([two, one, 999, one])
    assert tags == {one: ("NeRF",), two: ("3DGS", "GAN", "NeRF")}  # 999 is no paper
    papers = await vectors.papers([one, two])
    assert {i: p.tags for i, p in papers.items()} == tags
    assert await vectors.tags([]) == {}
