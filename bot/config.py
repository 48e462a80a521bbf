"""Settings: the only module that reads the environment (and `.env`).

Bad values fail at start with one line naming the variable, never a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.domain.chat_settings import time_of
from bot.errors import ConfigError
from bot.redaction import hide_password

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

WEBHOOK_SECRET_RULE = re.compile(r"[A-Za-z0-9_-]{1,256}")
"""Telegram's rule for setWebhook's secret_token (it refuses anything else)."""

HEALTH_PATH = "/healthz"
"""Where the bot's HTTP server answers health checks; a webhook path may not take it."""
FEEDS_PATH = "/feeds/"
"""Where the bot's HTTP server serves the Atom feeds; a webhook path may not lie below it."""
WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
"""The only ports Telegram delivers webhook updates to (setWebhook in the Bot API)."""
URL_FIELDS = frozenset({"bot_api_url", "database_url", "blog_base_url", "webhook_url"})
"""Plain strings (SQLAlchemy and PTB take them so) that may hold a password."""


class Settings(BaseSettings):
    """Every knob of paperfeed; names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_token: SecretStr = SecretStr("")
    bot_api_url: str = "https://api.telegram.org"
    digest_dir: Path = Path("./digests")
    database_url: str = "sqlite+aiosqlite:///./data/paperfeed.db"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    scan_interval: float = Field(default=300.0, gt=0)
    watch_folder: bool = True  # also read digests as they land (filesystem notifications)
    timezone: str = "UTC"
    daily_time: time = time(9, 0)
    blog_base_url: str | None = None
    log_level: str = "INFO"
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    health_port: int | None = Field(default=None, ge=1, le=65535)
    feed_base_url: str | None = None  # where /feeds/*.atom are reached from outside
    delete_guard_share: float = Field(default=0.5, ge=0.0, le=1.0)
    delete_guard_min: int = Field(default=5, ge=0)
    delivery_max_age: float = Field(default=72.0, gt=0)  # hours
    digest_max_bytes: int = Field(default=5 * 1024 * 1024, ge=0)  # 0: no limit
    analysis_max_bytes: int = Field(default=64 * 1024, ge=0)  # 0: no limit
    figures_max: int = Field(default=20, ge=0)  # 0: no limit

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            try:
                return frozenset(int(p) for p in parts if p)
            except ValueError:
                raise ValueError("must be comma-separated Telegram user ids") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("daily_time", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        if isinstance(value, str):
            parsed = time_of(value)
            if parsed is None:
                raise ValueError("must be HH:MM, e.g. 09:00")
            return parsed
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_level(cls, value: Any) -> Any:
        level = str(value).strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("bot_api_url", mode="before")
    @classmethod
    def _check_api_url(cls, value: Any) -> Any:
        if value is None or not str(value).strip():
            return "https://api.telegram.org"
        return cls._check_url(value)

    @field_validator("blog_base_url", "feed_base_url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> Any:
        if value is None or not str(value).strip():
            return None
        text = str(value).strip()
        if not text.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return text.rstrip("/")

    @field_validator("webhook_url", "webhook_secret", "health_port", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`.env.example` lists every variable, so an empty value must mean "not set"."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not text.strip():
            return None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        parts = urlsplit(text)
        # Telegram delivers only to HTTPS; TLS may end at a reverse proxy in front of us.
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be the public https:// URL Telegram posts updates to")
        try:
            port = parts.port or 443
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        if port not in WEBHOOK_PORTS:  # the Bot API's setWebhook documents these four
            raise ValueError(f"Telegram posts only to ports 443, 80, 88 and 8443, not {port} "
                             "(WEBHOOK_PORT, the port we listen on, may be any)")
        if parts.query or parts.fragment:
            raise ValueError("must not have a ?query or #fragment (its path is served as is)")
        if parts.path.rstrip("/") == HEALTH_PATH:
            raise ValueError(f"its path must not be {HEALTH_PATH}, where health checks are served")
        if parts.path.startswith(FEEDS_PATH):
            raise ValueError(f"its path must not start with {FEEDS_PATH}, where the Atom "
                             "feeds are served")
        return text

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None,
                              info: ValidationInfo) -> SecretStr | None:
        """Required with WEBHOOK_URL: without it anyone who finds the URL can post updates."""
        if value is None:
            if info.data.get("webhook_url"):
                raise ValueError("required when WEBHOOK_URL is set (1-256 characters of "
                                 "A-Z a-z 0-9 _ -; e.g. python -c \"import secrets; "
                                 "print(secrets.token_urlsafe(32))\")")
            return None
        if not WEBHOOK_SECRET_RULE.fullmatch(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z a-z 0-9 _ - (Telegram's rule)")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        # Never quote the value: it may hold a password.
        encode = "percent-encode @ : / ? # in its user name and password (@ is %40)"
        try:
            host = make_url(value).host or ""
        except (ArgumentError, ValueError):
            raise ValueError(f"is not a URL SQLAlchemy can read; {encode}") from None
        if "@" in host:  # "user:p@ss@host": SQLAlchemy would connect to host "ss@host"
            raise ValueError(f"has an unencoded @ before its host; {encode}")
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() and str() show URLs without their passwords (secrets are SecretStr)."""
        for name, value in super().__repr_args__():
            if name in URL_FIELDS and isinstance(value, str):
                value = hide_password(value)
            yield name, value

    @property
    def webhook_path(self) -> str:
        """The path of WEBHOOK_URL: where the webhook server takes Telegram's POSTs."""
        return urlsplit(self.webhook_url or "").path or "/"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into one readable ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "settings"
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
        raise ConfigError("; ".join(problems)) from None
