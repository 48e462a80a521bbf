"""Settings: the only module that reads the environment (and `.env`).

Bad values fail at start with one line naming the variable, never a traceback.
"""

from __future__ import annotations

import logging
from datetime import time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class Settings(BaseSettings):
    """Every knob of paperfeed; names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_token: str = Field(default="", repr=False)
    bot_api_url: str = "https://api.telegram.org"
    digest_dir: Path = Path("./digests")
    database_url: str = "sqlite+aiosqlite:///./data/paperfeed.db"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    scan_interval: float = Field(default=300.0, gt=0)
    timezone: str = "UTC"
    daily_time: time = time(9, 0)
    blog_base_url: str | None = None
    log_level: str = "INFO"

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
            try:
                hours, minutes = value.strip().split(":")
                return time(int(hours), int(minutes))
            except ValueError:
                raise ValueError("must be HH:MM, e.g. 09:00") from None
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

    @field_validator("blog_base_url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> Any:
        if value is None or not str(value).strip():
            return None
        text = str(value).strip()
        if not text.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return text.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

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
