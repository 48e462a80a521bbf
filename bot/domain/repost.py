"""What an operator's `/repost TARGET [WHERE]` asks for, parsed without touching anything.

TARGET is a date (`2024-09-24`), a digest (`2024-09-24/NeRF`), a tag with a date
(`NeRF 2024-09-24`), or an arXiv id or link. WHERE is `all` (default), a chat id or an
`@channel`. Targets are looked up in the archive, never on disk: anything shaped like a
file path is refused outright.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot.domain.query import normalize_arxiv_id

_DATE = r"(\d{4}-\d{2}-\d{2})"
_DIGEST_RE = re.compile(rf"^{_DATE}/(.+?)(?:\.md)?$")
_DATE_TAG_RE = re.compile(rf"^{_DATE}\s+(.+)$")
_TAG_DATE_RE = re.compile(rf"^(.+?)\s+{_DATE}$")
_CHAT_ID_RE = re.compile(r"^-?\d{1,16}$")
_CHANNEL_RE = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$")


class BadRepost(ValueError):
    """The arguments do not name a repost target; the message says why."""


@dataclass(frozen=True, slots=True)
class RepostRequest:
    """A target (a day, a day and a tag, or one paper) and where to send it."""

    day: date | None = None
    tag: str | None = None  # as typed; the archive resolves it
    arxiv_id: str | None = None
    chat_id: int | None = None  # WHERE: one chat
    channel: str | None = None  # WHERE: an @channel

    @property
    def to_all(self) -> bool:
        return self.chat_id is None and self.channel is None

    def describe(self) -> str:
        if self.arxiv_id:
            return self.arxiv_id
        day = self.day.isoformat() if self.day else ""
        return f"{day}/{self.tag}" if self.tag else day


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRepost(f"{text} is not a date") from None


def parse_repost(args: list[str]) -> RepostRequest:
    """Parse the command's words; raises BadRepost with a reason a person can act on."""
    words = [w for w in args if w]
    if not words:
        raise BadRepost("name what to repost")
    chat_id: int | None = None
    channel: str | None = None
    if len(words) > 1:
        last = words[-1]
        if last.lower() == "all":
            words.pop()
        elif _CHAT_ID_RE.match(last):
            chat_id = int(words.pop())
        elif _CHANNEL_RE.match(last):
            channel = words.pop()
    target = " ".join(words).strip()
    if any(bad in target for bad in ("..", "\\", "\x00", "~")) or target.startswith("/"):
        raise BadRepost(f"{target!r} looks like a file path; name a date, digest, tag or "
                        "arXiv id from the archive")
    found = normalize_arxiv_id(target)
    if found is not None:
        return RepostRequest(arxiv_id=found[0], chat_id=chat_id, channel=channel)
    if re.fullmatch(_DATE, target):
        return RepostRequest(day=_day(target), chat_id=chat_id, channel=channel)
    for pattern, day_first in ((_DIGEST_RE, True), (_DATE_TAG_RE, True),
                               (_TAG_DATE_RE, False)):
        match = pattern.match(target)
        if match:
            day_text, tag = match.groups() if day_first else match.groups()[::-1]
            return RepostRequest(day=_day(day_text), tag=tag.strip(), chat_id=chat_id,
                                 channel=channel)
    raise BadRepost(f"{target!r} is not a date, a date/topic, a topic and a date, or an "
                    "arXiv id")
