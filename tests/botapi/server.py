"""A loopback fake of the Telegram Bot API for end-to-end tests of the bot.

Why: unit tests with mocked ``Bot`` methods prove that the bot *calls* something;
they cannot prove that Telegram would *accept* it.  ``FakeBotApi`` is a real HTTP
server that python-telegram-bot's unmodified ``Application``/``Bot`` talk to (via
``base_url``/``base_file_url``), that validates every request at least as strictly as
Telegram does (HTML, lengths in UTF-16, keyboards, inline results, commands, chat
state, flood limits), and that records what the bot did so tests can assert on it.

Usage::

    async with FakeBotApi() as server:
        app = (
            ApplicationBuilder().token(server.token)
            .base_url(server.base_url).base_file_url(server.base_file_url).build()
        )
        ...  # see tests/tg/ptb_harness.py for running it
        alice = server.user("Alice", language_code="de")
        chat = server.private_chat(alice)
        server.send_command(chat, alice, "/start sub-NeRF")
        [reply] = await server.wait_for_sent(1, chat_id=chat.id)
        assert "NeRF" in reply.plain_text

Everything runs on the test's event loop; there are no threads and no sleeps: waits
are driven by a signal that fires on every state change.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

from tests.botapi.faults import (
    FaultInjector,
    FaultKind,
    FloodControl,
    default_clock,
)
from tests.botapi.telegram_html import utf16_len
from tests.botapi.validation import (
    ApiError,
    FormattedText,
    bad_request,
    command_scope_key,
    fetchable_url,
    format_text,
    validate_bot_commands,
    validate_inline_button,
    validate_inline_results,
    validate_language_code,
    validate_link_preview_options,
    validate_menu_button,
    validate_photo,
    validate_reply_markup,
)

__all__ = [
    "ApiCall",
    "ApiError",
    "CallbackAnswer",
    "EditRecord",
    "FakeBotApi",
    "FakeChat",
    "FakeUser",
    "InlineAnswer",
    "SentMessage",
    "UploadedFile",
]

ChatType = Literal["private", "group", "supergroup", "channel"]
ChatState = Literal["ok", "blocked", "deactivated", "deleted", "not_found", "migrated"]
MemberStatus = Literal["creator", "administrator", "member", "restricted", "left", "kicked"]

_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{1,100}")
_BOT_COMMAND = re.compile(r"(?<![\w/<>@])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION = re.compile(r"(?<![\w@/])@[A-Za-z][A-Za-z0-9_]{4,31}\b")
_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_DEFAULT_ALLOWED_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)
_RESTRICTED_RIGHTS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_edit_tag",
)
_WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
MAX_DESCRIPTION_LENGTH = 512  # setMyDescription, telegram.constants.BotDescriptionLimit
MAX_SHORT_DESCRIPTION_LENGTH = 120  # setMyShortDescription
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_CALLBACK_QUERY_TTL = 15.0  # seconds a client waits for answerCallbackQuery
_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 60 * 1024 * 1024
_FORMAT_CACHE = 512  # distinct message texts whose parse is remembered (see _formatted)


# ---------------------------------------------------------------------------------
# Users and chats
# ---------------------------------------------------------------------------------


@dataclass
class FakeUser:
    """A Telegram user (or the bot itself)."""

    id: int
    first_name: str = "Test"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False
    is_premium: bool | None = None

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for name in ("last_name", "username", "language_code", "is_premium"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


@dataclass
class FakeChat:
    """A chat as the fake server knows it, including what the test did to it.

    ``state`` models the chat-level faults (blocked bot, deactivated user, deleted or
    migrated group, chat unknown to Telegram); the bot's own membership (kicked, left,
    admin rights) lives in ``members[bot_id]``.
    """

    id: int
    type: ChatType
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_forum: bool = False
    state: ChatState = "ok"
    migrate_to_chat_id: int | None = None
    topics: dict[int, str] = field(default_factory=dict)
    closed_topics: set[int] = field(default_factory=set)
    members: dict[int, dict[str, Any]] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for name in ("title", "username", "first_name", "last_name"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.is_forum:
            data["is_forum"] = True
        return data

    @property
    def kind_name(self) -> str:
        """The word Telegram uses for this chat in error messages."""
        return {"group": "group", "supergroup": "supergroup", "channel": "channel"}.get(
            self.type, "private"
        )


# ---------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class ApiCall:
    """One HTTP request to the Bot API, as received and as answered."""

    seq: int
    method: str  # canonical Bot API name, e.g. "sendMessage"
    params: dict[str, Any]  # as received: strings for form/multipart, JSON values for JSON
    files: dict[str, UploadedFile]
    started_at: float
    status: int | None = None
    response: dict[str, Any] | None = None
    fault: FaultKind | None = None
    finished: bool = False

    @property
    def ok(self) -> bool:
        return self.status == HTTPStatus.OK

    @property
    def description(self) -> str | None:
        return None if self.response is None else self.response.get("description")

    def json_param(self, name: str) -> Any:
        """A parameter decoded from JSON when it was sent as a JSON string."""
        value = self.params.get(name)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value


@dataclass
class SentMessage:
    """A message the bot created (sendMessage, sendPhoto, one per sendMediaGroup item...)."""

    method: str
    chat_id: int
    message_id: int
    at: float  # injectable monotonic clock at acceptance
    text: str | None  # text or caption exactly as sent (e.g. with HTML tags)
    plain_text: str | None  # what the user sees: tags removed, entities decoded, trimmed
    entities: list[dict[str, Any]]
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    message_thread_id: int | None = None
    link_preview_options: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    disable_notification: bool = False
    protect_content: bool = False
    media: dict[str, Any] | None = None  # {"type": "photo", "media": file_id/url/attach name}
    media_group_id: str | None = None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """All inline keyboard buttons, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]


@dataclass
class EditRecord:
    """One accepted edit (editMessageText / editMessageReplyMarkup)."""

    method: str
    chat_id: int | None
    message_id: int | None
    inline_message_id: str | None
    at: float
    text: str | None
    plain_text: str | None
    entities: list[dict[str, Any]] | None
    reply_markup: dict[str, Any] | None


@dataclass
class CallbackAnswer:
    """answerCallbackQuery as the user's client would show it."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass
class InlineAnswer:
    """answerInlineQuery: what the user sees in the inline results popup."""

    inline_query_id: str
    user_id: int
    query: str
    results: list[dict[str, Any]]
    next_offset: str
    cache_time: int | None
    is_personal: bool
    button: dict[str, Any] | None


@dataclass
class _StoredMessage:
    """Current server-side state of a message (after edits)."""

    chat_id: int
    message_id: int
    from_bot: bool
    date: int
    data: dict[str, Any]
    text: FormattedText | None = None
    has_media: bool = False
    reply_markup: dict[str, Any] | None = None
    deleted: bool = False


@dataclass
class _PendingQuery:
    user_id: int
    created_at: float
    query: str = ""
    answered: bool = False


class _ClientGone(Exception):
    """The client closed the connection while its request was held (long poll)."""


class _HttpError(Exception):
    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(reason)
        self.status = status


class _Poll:
    """A getUpdates request that is currently waiting for updates."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[str] = loop.create_future()
        self.eof_task: asyncio.Task[None] | None = None

    def resolve(self, why: str) -> None:
        if not self.future.done():
            self.future.set_result(why)


class _Signal:
    """Broadcast "something changed" that sync code can fire and async code can await."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)


# ---------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------


@dataclass
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class _Connection:
    """A client connection with its own read buffer (so EOF can be watched safely)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()
        self.closed = False

    async def _fill(self) -> bool:
        try:
            chunk = await self.reader.read(65536)
        except (ConnectionError, OSError):
            chunk = b""
        if not chunk:
            return False
        self.buffer += chunk
        return True

    async def wait_eof(self) -> None:
        """Return when the peer closes; bytes it sends meanwhile stay buffered."""
        while await self._fill():
            pass

    async def _read_until(self, separator: bytes, limit: int) -> bytes | None:
        while True:
            index = self.buffer.find(separator)
            if index >= 0:
                data = bytes(self.buffer[:index])
                del self.buffer[: index + len(separator)]
                return data
            if len(self.buffer) > limit:
                raise _HttpError(431, "headers too large")
            if not await self._fill():
                return None

    async def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not await self._fill():
                raise _HttpError(400, "incomplete body")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def read_request(self) -> _Request | None:
        head = await self._read_until(b"\r\n\r\n", _MAX_HEADER_BYTES)
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError as exc:
            raise _HttpError(400, "bad request line") from exc
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size_line = await self._read_until(b"\r\n", 1024)
                if size_line is None:
                    raise _HttpError(400, "incomplete chunked body")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await self._read_until(b"\r\n", _MAX_HEADER_BYTES)  # trailers
                    break
                body += await self._read_exactly(size)
                await self._read_exactly(2)
                if len(body) > _MAX_BODY_BYTES:
                    raise _HttpError(413, "body too large")
        else:
            length = int(headers.get("content-length", "0") or "0")
            if length > _MAX_BODY_BYTES:
                raise _HttpError(413, "body too large")
            body = bytearray(await self._read_exactly(length))
        keep_alive = version.upper() == "HTTP/1.1" and (
            headers.get("connection", "").lower() != "close"
        )
        return _Request(method.upper(), target, headers, bytes(body), keep_alive)

    async def respond(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        keep_alive: bool = True,
    ) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        head = (
            f"HTTP/1.1 {status} {phrase}\r\n"
            f"Server: fake-telegram-bot-api\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        self.writer.write(head.encode("latin-1") + body)
        await self.writer.drain()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


def _parse_multipart(body: bytes, boundary: str) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    delimiter = b"--" + boundary.encode("latin-1")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, content = part.partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        params = dict(
            (key.lower(), value.replace("%22", '"'))
            for key, value in re.findall(r';\s*([\w*-]+)="([^"]*)"', disposition)
        )
        part_name = params.get("name")
        if part_name is None:
            raise bad_request("[fake] multipart part without a name")
        if "filename" in params:
            files[part_name] = UploadedFile(
                part_name, params["filename"], headers.get("content-type"), content
            )
        else:
            fields[part_name] = content.decode("utf-8")
    return fields, files


def _form_fields(body: str) -> list[tuple[str, str]]:
    """``parse_qsl(body, keep_blank_values=True)``, with long values decoded once.

    A broadcast posts the same percent-encoded card to every chat, and decoding it
    (pure Python, one step per escape) was a large share of a request's cost. Same
    splitting and the same ``unquote_plus`` as parse_qsl, so the result is identical.
    """
    fields: list[tuple[str, str]] = []
    for pair in body.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            fields.append((unquote_plus(name), _form_value(value)))
    return fields


@functools.lru_cache(maxsize=256)
def _cached_form_value(value: str) -> str:
    return unquote_plus(value)


def _form_value(value: str) -> str:
    """Short values (chat ids, flags) vary per request: only long ones go to the cache."""
    return _cached_form_value(value) if len(value) > 256 else unquote_plus(value)


def _content_type(headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    raw = headers.get("content-type", "")
    kind, *rest = raw.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, _, value = item.strip().partition("=")
        params[key.lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


class _Params:
    """Request parameters with Telegram's type coercions.

    Form bodies carry strings (PTB JSON-encodes every non-string value); JSON bodies
    carry real JSON values.  Telegram accepts both, so every getter takes either.
    """

    def __init__(self, values: dict[str, Any], files: dict[str, UploadedFile]) -> None:
        self.values = values
        self.files = files

    def present(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def get_raw(self, name: str) -> Any:
        return self.values.get(name)

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool | dict | list):
            raise bad_request(f'field "{name}" must be of type String')
        return str(value)

    def get_int(self, name: str) -> int | None:
        value = self.values.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Integer')
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value.strip()):
            return int(value)
        raise bad_request(f'field "{name}" must be of type Integer')

    def get_float(self, name: str) -> float | None:
        value = self.values.get(name)
        if value in (None, ""):
            return None
        try:
            return float(str(value))
        except ValueError as exc:
            raise bad_request(f'field "{name}" must be of type Number') from exc

    def get_bool(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise bad_request(f'field "{name}" must be of type Boolean')

    def get_json(self, name: str, error: str) -> Any:
        """An object/array parameter; form bodies must carry it as a JSON string."""
        value = self.values.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise bad_request(error) from exc
        return value


@dataclass
class _Ctx:
    call: ApiCall
    p: _Params
    conn: _Connection


_Handler = Callable[["FakeBotApi", _Ctx], Awaitable[Any]]
_METHODS: dict[str, tuple[str, _Handler]] = {}


def _api(name: str) -> Callable[[_Handler], _Handler]:
    """Register a Bot API method (Telegram method names are case-insensitive)."""

    def register(handler: _Handler) -> _Handler:
        _METHODS[name.lower()] = (name, handler)
        return handler

    return register


# ---------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------


class FakeBotApi:
    """The fake Bot API server.  Use as ``async with FakeBotApi() as server``.

    Args:
        token: the only token accepted (others get 401 Unauthorized, malformed ones 404).
        bot_username / bot_name: what getMe reports.
        supports_inline_queries: getMe flag; inline_query() refuses when False.
        privacy_mode: like BotFather's group privacy: in groups the bot only receives
            commands, replies to its messages and @mentions (unless it is an admin).
        clock: monotonic clock for flood control, callback expiry and ``SentMessage.at``.
        wall_clock: unix time for message dates.
        flood_control: enable Telegram's send limits right away (see ``enable_flood_control``).
    """

    def __init__(
        self,
        *,
        token: str = "123:ABC",
        bot_username: str = "paperfeed_test_bot",
        bot_name: str = "Paperfeed Test",
        supports_inline_queries: bool = True,
        privacy_mode: bool = True,
        clock: Callable[[], float] = default_clock,
        wall_clock: Callable[[], float] = time.time,
        flood_control: FloodControl | None = None,
    ) -> None:
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"malformed bot token {token!r}")
        self.token = token
        self.bot = FakeUser(
            id=int(token.split(":")[0]),
            first_name=bot_name,
            username=bot_username,
            language_code=None,
            is_bot=True,
        )
        self.supports_inline_queries = supports_inline_queries
        self.privacy_mode = privacy_mode
        self.clock = clock
        self.wall_clock = wall_clock
        self.flood: FloodControl | None = flood_control
        self.faults = FaultInjector()

        # What the bot did.
        self.requests: list[ApiCall] = []
        self.sent: list[SentMessage] = []
        self.edits: list[EditRecord] = []
        self.deleted: list[tuple[int, int]] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self.inline_answers: dict[str, InlineAnswer] = {}
        self.commands: dict[tuple[tuple[Any, ...], str], list[dict[str, str]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        # setMyDescription / setMyShortDescription, by language_code ("" = default).
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self.webhook_url = ""
        self.unknown_methods: list[str] = []
        self.internal_errors: list[str] = []
        self.conflicts = 0

        # What the test injected.
        self.injected_updates: list[dict[str, Any]] = []
        self.privacy_filtered: list[dict[str, Any]] = []
        self.dropped_updates: list[dict[str, Any]] = []

        self._users: dict[int, FakeUser] = {self.bot.id: self.bot}
        self._chats: dict[int, FakeChat] = {}
        self._private_chats: dict[int, FakeChat] = {}
        self._messages: dict[tuple[int, int], _StoredMessage] = {}
        self._inline_messages: dict[str, _StoredMessage] = {}
        self._next_message_id: dict[int, int] = {}
        self._callback_queries: dict[str, _PendingQuery] = {}
        self._inline_queries: dict[str, _PendingQuery] = {}
        self._files: dict[str, tuple[str, bytes | None]] = {}  # file_id -> (path, data)
        self._format_cache: dict[tuple[str, str | None, str, bool], FormattedText] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] = _DEFAULT_ALLOWED_UPDATES
        self._active_poll: _Poll | None = None
        self._inflight = 0
        self._signal = _Signal()
        self._ids = itertools.count(1)
        self._user_ids = itertools.count(10_001)
        self._group_ids = itertools.count(4_001)
        self._channel_ids = itertools.count(1_000_000_001)
        self._server: asyncio.Server | None = None
        self._conn_tasks: set[asyncio.Task[Any]] = set()
        self._connections: set[_Connection] = set()
        self._closing = False
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Close the listener and every connection; held requests are abandoned.

        Closing a connection wakes its handler (it sees EOF), so handlers finish on
        their own; cancellation is only the fallback for one that doesn't.
        """
        if self._server is None:
            return
        self._closing = True
        self._server.close()
        if self._active_poll is not None:
            self._active_poll.resolve("shutdown")
        for conn in list(self._connections):
            conn.close()
        tasks = [task for task in self._conn_tasks if not task.done()]
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=5.0)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Pass to ``ApplicationBuilder().base_url(...)``; PTB appends the token."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- users, chats and their faults --------------------------------------------

    def user(
        self,
        first_name: str = "Alice",
        *,
        language_code: str | None = "en",
        username: str | None = None,
        last_name: str | None = None,
        is_premium: bool | None = None,
        user_id: int | None = None,
    ) -> FakeUser:
        """Create a (human) user."""
        user = FakeUser(
            id=user_id if user_id is not None else next(self._user_ids),
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            is_premium=is_premium,
        )
        self._users[user.id] = user
        return user

    def private_chat(self, user: FakeUser) -> FakeChat:
        """The private chat with ``user``; Telegram knows it once the user writes."""
        chat = self._private_chats.get(user.id)
        if chat is None:
            chat = FakeChat(
                id=user.id,
                type="private",
                first_name=user.first_name,
                last_name=user.last_name,
                username=user.username,
            )
            self._private_chats[user.id] = chat
            self._users.setdefault(user.id, user)
        return chat

    def group(self, title: str = "Test group") -> FakeChat:
        """A basic group; the bot is a plain member."""
        chat = FakeChat(id=-next(self._group_ids), type="group", title=title)
        chat.members[self.bot.id] = {"status": "member"}
        return chat

    def supergroup(
        self, title: str = "Test supergroup", *, forum: bool = False, username: str | None = None
    ) -> FakeChat:
        """A supergroup (``forum=True`` for topics); the bot is a plain member."""
        chat = FakeChat(
            id=-(1_000_000_000_000 + next(self._channel_ids)),
            type="supergroup",
            title=title,
            username=username,
            is_forum=forum,
        )
        chat.members[self.bot.id] = {"status": "member"}
        return chat

    def channel(
        self,
        title: str = "Test channel",
        *,
        username: str | None = None,
        bot_can_post: bool = True,
    ) -> FakeChat:
        """A channel; by default the bot is an administrator that may post."""
        chat = FakeChat(
            id=-(1_000_000_000_000 + next(self._channel_ids)),
            type="channel",
            title=title,
            username=username,
        )
        chat.members[self.bot.id] = self._admin_record(can_post_messages=bot_can_post)
        return chat

    def add_chat(self, chat: FakeChat) -> FakeChat:
        """Make the chat known to the server (as if the bot had seen it)."""
        self._chats[chat.id] = chat
        return chat

    def add_user(self, user: FakeUser) -> FakeUser:
        self._users[user.id] = user
        return user

    def chat(self, chat_id: int) -> FakeChat:
        return self._chats[chat_id]

    def add_topic(self, chat: FakeChat, name: str = "Topic") -> int:
        """Create a forum topic; returns its message_thread_id."""
        if chat.type != "supergroup" or not chat.is_forum:
            raise ValueError("topics exist only in forum supergroups")
        thread_id = self._alloc_message_id(chat.id)
        chat.topics[thread_id] = name
        return thread_id

    def close_topic(self, chat: FakeChat, thread_id: int) -> None:
        """An admin closes a forum topic: only admins may post there (not this bot)."""
        chat.closed_topics.add(thread_id)

    def reopen_topic(self, chat: FakeChat, thread_id: int) -> None:
        chat.closed_topics.discard(thread_id)

    def set_member(
        self, chat: FakeChat, user: FakeUser, status: MemberStatus, **rights: bool
    ) -> None:
        """Set a user's (or the bot's) role in a chat, for getChatMember & co."""
        if status == "administrator":
            chat.members[user.id] = self._admin_record(**rights)
        elif status == "restricted":
            record = {name: True for name in _RESTRICTED_RIGHTS}
            record.update(rights)
            chat.members[user.id] = {"status": "restricted", "is_member": True, **record}
        else:
            chat.members[user.id] = {"status": status, **rights}
        self._users.setdefault(user.id, user)

    def set_bot_status(self, chat: FakeChat, status: MemberStatus, **rights: bool) -> None:
        """Change the bot's membership silently (use my_chat_member() to also notify)."""
        self.set_member(chat, self.bot, status, **rights)

    def block(self, chat: FakeChat, *, notify: bool = False) -> None:
        """The user blocked the bot: sends answer 403 "bot was blocked by the user".

        With ``notify`` the bot also gets the ``my_chat_member`` update (member ->
        kicked) that Telegram sends; without it the bot only learns on its next send.
        """
        self._require_type(chat, "private")
        if notify:
            user = self._users[chat.id]
            self.my_chat_member(chat, user, "kicked", old_status="member")
        chat.state = "blocked"

    def unblock(self, chat: FakeChat) -> None:
        chat.state = "ok"

    def deactivate(self, chat: FakeChat) -> None:
        """The user deleted their account: 403 "user is deactivated"."""
        self._require_type(chat, "private")
        chat.state = "deactivated"

    def kick_bot(self, chat: FakeChat) -> None:
        """Remove the bot from a group/channel: 403 "bot was kicked from the ... chat"."""
        self.set_bot_status(chat, "kicked")

    def delete_chat(self, chat: FakeChat) -> None:
        """The group was deleted: 403 "the group chat was deleted"."""
        chat.state = "deleted"

    def forget_chat(self, chat: FakeChat) -> None:
        """Telegram no longer knows the chat: 400 "chat not found"."""
        chat.state = "not_found"

    def set_chat_state(self, chat: FakeChat, state: ChatState) -> None:
        chat.state = state

    @staticmethod
    def _require_type(chat: FakeChat, *types: str) -> None:
        if chat.type not in types:
            raise ValueError(f"expected a {' or '.join(types)} chat, got {chat.type}")

    @staticmethod
    def _admin_record(**rights: bool) -> dict[str, Any]:
        record: dict[str, Any] = {
            "status": "administrator",
            "can_be_edited": False,
            "is_anonymous": False,
        }
        record.update({name: True for name in _ADMIN_RIGHTS})
        record.update(
            {
                "can_post_messages": True,
                "can_edit_messages": True,
                "can_pin_messages": True,
                "can_manage_topics": True,
            }
        )
        record.update(rights)
        return record

    # -- faults ----------------------------------------------------------------------

    def enable_flood_control(self, flood: FloodControl | None = None) -> FloodControl:
        """Enforce Telegram's send limits from now on; returns the controller."""
        self.flood = flood or FloodControl()
        return self.flood

    def disable_flood_control(self) -> None:
        self.flood = None

    @property
    def flood_429s(self) -> int:
        """How many 429 Too Many Requests flood control has answered."""
        return 0 if self.flood is None else self.flood.rejected

    def script_fault(
        self,
        kind: FaultKind,
        *,
        method: str | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Sabotage the next ``times`` matching requests (see ``FaultKind``)."""
        self.faults.script(kind, method=method, chat_id=chat_id, times=times)

    def enable_random_faults(
        self,
        rate: float,
        *,
        seed: int,
        kinds: Iterable[FaultKind] = ("http_502", "drop"),
        methods: Iterable[str] | None = None,
    ) -> None:
        """Sabotage sends at random with a seeded RNG (repeatable runs)."""
        if methods is None:
            self.faults.enable_random(rate, seed=seed, kinds=kinds)
        else:
            self.faults.enable_random(rate, seed=seed, kinds=kinds, methods=methods)

    # -- injecting updates -------------------------------------------------------------

    def send_text(
        self,
        chat: FakeChat,
        user: FakeUser | None,
        text: str,
        *,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user (or, in a channel, the channel) posts ``text``; returns the Update.

        Bot commands get ``bot_command`` entities as Telegram adds them.  In groups
        with privacy mode on, messages the bot wouldn't receive are recorded in
        ``privacy_filtered`` instead of being queued.
        """
        self.add_chat(chat)
        if chat.type == "private" and (user is None or user.id != chat.id):
            raise ValueError("a private chat message must come from that chat's user")
        if chat.state in ("deactivated", "deleted", "migrated"):
            raise ValueError(f"nobody can write to a {chat.state} chat")
        if chat.state == "not_found":
            chat.state = "ok"  # the chat is back, Telegram knows it again
        if chat.state == "blocked" and user is not None:
            # To write again the user must restart the bot, which unblocks it.
            self.my_chat_member(chat, user, "member", old_status="kicked")
        if user is not None:
            self._users.setdefault(user.id, user)
            if chat.type in ("group", "supergroup") and user.id not in chat.members:
                chat.members[user.id] = {"status": "member"}
        if message_thread_id is not None:
            if not chat.is_forum:
                raise ValueError("message_thread_id needs a forum supergroup")
            chat.topics.setdefault(message_thread_id, f"Topic {message_thread_id}")
        if entities is None:  # what Telegram's clients mark: commands and @mentions
            found = [("bot_command", m) for m in _BOT_COMMAND.finditer(text)] + [
                ("mention", m) for m in _MENTION.finditer(text)]
            entities = [
                {
                    "type": kind,
                    "offset": utf16_len(text[: match.start()]),
                    "length": utf16_len(match.group()),
                }
                for kind, match in sorted(found, key=lambda km: km[1].start())
            ]
        message = self._user_message(chat, user, message_thread_id)
        message["text"] = text
        if entities:
            message["entities"] = entities
        if reply_to_message_id is not None:
            replied = self._messages.get((chat.id, reply_to_message_id))
            if replied is None:
                raise LookupError(f"no message {reply_to_message_id} in chat {chat.id}")
            message["reply_to_message"] = self._without_reply(replied.data)
        stored = self._store_user_message(chat, message)
        stored.text = FormattedText(text, None, text, entities)
        kind = "channel_post" if chat.type == "channel" else "message"
        update = {kind: message}
        if self._filtered_by_privacy(chat, message):
            self.privacy_filtered.append(update)
            self._signal.notify()
            return update
        return self._enqueue(kind, message)

    def send_command(
        self,
        chat: FakeChat,
        user: FakeUser,
        command: str,
        *,
        message_thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A user sends a bot command such as ``"/start sub-NeRF"``."""
        if not command.startswith("/"):
            raise ValueError("a command starts with '/'")
        return self.send_text(chat, user, command, message_thread_id=message_thread_id)

    def press_button(
        self,
        chat: FakeChat,
        user: FakeUser,
        message_id: int,
        callback_data: str | None = None,
        *,
        text: str | None = None,
    ) -> str:
        """Press an inline button (by callback_data or label) on a bot message.

        Fails loudly if the message has no such button, so a test can't press a
        button the bot never showed.  Returns the callback query id.
        """
        stored = self._messages.get((chat.id, message_id))
        if stored is None or stored.deleted:
            raise LookupError(f"message {message_id} does not exist in chat {chat.id}")
        if not stored.from_bot:
            raise LookupError(f"message {message_id} was not sent by the bot")
        buttons = [
            button
            for row in (stored.reply_markup or {}).get("inline_keyboard", [])
            for button in row
        ]
        matching = [
            b
            for b in buttons
            if "callback_data" in b
            and (callback_data is None or b["callback_data"] == callback_data)
            and (text is None or b["text"] == text)
        ]
        if not matching:
            raise LookupError(
                f"message {message_id} has no callback button matching "
                f"data={callback_data!r} text={text!r}; it has {buttons}"
            )
        return self._callback_query(chat, user, stored, matching[0]["callback_data"])

    def forge_press(self, chat: FakeChat, user: FakeUser, message_id: int, data: str) -> str:
        """A modified client presses a button of a bot message with data of its choosing:
        Telegram only checks that it is 1-64 bytes. Returns the callback query id."""
        stored = self._messages.get((chat.id, message_id))
        if stored is None or stored.deleted or not stored.from_bot:
            raise LookupError(f"no bot message {message_id} in chat {chat.id}")
        if not 1 <= len(data.encode("utf-8")) <= 64:
            raise ValueError("Telegram carries callback data of 1-64 bytes only")
        return self._callback_query(chat, user, stored, data)

    def _callback_query(self, chat: FakeChat, user: FakeUser, stored: Any, data: str) -> str:
        self._users.setdefault(user.id, user)
        query_id = str(next(self._ids) * 1_000_003)
        self._callback_queries[query_id] = _PendingQuery(user.id, self.clock())
        payload = {
            "id": query_id,
            "from": user.to_api(),
            "message": stored.data,
            "chat_instance": str(abs(chat.id) * 31 + 7),
            "data": data,
        }
        self._enqueue("callback_query", payload)
        return query_id

    def inline_query(
        self, user: FakeUser, query: str, *, offset: str = "", chat_type: str = "sender"
    ) -> str:
        """The user types ``@bot query``; returns the inline query id."""
        if not self.supports_inline_queries:
            raise RuntimeError("inline mode is disabled for this bot (supports_inline_queries)")
        if utf16_len(query) > 256:
            raise ValueError("Telegram inline queries are at most 256 characters")
        self._users.setdefault(user.id, user)
        query_id = str(next(self._ids) * 1_000_033)
        self._inline_queries[query_id] = _PendingQuery(user.id, self.clock(), query)
        payload = {
            "id": query_id,
            "from": user.to_api(),
            "query": query,
            "offset": offset,
            "chat_type": chat_type,
        }
        self._enqueue("inline_query", payload)
        return query_id

    def chosen_inline_result(
        self,
        user: FakeUser,
        result_id: str,
        *,
        query: str | None = None,
        inline_message_id: str | None = None,
    ) -> dict[str, Any]:
        """The user picked result ``result_id`` that the bot offered to them."""
        answer = next(
            (
                a
                for a in reversed(list(self.inline_answers.values()))
                if a.user_id == user.id and any(r["id"] == result_id for r in a.results)
            ),
            None,
        )
        if answer is None:
            raise LookupError(f"the bot never offered result {result_id!r} to user {user.id}")
        result = next(r for r in answer.results if r["id"] == result_id)
        payload: dict[str, Any] = {
            "result_id": result_id,
            "from": user.to_api(),
            "query": answer.query if query is None else query,
        }
        if inline_message_id is not None:
            payload["inline_message_id"] = inline_message_id
            content = result.get("input_message_content") or {}
            formatted = None
            if "message_text" in content:
                formatted = format_text(
                    content["message_text"],
                    parse_mode=content.get("parse_mode"),
                    entities=content.get("entities"),
                    kind="text",
                    required=True,
                )
            self._inline_messages[inline_message_id] = _StoredMessage(
                chat_id=0,
                message_id=0,
                from_bot=True,
                date=int(self.wall_clock()),
                data={},
                text=formatted,
                has_media=formatted is None,
                reply_markup=result.get("reply_markup"),
            )
        return self._enqueue("chosen_inline_result", payload)

    def my_chat_member(
        self,
        chat: FakeChat,
        by: FakeUser,
        new_status: MemberStatus,
        *,
        old_status: MemberStatus | None = None,
        **rights: bool,
    ) -> dict[str, Any]:
        """The bot's membership changed (added as admin, kicked, user blocked it...)."""
        self.add_chat(chat)
        old_record = dict(chat.members.get(self.bot.id, {"status": old_status or "left"}))
        if old_status is not None:
            old_record = {"status": old_status}
        if chat.type == "private":
            chat.state = "blocked" if new_status == "kicked" else "ok"
            new_record: dict[str, Any] = {"status": new_status}
        else:
            self.set_bot_status(chat, new_status, **rights)
            new_record = chat.members[self.bot.id]
        payload = {
            "chat": chat.to_api(),
            "from": by.to_api(),
            "date": int(self.wall_clock()),
            "old_chat_member": self._member_json(self.bot, old_record),
            "new_chat_member": self._member_json(self.bot, new_record),
        }
        return self._enqueue("my_chat_member", payload)

    def migrate_group(self, group: FakeChat, by: FakeUser) -> FakeChat:
        """Upgrade a group to a supergroup, with both service messages Telegram sends."""
        self._require_type(group, "group")
        self.add_chat(group)
        target = self.add_chat(self.supergroup(group.title or "Migrated"))
        target.members.update(group.members)
        group.state = "migrated"
        group.migrate_to_chat_id = target.id
        old = self._user_message(group, by, None)
        old["migrate_to_chat_id"] = target.id
        self._store_user_message(group, old)
        self._enqueue("message", old)
        new = self._user_message(target, by, None)
        new["migrate_from_chat_id"] = group.id
        self._store_user_message(target, new)
        self._enqueue("message", new)
        return target

    def _user_message(
        self, chat: FakeChat, user: FakeUser | None, thread_id: int | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._alloc_message_id(chat.id),
            "date": int(self.wall_clock()),
            "chat": chat.to_api(),
        }
        if chat.type == "channel":
            message["sender_chat"] = chat.to_api()
        elif user is not None:
            message["from"] = user.to_api()
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return message

    def _store_user_message(self, chat: FakeChat, message: dict[str, Any]) -> _StoredMessage:
        stored = _StoredMessage(chat.id, message["message_id"], False, message["date"], message)
        self._messages[(chat.id, stored.message_id)] = stored
        return stored

    def _filtered_by_privacy(self, chat: FakeChat, message: dict[str, Any]) -> bool:
        if not self.privacy_mode or chat.type not in ("group", "supergroup"):
            return False
        if chat.members.get(self.bot.id, {}).get("status") in ("administrator", "creator"):
            return False
        text = message.get("text", "")
        username = (self.bot.username or "").lower()
        for entity in message.get("entities", []):
            if entity["type"] == "bot_command":
                command = text[entity["offset"] : entity["offset"] + entity["length"]]
                _, _, target = command.partition("@")
                if not target or target.lower() == username:
                    return False
        if username and f"@{username}" in text.lower():
            return False
        replied: dict[str, Any] = message.get("reply_to_message", {})
        return bool(replied.get("from", {}).get("id") != self.bot.id)

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self._updates.append(update)
        self.injected_updates.append(update)
        if self._active_poll is not None:
            self._active_poll.resolve("update")
        self._signal.notify()
        return update

    # -- waiting -------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[FakeBotApi], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait, by design
    ) -> None:
        """Wait until ``predicate(server)`` holds; re-checked on every server event."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self):
                    await self._signal.wait()
        except TimeoutError:
            raise TimeoutError(
                f"condition not met within {timeout}s; recent Bot API calls:\n"
                + self.describe_recent()
            ) from None

    async def wait_for_sent(
        self,
        count: int = 1,
        *,
        chat_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Wait until the bot created ``count`` messages (in ``chat_id``); return them all."""
        await self.wait_for(lambda s: len(s.sent_to(chat_id)) >= count, timeout)
        return self.sent_to(chat_id)

    @property
    def is_polling(self) -> bool:
        return self._active_poll is not None and not self._active_poll.future.done()

    @property
    def is_idle(self) -> bool:
        """Every injected update was fetched and acknowledged, the bot is long-polling
        again and no other request is in flight."""
        return not self._updates and self.is_polling and self._inflight == 0

    async def wait_until_polling(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await self.wait_for(lambda s: s.is_polling, timeout)

    async def wait_until_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """See ``is_idle``.  Handlers may still be running in the bot; with PTB also
        await ``application.update_queue.join()`` (ptb_harness.settle does both)."""
        await self.wait_for(lambda s: s.is_idle, timeout)

    def describe_recent(self, limit: int = 25) -> str:
        lines = []
        for call in self.requests[-limit:]:
            state = call.status if call.finished else "in flight"
            fault = f" fault={call.fault}" if call.fault else ""
            detail = f" {call.description}" if call.description else ""
            lines.append(f"  #{call.seq} {call.method} -> {state}{fault}{detail}")
        return "\n".join(lines) or "  (none)"

    # -- queries over what the bot did ---------------------------------------------

    def sent_to(self, chat_id: int | None) -> list[SentMessage]:
        if chat_id is None:
            return list(self.sent)
        return [m for m in self.sent if m.chat_id == chat_id]

    @property
    def accepted_sends(self) -> list[tuple[float, int, str]]:
        """(clock time, chat_id, method) of every accepted message, in order."""
        return [(m.at, m.chat_id, m.method) for m in self.sent]

    def last_sent(self, chat_id: int | None = None) -> SentMessage:
        messages = self.sent_to(chat_id)
        if not messages:
            raise LookupError(f"the bot sent nothing to {chat_id}")
        return messages[-1]

    def calls(self, method: str) -> list[ApiCall]:
        lowered = method.lower()
        return [c for c in self.requests if c.method.lower() == lowered]

    def errors(self) -> list[ApiCall]:
        """Finished calls that Telegram would have refused (excluding injected faults)."""
        return [
            c
            for c in self.requests
            if c.finished and c.status is not None and not c.ok and c.fault is None
        ]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """Current Bot API JSON of a message (after edits)."""
        return self._messages[(chat_id, message_id)].data

    def is_deleted(self, chat_id: int, message_id: int) -> bool:
        return self._messages[(chat_id, message_id)].deleted

    def unanswered_callback_queries(self) -> list[str]:
        return [qid for qid, q in self._callback_queries.items() if not q.answered]

    def commands_for(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        key = command_scope_key(scope, lambda chat_id: self._chats[int(chat_id)])
        return self.commands.get((key, language_code), [])

    def assert_healthy(self) -> None:
        """Fail if the fake itself crashed on a request (a bug here, not in the bot)."""
        if self.internal_errors:
            raise AssertionError("FakeBotApi internal errors:\n" + "\n".join(self.internal_errors))

    # -- connection handling -------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        conn = _Connection(reader, writer)
        self._connections.add(conn)
        try:
            while not self._closing:
                try:
                    request = await conn.read_request()
                except _HttpError as exc:
                    body = json.dumps(
                        {"ok": False, "error_code": exc.status, "description": str(exc)}
                    )
                    await conn.respond(exc.status, body.encode(), keep_alive=False)
                    break
                if request is None:
                    break
                if not await self._serve(conn, request):
                    break
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels these tasks.  Python 3.11's asyncio logs a spurious
            # error for a cancelled client_connected_cb task, so end it normally.
            pass
        finally:
            conn.close()
            self._connections.discard(conn)
            if task is not None:
                self._conn_tasks.discard(task)
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, conn: _Connection, request: _Request) -> bool:
        """Answer one request; False means the connection must be closed."""
        parts = urlsplit(request.target)
        path = unquote(parts.path)  # PTB percent-encodes file paths (the token's ':')
        if path.startswith("/file/bot"):
            return await self._serve_file(conn, request, path)
        match = re.fullmatch(r"/bot([^/]*)/([A-Za-z_]*)", path)
        if match is None or not _TOKEN.fullmatch(match.group(1)):
            await self._respond_json(conn, 404, ApiError(404, "Not Found").to_api(), request)
            return request.keep_alive
        if match.group(1) != self.token:
            await self._respond_json(conn, 401, ApiError(401, "Unauthorized").to_api(), request)
            return request.keep_alive
        entry = _METHODS.get(match.group(2).lower())
        if entry is None:
            self.unknown_methods.append(match.group(2))
            self._signal.notify()
            await self._respond_json(conn, 404, ApiError(404, "Not Found").to_api(), request)
            return request.keep_alive
        name, handler = entry
        call = ApiCall(len(self.requests) + 1, name, {}, {}, self.clock())
        self.requests.append(call)
        is_poll = name == "getUpdates"
        if not is_poll:
            self._inflight += 1
        self._signal.notify()
        try:
            return await self._execute(conn, request, call, handler, parts.query)
        finally:
            call.finished = True
            if not is_poll:
                self._inflight -= 1
            self._signal.notify()

    async def _execute(
        self,
        conn: _Connection,
        request: _Request,
        call: ApiCall,
        handler: _Handler,
        query: str,
    ) -> bool:
        try:
            params = self._parse_params(request, query)
        except ApiError as exc:
            return await self._answer(conn, request, call, exc.code, exc.to_api())
        call.params, call.files = params.values, params.files
        chat_hint = params.get_raw("chat_id")
        chat_id = int(chat_hint) if re.fullmatch(r"-?\d+", str(chat_hint)) else None
        fault = None if self._closing else self.faults.pick(call.method, chat_id)
        call.fault = fault
        if fault == "drop":
            return False
        if fault == "hang":
            await conn.wait_eof()
            return False
        if fault is not None and fault.startswith("http_"):
            status = int(fault.removeprefix("http_"))
            body = ApiError(status, HTTPStatus(status).phrase).to_api()
            return await self._answer(conn, request, call, status, body)
        try:
            result = await handler(self, _Ctx(call, params, conn))
        except ApiError as exc:
            status, body = exc.code, exc.to_api()
        except _ClientGone:
            return False
        except Exception:
            self.internal_errors.append(f"{call.method}: {traceback.format_exc()}")
            status = 500
            body = ApiError(500, "Internal Server Error (bug in FakeBotApi)").to_api()
        else:
            status, body = 200, {"ok": True, "result": result}
        if fault == "drop_after":
            call.status, call.response = status, body
            return False
        return await self._answer(conn, request, call, status, body)

    async def _answer(
        self,
        conn: _Connection,
        request: _Request,
        call: ApiCall,
        status: int,
        body: dict[str, Any],
    ) -> bool:
        call.status, call.response = status, body
        await self._respond_json(conn, status, body, request)
        return request.keep_alive

    @staticmethod
    async def _respond_json(
        conn: _Connection, status: int, body: dict[str, Any], request: _Request
    ) -> None:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        await conn.respond(status, payload, keep_alive=request.keep_alive)

    @staticmethod
    def _parse_params(request: _Request, query: str) -> _Params:
        values: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        files: dict[str, UploadedFile] = {}
        kind, options = _content_type(request.headers)
        body = request.body
        if body:
            if kind == "application/json":
                try:
                    decoded = json.loads(body.decode("utf-8"))
                except ValueError as exc:
                    raise bad_request("[fake] request body is not valid JSON") from exc
                if not isinstance(decoded, dict):
                    raise bad_request("[fake] JSON request body must be an object")
                values.update(decoded)
            elif kind == "application/x-www-form-urlencoded":
                values.update(_form_fields(body.decode("utf-8")))
            elif kind == "multipart/form-data":
                fields, files = _parse_multipart(body, options.get("boundary", ""))
                values.update(fields)
            else:
                raise bad_request(f"[fake] unsupported Content-Type {kind!r}")
        return _Params(values, files)

    async def _serve_file(self, conn: _Connection, request: _Request, path: str) -> bool:
        match = re.fullmatch(r"/file/bot([^/]+)/(.+)", path)
        data = None
        if match is not None and match.group(1) == self.token:
            for file_path, content in self._files.values():
                if file_path == match.group(2):
                    data = content
        if data is None:
            await self._respond_json(conn, 404, ApiError(404, "Not Found").to_api(), request)
        else:
            await conn.respond(
                200, data, content_type="application/octet-stream", keep_alive=request.keep_alive
            )
        return request.keep_alive

    # -- shared helpers for methods ----------------------------------------------------

    def _alloc_message_id(self, chat_id: int) -> int:
        next_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = next_id + 1
        return next_id

    def _resolve_chat(self, value: Any, *, access: bool = True) -> FakeChat:
        """Find the chat for a ``chat_id`` parameter and apply the chat-level faults."""
        if value in (None, ""):
            raise bad_request("chat_id is empty")
        chat: FakeChat | None = None
        if isinstance(value, str) and value.startswith("@"):
            wanted = value[1:].lower()
            chat = next(
                (
                    c
                    for c in self._chats.values()
                    if c.type in ("channel", "supergroup") and (c.username or "").lower() == wanted
                ),
                None,
            )
        elif isinstance(value, int) and not isinstance(value, bool):
            chat = self._chats.get(value)
        elif isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value.strip()):
            chat = self._chats.get(int(value))
        if chat is None or chat.state == "not_found":
            raise bad_request("chat not found")
        if chat.state == "migrated":
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrate_to_chat_id},
            )
        if access:
            self._check_access(chat)
        return chat

    def _check_access(self, chat: FakeChat) -> None:
        if chat.type == "private":
            if chat.state == "blocked":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if chat.state == "deactivated":
                raise ApiError(403, "Forbidden: user is deactivated")
            return
        if chat.state == "deleted":
            raise ApiError(403, "Forbidden: the group chat was deleted")
        status = chat.members.get(self.bot.id, {}).get("status", "left")
        if status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.kind_name} chat")
        if status == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {chat.kind_name} chat")

    def _check_can_send(self, chat: FakeChat) -> None:
        record = chat.members.get(self.bot.id, {})
        if chat.type == "channel":
            can_post = record.get("status") == "creator" or (
                record.get("status") == "administrator" and record.get("can_post_messages")
            )
            if not can_post:
                raise bad_request("need administrator rights in the channel chat")
        elif record.get("status") == "restricted" and not record.get("can_send_messages", True):
            raise bad_request("not enough rights to send text messages to the chat")

    @staticmethod
    def _check_thread(chat: FakeChat, thread_id: int | None) -> None:
        if thread_id is None:
            return
        if not (chat.type == "supergroup" and chat.is_forum and thread_id in chat.topics):
            raise bad_request("message thread not found")
        if thread_id in chat.closed_topics:
            raise bad_request("TOPIC_CLOSED")

    def _admit_send(self, method: str, chat: FakeChat) -> float:
        """Apply flood control; return the acceptance timestamp."""
        now = self.clock()
        if self.flood is not None and self.flood.applies_to(method):
            retry = self.flood.check(
                now=now, method=method, chat_id=chat.id, is_private=chat.type == "private"
            )
            if retry is not None:
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                )
        return now

    def _reply_target(self, chat: FakeChat, p: _Params) -> _StoredMessage | None:
        reply = p.get_json("reply_parameters", "can't parse reply parameters JSON object")
        message_id = p.get_int("reply_to_message_id")
        allow_missing = bool(p.get_bool("allow_sending_without_reply"))
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply"))
            if reply.get("chat_id") not in (None, chat.id):
                raise bad_request("[fake] cross-chat replies are not supported by the fake")
        if message_id is None:
            return None
        stored = self._messages.get((chat.id, int(message_id)))
        if stored is None or stored.deleted:
            if allow_missing:
                return None
            raise bad_request("message to be replied not found")
        return stored

    @staticmethod
    def _without_reply(data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k != "reply_to_message"}

    def _markup(
        self, p: _Params, chat: FakeChat | None, *, inline_only: bool
    ) -> dict[str, Any] | None:
        markup = p.get_json("reply_markup", "can't parse reply keyboard markup JSON object")
        if markup is None:
            return None
        return validate_reply_markup(
            markup, chat_type=chat.type if chat else None, inline_only=inline_only
        )

    def _text_param(
        self,
        p: _Params,
        name: str,
        *,
        entities_name: str,
        kind: Literal["text", "caption"],
        required: bool,
    ) -> FormattedText | None:
        entities = p.get_json(entities_name, "can't parse entities JSON object")
        raw, mode = p.get_str(name), p.get_str("parse_mode")
        if entities is None and raw:
            formatted: FormattedText | None = self._formatted(raw, mode, kind, required)
        else:
            formatted = format_text(
                raw, parse_mode=mode, entities=entities, kind=kind, required=required
            )
        if formatted is not None:
            for entity in formatted.entities:
                if entity["type"] == "text_mention":
                    user = self._users.get(entity["user"]["id"])
                    if user is not None:
                        entity["user"] = user.to_api()
        return formatted

    def _formatted(
        self, raw: str, mode: str | None, kind: Literal["text", "caption"], required: bool
    ) -> FormattedText | None:
        """``format_text`` of a non-empty text without explicit entities, remembered.

        A broadcast sends one card to thousands of chats, and the pure-Python HTML parse
        was most of what a request cost the fake. The outcome depends only on these
        values, so the cache answers exactly as a fresh parse would; rejected texts are
        not cached: they are parsed (and refused) every time.
        """
        key = (raw, mode, kind, required)
        found = self._format_cache.get(key)
        if found is None:
            found = format_text(raw, parse_mode=mode, entities=None, kind=kind,
                                required=required)
            if found is None:
                return None
            if len(self._format_cache) >= _FORMAT_CACHE:
                del self._format_cache[next(iter(self._format_cache))]  # the oldest
            self._format_cache[key] = found
        # Each message gets its own entity dicts: callers fill in users, edits replace them.
        return replace(found, entities=[dict(e) for e in found.entities])

    def _new_bot_message(
        self,
        chat: FakeChat,
        *,
        thread_id: int | None,
        reply_to: _StoredMessage | None,
        content: dict[str, Any],
        reply_markup: dict[str, Any] | None,
        text: FormattedText | None,
        has_media: bool,
    ) -> _StoredMessage:
        message_id = self._alloc_message_id(chat.id)
        data: dict[str, Any] = {
            "message_id": message_id,
            "date": int(self.wall_clock()),
            "chat": chat.to_api(),
        }
        if chat.type == "channel":
            data["sender_chat"] = chat.to_api()
        else:
            data["from"] = self.bot.to_api()
        if thread_id is not None:
            data["message_thread_id"] = thread_id
            data["is_topic_message"] = True
        if reply_to is not None:
            data["reply_to_message"] = self._without_reply(reply_to.data)
        data.update(content)
        inline = reply_markup if reply_markup and "inline_keyboard" in reply_markup else None
        if inline and inline["inline_keyboard"]:
            data["reply_markup"] = inline
        stored = _StoredMessage(
            chat.id, message_id, True, data["date"], data, text, has_media, inline
        )
        self._messages[(chat.id, message_id)] = stored
        return stored

    def _record_sent(
        self,
        method: str,
        stored: _StoredMessage,
        at: float,
        p: _Params,
        *,
        text: FormattedText | None,
        reply_markup: dict[str, Any] | None,
        thread_id: int | None,
        reply_to: _StoredMessage | None,
        link_preview_options: dict[str, Any] | None = None,
        media: dict[str, Any] | None = None,
        media_group_id: str | None = None,
    ) -> None:
        self.sent.append(
            SentMessage(
                method=method,
                chat_id=stored.chat_id,
                message_id=stored.message_id,
                at=at,
                text=None if text is None else text.raw,
                plain_text=None if text is None else text.text,
                entities=[] if text is None else text.entities,
                parse_mode=None if text is None else text.parse_mode,
                reply_markup=reply_markup,
                message_thread_id=thread_id,
                link_preview_options=link_preview_options,
                reply_to_message_id=None if reply_to is None else reply_to.message_id,
                disable_notification=bool(p.get_bool("disable_notification")),
                protect_content=bool(p.get_bool("protect_content")),
                media=media,
                media_group_id=media_group_id,
            )
        )

    def _media_ref(
        self, value: Any, files: dict[str, UploadedFile], what: str
    ) -> tuple[str, bytes | None]:
        """Resolve a file argument: file_id, http(s) URL, or an uploaded part."""
        if isinstance(value, UploadedFile):
            upload: UploadedFile | None = value
        elif isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise bad_request(f"[fake] {what}: no multipart part named {value!r}")
        else:
            upload = None
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            if what == "photo":
                validate_photo(upload.data)  # an image Telegram can decode, of allowed size
            return self._register_file(upload.data, upload.filename), upload.data
        if not isinstance(value, str) or not value:
            raise bad_request(f"there is no {what} in the request")
        if value.startswith(("http://", "https://")):
            if not fetchable_url(value):
                raise bad_request("wrong file identifier/HTTP URL specified")
            return self._register_file(None, None), None
        if value in self._files:
            return value, self._files[value][1]
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _register_file(self, data: bytes | None, filename: str | None) -> str:
        file_id = f"FAKEFILE{next(self._ids):08d}"
        suffix = (filename or "file.bin").rsplit("/", 1)[-1]
        self._files[file_id] = (f"documents/{file_id}_{suffix}", data)
        return file_id

    def _photo_sizes(self, file_id: str, data: bytes | None) -> list[dict[str, Any]]:
        size = len(data) if data else 12_345
        width, height = 1280, 720  # a photo sent by URL: its size is not known here
        with contextlib.suppress(ApiError):
            if data:  # an upload (validated then): scaled to at most 1280 a side
                width, height = validate_photo(data)
                scale = min(1.0, 1280 / max(width, height))
                width, height = max(1, round(width * scale)), max(1, round(height * scale))
        return [
            {
                "file_id": f"{file_id}_s",
                "file_unique_id": f"u{file_id}_s",
                "width": 90,
                "height": 90,
                "file_size": max(1, size // 10),
            },
            {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "width": width,
                "height": height,
                "file_size": size,
            },
        ]

    @staticmethod
    def _member_json(user: FakeUser, record: dict[str, Any]) -> dict[str, Any]:
        status = record.get("status", "left")
        member: dict[str, Any] = {"user": user.to_api(), **record, "status": status}
        if status == "creator":
            member.setdefault("is_anonymous", False)
        elif status == "kicked":
            member.setdefault("until_date", 0)
        elif status == "restricted":
            member.setdefault("until_date", 0)
            member.setdefault("is_member", True)
            for name in _RESTRICTED_RIGHTS:
                member.setdefault(name, True)
        elif status == "administrator":
            member.setdefault("can_be_edited", False)
            member.setdefault("is_anonymous", False)
            for name in _ADMIN_RIGHTS:
                member.setdefault(name, False)
        return member

    # ---------------------------------------------------------------------------------
    # Bot API methods
    # ---------------------------------------------------------------------------------

    @_api("getMe")
    async def _get_me(self, ctx: _Ctx) -> Any:
        return {
            **self.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": self.supports_inline_queries,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    @_api("logOut")
    async def _log_out(self, ctx: _Ctx) -> Any:
        return True

    @_api("close")
    async def _close(self, ctx: _Ctx) -> Any:
        return True

    @_api("getUpdates")
    async def _get_updates(self, ctx: _Ctx) -> Any:
        p = ctx.p
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = p.get_int("offset") or 0
        limit = min(max(p.get_int("limit") or 100, 1), 100)
        timeout = max(p.get_float("timeout") or 0.0, 0.0)
        allowed = p.get_json("allowed_updates", "can't parse allowed_updates JSON object")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else _DEFAULT_ALLOWED_UPDATES
        self._acknowledge(offset)

        previous = self._active_poll
        if previous is not None and not previous.future.done():
            # Telegram answers the *older* request with 409 and serves the new one.
            if previous.eof_task is None or not previous.eof_task.done():
                self.conflicts += 1
            previous.resolve("conflict")
        poll = _Poll(asyncio.get_running_loop())
        self._active_poll = poll
        try:
            pending = self._deliverable(limit)
            if pending or timeout <= 0 or self._closing:
                return pending
            poll.eof_task = asyncio.ensure_future(ctx.conn.wait_eof())
            self._signal.notify()  # the bot is now long-polling
            waiters: set[asyncio.Future[Any]] = {poll.future, poll.eof_task}
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if poll.eof_task.done():
                raise _ClientGone
            if poll.future.done() and poll.future.result() == "conflict":
                raise ApiError(409, _CONFLICT)
            return self._deliverable(limit)
        finally:
            poll.resolve("done")
            if self._active_poll is poll:
                self._active_poll = None
            if poll.eof_task is not None and not poll.eof_task.done():
                poll.eof_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll.eof_task

    def _acknowledge(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    def _deliverable(self, limit: int) -> list[dict[str, Any]]:
        kept = []
        for update in self._updates:
            kind = next(k for k in update if k != "update_id")
            if kind in self._allowed_updates:
                kept.append(update)
            else:
                self.dropped_updates.append(update)
        self._updates = kept
        return kept[:limit]

    @_api("setWebhook")
    async def _set_webhook(self, ctx: _Ctx) -> Any:
        url = ctx.p.get_str("url") or ""
        if url and urlsplit(url).scheme.lower() != "https":
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if url:
            try:
                port = urlsplit(url).port or 443
            except ValueError:
                port = 0
            # core.telegram.org/bots/api#setwebhook: "Ports currently supported for
            # webhooks: 443, 80, 88, 8443."
            if port not in _WEBHOOK_PORTS:
                raise bad_request(
                    "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
                )
        secret = ctx.p.get_str("secret_token")
        if secret:  # an empty one means "no secret"
            # setWebhook: secret_token "1-256 characters. Only characters A-Z, a-z, 0-9, _
            # and - are allowed."
            if len(secret) > 256:
                raise bad_request("secret token is too long")
            if not _WEBHOOK_SECRET.fullmatch(secret):
                raise bad_request("secret token contains unallowed characters")
        if ctx.p.get_bool("drop_pending_updates"):
            self._updates.clear()
        self.webhook_url = url
        return True

    @_api("deleteWebhook")
    async def _delete_webhook(self, ctx: _Ctx) -> Any:
        if ctx.p.get_bool("drop_pending_updates"):
            self._updates.clear()
        self.webhook_url = ""
        return True

    @_api("getWebhookInfo")
    async def _get_webhook_info(self, ctx: _Ctx) -> Any:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    # -- commands & menu ------------------------------------------------------------

    def _scope_and_language(self, p: _Params) -> tuple[tuple[Any, ...], str]:
        scope = p.get_json("scope", "can't parse BotCommandScope JSON object")
        key = command_scope_key(scope, lambda chat_id: self._resolve_chat(chat_id, access=False))
        return key, validate_language_code(p.get_str("language_code"))

    @_api("setMyCommands")
    async def _set_my_commands(self, ctx: _Ctx) -> Any:
        commands = validate_bot_commands(
            ctx.p.get_json("commands", "can't parse commands JSON object")
        )
        key = self._scope_and_language(ctx.p)
        if commands:
            self.commands[key] = commands
        else:
            self.commands.pop(key, None)
        return True

    @_api("getMyCommands")
    async def _get_my_commands(self, ctx: _Ctx) -> Any:
        return self.commands.get(self._scope_and_language(ctx.p), [])

    @_api("deleteMyCommands")
    async def _delete_my_commands(self, ctx: _Ctx) -> Any:
        self.commands.pop(self._scope_and_language(ctx.p), None)
        return True

    # -- description & short description (what a new user sees before Start) -------

    def _set_about(self, ctx: _Ctx, field_name: str, limit: int, store: dict[str, str]) -> Any:
        """setMyDescription / setMyShortDescription: 0-limit characters; "" removes the
        text of that language."""
        lang = validate_language_code(ctx.p.get_str("language_code"))
        text = ctx.p.get_str(field_name) or ""
        if utf16_len(text) > limit:
            raise bad_request(f"[fake] {field_name} must be at most {limit} characters")
        if text:
            store[lang] = text
        else:
            store.pop(lang, None)
        return True

    @_api("setMyDescription")
    async def _set_my_description(self, ctx: _Ctx) -> Any:
        return self._set_about(ctx, "description", MAX_DESCRIPTION_LENGTH, self.descriptions)

    @_api("getMyDescription")
    async def _get_my_description(self, ctx: _Ctx) -> Any:
        lang = validate_language_code(ctx.p.get_str("language_code"))
        return {"description": self.descriptions.get(lang, "")}

    @_api("setMyShortDescription")
    async def _set_my_short_description(self, ctx: _Ctx) -> Any:
        return self._set_about(ctx, "short_description", MAX_SHORT_DESCRIPTION_LENGTH,
                               self.short_descriptions)

    @_api("getMyShortDescription")
    async def _get_my_short_description(self, ctx: _Ctx) -> Any:
        lang = validate_language_code(ctx.p.get_str("language_code"))
        return {"short_description": self.short_descriptions.get(lang, "")}

    @_api("setChatMenuButton")
    async def _set_chat_menu_button(self, ctx: _Ctx) -> Any:
        chat_id = None
        if ctx.p.present("chat_id"):
            chat = self._resolve_chat(ctx.p.get_raw("chat_id"))
            if chat.type != "private":
                raise bad_request("[fake] menu buttons can be set for private chats only")
            chat_id = chat.id
        button = ctx.p.get_json("menu_button", "can't parse menu button JSON object")
        self.menu_buttons[chat_id] = validate_menu_button(button or {"type": "default"})
        return True

    @_api("getChatMenuButton")
    async def _get_chat_menu_button(self, ctx: _Ctx) -> Any:
        chat_id = None
        if ctx.p.present("chat_id"):
            chat_id = self._resolve_chat(ctx.p.get_raw("chat_id")).id
        return self.menu_buttons.get(chat_id) or self.menu_buttons.get(None) or {"type": "commands"}

    # -- chats ----------------------------------------------------------------------

    @_api("getChat")
    async def _get_chat(self, ctx: _Ctx) -> Any:
        chat = self._resolve_chat(ctx.p.get_raw("chat_id"))
        info = chat.to_api()
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        if chat.migrate_to_chat_id is not None:
            info["migrate_to_chat_id"] = chat.migrate_to_chat_id
        return info

    @_api("getChatMember")
    async def _get_chat_member(self, ctx: _Ctx) -> Any:
        chat = self._resolve_chat(ctx.p.get_raw("chat_id"))
        user_id = ctx.p.get_int("user_id")
        if user_id is None:
            raise bad_request("user_id is empty")
        user = self._users.get(user_id)
        if user is None:
            raise bad_request("user not found")
        if chat.type == "private":
            record = (
                {"status": "member"} if user_id in (chat.id, self.bot.id) else {"status": "left"}
            )
        else:
            record = chat.members.get(user_id, {"status": "left"})
        return self._member_json(user, record)

    @_api("getChatAdministrators")
    async def _get_chat_administrators(self, ctx: _Ctx) -> Any:
        chat = self._resolve_chat(ctx.p.get_raw("chat_id"))
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        return [
            self._member_json(self._users[user_id], record)
            for user_id, record in chat.members.items()
            if record.get("status") in ("creator", "administrator") and user_id in self._users
        ]

    @_api("sendChatAction")
    async def _send_chat_action(self, ctx: _Ctx) -> Any:
        chat = self._resolve_chat(ctx.p.get_raw("chat_id"))
        action = ctx.p.get_str("action")
        if action not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._check_thread(chat, ctx.p.get_int("message_thread_id"))
        self.chat_actions.append((chat.id, action))
        return True

    # -- sending --------------------------------------------------------------------

    @_api("sendMessage")
    async def _send_message(self, ctx: _Ctx) -> Any:
        p = ctx.p
        text = self._text_param(p, "text", entities_name="entities", kind="text", required=True)
        assert text is not None
        chat = self._resolve_chat(p.get_raw("chat_id"))
        self._check_can_send(chat)
        thread_id = p.get_int("message_thread_id")
        self._check_thread(chat, thread_id)
        markup = self._markup(p, chat, inline_only=False)
        preview = p.get_json("link_preview_options", "can't parse link preview options JSON object")
        if preview is not None:
            preview = validate_link_preview_options(preview)
        reply_to = self._reply_target(chat, p)
        at = self._admit_send("sendMessage", chat)
        content: dict[str, Any] = {"text": text.text}
        if text.entities:
            content["entities"] = text.entities
        if preview is not None:
            content["link_preview_options"] = preview
        stored = self._new_bot_message(
            chat,
            thread_id=thread_id,
            reply_to=reply_to,
            content=content,
            reply_markup=markup,
            text=text,
            has_media=False,
        )
        self._record_sent(
            "sendMessage",
            stored,
            at,
            p,
            text=text,
            reply_markup=markup,
            thread_id=thread_id,
            reply_to=reply_to,
            link_preview_options=preview,
        )
        return stored.data

    def _media_message(self, chat: FakeChat, content: dict[str, Any],
                       caption: FormattedText | None, thread_id: int | None,
                       reply_to: Any, markup: Any) -> Any:
        """Store a bot message carrying media, with its caption (one place for both sends)."""
        if caption is not None:
            content["caption"] = caption.text
            if caption.entities:
                content["caption_entities"] = caption.entities
        return self._new_bot_message(chat, thread_id=thread_id, reply_to=reply_to,
                                     content=content, reply_markup=markup, text=caption,
                                     has_media=True)

    async def _send_single_media(self, ctx: _Ctx, method: str, field_name: str) -> Any:
        p = ctx.p
        caption = self._text_param(
            p, "caption", entities_name="caption_entities", kind="caption", required=False
        )
        chat = self._resolve_chat(p.get_raw("chat_id"))
        self._check_can_send(chat)
        thread_id = p.get_int("message_thread_id")
        self._check_thread(chat, thread_id)
        markup = self._markup(p, chat, inline_only=False)
        source = p.files.get(field_name) or p.get_raw(field_name)
        file_id, data = self._media_ref(source, p.files, field_name)
        reply_to = self._reply_target(chat, p)
        at = self._admit_send(method, chat)
        content: dict[str, Any]
        if field_name == "photo":
            content = {"photo": self._photo_sizes(file_id, data)}
        else:
            content = {
                "document": {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id}",
                    "file_name": self._files[file_id][0].split("/", 1)[1].split("_", 1)[1],
                    "file_size": len(data) if data else 12_345,
                }
            }
        stored = self._media_message(chat, content, caption, thread_id, reply_to, markup)
        self._record_sent(
            method,
            stored,
            at,
            p,
            text=caption,
            reply_markup=markup,
            thread_id=thread_id,
            reply_to=reply_to,
            media={"type": field_name, "media": file_id},
        )
        return stored.data

    @_api("sendPhoto")
    async def _send_photo(self, ctx: _Ctx) -> Any:
        return await self._send_single_media(ctx, "sendPhoto", "photo")

    @_api("sendDocument")
    async def _send_document(self, ctx: _Ctx) -> Any:
        return await self._send_single_media(ctx, "sendDocument", "document")

    @_api("sendMediaGroup")
    async def _send_media_group(self, ctx: _Ctx) -> Any:
        p = ctx.p
        media = p.get_json("media", "can't parse InputMedia JSON object")
        if not isinstance(media, list):
            raise bad_request("can't parse InputMedia JSON object")
        if not 2 <= len(media) <= 10:
            raise bad_request("[fake] media group must include 2-10 items")
        kinds = []
        captions: list[FormattedText | None] = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") not in (
                "photo",
                "video",
                "document",
                "audio",
            ):
                raise bad_request("can't parse InputMedia JSON object")
            kinds.append(item["type"])
            captions.append(
                format_text(
                    item.get("caption"),
                    parse_mode=item.get("parse_mode"),
                    entities=item.get("caption_entities"),
                    kind="caption",
                    required=False,
                )
            )
        for exclusive in ("document", "audio"):
            if exclusive in kinds and any(k != exclusive for k in kinds):
                raise bad_request(
                    f"[fake] {exclusive}s can be grouped only with {exclusive}s in an album"
                )
        chat = self._resolve_chat(p.get_raw("chat_id"))
        self._check_can_send(chat)
        thread_id = p.get_int("message_thread_id")
        self._check_thread(chat, thread_id)
        if p.present("reply_markup"):
            raise bad_request("[fake] sendMediaGroup does not take reply_markup")
        refs = [self._media_ref(item.get("media"), p.files, item["type"]) for item in media]
        reply_to = self._reply_target(chat, p)
        at = self._admit_send("sendMediaGroup", chat)
        group_id = f"{next(self._ids) * 7919}"
        messages = []
        for item, (file_id, data), caption in zip(media, refs, captions, strict=True):
            kind = item["type"]
            content: dict[str, Any] = {"media_group_id": group_id}
            if kind == "photo":
                content["photo"] = self._photo_sizes(file_id, data)
            else:
                content[kind] = {"file_id": file_id, "file_unique_id": f"u{file_id}"}
                if kind in ("video", "audio"):
                    content[kind]["duration"] = 1
                if kind == "video":
                    content[kind].update({"width": 1280, "height": 720})
            stored = self._media_message(chat, content, caption, thread_id, reply_to, None)
            self._record_sent(
                "sendMediaGroup",
                stored,
                at,
                p,
                text=caption,
                reply_markup=None,
                thread_id=thread_id,
                reply_to=reply_to,
                media={"type": kind, "media": file_id},
                media_group_id=group_id,
            )
            messages.append(stored.data)
        return messages

    @_api("getFile")
    async def _get_file(self, ctx: _Ctx) -> Any:
        file_id = ctx.p.get_str("file_id") or ""
        if file_id not in self._files:
            raise bad_request("invalid file_id")
        path, data = self._files[file_id]
        result: dict[str, Any] = {"file_id": file_id, "file_unique_id": f"u{file_id}"}
        if data is not None:
            result.update({"file_size": len(data), "file_path": path})
        return result

    # -- editing --------------------------------------------------------------------

    def _target_message(self, p: _Params, verb: str) -> tuple[_StoredMessage, FakeChat | None]:
        inline_id = p.get_str("inline_message_id")
        if inline_id:
            stored = self._inline_messages.get(inline_id)
            if stored is None:
                raise bad_request("MESSAGE_ID_INVALID")
            return stored, None
        chat = self._resolve_chat(p.get_raw("chat_id"))
        message_id = p.get_int("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        stored = self._messages.get((chat.id, message_id))
        if stored is None or stored.deleted:
            raise bad_request(f"message to {verb} not found")
        return stored, chat

    @staticmethod
    def _same(a: Any, b: Any) -> bool:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    def _apply_edit(
        self,
        method: str,
        stored: _StoredMessage,
        chat: FakeChat | None,
        p: _Params,
        text: FormattedText | None,
        markup: dict[str, Any] | None,
    ) -> Any:
        if markup is not None and not markup.get("inline_keyboard"):
            markup = None
        text_same = text is None or (
            stored.text is not None
            and stored.text.text == text.text
            and self._same(stored.text.entities, text.entities)
        )
        if text_same and self._same(stored.reply_markup, markup):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        if text is not None:
            stored.text = text
            stored.data["text"] = text.text
            stored.data.pop("entities", None)
            if text.entities:
                stored.data["entities"] = text.entities
        stored.reply_markup = markup
        stored.data.pop("reply_markup", None)
        if markup is not None:
            stored.data["reply_markup"] = markup
        stored.data["edit_date"] = int(self.wall_clock())
        inline_id = p.get_str("inline_message_id") or None
        self.edits.append(
            EditRecord(
                method=method,
                chat_id=None if chat is None else chat.id,
                message_id=None if chat is None else stored.message_id,
                inline_message_id=inline_id,
                at=self.clock(),
                text=None if text is None else text.raw,
                plain_text=None if text is None else text.text,
                entities=None if text is None else text.entities,
                reply_markup=markup,
            )
        )
        return True if inline_id else stored.data

    @_api("editMessageText")
    async def _edit_message_text(self, ctx: _Ctx) -> Any:
        p = ctx.p
        text = self._text_param(p, "text", entities_name="entities", kind="text", required=True)
        stored, chat = self._target_message(p, "edit")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        if stored.has_media or stored.text is None:
            raise bad_request("there is no text in the message to edit")
        markup = self._markup(p, chat, inline_only=True)
        preview = p.get_json("link_preview_options", "can't parse link preview options JSON object")
        if preview is not None:
            validate_link_preview_options(preview)
        return self._apply_edit("editMessageText", stored, chat, p, text, markup)

    @_api("editMessageReplyMarkup")
    async def _edit_message_reply_markup(self, ctx: _Ctx) -> Any:
        p = ctx.p
        stored, chat = self._target_message(p, "edit")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        markup = self._markup(p, chat, inline_only=True)
        return self._apply_edit("editMessageReplyMarkup", stored, chat, p, None, markup)

    @_api("deleteMessage")
    async def _delete_message(self, ctx: _Ctx) -> Any:
        p = ctx.p
        chat = self._resolve_chat(p.get_raw("chat_id"))
        message_id = p.get_int("message_id")
        stored = None if message_id is None else self._messages.get((chat.id, message_id))
        if stored is None or stored.deleted:
            raise bad_request("message to delete not found")
        if self.wall_clock() - stored.date > 48 * 3600 and chat.type != "private":
            raise bad_request("message can't be deleted for everyone")
        if not stored.from_bot and chat.type in ("group", "supergroup", "channel"):
            record = chat.members.get(self.bot.id, {})
            if not (
                record.get("status") == "creator"
                or (record.get("status") == "administrator" and record.get("can_delete_messages"))
            ):
                raise bad_request("message can't be deleted")
        stored.deleted = True
        self.deleted.append((chat.id, stored.message_id))
        return True

    # -- callbacks & inline -------------------------------------------------------------

    @_api("answerCallbackQuery")
    async def _answer_callback_query(self, ctx: _Ctx) -> Any:
        p = ctx.p
        query_id = p.get_str("callback_query_id") or ""
        pending = self._callback_queries.get(query_id)
        if (
            pending is None
            or pending.answered
            or self.clock() - pending.created_at > _CALLBACK_QUERY_TTL
        ):
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = p.get_str("text")
        if text is not None and utf16_len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        url = p.get_str("url")
        if url and not url.startswith(("https://t.me/", "tg://")):
            raise bad_request("URL_INVALID")
        pending.answered = True
        self.callback_answers[query_id] = CallbackAnswer(
            query_id, text or None, bool(p.get_bool("show_alert")), url, p.get_int("cache_time")
        )
        return True

    @_api("answerInlineQuery")
    async def _answer_inline_query(self, ctx: _Ctx) -> Any:
        p = ctx.p
        query_id = p.get_str("inline_query_id") or ""
        pending = self._inline_queries.get(query_id)
        if pending is None or pending.answered:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        results = validate_inline_results(
            p.get_json("results", "can't parse inline query results JSON object")
        )
        next_offset = p.get_str("next_offset") or ""
        if len(next_offset.encode("utf-8")) > 64:
            raise bad_request("NEXT_OFFSET_INVALID")
        button = p.get_json("button", "can't parse InlineQueryResultsButton JSON object")
        if button is not None:
            button = validate_inline_button(button)
        pending.answered = True
        self.inline_answers[query_id] = InlineAnswer(
            inline_query_id=query_id,
            user_id=pending.user_id,
            query=pending.query,
            results=results,
            next_offset=next_offset,
            cache_time=p.get_int("cache_time"),
            is_personal=bool(p.get_bool("is_personal")),
            button=button,
        )
        return True
