"""Hand-built domain objects for storage tests: only what a test names differs from the default."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date

from bot.domain.models import Digest, Paper
from bot.storage.records import FileState


def make_paper(
    arxiv_id: str = "2409.12156",
    version: int = 1,
    *,
    title: str | None = None,
    authors: tuple[str, ...] = ("Ada Lovelace", "Alan Turing"),
    abstract: str = "We study things.",
    summary: str = "",
    takeaways: tuple[str, ...] = (),
    analysis: str = "",
    comment: str = "",
) -> Paper:
    """A paper whose URLs follow its id and version, as the parser would build them."""
    return Paper(
        arxiv_id=arxiv_id,
        version=version,
        title=title if title is not None else f"Paper {arxiv_id}",
        authors=authors,
        abstract=abstract,
        abs_url=f"https://arxiv.org/abs/{arxiv_id}v{version}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}v{version}",
        comment=comment,
        summary=summary,
        takeaways=takeaways,
        analysis=analysis,
    )


def topic_file(topic: str, day: date) -> str:
    """`<date>/<topic>.md`, with `/` in the topic replaced as the blog does."""
    return f"{day.isoformat()}/{topic.replace('/', '_')}.md"


def make_digest(
    topic: str = "NeRF", day: date = date(2024, 6, 1), papers: tuple[Paper, ...] = (),
    *, path: str | None = None,
) -> Digest:
    """A digest of these papers, at its usual path unless one is given."""
    return Digest(path=path or topic_file(topic, day), topic=topic, date=day, papers=papers,
                  title=topic)


def state_of(digest: Digest, *, size: int = 1000, mtime_ns: int = 1) -> FileState:
    """A FileState whose hash follows the digest's content (a changed digest, a new hash)."""
    content_hash = hashlib.sha256(repr(digest).encode()).hexdigest()
    return FileState(digest.path, content_hash, size, mtime_ns, None)


def with_papers(digest: Digest, *papers: Paper) -> Digest:
    """The same file, now listing these papers."""
    return replace(digest, papers=papers)
