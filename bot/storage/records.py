"""Plain records the archive hands to its callers besides the domain models.

They describe storage bookkeeping (file states, what a store did), so they live in
bot.storage rather than bot.domain; they are still frozen dataclasses, never rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import date

from bot.domain.models import ArchivedPaper


@dataclass(frozen=True, slots=True)
class FileState:
    """A file of the digest folder as last read: enough to tell whether it changed."""

    path: str  # relative to DIGEST_DIR, POSIX separators
    content_hash: str  # sha256 hex of the bytes
    size: int
    mtime_ns: int
    skipped_reason: str | None = None  # None for a digest; why it was skipped otherwise


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What storing (or removing) one file changed; every entry is an arXiv id.

    `new_ids`, `updated_ids` and `unchanged_ids` partition the papers listed in the file.
    `new_appearances` are the ids this file lists that it did not list before (all of
    them for a new file); `removed_appearances` the ones it no longer lists;
    `deleted_ids` the papers that left the archive because no file lists them any more.
    """

    path: str
    new_ids: tuple[str, ...] = ()
    updated_ids: tuple[str, ...] = ()
    unchanged_ids: tuple[str, ...] = ()
    new_appearances: tuple[str, ...] = ()
    removed_appearances: tuple[str, ...] = ()
    deleted_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Announcement:
    """A stored appearance that delivery has not queued yet (see ArchiveRepo.unannounced)."""

    id: int  # the appearance's row id, handed back to `mark_announced`
    arxiv_id: str
    digest_path: str
    topic: str = ""
    date: dt.date | None = None

    @property
    def listing(self) -> tuple[str, str, dt.date | None]:
        """What makes two appearances the same news: the paper, its topic, its day."""
        return (self.arxiv_id, self.topic, self.date)


@dataclass(frozen=True, slots=True)
class DigestPapers:
    """The papers of one digest file, in the digest's order."""

    path: str
    topic: str
    date: date
    papers: tuple[ArchivedPaper, ...] = ()


@dataclass(frozen=True, slots=True)
class ArchiveStats:
    """Counts for `paperfeed doctor` and the admin's /stats."""

    papers: int
    appearances: int
    digests: int
    skipped_files: int
    tags: int
    first_date: date | None
    last_date: date | None
