"""No secret is ever printed: not in logs at any level (ours or a library's), not in
tracebacks, not in `paperfeed doctor`, not in operator notices, not in a repr.

The secrets are random-looking so that "no four characters of it appear" is a test
that does not fail by chance: the doctor may show no part of a password, not even one.
Logging goes through `setup_logging`, the function every command calls.
"""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from telegram import Bot
from telegram.ext import ContextTypes
from telegram.request import HTTPXRequest
from typer.testing import CliRunner

from bot.bootstrap import setup_logging
from bot.cli import app
from bot.config import Settings
from bot.redaction import RedactingFilter, Redactor, hide_password
from bot.tg.deps import Deps
from bot.tg.failures import FailureReporter
from bot.tg.polling import PollingRequest

TOKEN = "7654321:AAHq3ZxV9mW2pLr8KtY5nB7cJd4Fs6Gh1Ue"
TOKEN_SECRET = TOKEN.split(":")[1]
"""The part after the bot id: the bot id itself is public (getMe answers it)."""
WEBHOOK_SECRET = "Wh7Kp2Zq9Xr4Lm8N"
DB_PASSWORD = "Zq7xW9vK"
API_PASSWORD = "Jf4Rt8Yp"
DB_URL = f"postgresql+asyncpg://pf:{DB_PASSWORD}@127.0.0.1:5432/pf"
API_URL = f"http://botuser:{API_PASSWORD}@127.0.0.1:8081"
SECRETS = (TOKEN_SECRET, WEBHOOK_SECRET, DB_PASSWORD, API_PASSWORD)
OPERATOR = 42
LIBRARY_LOGGERS = ("telegram", "httpx", "httpcore", "apscheduler", "aiosqlite", "alembic",
                   "sqlalchemy", "asyncpg", "tornado")


def settings(**values: Any) -> Settings:
    defaults: dict[str, Any] = {
        "telegram_token": TOKEN, "bot_api_url": API_URL, "database_url": DB_URL,
        "webhook_url": "https://bot.example.org/hook", "webhook_secret": WEBHOOK_SECRET,
        "admin_ids": frozenset({OPERATOR}), "log_level": "DEBUG",
    }
    return Settings(_env_file=None, **(defaults | values))  # type: ignore[call-arg]


def assert_nothing_of(secrets: tuple[str, ...], text: str) -> None:
    """Not the secret, and not four characters of it in a row (a prefix, a suffix)."""
    for secret in secrets:
        for start in range(len(secret) - 3):
            assert secret[start:start + 4] not in text, (secret, text)


def free_port() -> int:
    """A port nobody listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def logs() -> Iterator[Callable[[Settings], io.StringIO]]:
    """`setup_logging(settings)` as `paperfeed run` calls it, its handler writing into a
    buffer; the root logger and the libraries' levels are restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    hook, thread_hook = sys.excepthook, threading.excepthook

    def configure(values: Settings) -> io.StringIO:
        setup_logging(values)
        buffer = io.StringIO()
        [handler] = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
        return buffer

    try:
        yield configure
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)
        sys.excepthook, threading.excepthook = hook, thread_hook
        logging.captureWarnings(False)


# --- logs -------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [WEBHOOK_SECRET, "Q7"])  # "Q7": too short to replace
async def test_ptb_and_httpx_debug_lines(
    logs: Callable[[Settings], io.StringIO], secret: str
) -> None:
    """The real Bot over a mock transport: PTB logs its URL (with the token) and the
    setWebhook parameters (with the secret) at DEBUG, httpx every request URL."""
    values = settings(webhook_secret=secret)
    out = logs(values)
    logging.getLogger("httpx").setLevel(logging.DEBUG)  # as an operator debugging might

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getMe"):
            return httpx.Response(200, json={"ok": True, "result": {
                "id": 7654321, "is_bot": True, "first_name": "pf", "username": "pf_bot"}})
        return httpx.Response(200, json={"ok": True, "result": True})

    request = HTTPXRequest(httpx_kwargs={"transport": httpx.MockTransport(answer)})
    api = values.bot_api_url
    bot = Bot(values.telegram_token.get_secret_value(), base_url=f"{api}/bot",
              request=request)
    async with bot:  # getMe
        assert values.webhook_secret is not None
        await bot.set_webhook("https://bot.example.org/hook",
                              secret_token=values.webhook_secret.get_secret_value())

    text = out.getvalue()
    assert "Set Bot API URL" in text  # PTB's DEBUG lines were written…
    assert "HTTP Request: POST http://botuser:" in text  # …and httpx's
    assert_nothing_of((TOKEN_SECRET, API_PASSWORD), text)
    assert f"'{secret}'" not in text
    assert "/bot<token>/setWebhook" in text
    assert "'secret_token': '<webhook secret>'" in text


def test_a_secret_in_the_args_is_redacted_for_every_handler(
    logs: Callable[[Settings], io.StringIO]
) -> None:
    out = logs(settings())
    later: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            later.append(record)

    logging.getLogger().addHandler(Collect())
    logging.getLogger("sqlalchemy").setLevel(logging.DEBUG)  # as echo=True would
    logging.getLogger("sqlalchemy.pool.impl").debug("connecting to %s with %r", DB_URL,
                                                    {"password": DB_PASSWORD})
    text = out.getvalue()
    assert_nothing_of((DB_PASSWORD,), text)
    assert "pf:<database password>@127.0.0.1" in text
    assert "{'password': '<database password>'}" in text
    [record] = later  # a handler after ours gets the redacted record
    assert record.args is None
    assert_nothing_of((DB_PASSWORD,), record.getMessage())


def test_a_logged_exception_its_cause_and_stack_are_redacted(
    logs: Callable[[Settings], io.StringIO]
) -> None:
    out = logs(settings())
    log = logging.getLogger("asyncpg")
    try:
        try:
            raise ConnectionRefusedError(f"connect to {DB_URL} refused")
        except OSError as exc:
            raise RuntimeError(f"Bot API {API_URL}/bot{TOKEN}/getMe is gone") from exc
    except RuntimeError:
        log.exception("giving up")
    log.handle(log.makeRecord("asyncpg", logging.DEBUG, __file__, 1, "here", None, None,
                              sinfo=f"Stack (most recent call last):\n  {DB_URL}"))
    text = out.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "ConnectionRefusedError: connect to postgresql+asyncpg://pf:<database password>@" \
        in text
    assert "RuntimeError: Bot API http://botuser:<Bot API password>@127.0.0.1:8081/bot<token>/" \
        in text
    assert "Stack (most recent call last):\n  postgresql+asyncpg://pf:<database password>@" \
        in text
    assert_nothing_of(SECRETS, text)


def test_an_uncaught_exception_is_logged_redacted(
    logs: Callable[[Settings], io.StringIO]
) -> None:
    """A crash is not printed raw by the interpreter: its traceback goes through the log."""
    out = logs(settings())
    try:
        raise RuntimeError(f"no answer from {API_URL}/bot{TOKEN}/getUpdates")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    text = out.getvalue()
    assert "CRITICAL paperfeed: uncaught exception" in text
    assert "RuntimeError: no answer from http://botuser:<Bot API password>@" in text
    assert_nothing_of(SECRETS, text)


def test_a_worker_threads_crash_is_logged_redacted(
    logs: Callable[[Settings], io.StringIO]
) -> None:
    out = logs(settings())

    def crash() -> None:
        raise RuntimeError(f"no answer from {API_URL}/bot{TOKEN}/getMe")

    worker = threading.Thread(target=crash, name="chart-worker")
    worker.start()
    worker.join()
    text = out.getvalue()
    assert "CRITICAL paperfeed: uncaught exception in thread chart-worker" in text
    assert "RuntimeError: no answer from http://botuser:<Bot API password>@" in text
    assert_nothing_of(SECRETS, text)


def test_a_library_warning_goes_through_the_log_redacted(
    logs: Callable[[Settings], io.StringIO]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        out = logs(settings())
        warnings.warn(f"slow answer from {API_URL}/bot{TOKEN}/getMe", RuntimeWarning,
                      stacklevel=1)
    text = out.getvalue()
    assert "WARNING py.warnings:" in text
    assert "RuntimeWarning: slow answer from http://botuser:<Bot API password>@" in text
    assert_nothing_of(SECRETS, text)


def test_short_and_unknown_secrets_are_caught_by_their_shape(
    logs: Callable[[Settings], io.StringIO]
) -> None:
    """A two-letter webhook secret or password is not replaced everywhere (it would
    mangle words), but is where it is recognisable; so is a token no setting names."""
    out = logs(settings(webhook_secret="Q7", database_url="postgresql+asyncpg://pf:pw@db/pf"))
    log = logging.getLogger("tornado.web")
    log.debug("headers: {'X-Telegram-Bot-Api-Secret-Token': 'Q7'}")
    log.debug("X-Telegram-Bot-Api-Secret-Token: Q7")
    log.debug("engine at postgresql+asyncpg://pf:pw@db/pf")
    log.debug("The token `1234567:AAFotherBotTokenNotInSettings1234` was rejected")
    text = out.getvalue()
    assert "Q7" not in text
    assert ":pw@" not in text
    assert "otherBot" not in text
    assert text.count("<webhook secret>") == 2
    assert "postgresql+asyncpg://pf:***@db/pf" in text
    assert "The token `<token>` was rejected" in text


# --- paperfeed doctor -------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment in an empty folder (no .env); logging restored afterwards."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGEST_DIR", str(tmp_path))
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook, threading.excepthook
    yield monkeypatch
    root.handlers[:], level, sys.excepthook, threading.excepthook = saved
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.parametrize(
    ("password", "forms"),
    [
        (DB_PASSWORD, (DB_PASSWORD,)),
        ("Zq7%40xW9vK", ("Zq7%40xW9vK", "Zq7@xW9vK")),  # percent-encoded: neither form
        ("Zq7@xW9vK", ("Zq7@xW9vK",)),  # unencoded @: SQLAlchemy would see host xW9vK@…
    ],
)
def test_doctor_shows_no_part_of_any_secret(
    env: pytest.MonkeyPatch, password: str, forms: tuple[str, ...]
) -> None:
    env.setenv("TELEGRAM_TOKEN", TOKEN)
    env.setenv("BOT_API_URL", f"http://botuser:{API_PASSWORD}@127.0.0.1:{free_port()}")
    env.setenv("DATABASE_URL", f"postgresql+asyncpg://pf:{password}@127.0.0.1:{free_port()}/pf")
    env.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    env.setenv("WEBHOOK_SECRET", WEBHOOK_SECRET)
    env.setenv("LOG_LEVEL", "DEBUG")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert_nothing_of((*forms, TOKEN_SECRET, WEBHOOK_SECRET, API_PASSWORD), result.output)
    if "@" in password:
        assert "DATABASE_URL: has an unencoded @ before its host" in result.output
    else:
        assert "cannot connect to postgresql+asyncpg://pf:***@127.0.0.1:" in result.output
        assert "cannot reach http://botuser:***@127.0.0.1:" in result.output


@pytest.mark.parametrize("command", ["tags", "export", "doctor"])
def test_every_command_logs_through_the_redacting_handler(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Not only `run`: a library's warning during `paperfeed tags` is redacted too."""
    env.setenv("TELEGRAM_TOKEN", TOKEN)
    env.setenv("BOT_API_URL", f"http://botuser:{API_PASSWORD}@127.0.0.1:{free_port()}")
    env.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'pf.db'}")
    runner.invoke(app, [command])
    [handler] = logging.getLogger().handlers
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    logging.getLogger("httpx").warning("POST %s/bot%s/getMe failed", API_URL, TOKEN)
    err = capsys.readouterr().err
    assert "POST http://botuser:<Bot API password>@127.0.0.1:8081/bot<token>/getMe" in err
    assert_nothing_of((TOKEN_SECRET, API_PASSWORD), err)


# --- operator notices and reprs ---------------------------------------------------------


class _SettingsOnly:
    """All of Deps that FailureReporter reads."""

    def __init__(self, values: Settings) -> None:
        self.settings = values


class _Bot:
    """Records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send_message(self, chat_id: int, text: str, **_: Any) -> None:
        self.sent.append((chat_id, text))


class _Context:
    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.bot = _Bot()


async def test_operator_notices_are_redacted(logs: Callable[[Settings], io.StringIO]) -> None:
    values = settings()
    out = logs(values)
    reporter = FailureReporter(cast(Deps, _SettingsOnly(values)), PollingRequest(),
                               Redactor.from_settings(values))
    try:
        try:
            raise OSError(f"connect to {DB_URL} refused")
        except OSError as exc:
            request = httpx.Request("POST", f"{API_URL}/bot{TOKEN}/sendMessage")
            raise httpx.ConnectError(f"cannot reach {request.url}", request=request) from exc
    except httpx.ConnectError as exc:
        context = _Context(exc)
    await reporter(None, cast(ContextTypes.DEFAULT_TYPE, context))
    [(chat, notice)] = context.bot.sent
    assert chat == OPERATOR
    assert "paperfeed error" in notice
    assert "ConnectError" in notice
    assert "/bot&lt;token&gt;/sendMessage" in notice
    assert "pf:&lt;database password&gt;@" in notice
    assert_nothing_of(SECRETS, notice)
    # ...and the same failure in the log
    assert "error while handling an update" in out.getvalue()
    assert_nothing_of(SECRETS, out.getvalue())
    assert_nothing_of(SECRETS, Redactor.from_settings(values)(
        "".join(traceback.format_exception(context.error))))


def test_settings_repr_and_str_hide_every_secret() -> None:
    values = settings()
    for text in (repr(values), str(values)):
        assert_nothing_of(SECRETS, text)
        assert "**********" in text
    assert "database_url='postgresql+asyncpg://pf:***@127.0.0.1:5432/pf'" in repr(values)
    assert "bot_api_url='http://botuser:***@127.0.0.1:8081'" in repr(values)
    # the real values are there for the code that needs them
    assert values.telegram_token.get_secret_value() == TOKEN
    assert values.database_url == DB_URL
    assert hide_password(values.database_url) == "postgresql+asyncpg://pf:***@127.0.0.1:5432/pf"
