"""Secrets out of everything paperfeed prints or sends: logs, operator notices, reports.

One :class:`Redactor` per process, made from Settings: the bot token (as is and
percent-encoded, as it appears in request URLs), the webhook secret, and the password
in DATABASE_URL or BOT_API_URL. Each is replaced by a placeholder that says which.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config import Settings

MIN_SECRET_LEN = 4
"""Shorter "secrets" (a password like "pw") are not replaced: they would mangle words."""


def _url_password(url: str) -> str | None:
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return urlsplit(url).password


class Redactor:
    """Replaces every known secret in a text by ``<name>``."""

    def __init__(self, secrets: Iterable[tuple[str, str | None]]) -> None:
        pairs: dict[str, str] = {}
        for name, value in secrets:
            if not value or len(value) < MIN_SECRET_LEN:
                continue
            for form in (value, quote(value, safe="")):
                pairs.setdefault(form, f"<{name}>")
        # Longest first, so a secret containing another is replaced whole.
        self._pairs = sorted(pairs.items(), key=lambda kv: -len(kv[0]))

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        return cls([
            ("token", settings.telegram_token),
            ("webhook secret", settings.webhook_secret),
            ("database password", _url_password(settings.database_url)),
            ("Bot API password", _url_password(settings.bot_api_url)),
        ])

    def __call__(self, text: str) -> str:
        for secret, placeholder in self._pairs:
            if secret in text:
                text = text.replace(secret, placeholder)
        return text

    def __bool__(self) -> bool:
        return bool(self._pairs)


class RedactingFilter(logging.Filter):
    """A log filter: messages (httpx logs request URLs) and tracebacks (PTB's
    InvalidToken quotes the token) leave with every secret replaced."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redact:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True
