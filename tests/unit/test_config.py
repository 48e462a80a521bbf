"""Settings come from the environment and `.env`; bad values fail with one clear line."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.errors import ConfigError

NAMES = tuple(name.upper() for name in Settings.model_fields)
"""Every setting, in the order .env.example documents them."""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_match_env_example() -> None:
    settings = load_settings()
    assert settings.bot_api_url == "https://api.telegram.org"
    assert settings.digest_dir == Path("digests")
    assert settings.database_url == "sqlite+aiosqlite:///./data/paperfeed.db"
    assert settings.admin_ids == frozenset()
    assert settings.scan_interval == 300
    assert settings.timezone == "UTC"
    assert settings.daily_time == time(9, 0)
    assert settings.blog_base_url is None
    assert settings.log_level == "INFO"


def test_env_example_documents_exactly_the_settings() -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    keys = [line.split("=", 1)[0] for line in example.read_text().splitlines()
            if line and not line.startswith("#")]
    assert tuple(keys) == NAMES


def test_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", " 12, 34 ,")
    monkeypatch.setenv("DAILY_TIME", "7:05")
    monkeypatch.setenv("TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("BLOG_BASE_URL", "https://blog.example.org/")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.admin_ids == {12, 34}
    assert settings.daily_time == time(7, 5)
    assert str(settings.tz) == "Asia/Shanghai"
    assert settings.blog_base_url == "https://blog.example.org"
    assert settings.log_level == "DEBUG"


def test_feed_base_url_and_the_feeds_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().feed_base_url is None
    monkeypatch.setenv("FEED_BASE_URL", " https://bot.example.org/feeds/ ")
    assert load_settings().feed_base_url == "https://bot.example.org/feeds"
    monkeypatch.setenv("FEED_BASE_URL", "")
    assert load_settings().feed_base_url is None
    # The webhook may not take the feeds' path.
    monkeypatch.setenv("WEBHOOK_SECRET", "s")
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/feeds/hook")
    with pytest.raises(ConfigError, match=r"^WEBHOOK_URL: .*/feeds/"):
        load_settings()
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/feedshook")
    assert load_settings().webhook_path == "/feedshook"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SCAN_INTERVAL=60\nDIGEST_DIR=/srv/digests\n")
    settings = load_settings()
    assert settings.scan_interval == 60
    assert settings.digest_dir == Path("/srv/digests")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ADMIN_IDS", "alice,bob"),
        ("SCAN_INTERVAL", "soon"),
        ("SCAN_INTERVAL", "-5"),
        ("TIMEZONE", "Mars/Olympus"),
        ("DAILY_TIME", "25 o'clock"),
        ("BLOG_BASE_URL", "ftp://example.org"),
        ("FEED_BASE_URL", "bot.example.org/feeds"),
        ("LOG_LEVEL", "LOUD"),
        ("DATABASE_URL", "mysql://localhost/x"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://pf:Zq7@xW9vK@db.example.org/pf",  # SQLAlchemy: host "xW9vK@db…"
        "postgresql+asyncpg://pf:Zq7xW9vK@db.example.org:port/pf",
    ],
)
def test_a_database_url_sqlalchemy_misreads_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("DATABASE_URL:")
    assert "percent-encode" in message
    assert "Zq7" not in message
    assert "W9vK" not in message


def test_secrets_are_secret_str_and_urls_hide_their_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", "123456:AAHsecretTokenValue")
    monkeypatch.setenv("WEBHOOK_SECRET", "hookSecretValue")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://pf:Zq7xW9vK@db/pf")
    settings = load_settings()
    assert settings.telegram_token.get_secret_value() == "123456:AAHsecretTokenValue"
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == "hookSecretValue"
    assert settings.database_url == "postgresql+asyncpg://pf:Zq7xW9vK@db/pf"  # for SQLAlchemy
    for text in (repr(settings), str(settings)):
        assert "secretTokenValue" not in text
        assert "hookSecretValue" not in text
        assert "Zq7xW9vK" not in text
        assert "postgresql+asyncpg://pf:***@db/pf" in text
