"""What storing a batch of digest files does to the archive, decided without a database.

The rules (ArchiveRepo's docstring has them in short): one paper per arXiv id. A file
lists papers; each listing is an appearance with the file's topic and date. A listing
of a higher version rewrites the paper, and so does one of the same version from the
file the paper was last written from (its source; None once that file stops listing
it). Storing a file again diffs it by arXiv id: appearances are kept (and rewritten),
added or removed. A paper no file lists any more leaves the archive.

`plan_store` is a pure function: the writer (store_writer.py) reads the `StoredState`
of a batch, asks for the plan, and executes it in a fixed number of statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from bot.domain.models import Digest, Paper
from bot.storage.records import FileState, StoreResult
from bot.storage.search_text import PaperText
from bot.storage.tables import paper_to_mapping

Row = dict[str, Any]
"""Column values by column name; JSON columns as lists."""


# --- what the writer hands in -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file to bring in line: a digest, or None for a skipped file; `delete` when the
    file left the folder (its row goes too)."""

    state: FileState
    digest: Digest | None
    delete: bool = False


@dataclass(frozen=True, slots=True)
class StoredPaper:
    """A paper as stored: its row id, PAPER_FIELDS values and source file."""

    id: int
    values: Row
    source: str | None


@dataclass(frozen=True, slots=True)
class StoredState:
    """What the archive holds that a batch touches, as the writer read it."""

    files: Set[str] = frozenset()  # the batch's paths that have a digest_files row
    # path -> arXiv id -> (appearance id, paper id): what each known file lists now
    appearances: Mapping[str, Mapping[str, tuple[int, int]]] = field(default_factory=dict)
    papers: Mapping[str, StoredPaper] = field(default_factory=dict)  # by arXiv id


def listed_ids(changes: Sequence[FileChange]) -> list[str]:
    """The arXiv ids these files list, sorted: the papers StoredState must hold."""
    return sorted({p.arxiv_id for c in changes if c.digest is not None for p in c.digest.papers})


# --- what the plan hands back -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewPaper:
    """A paper the archive does not hold yet; its row id comes from the insert."""

    arxiv_id: str
    values: Row
    source: str | None
    first_seen: date | None
    # New papers are indexed from memory: what their appearances in this batch say.
    summaries: Sequence[str] = ()
    takeaways: Sequence[str] = ()
    topics: Sequence[str] = ()

    def text(self, paper_id: int) -> PaperText:
        v = self.values
        return PaperText(paper_id, v["title"], v["authors"], v["abstract"],
                         self.summaries, self.takeaways, self.topics)


@dataclass(frozen=True, slots=True)
class ChangedPaper:
    """A stored paper whose row is rewritten: new values, or a new source."""

    id: int
    values: Row
    source: str | None


@dataclass(frozen=True, slots=True)
class StorePlan:
    """Every row a batch inserts, updates or deletes, and what it does to each file.

    Which papers leave the archive is known only once the appearances are written (a
    paper may still be listed by a file outside the batch), so the plan names the
    candidates and `results` is told which of them left.
    """

    files_to_insert: list[Row] = field(default_factory=list)  # digest_files rows
    files_to_update: list[Row] = field(default_factory=list)  # by "path"
    files_to_delete: list[str] = field(default_factory=list)
    papers_to_insert: list[NewPaper] = field(default_factory=list)
    papers_to_update: list[ChangedPaper] = field(default_factory=list)
    # (paper id, path): source_path becomes NULL where it is still that path
    sources_to_clear: list[tuple[int, str]] = field(default_factory=list)
    appearances_to_delete: list[int] = field(default_factory=list)
    appearances_to_update: list[tuple[int, Row]] = field(default_factory=list)  # by id
    # (arXiv id, row without paper_id): the writer knows the id, new papers' included
    appearances_to_insert: list[tuple[str, Row]] = field(default_factory=list)
    # Stored papers whose appearances change: first_seen and index row are recomputed.
    papers_to_refresh: list[int] = field(default_factory=list)
    # paper id -> (arXiv id, index of the file): lost an appearance, leaves if none is left
    may_leave: dict[int, tuple[str, int]] = field(default_factory=dict)
    outcomes: list[StoreResult] = field(default_factory=list)  # deleted_ids still empty

    def results(self, left: Sequence[int]) -> list[StoreResult]:
        """The outcomes, given the candidates (of may_leave) that left the archive."""
        deleted: dict[int, list[str]] = {}
        for paper_id in left:
            arxiv_id, index = self.may_leave[paper_id]
            deleted.setdefault(index, []).append(arxiv_id)
        return [replace(outcome, deleted_ids=tuple(deleted[i])) if i in deleted else outcome
                for i, outcome in enumerate(self.outcomes)]


# --- the plan -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Slot:
    """A paper while a batch is planned: as stored (or first listed), then as it must be
    written."""

    arxiv_id: str
    values: Row
    source: str | None
    id: int | None = None  # None for a new paper
    dirty: bool = False  # a stored paper whose row must be rewritten
    first_seen: date | None = None
    summaries: list[str] = field(default_factory=list)
    takeaways: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)

    @property
    def version(self) -> int:
        return int(self.values["version"])


@dataclass(slots=True)
class _Outcome:
    """StoreResult under construction."""

    path: str
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    new_appearances: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def result(self) -> StoreResult:
        return StoreResult(self.path, tuple(self.new), tuple(self.updated),
                           tuple(self.unchanged), tuple(self.new_appearances),
                           tuple(self.removed))


def _listed(digest: Digest | None) -> dict[str, tuple[int, Paper]]:
    """arXiv id -> (position, paper); a repeated id keeps its first position, highest version."""
    listed: dict[str, tuple[int, Paper]] = {}
    if digest is None:
        return listed
    for position, paper in enumerate(digest.papers):
        seen = listed.get(paper.arxiv_id)
        if seen is None:
            listed[paper.arxiv_id] = (position, paper)
        elif paper.version > seen[1].version:
            listed[paper.arxiv_id] = (seen[0], paper)
    return listed


def plan_store(changes: Sequence[FileChange], stored: StoredState) -> StorePlan:
    """Everything storing these files (distinct paths, in order) changes, given what
    the archive holds of them."""
    plan = StorePlan()
    slots: dict[str, _Slot] = {
        arxiv_id: _Slot(arxiv_id, paper.values, paper.source, id=paper.id)
        for arxiv_id, paper in stored.papers.items()
    }
    outcomes: list[_Outcome] = []
    refresh: set[int] = set()

    for index, change in enumerate(changes):
        state, digest = change.state, change.digest
        path = state.path
        listed = _listed(digest)
        outcome = _Outcome(path)
        outcomes.append(outcome)
        file_row: Row = {
            "path": path, "content_hash": state.content_hash, "size": state.size,
            "mtime_ns": state.mtime_ns,
            "topic": digest.topic if digest else None,
            "date": digest.date if digest else None,
            "paper_count": len(listed),
            "skipped_reason": None if digest else (state.skipped_reason or "skipped"),
        }
        if change.delete:
            plan.files_to_delete.append(path)
        elif path in stored.files:
            plan.files_to_update.append(file_row)
        else:
            plan.files_to_insert.append(file_row)
        old = stored.appearances.get(path, {})
        for arxiv_id, (position, paper) in listed.items():
            assert digest is not None
            values = paper_to_mapping(paper)
            slot = slots.get(arxiv_id)
            if slot is None:
                slot = _Slot(arxiv_id, values, path, first_seen=digest.date)
                slots[arxiv_id] = slot
                outcome.new.append(arxiv_id)
            elif paper.version > slot.version or (
                paper.version == slot.version and slot.source in (path, None)
            ):
                if values != slot.values:
                    slot.values = values
                    slot.dirty = True
                    outcome.updated.append(arxiv_id)
                else:
                    outcome.unchanged.append(arxiv_id)
                if slot.source != path:
                    slot.source = path
                    slot.dirty = True
            else:
                outcome.unchanged.append(arxiv_id)
            app: Row = {
                "digest_path": path, "topic": digest.topic, "date": digest.date,
                "summary": paper.summary, "takeaways": list(paper.takeaways),
                "position": position,
            }
            if arxiv_id in old:
                plan.appearances_to_update.append((old[arxiv_id][0], app))
            else:
                plan.appearances_to_insert.append((arxiv_id, app))
                outcome.new_appearances.append(arxiv_id)
            if slot.id is None:
                slot.first_seen = min(slot.first_seen or digest.date, digest.date)
                slot.summaries.append(paper.summary)
                slot.takeaways.extend(paper.takeaways)
                slot.topics.append(digest.topic)
            else:
                refresh.add(slot.id)
        for arxiv_id, (app_id, paper_id) in old.items():
            if arxiv_id in listed:
                continue
            plan.appearances_to_delete.append(app_id)
            outcome.removed.append(arxiv_id)
            plan.may_leave[paper_id] = (arxiv_id, index)
            refresh.add(paper_id)
            slot = slots.get(arxiv_id)
            if slot is None:
                plan.sources_to_clear.append((paper_id, path))
            elif slot.source == path:
                slot.source = None
                slot.dirty = True

    for slot in slots.values():
        if slot.id is None:
            plan.papers_to_insert.append(NewPaper(
                slot.arxiv_id, slot.values, slot.source, slot.first_seen,
                slot.summaries, slot.takeaways, slot.topics))
        elif slot.dirty:
            plan.papers_to_update.append(ChangedPaper(slot.id, slot.values, slot.source))
    return replace(plan, papers_to_refresh=sorted(refresh),
                   outcomes=[outcome.result() for outcome in outcomes])


def batches(changes: Sequence[FileChange]) -> list[list[FileChange]]:
    """Split so that no path occurs twice in one batch (later wins, in order): each
    batch is planned against what the previous ones wrote."""
    split: list[list[FileChange]] = [[]]
    seen: set[str] = set()
    for change in changes:
        if change.state.path in seen:
            split.append([])
            seen = set()
        split[-1].append(change)
        seen.add(change.state.path)
    return [b for b in split if b]
