"""The store plan without a database: what storing files does, given what is stored.

test_store.py checks the same rules end to end; here each decision is seen as rows.
"""

from __future__ import annotations

from datetime import date

from bot.domain.models import Digest, Paper
from bot.storage.records import FileState, StoreResult
from bot.storage.store_plan import (
    ChangedPaper,
    FileChange,
    StoredPaper,
    StoredState,
    batches,
    listed_ids,
    plan_store,
)
from bot.storage.tables import paper_to_mapping
from tests.storage.factories import make_digest, make_paper, state_of

DAY = date(2024, 6, 1)
LATER = date(2024, 6, 5)


def change(digest: Digest) -> FileChange:
    return FileChange(state_of(digest), digest)


def stored_paper(paper: Paper, paper_id: int, source: str | None) -> StoredPaper:
    return StoredPaper(paper_id, paper_to_mapping(paper), source)


def test_new_file_into_an_empty_archive() -> None:
    digest = make_digest(papers=(make_paper("2409.00001", summary="一", takeaways=("a",)),
                                 make_paper("2409.00002")))
    plan = plan_store([change(digest)], StoredState())
    assert [row["path"] for row in plan.files_to_insert] == [digest.path]
    assert plan.files_to_insert[0]["paper_count"] == 2
    assert plan.files_to_update == plan.files_to_delete == []
    assert [p.arxiv_id for p in plan.papers_to_insert] == ["2409.00001", "2409.00002"]
    first = plan.papers_to_insert[0]
    assert (first.source, first.first_seen) == (digest.path, DAY)
    assert first.values == paper_to_mapping(digest.papers[0])
    text = first.text(7)
    assert (text.paper_id, text.summaries, text.takeaways, text.tags) == (7, ["一"], ["a"],
                                                                          ["NeRF"])
    assert [(a, row["position"]) for a, row in plan.appearances_to_insert] == [
        ("2409.00001", 0), ("2409.00002", 1)]
    assert plan.papers_to_update == plan.papers_to_refresh == []
    assert plan.outcomes == [StoreResult(digest.path, new_ids=("2409.00001", "2409.00002"),
                                         new_appearances=("2409.00001", "2409.00002"))]


def test_a_repeated_id_keeps_its_first_position_and_highest_version() -> None:
    digest = make_digest(papers=(make_paper("2409.00001", 1), make_paper("2409.00002"),
                                 make_paper("2409.00001", 3)))
    plan = plan_store([change(digest)], StoredState())
    assert [(p.arxiv_id, p.values["version"]) for p in plan.papers_to_insert] == [
        ("2409.00001", 3), ("2409.00002", 1)]
    assert [(a, row["position"]) for a, row in plan.appearances_to_insert] == [
        ("2409.00001", 0), ("2409.00002", 1)]
    assert plan.files_to_insert[0]["paper_count"] == 2


def test_a_new_paper_in_two_files_of_a_batch_is_inserted_once() -> None:
    early = make_digest("NeRF", LATER, (make_paper(version=1, summary="early"),))
    late = make_digest("3DGS", DAY, (make_paper(version=2, summary="late"),))
    plan = plan_store([change(early), change(late)], StoredState())
    [paper] = plan.papers_to_insert
    assert (paper.values["version"], paper.source, paper.first_seen) == (2, late.path, DAY)
    assert (paper.summaries, paper.topics) == (["early", "late"], ["NeRF", "3DGS"])
    assert [o.new_ids for o in plan.outcomes] == [("2409.12156",), ()]
    assert [o.updated_ids for o in plan.outcomes] == [(), ("2409.12156",)]
    assert len(plan.appearances_to_insert) == 2


def test_a_higher_version_rewrites_a_stored_paper() -> None:
    old = make_digest(papers=(make_paper(version=1, title="Old"),))
    new = make_digest(day=LATER, papers=(make_paper(version=2, title="New"),))
    stored = StoredState(papers={"2409.12156": stored_paper(old.papers[0], 5, old.path)})
    plan = plan_store([change(new)], stored)
    assert plan.papers_to_insert == []
    assert plan.papers_to_update == [
        ChangedPaper(5, paper_to_mapping(new.papers[0]), new.path)]
    assert plan.papers_to_refresh == [5]
    assert plan.outcomes[0].updated_ids == ("2409.12156",)
    assert plan.outcomes[0].new_appearances == ("2409.12156",)


def test_a_lower_version_elsewhere_only_adds_an_appearance() -> None:
    source = make_digest(papers=(make_paper(version=2),))
    other = make_digest("GAN", LATER, (make_paper(version=1),))
    stored = StoredState(papers={"2409.12156": stored_paper(source.papers[0], 5, source.path)})
    plan = plan_store([change(other)], stored)
    assert plan.papers_to_update == []
    assert plan.outcomes[0].unchanged_ids == ("2409.12156",)
    assert [a for a, _ in plan.appearances_to_insert] == ["2409.12156"]
    assert plan.papers_to_refresh == [5]


def test_a_changed_file_is_diffed_by_arxiv_id() -> None:
    kept, dropped = make_paper("2409.00001"), make_paper("2409.00002")
    added = make_paper("2409.00003")
    before = make_digest(papers=(kept, dropped))
    after = make_digest(papers=(added, kept))
    stored = StoredState(
        files={before.path},
        appearances={before.path: {"2409.00001": (10, 1), "2409.00002": (11, 2)}},
        papers={"2409.00001": stored_paper(kept, 1, before.path)},
    )
    plan = plan_store([change(after)], stored)
    assert [row["path"] for row in plan.files_to_update] == [after.path]
    assert plan.files_to_insert == []
    assert [(app_id, row["position"]) for app_id, row in plan.appearances_to_update] == [
        (10, 1)]
    assert [a for a, _ in plan.appearances_to_insert] == ["2409.00003"]
    assert plan.appearances_to_delete == [11]
    # The dropped paper is not listed in the batch: its source is cleared in place.
    assert plan.sources_to_clear == [(2, before.path)]
    assert plan.may_leave == {2: ("2409.00002", 0)}
    assert plan.papers_to_refresh == [1, 2]
    [outcome] = plan.outcomes
    assert (outcome.new_ids, outcome.unchanged_ids) == (("2409.00003",), ("2409.00001",))
    assert outcome.removed_appearances == ("2409.00002",)


def test_a_skipped_file_loses_its_appearances_and_its_papers_their_source() -> None:
    paper = make_paper()
    digest = make_digest(papers=(paper,))
    elsewhere = make_digest("GAN", LATER, (paper,))
    stored = StoredState(
        files={digest.path},
        appearances={digest.path: {paper.arxiv_id: (10, 1)}},
        papers={paper.arxiv_id: stored_paper(paper, 1, digest.path)},
    )
    skipped = FileChange(FileState(digest.path, "h", 1, 1, "no front matter"), None)
    plan = plan_store([skipped, change(elsewhere)], stored)
    [row] = plan.files_to_update
    assert (row["topic"], row["paper_count"], row["skipped_reason"]) == (
        None, 0, "no front matter")
    assert plan.appearances_to_delete == [10]
    # Listed again in the batch, from another file of the same version: that file is
    # its source now.
    assert plan.papers_to_update == [ChangedPaper(1, paper_to_mapping(paper), elsewhere.path)]
    assert plan.sources_to_clear == []


def test_a_deleted_file_row_goes_and_results_name_the_papers_that_left() -> None:
    digest = make_digest(papers=(make_paper("2409.00001"), make_paper("2409.00002")))
    stored = StoredState(
        files={digest.path},
        appearances={digest.path: {"2409.00001": (10, 1), "2409.00002": (11, 2)}},
    )
    gone = FileChange(FileState(digest.path, "", 0, 0), None, delete=True)
    plan = plan_store([gone], stored)
    assert plan.files_to_delete == [digest.path]
    assert plan.files_to_insert == plan.files_to_update == []
    assert plan.sources_to_clear == [(1, digest.path), (2, digest.path)]
    [result] = plan.results([2])
    assert result.removed_appearances == ("2409.00001", "2409.00002")
    assert result.deleted_ids == ("2409.00002",)


def test_batches_never_hold_a_path_twice() -> None:
    a, b = make_digest("NeRF"), make_digest("GAN")
    changes = [change(a), change(b), change(a), change(b), change(a)]
    assert [[c.state.path for c in batch] for batch in batches(changes)] == [
        [a.path, b.path], [a.path, b.path], [a.path]]


def test_listed_ids_are_what_must_be_read() -> None:
    a = make_digest("NeRF", papers=(make_paper("2409.00002"), make_paper("2409.00001")))
    b = make_digest("GAN", papers=(make_paper("2409.00001"),))
    skipped = FileChange(FileState("x.md", "", 0, 0, "empty"), None)
    assert listed_ids([change(a), change(b), skipped]) == ["2409.00001", "2409.00002"]
