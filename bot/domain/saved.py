"""A person's saved papers as /saved shows and exports them: list lines, the BibTeX file
and the plain list of links.

Pure, over :class:`~bot.domain.models.SavedPaper`: storage decides whether an entry
carries the archive's current record or the snapshot of a paper that has left it; this
module only renders what it is given, the same in every chat.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.bibtex import unique_entry
from bot.domain.chat_settings import language
from bot.domain.models import ArchivedPaper, Paper, SavedPaper
from bot.domain.rendering import RESULT_TITLE_LEN, plain_line, render_result_line
from bot.domain.tgtext import MAX_MESSAGE_LEN, escape, safe_url, truncate, utf16_len

__all__ = ["abs_link", "render_saved_line", "saved_bibtex", "saved_links"]

LINK_TITLE_LEN = 300
"""A title in the list of links is cut to this many UTF-16 units: a line stays readable
and always fits a message."""

_MAX_URL = 300  # longer is not an arXiv page: the id's own link is used instead
_GONE = {"en": "no longer in the archive", "zh": "已不在资料库中"}


def abs_link(entry: SavedPaper) -> str:
    """The entry's arXiv page: its stored link when it is a sound URL, else one made of
    the id."""
    url = safe_url(entry.abs_url)
    return url if url and len(url) <= _MAX_URL else f"https://arxiv.org/abs/{entry.arxiv_id}"


def _title(entry: SavedPaper, limit: int) -> str:
    return truncate(plain_line(entry.title) or plain_line(entry.arxiv_id), limit)


def render_saved_line(entry: SavedPaper, index: int, paper: ArchivedPaper | None,
                      lang: str = "en") -> str:
    """One line of /saved. A paper in the archive reads like a search result
    (``N. <b>title</b> · date · #tags``); one that left it keeps its title and date, with
    a link to arXiv and a note that it is gone."""
    if paper is not None:
        return render_result_line(paper, index)
    parts = [f"{index}. <b>{escape(_title(entry, RESULT_TITLE_LEN))}</b>"]
    if entry.first_date:
        parts.append(entry.first_date.isoformat())
    parts.append(f'<a href="{escape(abs_link(entry), quote=True)}">arXiv</a>')
    parts.append(f"<i>{_GONE[language(lang)]}</i>")
    return " · ".join(parts)


def _as_paper(entry: SavedPaper) -> Paper:
    """What BibTeX needs of the entry (title, authors, id) as a Paper."""
    return Paper(arxiv_id=entry.arxiv_id, version=1, title=entry.title,
                 authors=entry.authors, abstract="", abs_url=abs_link(entry), pdf_url="")


def saved_bibtex(entries: Sequence[SavedPaper]) -> str:
    """A .bib file: one ``@misc`` entry per saved paper, in list order, keys unique."""
    keys: set[str] = set()
    return "\n\n".join(unique_entry(_as_paper(e), keys) for e in entries) + "\n"


def saved_links(entries: Sequence[SavedPaper], limit: int = MAX_MESSAGE_LEN) -> list[str]:
    """Plain-text messages of ``title — link`` lines, one per paper, each message within
    ``limit`` UTF-16 units and no line split between two."""
    messages: list[str] = []
    current: list[str] = []
    size = 0
    for entry in entries:
        line = f"{_title(entry, LINK_TITLE_LEN)} — {abs_link(entry)}"
        length = utf16_len(line)
        if current and size + 1 + length > limit:
            messages.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += length + (1 if size else 0)
    if current:
        messages.append("\n".join(current))
    return messages
