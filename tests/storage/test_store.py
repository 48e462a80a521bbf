"""Storing digests: new, unchanged, updated papers; appearances; diffs; deletions."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.query import parse_query
from bot.storage.engine import downgrade, make_sessionmaker, migrate
from bot.storage.records import FileState
from bot.storage.repository import ArchiveRepo
from tests.storage.factories import make_digest, make_paper, state_of, with_papers

DAY = date(2024, 6, 1)


async def test_new_digest_stores_new_papers(repo: ArchiveRepo) -> None:
    digest = make_digest(papers=(make_paper("2409.00001", summary="一", takeaways=("a", "b")),
                                 make_paper("2409.00002")))
    result = await repo.store_digest(digest, state_of(digest))
    assert result.new_ids == ("2409.00001", "2409.00002")
    assert result.new_appearances == ("2409.00001", "2409.00002")
    assert result.updated_ids == result.unchanged_ids == result.removed_appearances == ()
    stored = await repo.get_paper("2409.00001")
    assert stored is not None
    assert stored.paper == digest.papers[0]
    assert stored.tags == ("NeRF",)
    assert stored.first_seen == DAY
    assert stored.appearances[0].summary == "一"
    assert stored.appearances[0].takeaways == ("a", "b")
    assert stored.sources == (digest.path,)


async def test_same_file_twice_changes_nothing(repo: ArchiveRepo) -> None:
    digest = make_digest(papers=(make_paper("2409.00001"), make_paper("2409.00002")))
    await repo.store_digest(digest, state_of(digest))
    again = await repo.store_digest(digest, state_of(digest))
    assert again.new_ids == again.updated_ids == again.new_appearances == ()
    assert again.unchanged_ids == ("2409.00001", "2409.00002")
    stats = await repo.stats()
    assert (stats.papers, stats.appearances, stats.digests) == (2, 2, 1)


async def test_higher_version_updates_the_paper(repo: ArchiveRepo) -> None:
    first = make_digest(papers=(make_paper(version=1, title="Old title"),))
    await repo.store_digest(first, state_of(first))
    later = make_digest(day=date(2024, 6, 5),
                        papers=(make_paper(version=2, title="New title"),))
    result = await repo.store_digest(later, state_of(later))
    assert result.updated_ids == ("2409.12156",)
    assert result.new_ids == ()
    assert result.new_appearances == ("2409.12156",)
    stored = await repo.get_paper("2409.12156v1")
    assert stored is not None
    assert (stored.paper.version, stored.paper.title) == (2, "New title")
    assert stored.paper.abs_url.endswith("v2")
    assert stored.first_seen == DAY
    assert stored.last_seen == date(2024, 6, 5)
    assert (await repo.stats()).papers == 1


async def test_lower_version_keeps_fields_but_records_appearance(repo: ArchiveRepo) -> None:
    newer = make_digest(papers=(make_paper(version=3, title="v3"),))
    await repo.store_digest(newer, state_of(newer))
    older = make_digest("3DGS", date(2024, 5, 1), (make_paper(version=1, title="v1"),))
    result = await repo.store_digest(older, state_of(older))
    assert result.unchanged_ids == ("2409.12156",)
    assert result.new_appearances == ("2409.12156",)
    stored = await repo.get_paper("2409.12156")
    assert stored is not None
    assert (stored.paper.version, stored.paper.title) == (3, "v3")
    assert stored.first_seen == date(2024, 5, 1)
    assert stored.tags == ("3DGS", "NeRF")


async def test_same_paper_in_two_topics_is_one_paper(repo: ArchiveRepo) -> None:
    paper = make_paper()
    a = make_digest("NeRF", papers=(replace(paper, summary="NeRF view"),))
    b = make_digest("3DGS", papers=(replace(paper, summary="3DGS view"),))
    assert (await repo.store_digest(a, state_of(a))).new_ids == ("2409.12156",)
    second = await repo.store_digest(b, state_of(b))
    assert second.new_ids == ()
    assert second.unchanged_ids == ("2409.12156",)  # another topic's summary is no update
    assert second.new_appearances == ("2409.12156",)
    stored = await repo.get_paper("2409.12156")
    assert stored is not None
    assert sorted(stored.tags) == ["3DGS", "NeRF"]
    assert {ap.topic: ap.summary for ap in stored.appearances} == {
        "NeRF": "NeRF view", "3DGS": "3DGS view"}
    assert stored.paper.summary == "NeRF view"  # fields come from the first digest
    assert (await repo.stats()).papers == 1


async def test_regenerated_file_updates_changed_text(repo: ArchiveRepo) -> None:
    digest = make_digest(papers=(make_paper(summary="old"), make_paper("2409.00002")))
    await repo.store_digest(digest, state_of(digest))
    regenerated = with_papers(digest, make_paper(summary="new"), make_paper("2409.00002"))
    result = await repo.store_digest(regenerated, state_of(regenerated))
    assert result.updated_ids == ("2409.12156",)
    assert result.unchanged_ids == ("2409.00002",)
    assert result.new_appearances == ()
    stored = await repo.get_paper("2409.12156")
    assert stored is not None
    assert stored.paper.summary == stored.appearances[0].summary == "new"


async def test_changed_file_is_diffed_by_arxiv_id(repo: ArchiveRepo) -> None:
    keep, drop, add = make_paper("2409.00001"), make_paper("2409.00002"), make_paper("2409.00003")
    elsewhere = make_paper("2409.00004")
    digest = make_digest(papers=(keep, drop, elsewhere))
    other = make_digest("3DGS", papers=(elsewhere,))
    await repo.store_digest(digest, state_of(digest))
    await repo.store_digest(other, state_of(other))

    changed = with_papers(digest, add, keep)
    result = await repo.store_digest(changed, state_of(changed))
    assert result.new_ids == ("2409.00003",)
    assert result.unchanged_ids == ("2409.00001",)
    assert result.new_appearances == ("2409.00003",)
    assert sorted(result.removed_appearances) == ["2409.00002", "2409.00004"]
    assert result.deleted_ids == ("2409.00002",)  # 00004 is still listed in 3DGS
    assert await repo.get_paper("2409.00002") is None
    survivor = await repo.get_paper("2409.00004")
    assert survivor is not None
    assert survivor.tags == ("3DGS",)
    listed = await repo.digest_papers(digest.path)
    assert listed is not None
    assert [p.arxiv_id for p in listed.papers] == ["2409.00003", "2409.00001"]
    assert (await repo.search(parse_query("2409.00002")))[1] == 0


async def test_new_appearances_stay_unannounced_until_marked(repo: ArchiveRepo) -> None:
    keep, add = make_paper("2409.00001"), make_paper("2409.00002")
    digest = make_digest(papers=(keep,))
    await repo.store_digest(digest, state_of(digest))
    first = await repo.unannounced()
    assert [(a.arxiv_id, a.digest_path) for a in first] == [("2409.00001", digest.path)]
    await repo.mark_announced([a.id for a in first])
    assert await repo.unannounced() == []

    changed = with_papers(digest, add, keep)  # a kept appearance keeps its mark
    await repo.store_digest(changed, state_of(changed))
    other = make_digest("3DGS", papers=(keep,))  # the same paper in another digest is news
    await repo.store_digest(other, state_of(other))
    pending = await repo.unannounced()
    assert [(a.arxiv_id, a.digest_path) for a in pending] == [
        ("2409.00002", digest.path), ("2409.00001", other.path)]
    await repo.delete_file(other.path)  # gone before it was announced: nothing left over
    assert [a.arxiv_id for a in await repo.unannounced()] == ["2409.00002"]


async def test_delete_file_removes_appearances_and_orphans(repo: ArchiveRepo) -> None:
    shared = make_paper("2409.00001")
    a = make_digest("NeRF", papers=(shared, make_paper("2409.00002")))
    b = make_digest("3DGS", papers=(shared,))
    await repo.store_digest(a, state_of(a))
    await repo.store_digest(b, state_of(b))
    result = await repo.delete_file(a.path)
    assert sorted(result.removed_appearances) == ["2409.00001", "2409.00002"]
    assert result.deleted_ids == ("2409.00002",)
    assert a.path not in await repo.file_states()
    kept = await repo.get_paper("2409.00001")
    assert kept is not None
    assert kept.tags == ("3DGS",)
    assert await repo.get_paper("2409.00002") is None
    assert [t.name for t in await repo.tags()] == ["3DGS"]
    hits, total = await repo.search(parse_query("Paper"))
    assert total == 1
    assert hits[0].paper.arxiv_id == "2409.00001"


async def test_unknown_file_delete_is_harmless(repo: ArchiveRepo) -> None:
    result = await repo.delete_file("nope.md")
    assert result.removed_appearances == result.deleted_ids == ()


async def test_record_skip_remembers_reason_and_drops_papers(repo: ArchiveRepo) -> None:
    digest = make_digest(papers=(make_paper(),))
    await repo.store_digest(digest, state_of(digest))
    skipped = FileState(digest.path, "f" * 64, 12, 99, "not a digest: an awesome list")
    result = await repo.record_skip(skipped)
    assert result.deleted_ids == ("2409.12156",)
    assert (await repo.file_states())[digest.path] == skipped
    stats = await repo.stats()
    assert (stats.papers, stats.digests, stats.skipped_files) == (0, 0, 1)
    assert await repo.digest_papers(digest.path) is None


async def test_file_states_and_touch(repo: ArchiveRepo) -> None:
    digest = make_digest(papers=(make_paper(),))
    state = state_of(digest, size=10, mtime_ns=20)
    await repo.store_digest(digest, state)
    other = FileState("README.md", "a" * 64, 5, 6, "not a digest")
    await repo.record_skip(other)
    assert await repo.file_states() == {digest.path: state, "README.md": other}
    await repo.touch_file(digest.path, 11, 21)
    assert (await repo.file_states())[digest.path] == replace(state, size=11, mtime_ns=21)


async def test_store_digests_batch_equals_one_by_one(engine: AsyncEngine) -> None:
    repo = ArchiveRepo(make_sessionmaker(engine))
    p1, p2, p3 = make_paper("2409.00001"), make_paper("2409.00002"), make_paper("2409.00003")
    d1 = make_digest("NeRF", date(2024, 6, 1), (p1, p2))
    d2 = make_digest("3DGS", date(2024, 6, 1), (replace(p2, summary="x"), p3))
    d3 = make_digest("NeRF", date(2024, 6, 2), (replace(p1, version=2, title="v2"),))
    d1b = with_papers(d1, p1)  # the first file again, p2 dropped
    files = [(d, state_of(d)) for d in (d1, d2, d3, d1b)]
    expected = [await repo.store_digest(d, s) for d, s in files]
    expected_papers = [p async for p in repo.export()]
    await downgrade(engine, "base")
    await migrate(engine)
    assert await repo.store_digests(files) == expected
    assert [p async for p in repo.export()] == expected_papers
    assert expected[-1].removed_appearances == ("2409.00002",)
    assert expected[-1].deleted_ids == ()  # still listed in 3DGS


async def test_repeated_id_in_one_digest_is_stored_once(repo: ArchiveRepo) -> None:
    digest = make_digest(papers=(make_paper(version=1), make_paper("2409.00002"),
                                 make_paper(version=2, title="v2")))
    result = await repo.store_digest(digest, state_of(digest))
    assert result.new_ids == ("2409.12156", "2409.00002")
    stored = await repo.get_paper("2409.12156")
    assert stored is not None
    assert stored.paper.version == 2
    assert [a.position for a in stored.appearances] == [0]


async def test_mismatched_state_path_is_refused(repo: ArchiveRepo) -> None:
    digest = make_digest(papers=(make_paper(),))
    with pytest.raises(ValueError, match="stored under"):
        await repo.store_digest(digest, replace(state_of(digest), path="other.md"))


async def test_get_papers_keeps_order_and_skips_unknown(repo: ArchiveRepo) -> None:
    digest = make_digest(papers=tuple(make_paper(f"2409.0000{i}") for i in range(1, 4)))
    await repo.store_digest(digest, state_of(digest))
    papers = await repo.get_papers(["2409.00003", "9999.99999", "arXiv:2409.00001v4"])
    assert [p.arxiv_id for p in papers] == ["2409.00003", "2409.00001"]



async def test_concurrent_writers_wait_for_each_other(repo: ArchiveRepo) -> None:
    shared = make_paper("2409.00001")
    digests = [make_digest(topic, DAY, (shared, make_paper(f"2409.1000{i}")))
               for i, topic in enumerate(("NeRF", "3DGS", "LLM", "GAN"))]
    results = await asyncio.gather(*(repo.store_digest(d, state_of(d)) for d in digests))
    assert sum(r.new_ids.count("2409.00001") for r in results) == 1
    stored = await repo.get_paper("2409.00001")
    assert stored is not None
    assert sorted(stored.tags) == ["3DGS", "GAN", "LLM", "NeRF"]
