"""One exception tree for the whole project.

    PaperfeedError
    ├── ConfigError          a setting is missing or malformed (one line, no traceback)
    ├── DigestError          a file is not a digest, or cannot be read as one
    │   └── NotADigest       a post in the folder that is not a daily digest
    ├── UnknownTag           a tag a user named does not exist (carries suggestions)
    ├── NotFound             an arXiv id, digest or target matches nothing
    ├── ChatGone             Telegram says the chat is unreachable for good (blocked, kicked)
    └── ChatPaused           the chat is there but may not be posted to for now (a closed
                             topic, a right taken away): its deliveries wait
"""

from __future__ import annotations


class PaperfeedError(Exception):
    """Base of every error paperfeed raises on purpose."""


class ConfigError(PaperfeedError):
    """A setting is missing or malformed; the message names the variable."""


class DigestError(PaperfeedError):
    """A file could not be read as a digest."""


class NotADigest(DigestError):
    """The file is a post of another kind (an awesome list, a survey note)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a daily digest: {reason}")
        self.reason = reason  # why, without the "not a daily digest" the caller may say


class UnknownTag(PaperfeedError):
    """A user named a tag the archive does not know."""

    def __init__(self, tag: str, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(f"unknown tag: {tag!r}")
        self.tag = tag
        self.suggestions = suggestions


class NotFound(PaperfeedError):
    """A paper, digest or repost target matches nothing in the archive."""


class ChatPaused(PaperfeedError):
    """The chat is there, but the bot may not post where it should right now: a forum
    topic closed or deleted, the bot's right to send taken away. Not a departed chat."""

    def __init__(self, chat_id: int, reason: str) -> None:
        super().__init__(f"chat {chat_id} is paused: {reason}")
        self.chat_id = chat_id
        self.reason = reason


class ChatGone(PaperfeedError):
    """Telegram answered that the chat cannot be reached any more (403, chat not found)."""

    def __init__(self, chat_id: int, reason: str) -> None:
        super().__init__(f"chat {chat_id} is gone: {reason}")
        self.chat_id = chat_id
        self.reason = reason
