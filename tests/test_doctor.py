"""`paperfeed doctor`: one line per check, what to do when one fails, exit 1 if any did.

The checks that need the fake Bot API run its async core in-process (the fake lives on
the test's event loop); the failures that need no server go through the real command.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from bot.cli import app
from bot.config import Settings
from bot.doctor import Check, check_digest_dir, doctor, failed
from bot.services.ingest import Ingestor
from bot.storage.engine import head_revision, make_engine, make_sessionmaker, migrate
from bot.storage.repository import ArchiveRepo
from tests.botapi.server import FakeBotApi
from tests.fixtures.expected import FIXTURE_DIR
from tests.fixtures.folder import copy_fixture_folder
from tests.tg.test_webhook import free_port

ALL_NAMES = (
    "TELEGRAM_TOKEN", "BOT_API_URL", "DIGEST_DIR", "DATABASE_URL", "ADMIN_IDS",
    "SCAN_INTERVAL", "TIMEZONE", "DAILY_TIME", "BLOG_BASE_URL", "LOG_LEVEL",
    "WEBHOOK_URL", "WEBHOOK_LISTEN", "WEBHOOK_PORT", "WEBHOOK_SECRET", "HEALTH_PORT",
    "DELETE_GUARD_SHARE", "DELETE_GUARD_MIN", "DELIVERY_MAX_AGE",
)
FIXTURE_FILES = len(list(FIXTURE_DIR.glob("????-??-??/*.md")))
FIXTURE_DAYS = len(list(FIXTURE_DIR.glob("????-??-??")))


@pytest.fixture
async def server() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake
    fake.assert_healthy()


async def migrated_db(tmp_path: Path, revision: str = "head") -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'doctor.db'}"
    engine = make_engine(url)
    try:
        await migrate(engine, revision)
    finally:
        await engine.dispose()
    return url


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


async def test_all_good(server: FakeBotApi, tmp_path: Path) -> None:
    checks = await doctor(settings(
        telegram_token=server.token, bot_api_url=server.base_url.removesuffix("/bot"),
        digest_dir=FIXTURE_DIR, database_url=await migrated_db(tmp_path),
    ))
    assert [c.name for c in checks] == ["configuration", "database", "digest folder",
                                        "archive vs folder", "bot token"]
    assert all(c.ok for c in checks), [c.line() for c in checks]
    assert not failed(checks)
    lines = [c.line() for c in checks]
    assert lines[0] == "✓ configuration: loaded; paperfeed run uses long polling"
    assert lines[1].endswith(f"schema at the newest migration ({head_revision()})")
    assert lines[2] == (f"✓ digest folder: {FIXTURE_DIR}: {FIXTURE_FILES} digest files in "
                        f"{FIXTURE_DAYS} date folders")
    assert lines[3] == "✓ archive vs folder: 0 of 0 archived files present"
    assert lines[4].startswith("✓ bot token: valid: @paperfeed_test_bot (id 123)")
    assert server.calls("getMe")
    assert not any(server.token in line for line in lines)


async def test_webhook_mode_is_named_but_the_secret_is_not(tmp_path: Path) -> None:
    checks = await doctor(settings(
        webhook_url="https://bot.example.org/hook", webhook_secret="very_secret_value",
        health_port=9000, digest_dir=FIXTURE_DIR, database_url=await migrated_db(tmp_path),
    ))
    line = by_name(checks)["configuration"].line()
    assert "webhook at https://bot.example.org/hook (listening on 0.0.0.0:8443)" in line
    assert "/healthz on port 9000" in line
    assert not any("very_secret_value" in c.line() for c in checks)


async def test_no_token_is_skipped_not_failed(tmp_path: Path) -> None:
    checks = await doctor(settings(digest_dir=FIXTURE_DIR,
                                   database_url=await migrated_db(tmp_path)))
    token = by_name(checks)["bot token"]
    assert token.ok is None
    assert token.line().startswith("– bot token: TELEGRAM_TOKEN not set")
    assert not failed(checks)


async def test_a_rejected_token_is_named_never_shown(server: FakeBotApi, tmp_path: Path) -> None:
    checks = await doctor(settings(
        telegram_token="123:NOTtheRIGHTone", bot_api_url=server.base_url.removesuffix("/bot"),
        digest_dir=FIXTURE_DIR, database_url=await migrated_db(tmp_path),
    ))
    token = by_name(checks)["bot token"]
    assert token.ok is False
    assert "rejected TELEGRAM_TOKEN" in token.line()
    assert "@BotFather" in token.line()
    assert "NOTtheRIGHTone" not in token.line()
    assert failed(checks)


async def test_a_database_behind_says_how_to_migrate(tmp_path: Path) -> None:
    url = await migrated_db(tmp_path, "0002")
    database = by_name(await doctor(settings(digest_dir=FIXTURE_DIR, database_url=url)))[
        "database"]
    assert database.ok is False
    assert f"is at migration 0002, behind {head_revision()}" in database.line()
    assert "run `paperfeed ingest` or `paperfeed run` to migrate it" in database.line()


async def test_an_empty_database_says_how_to_migrate(tmp_path: Path) -> None:
    (tmp_path / "doctor.db").touch()
    url = f"sqlite+aiosqlite:///{tmp_path / 'doctor.db'}"
    database = by_name(await doctor(settings(digest_dir=FIXTURE_DIR, database_url=url)))[
        "database"]
    assert database.ok is False
    assert "is empty (never migrated" in database.line()
    assert "to migrate it" in database.line()


async def test_a_database_from_a_newer_paperfeed(tmp_path: Path) -> None:
    url = await migrated_db(tmp_path)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await engine.dispose()
    database = by_name(await doctor(settings(digest_dir=FIXTURE_DIR, database_url=url)))[
        "database"]
    assert database.ok is False
    assert "9999, which this paperfeed does not know" in database.line()
    assert "upgrade" in database.line()


async def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "not-yet" / "paperfeed.db"
    database = by_name(await doctor(settings(
        digest_dir=FIXTURE_DIR, database_url=f"sqlite+aiosqlite:///{path}")))["database"]
    assert database.ok is False
    assert "does not exist yet" in database.line()
    assert "to create and migrate it" in database.line()
    assert not path.parent.exists()  # looked, didn't touch


def test_digest_folder_variants(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_digest_dir(empty).ok is True
    assert "0 digest files in 0 date folders (empty so far" in check_digest_dir(empty).line()
    a_file = tmp_path / "file.md"
    a_file.write_text("# not a folder")
    assert check_digest_dir(a_file).ok is False
    assert "is not a folder" in check_digest_dir(a_file).line()


# --- through the command ----------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment in an empty folder (no .env); the fixture digests."""
    for name in ALL_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGEST_DIR", str(FIXTURE_DIR))
    return monkeypatch


def doctor_output(expected_exit: int) -> list[str]:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == expected_exit, result.output
    assert "Traceback" not in result.output
    return result.output.splitlines()


def test_command_missing_folder(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("DIGEST_DIR", str(tmp_path / "nowhere"))
    lines = doctor_output(1)
    [folder] = [line for line in lines if "digest folder" in line]
    assert folder.startswith(f"✗ digest folder: {tmp_path / 'nowhere'} does not exist → ")
    assert "set DIGEST_DIR" in folder


def test_command_unreachable_bot_api(env: pytest.MonkeyPatch) -> None:
    port = free_port()  # nobody listens there
    env.setenv("TELEGRAM_TOKEN", "123:ABCdef")
    env.setenv("BOT_API_URL", f"http://127.0.0.1:{port}")
    lines = doctor_output(1)
    [token] = [line for line in lines if "bot token" in line]
    assert token.startswith(f"✗ bot token: cannot reach http://127.0.0.1:{port}")
    assert "check BOT_API_URL" in token
    assert "123:ABCdef" not in "\n".join(lines)


def test_command_bad_database_url(env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", "mysql://localhost/paperfeed")
    assert doctor_output(1) == [
        "✗ configuration: DATABASE_URL: must start with sqlite+aiosqlite:// or "
        "postgresql+asyncpg:// → fix that variable in .env or the environment "
        "(see .env.example)",
    ]


def test_command_unreachable_database_hides_the_password(env: pytest.MonkeyPatch) -> None:
    port = free_port()
    env.setenv("DATABASE_URL", f"postgresql+asyncpg://pf:hunter2@127.0.0.1:{port}/pf")
    lines = doctor_output(1)
    [database] = [line for line in lines if "database" in line]
    assert database.startswith(f"✗ database: cannot connect to postgresql+asyncpg://pf:***@"
                               f"127.0.0.1:{port}/pf")
    assert "check DATABASE_URL" in database
    assert "hunter2" not in "\n".join(lines)


def test_command_without_token_still_passes(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    env.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'pf.db'}")
    assert runner.invoke(app, ["ingest"]).exit_code == 0  # creates and migrates it
    lines = doctor_output(0)
    assert [line[0] for line in lines] == ["✓", "✓", "✓", "✓", "–"]


def test_command_unopenable_sqlite_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "a-folder.db").mkdir()  # exists, but is no database file
    env.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'a-folder.db'}")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    [database] = [line for line in result.output.splitlines() if "database" in line]
    assert database.startswith("✗ database: cannot open sqlite+aiosqlite:///")
    assert "may read and write that file" in database


def empty(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.mkdir()


async def test_a_vanished_folder_is_named_with_the_way_out(tmp_path: Path) -> None:
    folder = copy_fixture_folder(tmp_path / "digests")
    url = await migrated_db(tmp_path)
    engine = make_engine(url)
    try:
        await Ingestor(ArchiveRepo(make_sessionmaker(engine)), folder, settle_seconds=0).scan()
    finally:
        await engine.dispose()
    values = {"digest_dir": folder, "database_url": url}
    assert by_name(await doctor(settings(**values)))["archive vs folder"].ok
    empty(folder)
    check = by_name(await doctor(settings(**values)))["archive vs folder"]
    assert check.ok is False
    assert "digest files in the archive are gone from" in check.detail
    assert "paperfeed ingest --prune" in (check.fix or "")
