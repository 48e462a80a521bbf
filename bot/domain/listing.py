"""The list message: one digest's papers as numbered lines, each with a button that opens
its card. What a chat in the daily-digest mode gets (one message per topic and day), and
how a long backlog is summarised when a paused chat resumes.

Pure, like bot.domain.rendering: the lines are cut as plain text before escaping, and
every message is measured after entity parsing, so each one fits Telegram's limits
(4096 units of text; a button a line, ten to a message, far below the 100 a keyboard
may hold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from bot.domain.models import Appearance, ArchivedPaper
from bot.domain.rendering import (
    CB_CARD,
    Button,
    Card,
    callback_data,
    count_words,
    plain_line,
    render_header,
)
from bot.domain.tgtext import MAX_MESSAGE_LEN, escape, truncate, visible_len

__all__ = ["PER_MESSAGE", "ListEntry", "render_listing"]

PER_MESSAGE: Final = 10  # papers per list message: a screenful, and ten buttons
TITLE_LEN: Final = 160
SUMMARY_LEN: Final = 220
BUTTON_LEN: Final = 40  # what a phone shows of a full-width button
_HEADER_ROOM: Final = 400  # the header line and the part counter, at most


@dataclass(frozen=True, slots=True)
class ListEntry:
    """A paper on a list, with the appearance whose one-line summary it shows."""

    paper: ArchivedPaper
    appearance: Appearance | None = None


def _line(number: int, entry: ListEntry) -> str:
    p = entry.paper.paper
    title = truncate(plain_line(p.title) or p.arxiv_id, TITLE_LEN)
    app = entry.appearance
    summary = plain_line(app.summary if app is not None and app.summary.strip()
                         else p.summary)
    line = f"{number}. <b>{escape(title)}</b>"
    if summary:
        line += "\n" + escape(truncate(summary, SUMMARY_LEN))
    return line


def _button(number: int, entry: ListEntry) -> Button | None:
    data = callback_data(CB_CARD, entry.paper.arxiv_id)
    if data is None:
        return None
    title = plain_line(entry.paper.paper.title) or entry.paper.arxiv_id
    return Button(truncate(f"{number}. {title}", BUTTON_LEN), callback=data)


def _pack(lines: Sequence[str], limit: int) -> list[range]:
    """Consecutive runs of lines, each at most PER_MESSAGE long and ``limit`` units."""
    parts: list[range] = []
    start, size = 0, 0
    for i, line in enumerate(lines):
        cost = visible_len(line) + 2
        if i > start and (i - start >= PER_MESSAGE or size + cost > limit):
            parts.append(range(start, i))
            start, size = i, 0
        size += cost
    if lines:
        parts.append(range(start, len(lines)))
    return parts


def render_listing(topic: str | None, day: date | None, entries: Sequence[ListEntry], *,
                   lang: str = "en", reason: str = "new") -> list[tuple[range, Card]]:
    """The list messages for ``entries``, in order, each with the indexes of the entries
    it shows: a header (topic, day, how many, and
    "2/3" when it takes several), then a numbered line per paper (title and one-line
    summary), and one button per paper that opens its card. ``topic`` None: papers of no
    digest (a backlog of reposted papers) under a header that only counts them."""
    if not entries:
        return []
    lines = [_line(n, e) for n, e in enumerate(entries, 1)]
    if topic is None:
        head = "📚 " + escape(count_words(len(entries), lang=lang, reason=reason))
    else:
        head = render_header(topic, day, len(entries), lang=lang, reason=reason)
    parts = _pack(lines, MAX_MESSAGE_LEN - _HEADER_ROOM)
    cards: list[tuple[range, Card]] = []
    for index, part in enumerate(parts, 1):
        counter = f" ({index}/{len(parts)})" if len(parts) > 1 else ""
        html = head + counter + "\n\n" + "\n\n".join(lines[i] for i in part)
        buttons = tuple((b,) for i in part if (b := _button(i + 1, entries[i])) is not None)
        cards.append((part, Card(html=html, buttons=buttons)))
    return cards
