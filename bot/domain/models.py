"""Plain, frozen data that flows between the parser, the archive and the bot.

Every other layer converts to and from these types at its own edge, so the core never
sees a database row or a Telegram object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class ParseWarning:
    """Something the parser could not read and skipped; names the file and line."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper section of one digest, as the summariser wrote it."""

    arxiv_id: str  # without version, e.g. "2409.12156"
    version: int  # 1 for "v1"
    title: str  # whitespace normalised
    authors: tuple[str, ...]
    abstract: str
    abs_url: str  # https://arxiv.org/abs/<id>v<version>
    pdf_url: str  # https://arxiv.org/pdf/<id>v<version>
    comment: str = ""  # arXiv comment after the PDF link (venue, pages, project page)
    links: tuple[str, ...] = ()  # URLs found in the comment
    summary: str = ""  # the one-line (usually Chinese) summary
    takeaways: tuple[str, ...] = ()
    analysis: str = ""  # the long LLM text, as written (markdown with some HTML)
    figures: tuple[str, ...] = ()  # absolute image URLs
    line: int = 0  # line of the `## ` heading in its file, for messages


@dataclass(frozen=True, slots=True)
class Digest:
    """One topic on one day: `<YYYY-MM-DD>/<topic>.md`."""

    path: str  # relative to DIGEST_DIR, POSIX separators
    topic: str
    date: date
    papers: tuple[Paper, ...] = ()
    warnings: tuple[ParseWarning, ...] = ()
    title: str = ""
    description: str = ""
    cover: str | None = None


@dataclass(frozen=True, slots=True)
class Appearance:
    """A paper listed in one digest; summaries and takeaways differ between topics."""

    digest_path: str
    topic: str
    date: date
    summary: str = ""
    takeaways: tuple[str, ...] = ()
    position: int = 0  # order of the paper inside its digest


@dataclass(frozen=True, slots=True)
class ArchivedPaper:
    """A paper as the archive knows it: one per arXiv id, with every place it appeared."""

    paper: Paper
    appearances: tuple[Appearance, ...] = ()

    @property
    def arxiv_id(self) -> str:
        return self.paper.arxiv_id

    @property
    def tags(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for a in sorted(self.appearances, key=lambda a: (a.date, a.topic)):
            seen.setdefault(a.topic, None)
        return tuple(seen)

    @property
    def first_seen(self) -> date | None:
        return min((a.date for a in self.appearances), default=None)

    @property
    def last_seen(self) -> date | None:
        return max((a.date for a in self.appearances), default=None)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted({a.digest_path for a in self.appearances}))


@dataclass(frozen=True, slots=True)
class TagInfo:
    """A topic tag with its size and freshness, for `/tags` and `paperfeed tags`."""

    name: str
    papers: int
    last_date: date | None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What a user asked for, after `parse_query`; every field is optional."""

    text: str = ""  # free text, matched by full-text search
    tags: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    arxiv_ids: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.text or self.tags or self.authors or self.arxiv_ids or self.since
                    or self.until)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result; `paper` carries all its appearances."""

    paper: ArchivedPaper
    rank: float = 0.0


@dataclass(slots=True)
class IngestReport:
    """What one scan of the digest folder did; printed by the CLI, used by delivery."""

    files_seen: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    files_deleted: int = 0
    files_waiting: int = 0  # modified too recently: read on the next scan
    papers_new: int = 0
    papers_updated: int = 0
    papers_unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[ParseWarning] = field(default_factory=list)
    new_papers: list[str] = field(default_factory=list)  # arXiv ids new to the archive
    new_appearances: list[tuple[str, str]] = field(default_factory=list)  # (arxiv_id, path)
    deletions_held: int = 0  # files gone from the folder but kept: too many at once


Mode = Literal["instant", "daily", "digest"]
"""instant: each paper when its digest is found; daily: the day's cards at the chat's
time; digest: at that time too, but one message per topic and day listing its papers."""
Style = Literal["full", "compact"]
Lang = Literal["en", "zh"]

CHAT_KINDS = ("private", "group", "supergroup", "channel")
DELIVERY_MODES: tuple[Mode, ...] = ("instant", "daily", "digest")
CARD_STYLES: tuple[Style, ...] = ("full", "compact")
LANGUAGES: tuple[Lang, ...] = ("en", "zh")


@dataclass(frozen=True, slots=True)
class Chat:
    """A chat that talks to the bot: its subscription and its settings."""

    chat_id: int
    kind: str = "private"  # one of CHAT_KINDS
    title: str = ""  # group/channel title or user's name, for logs and /stats
    active: bool = True  # False once Telegram says the chat is gone (blocked, kicked)
    all_topics: bool = False  # subscribed to everything
    tags: tuple[str, ...] = ()  # subscribed topics when not all_topics
    thread_id: int | None = None  # forum topic the cards go to
    mode: Mode = "instant"
    daily_time: time | None = None  # None means the operator's DAILY_TIME
    timezone: ZoneInfo | None = None  # None means the operator's TIMEZONE
    include: tuple[str, ...] = ()  # only papers matching one of these words
    exclude: tuple[str, ...] = ()  # never papers matching one of these words
    style: Style = "full"
    lang: Lang = "en"
    disabled_reason: str | None = None
    silent: bool = False  # deliveries arrive without a notification sound
    paused: bool = False  # the chat's own pause: papers are kept until it resumes
    weekly: bool = False  # a roundup every Monday: the week's counts and the trend chart

    @property
    def scheduled(self) -> bool:
        """Papers wait for the chat's daily time (daily cards or the digest list)."""
        return self.mode != "instant"

    @property
    def subscribed(self) -> bool:
        return self.all_topics or bool(self.tags)


@dataclass(frozen=True, slots=True)
class SavedPaper:
    """A paper a person saved with ⭐: kept with what the card showed, so the list and
    its BibTeX outlive the paper's stay in the archive.

    While the paper is in the archive, storage fills the fields from its current record
    (``in_archive``); after, from the snapshot taken when it was saved.
    """

    arxiv_id: str
    title: str
    authors: tuple[str, ...]
    abs_url: str
    first_date: date | None  # the first digest that listed it
    saved_at: datetime
    in_archive: bool = True
