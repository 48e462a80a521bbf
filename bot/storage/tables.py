"""The archive's rows: SQLAlchemy 2 declarative models and their conversion to domain objects.

Rows never leave bot.storage: repositories turn them into the frozen dataclasses of
bot.domain.models (`to_paper`, `to_appearance`) before handing anything out.
The full-text index is not declared here; it is dialect specific and lives in search.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.domain.models import Appearance, Paper

# Stable constraint names, so migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on both backends.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as
    naive UTC (SQLAlchemy's fixed-width text, which compares correctly as text) and
    come back aware. Naive datetimes are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base; its metadata is Alembic's target."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: Text(),
        int: Integer(),
        dt.date: Date(),
        list[str]: JSON(),
    }


class DigestFileRow(Base):
    """One markdown file of the digest folder as last read, digest or not.

    Non-digests are remembered with their `skipped_reason`, so an unchanged one is not
    read again on the next scan.
    """

    __tablename__ = "digest_files"
    __table_args__ = (
        Index(None, "topic", "date"),  # the tags and their last dates, read off the index
    )

    path: Mapped[str] = mapped_column(String, primary_key=True)  # relative, POSIX
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str | None]
    date: Mapped[dt.date | None]
    paper_count: Mapped[int] = mapped_column(default=0)
    skipped_reason: Mapped[str | None]


class PaperRow(Base):
    """One paper per arXiv id, whatever the version; fields of its best-known version.

    `source_path` names the digest that supplied the fields (the first to list the
    highest version); only that digest may rewrite them at the same version.
    """

    __tablename__ = "papers"

    id: Mapped[int] = mapped_column(primary_key=True)
    arxiv_id: Mapped[str] = mapped_column(String, unique=True)
    version: Mapped[int]
    title: Mapped[str]
    authors: Mapped[list[str]]
    abstract: Mapped[str]
    abs_url: Mapped[str]
    pdf_url: Mapped[str]
    comment: Mapped[str]
    links: Mapped[list[str]]
    summary: Mapped[str]
    takeaways: Mapped[list[str]]
    analysis: Mapped[str]
    figures: Mapped[list[str]]
    first_seen: Mapped[dt.date | None]
    source_path: Mapped[str | None] = mapped_column(
        ForeignKey("digest_files.path", ondelete="SET NULL")
    )

    def to_paper(self) -> Paper:
        """The domain Paper; the row's id stays behind."""
        return paper_from_mapping({name: getattr(self, name) for name in PAPER_FIELDS})


class AppearanceRow(Base):
    """A paper listed in one digest, with that digest's summary and takeaways."""

    __tablename__ = "appearances"
    __table_args__ = (
        UniqueConstraint("paper_id", "digest_path"),
        # Covering: tag listings and tag filters read papers of a tag by date from the
        # index alone (migration 0004; it replaced an index on topic, date).
        Index(None, "topic", "date", "paper_id"),
        Index(None, "date"),
        Index(None, "digest_path"),
        # Only the few appearances not yet handed to delivery (migration 0005).
        Index("ix_appearances_unannounced", "id", sqlite_where=text("announced = 0"),
              postgresql_where=text("NOT announced")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"))
    digest_path: Mapped[str] = mapped_column(
        ForeignKey("digest_files.path", ondelete="CASCADE")
    )
    topic: Mapped[str]
    date: Mapped[dt.date]
    summary: Mapped[str]
    takeaways: Mapped[list[str]]
    position: Mapped[int]
    # False from the ingest that stores it until delivery has queued it for the chats
    # that want it, so a crash between the two cannot lose the announcement.
    announced: Mapped[bool] = mapped_column(default=False, server_default=true())

    def to_appearance(self) -> Appearance:
        """The domain Appearance."""
        return appearance_from_mapping(
            {name: getattr(self, name) for name in APPEARANCE_FIELDS}
        )


PAPER_FIELDS = (
    "arxiv_id", "version", "title", "authors", "abstract", "abs_url", "pdf_url", "comment",
    "links", "summary", "takeaways", "analysis", "figures",
)
"""Columns of `papers` that mirror a domain Paper field of the same name."""

APPEARANCE_FIELDS = ("digest_path", "topic", "date", "summary", "takeaways", "position")

_TUPLE_FIELDS = frozenset({"authors", "links", "takeaways", "figures"})


def paper_from_mapping(row: Any) -> Paper:
    """Build a Paper from anything indexable by column name (an ORM row's dict, a Row mapping)."""
    values = {name: row[name] for name in PAPER_FIELDS}
    for name in _TUPLE_FIELDS:
        values[name] = tuple(values[name] or ())
    return Paper(**values)


def paper_to_mapping(paper: Paper) -> dict[str, Any]:
    """The column values of `papers` for a Paper (JSON columns as lists)."""
    values: dict[str, Any] = {name: getattr(paper, name) for name in PAPER_FIELDS}
    for name in _TUPLE_FIELDS:
        values[name] = list(values[name])
    return values


def appearance_from_mapping(row: Any) -> Appearance:
    """Build an Appearance from anything indexable by column name."""
    return Appearance(
        digest_path=row["digest_path"],
        topic=row["topic"],
        date=row["date"],
        summary=row["summary"],
        takeaways=tuple(row["takeaways"] or ()),
        position=row["position"],
    )


class ChatRow(Base):
    """A chat that talks to the bot, with its subscription and settings."""

    __tablename__ = "chats"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    all_topics: Mapped[bool] = mapped_column(Boolean, default=False)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    mode: Mapped[str] = mapped_column(String(16), default="instant")
    daily_time: Mapped[str | None] = mapped_column(String(5))
    timezone: Mapped[str | None] = mapped_column(String(64))
    include: Mapped[list[str]] = mapped_column(default=list)
    exclude: Mapped[list[str]] = mapped_column(default=list)
    style: Mapped[str] = mapped_column(String(16), default="full")
    lang: Mapped[str] = mapped_column(String(8), default="en")
    disabled_reason: Mapped[str | None]
    # migration 0008: the chat's own quiet and pause switches, and the weekly roundup
    silent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    weekly: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    roundup_week: Mapped[dt.date | None] = mapped_column(Date)  # the last one queued


class SubscriptionRow(Base):
    """One followed topic of one chat (when the chat does not follow everything)."""

    __tablename__ = "subscriptions"

    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("chats.chat_id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String, primary_key=True)


class SavedQueryRow(Base):
    """A search a chat ran, so ◀ ▶ buttons can carry a short id instead of the query.

    Only the chat that ran it may page it, and only for SAVED_QUERY_TTL after it was last
    used (migration 0007); rows from before that have no ``used_at`` and count as expired.
    """

    __tablename__ = "saved_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    text: Mapped[str]
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


# --- delivery: the outbox and the sender lease (migration 0003) ---------------------------

OUTBOX_STATES = ("pending", "sent", "failed", "cancelled")
OUTBOX_KINDS = ("header", "card", "roundup")
OUTBOX_REASONS = ("new", "repost")


class OutboxRow(Base):
    """One message owed to one chat, written before anything is sent.

    ``kind`` "header" opens a digest for a chat (``meta``: topic, date, papers), "card"
    is one paper (rendered at send time from ``arxiv_id`` and the appearance in
    ``digest_path``), "roundup" a chat's weekly roundup (``meta``: the week's Monday).
    Rows of a chat are sent in ``id`` order. A chat gets a paper once
    for ``reason`` "new" (unique index below); "repost" rows may repeat.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "state", "id"),
        Index(None, "chat_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(8))
    arxiv_id: Mapped[str | None] = mapped_column(String)
    digest_path: Mapped[str | None] = mapped_column(String)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None]
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # migration 0008: sent as a line of a list message (a backlog summarised on resume)
    listed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


Index(
    "uq_outbox_new_chat_id_arxiv_id",
    OutboxRow.chat_id,
    OutboxRow.arxiv_id,
    unique=True,
    sqlite_where=OutboxRow.reason == "new",
    postgresql_where=OutboxRow.reason == "new",
)


class LeaseRow(Base):
    """Who may run a singleton job (the sender) until when; taken over once expired."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ConfirmationRow(Base):
    """A question a person must confirm with a button ("Repost 12 papers to 300 chats?"),
    kept in the database so whichever process gets the press can act on it (migration
    0007). Expires on the database's clock; expired rows are removed when the next is
    asked."""

    __tablename__ = "confirmations"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class ListingRow(Base):
    """A listing (arXiv id in a topic on a date) that delivery has announced, kept for
    good: appearances come and go with their files, this does not.

    A file that vanishes and comes back, or is renamed, lists the same papers again;
    their appearances are new rows, but their listings are here, so nobody is sent
    them again (migration 0006).
    """

    __tablename__ = "announced_listings"

    arxiv_id: Mapped[str] = mapped_column(String, primary_key=True)
    topic: Mapped[str] = mapped_column(String, primary_key=True)
    date: Mapped[dt.date] = mapped_column(primary_key=True)


class SavedPaperRow(Base):
    """A paper one person saved with ⭐, for their /saved list (migration 0009).

    Keyed by the Telegram user, not the chat: a press in a group saves for whoever
    pressed. Not a foreign key to `papers`: a changed digest file rewrites papers and a
    deleted one removes them, and the saved list must outlive both, so it keeps the
    paper's arXiv id and a snapshot of what its card showed.
    """

    __tablename__ = "saved_papers"
    __table_args__ = (
        Index(None, "user_id", "saved_at"),  # one person's list, newest first
    )

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    arxiv_id: Mapped[str] = mapped_column(String, primary_key=True)
    title: Mapped[str]
    authors: Mapped[list[str]]
    abs_url: Mapped[str]
    first_date: Mapped[dt.date | None]
    saved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PaperVectorRow(Base):
    """A paper's vector for "Related" (migration 0010): its int8 codes, one byte per
    dimension (bot/domain/neighbours.py), and the model that made them.

    A row of another model counts as missing, so a model change embeds every paper
    again. The row goes with its paper (ON DELETE CASCADE), and with the text it was made
    from: a new title or abstract deletes it (store_writer.py), and the next refresh
    embeds the paper again.
    """

    __tablename__ = "paper_vectors"

    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    model: Mapped[str] = mapped_column(String(128))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
