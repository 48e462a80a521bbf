"""Secrets out of everything paperfeed prints or sends: logs, operator notices, reports.

One :class:`Redactor` per process, made from Settings: the bot token (as is and
percent-encoded, as it appears in request URLs), the webhook secret, and the password
in DATABASE_URL or BOT_API_URL. Each is replaced by a placeholder that says which.
Patterns then catch what no setting names, or what is too short to replace everywhere:
a token in a Bot API URL, the password of any URL, the value of a webhook secret token.

:func:`hide_password` is how a URL is shown on purpose (doctor, reprs, log lines).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from contextlib import suppress
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from bot.config import Settings

MIN_SECRET_LEN = 4
"""Shorter "secrets" (a password like "pw") are not replaced everywhere: they would
mangle words. The patterns below still catch them where they are recognisable."""

HIDDEN: Final = "***"
"""What a URL's password is shown as (as SQLAlchemy's ``hide_password`` does)."""

_TOKEN: Final = re.compile(
    r"(?<=/bot)\d+(?::|%3A)[A-Za-z0-9_-]+"  # in a Bot API URL: .../bot<token>/getMe
    r"|\b\d{5,}(?::|%3A)[A-Za-z0-9_-]{30,}",  # anywhere, in @BotFather's format
    re.IGNORECASE,
)
_URL_PASSWORD: Final = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)[^\s/]*@"  # scheme://user:<pw>@
)
_SECRET_TOKEN: Final = re.compile(
    # PTB's setWebhook parameters ('secret_token': '…') and the header Telegram sends.
    r"(?P<key>secret[_-]token['\"]?\s*[:=]\s*['\"]?)[A-Za-z0-9_-]+",
    re.IGNORECASE,
)


def _password_span(url: str) -> tuple[int, int] | None:
    """Where the password of ``scheme://user:password@host…`` is, however it parses.

    SQLAlchemy ends it at the first "@" (and lets it hold "/" or "?"), urllib at the last
    "@" before the first "/", "?" or "#": an unencoded "@" makes them disagree, so the
    span runs to the later of the two and no parser's password is shown in part.
    """
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    colon = url.find(":", start)
    if colon < 0 or any(c in url[start:colon] for c in "/?#"):
        return None  # no "user:" before the path
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    netloc_end = min(ends, default=len(url))
    end = max(url.find("@", colon), url.rfind("@", 0, netloc_end))
    return (colon + 1, end) if end > colon else None


def hide_password(url: str) -> str:
    """The URL with its password shown as ``***``; a URL without one, as it is."""
    span = _password_span(url)
    return url if span is None else f"{url[:span[0]]}{HIDDEN}{url[span[1]:]}"


def url_passwords(url: str) -> set[str]:
    """Every form the URL's password may be printed in: as written, decoded, and as
    SQLAlchemy and urllib read it."""
    found: set[str] = set()
    span = _password_span(url)
    if span is not None:
        raw = url[span[0]:span[1]]
        found |= {raw, unquote(raw)}
    with suppress(ArgumentError, ValueError):
        found.add(make_url(url).password or "")
    with suppress(ValueError):
        found.add(urlsplit(url).password or "")
    found.discard("")
    return found


class Redactor:
    """Replaces every known secret in a text by ``<name>``, then any token, URL password
    or webhook secret token the patterns recognise."""

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
        webhook_secret = settings.webhook_secret
        secrets: list[tuple[str, str | None]] = [
            ("token", settings.telegram_token.get_secret_value()),
            ("webhook secret", webhook_secret.get_secret_value() if webhook_secret else None),
        ]
        secrets += [("database password", p) for p in url_passwords(settings.database_url)]
        secrets += [("Bot API password", p) for p in url_passwords(settings.bot_api_url)]
        return cls(secrets)

    def __call__(self, text: str) -> str:
        for secret, placeholder in self._pairs:
            if secret in text:
                text = text.replace(secret, placeholder)
        text = _TOKEN.sub("<token>", text)
        text = _URL_PASSWORD.sub(rf"\g<head>{HIDDEN}@", text)
        return _SECRET_TOKEN.sub(r"\g<key><webhook secret>", text)


class RedactingFilter(logging.Filter):
    """A handler filter: every record the handler writes, whichever logger made it
    (httpx and PTB log request URLs; PTB's InvalidToken quotes the token), leaves with
    its message, traceback and stack redacted. On a handler, not a logger: a logger's
    filters do not see the records its children propagate."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message, broken = record.getMessage(), False
        except Exception:  # a bad logging call: logging would print its msg and args raw
            message, broken = f"bad log call: {record.msg!r} % {record.args!r}", True
        redacted = self.redact(message)
        if broken or redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True
