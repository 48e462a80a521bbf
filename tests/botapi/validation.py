"""Request validation of the fake Bot API, kept apart from the HTTP plumbing.

Why: these rules are what makes the fake worth having.  Each function checks one
Bot API object the way Telegram does (or more strictly, where Telegram silently
mangles the input) and raises :class:`ApiError` carrying Telegram's own error text
wherever it is known, so the bot's error handling is exercised with real messages.
Descriptions that start with ``[fake]`` mark rules Telegram does not enforce but
that point at a bug in the bot (see the module docstring of ``telegram_html``).
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from tests.botapi.telegram_html import (
    TelegramHtmlError,
    check_link,
    is_empty_text,
    parse_telegram_html,
    strip_formatted,
    utf16_len,
    validate_entities,
)

__all__ = [
    "MAX_CAPTION_LENGTH",
    "MAX_TEXT_LENGTH",
    "ApiError",
    "FormattedText",
    "bad_request",
    "command_scope_key",
    "fetchable_url",
    "format_text",
    "validate_bot_commands",
    "validate_inline_keyboard",
    "validate_inline_results",
    "validate_language_code",
    "validate_link_preview_options",
    "validate_menu_button",
    "validate_photo",
    "validate_reply_markup",
]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100
MAX_BUTTONS_PER_ROW = 8
MAX_INLINE_RESULTS = 50
MAX_INLINE_RESULT_ID_BYTES = 64
MAX_COMMANDS = 100

_INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_BUTTON_STYLES = frozenset({"primary", "success", "danger"})
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_CODE = re.compile(r"[a-z]{2}")
_START_PARAMETER = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_INLINE_RESULT_TYPES = frozenset(
    {
        "article",
        "photo",
        "gif",
        "mpeg4_gif",
        "video",
        "audio",
        "voice",
        "document",
        "location",
        "venue",
        "contact",
        "game",
        "sticker",
    }
)


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(
        self,
        code: int,
        description: str,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.parameters = parameters

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    """400 with Telegram's ``Bad Request: `` prefix."""
    return ApiError(400, f"Bad Request: {detail}")


@dataclass(frozen=True)
class FormattedText:
    """A text or caption after parse_mode processing, as Telegram would store it."""

    raw: str
    parse_mode: str | None
    text: str  # visible text, trimmed like Telegram does
    entities: list[dict[str, Any]] = field(default_factory=list)


def format_text(
    raw: str | None,
    *,
    parse_mode: str | None,
    entities: Any,
    kind: Literal["text", "caption"],
    required: bool,
) -> FormattedText | None:
    """Parse and check a message text or caption.

    The length limit is applied to the visible text *before* trimming (Telegram
    checks after trimming; checking before is stricter and catches a bot that pads
    a maximal chunk with whitespace).  Lengths are in UTF-16 code units.
    """
    empty_error = bad_request("message text is empty")
    if raw is None or raw == "":
        if required:
            raise empty_error
        return None
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad_request("strings must be encoded in UTF-8") from exc
    mode = (parse_mode or "").strip()
    try:
        if entities is not None:
            text, parsed = raw, validate_entities(raw, entities)
        elif mode.lower() == "html":
            text, parsed = parse_telegram_html(raw)
        elif mode == "":
            text, parsed = raw, []
        elif mode.lower() in ("markdown", "markdownv2"):
            raise bad_request(
                f"[fake] parse_mode {mode} is not supported by the fake Bot API; use HTML"
            )
        else:
            raise bad_request("unsupported parse_mode")
    except TelegramHtmlError as exc:
        raise bad_request(f"can't parse entities: {exc.description}") from exc
    limit = MAX_TEXT_LENGTH if kind == "text" else MAX_CAPTION_LENGTH
    if utf16_len(text) > limit:
        raise bad_request(
            "message is too long" if kind == "text" else "message caption is too long"
        )
    stripped = strip_formatted(text, parsed)
    if not stripped.text or is_empty_text(stripped.text):  # zero-width spaces, NBSP, ...
        if required:
            raise empty_error
        return None
    return FormattedText(raw, mode or None, stripped.text, stripped.entities)


# Host characters TDLib's parse_url accepts (RFC 3986 unreserved and sub-delims, or UTF-8).
_URL_HOST = re.compile(r"[a-z0-9.\-_!$,~*'();&+=\u0080-\U0010ffff]+")


def fetchable_url(url: str) -> bool:
    """Could Telegram download a file from ``url`` (sendPhoto/sendMediaGroup by URL)?

    TDLib's parse_url refuses an empty host, characters outside RFC 3986 in the host and
    a bad port, and Telegram's servers cannot fetch from a host without a dot (they answer
    "failed to get HTTP URL content"); whitespace in the path is percent-encoded there.
    """
    try:
        parts = urlsplit(url.strip())
        if parts.port == 0:  # raises ValueError for a port that is not a number < 65536
            return False
    except ValueError:
        return False
    host = parts.hostname or ""
    if host.startswith("[") or ":" in host:  # IPv6 literal
        return True
    return bool(_URL_HOST.fullmatch(host)) and "." in host.strip(".") and ".." not in host


# -- keyboards ---------------------------------------------------------------------


def _https_url(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{what} must be a String")
    parts = urlsplit(value)
    if parts.scheme.lower() != "https" or not parts.netloc:
        raise bad_request(f"{what} must be an HTTPS URL")
    return value


def validate_inline_keyboard(markup: dict[str, Any], *, chat_type: str | None) -> dict[str, Any]:
    """Check an ``InlineKeyboardMarkup`` like Telegram does when sending or editing."""
    rows = markup.get("inline_keyboard")
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
        )
    total = 0
    for row_index, row in enumerate(rows):
        if len(row) > MAX_BUTTONS_PER_ROW:
            raise bad_request(
                f"[fake] more than {MAX_BUTTONS_PER_ROW} buttons in row {row_index} of the "
                "inline keyboard"
            )
        for column, button in enumerate(row):
            total += 1
            _validate_inline_button(button, row_index, column, chat_type)
    if total > MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    return markup


def _validate_inline_button(button: Any, row: int, column: int, chat_type: str | None) -> None:
    prefix = "can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise bad_request(prefix + "InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str):
        raise bad_request(prefix + 'Field "text" must be of type String')
    if not text.strip():
        raise bad_request("[fake] inline keyboard button text must be non-empty")
    actions = [key for key in _INLINE_BUTTON_ACTIONS if button.get(key) is not None]
    if not actions:
        raise bad_request(prefix + "Text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise bad_request(
            "[fake] inline keyboard button must use exactly one of the optional fields, "
            f"got {actions}"
        )
    action = actions[0]
    value = button[action]
    if action == "callback_data":
        if not isinstance(value, str):
            raise bad_request(prefix + 'Field "callback_data" must be of type String')
        if not 1 <= len(value.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    elif action == "url":
        if not isinstance(value, str):
            raise bad_request(prefix + 'Field "url" must be of type String')
        scheme = urlsplit(value).scheme.lower() if "://" in value or ":" in value else ""
        link = check_link(value, strict=True)
        if scheme not in ("http", "https", "tg") or link is None:
            raise bad_request(f"inline keyboard button URL '{value}' is invalid: Wrong HTTP URL")
    elif action == "web_app":
        if chat_type not in (None, "private"):
            raise bad_request("BUTTON_TYPE_INVALID")
        if not isinstance(value, dict):
            raise bad_request(prefix + 'Field "web_app" must be of type Object')
        _https_url(value.get("url"), "web_app.url")
    elif action == "login_url":
        if not isinstance(value, dict):
            raise bad_request(prefix + 'Field "login_url" must be of type Object')
        _https_url(value.get("url"), "login_url.url")
    elif action in ("switch_inline_query", "switch_inline_query_current_chat"):
        if not isinstance(value, str):
            raise bad_request(prefix + f'Field "{action}" must be of type String')
    elif action == "switch_inline_query_chosen_chat":
        if not isinstance(value, dict):
            raise bad_request(prefix + f'Field "{action}" must be of type Object')
    elif action == "copy_text":
        copied = value.get("text") if isinstance(value, dict) else None
        if not isinstance(copied, str) or not 1 <= len(copied) <= 256:
            raise bad_request("[fake] copy_text.text must be 1-256 characters")
    elif action in ("pay", "callback_game") and (row, column) != (0, 0):
        raise bad_request(f"[fake] {action} button must be the first button in the first row")
    if action.startswith("switch_inline_query") and chat_type == "channel":
        # TDLib get_inline_keyboard_button (switch_inline_buttons_allowed is false there).
        name = "switch_inline_query_current_chat" if action.endswith("current_chat") else (
            "switch_inline_query")
        raise bad_request(
            f"Can't use {name} button in a channel chat, because users will not be able to "
            "use the button without knowing bot's username"
        )
    style = button.get("style")
    if style is not None and style not in _BUTTON_STYLES:
        raise bad_request(f"[fake] unsupported button style {style!r}")


def _validate_reply_keyboard(markup: dict[str, Any]) -> None:
    rows = markup.get("keyboard")
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
        )
    for row in rows:
        for button in row:
            text = (
                button
                if isinstance(button, str)
                else (button.get("text") if isinstance(button, dict) else None)
            )
            if not isinstance(text, str) or not text.strip():
                raise bad_request("[fake] keyboard button text must be non-empty")
    placeholder = markup.get("input_field_placeholder")
    if placeholder is not None and not 1 <= len(str(placeholder)) <= 64:
        raise bad_request("[fake] input_field_placeholder must be 1-64 characters")


def validate_reply_markup(
    markup: Any, *, chat_type: str | None, inline_only: bool = False
) -> dict[str, Any]:
    """Check any reply_markup; ``inline_only`` for edits and inline results."""
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    kinds = [
        key
        for key in ("inline_keyboard", "keyboard", "remove_keyboard", "force_reply")
        if key in markup
    ]
    if len(kinds) != 1:
        raise bad_request("can't parse reply keyboard markup JSON object")
    kind = kinds[0]
    if inline_only and kind != "inline_keyboard":
        raise bad_request("[fake] only an inline keyboard is allowed here")
    if kind == "inline_keyboard":
        return validate_inline_keyboard(markup, chat_type=chat_type)
    if chat_type == "channel":
        raise bad_request("[fake] reply keyboards can't be sent to channels")
    if kind == "keyboard":
        _validate_reply_keyboard(markup)
    elif markup[kind] is not True:
        raise bad_request(f'field "{kind}" must be true')
    return markup


def validate_link_preview_options(options: Any) -> dict[str, Any]:
    """Check ``LinkPreviewOptions``: flags are booleans, ``url`` an http(s) link."""
    if not isinstance(options, dict):
        raise bad_request("can't parse link preview options JSON object")
    for flag in ("is_disabled", "prefer_small_media", "prefer_large_media", "show_above_text"):
        if flag in options and not isinstance(options[flag], bool):
            raise bad_request(f'field "{flag}" of the LinkPreviewOptions must be a Boolean')
    if options.get("prefer_small_media") and options.get("prefer_large_media"):
        raise bad_request("[fake] prefer_small_media and prefer_large_media are exclusive")
    url = options.get("url")
    if url is not None:
        if not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https"):
            raise bad_request("[fake] link preview url must be an http(s) URL")
        if check_link(url, strict=True) is None:
            raise bad_request("[fake] link preview url is invalid")
    return options


# -- commands, menu buttons --------------------------------------------------------


def validate_bot_commands(commands: Any) -> list[dict[str, str]]:
    """Check a ``BotCommand`` array for setMyCommands."""
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > MAX_COMMANDS:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    result: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command, description = item.get("command"), item.get("description")
        if not isinstance(command, str) or not _COMMAND.fullmatch(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if command in seen:
            raise bad_request(f"[fake] duplicate bot command {command!r}")
        seen.add(command)
        if (
            not isinstance(description, str)
            or not description.strip()
            or utf16_len(description) > 256
        ):
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        result.append({"command": command, "description": description})
    return result


def validate_language_code(code: Any) -> str:
    """``""`` (all languages) or a two-letter ISO 639-1 code."""
    if code is None or code == "":
        return ""
    if not isinstance(code, str) or not _LANGUAGE_CODE.fullmatch(code):
        raise bad_request("invalid language code specified")
    return code


def command_scope_key(scope: Any, resolve_chat: Any) -> tuple[Any, ...]:
    """Canonical, hashable key of a ``BotCommandScope``; ``resolve_chat(id)`` -> chat."""
    if scope is None:
        return ("default",)
    if not isinstance(scope, dict) or not isinstance(scope.get("type"), str):
        raise bad_request("can't parse BotCommandScope JSON object")
    kind = scope["type"]
    if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
        return (kind,)
    if kind in ("chat", "chat_administrators", "chat_member"):
        if "chat_id" not in scope:
            raise bad_request("chat_id is empty")
        chat = resolve_chat(scope["chat_id"])
        if kind == "chat_member":
            user_id = scope.get("user_id")
            if not isinstance(user_id, int):
                raise bad_request("user not found")
            if chat.type not in ("group", "supergroup"):
                raise bad_request("[fake] chat_member scope needs a group chat")
            return (kind, chat.id, user_id)
        if kind == "chat_administrators" and chat.type not in ("group", "supergroup"):
            raise bad_request("[fake] chat_administrators scope needs a group chat")
        return (kind, chat.id)
    raise bad_request("unsupported bot command scope type")


def validate_menu_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict):
        raise bad_request("can't parse menu button JSON object")
    kind = button.get("type")
    if kind in ("commands", "default"):
        return {"type": kind}
    if kind == "web_app":
        text = button.get("text")
        if not isinstance(text, str) or not text.strip():
            raise bad_request("[fake] web_app menu button text must be non-empty")
        web_app = button.get("web_app")
        if not isinstance(web_app, dict):
            raise bad_request("[fake] web_app menu button needs web_app")
        _https_url(web_app.get("url"), "web_app.url")
        return button
    raise bad_request("unsupported menu button type")


# -- inline mode -------------------------------------------------------------------


def validate_inline_results(results: Any) -> list[dict[str, Any]]:
    """Check an answerInlineQuery ``results`` array and the content of each result."""
    if not isinstance(results, list):
        raise bad_request("can't parse inline query results JSON object")
    if len(results) > MAX_INLINE_RESULTS:
        raise bad_request("RESULTS_TOO_MUCH")
    seen: set[str] = set()
    checked: list[dict[str, Any]] = []
    for result in results:
        if not isinstance(result, dict):
            raise bad_request(
                "can't parse inline query result: InlineQueryResult must be an Object"
            )
        for required in ("type", "id"):
            if required not in result:
                raise bad_request(
                    f"can't parse inline query result: Can't find field \"{required}\""
                )
        result_id = result["id"]
        if not isinstance(result_id, str) or not (
            1 <= len(result_id.encode("utf-8")) <= MAX_INLINE_RESULT_ID_BYTES
        ):
            raise bad_request("RESULT_ID_INVALID")
        if result_id in seen:
            raise bad_request("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        kind = result["type"]
        if kind not in _INLINE_RESULT_TYPES:
            raise bad_request("can't parse inline query result: Result type is invalid")
        _validate_inline_result(result)
        checked.append(result)
    return checked


def _require_field(result: dict[str, Any], name: str) -> Any:
    value = result.get(name)
    if value is None or value == "":
        raise bad_request(f"can't parse inline query result: Can't find field \"{name}\"")
    return value


def _validate_inline_result(result: dict[str, Any]) -> None:
    kind = result["type"]
    if kind == "article":
        _require_field(result, "title")
        _require_field(result, "input_message_content")
    elif kind == "photo":
        for name in ("photo_url", "thumbnail_url"):
            url = _require_field(result, name)
            if urlsplit(str(url)).scheme.lower() not in ("http", "https"):
                raise bad_request(f"[fake] {name} must be an http(s) URL")
    elif kind == "document":
        for name in ("title", "document_url", "mime_type"):
            _require_field(result, name)
        if result["mime_type"] not in ("application/pdf", "application/zip"):
            raise bad_request(
                "[fake] document mime_type must be application/pdf or application/zip"
            )
    thumbnail = result.get("thumbnail_url")
    if thumbnail is not None and not (
        isinstance(thumbnail, str)
        and thumbnail.startswith(("http://", "https://"))
        and fetchable_url(thumbnail)
    ):
        # Telegram's servers fetch the thumbnail themselves and refuse a URL they cannot
        # parse (MTProto WEBDOCUMENT_URL_INVALID).
        raise bad_request("WEBDOCUMENT_URL_INVALID")
    if "caption" in result:
        format_text(
            result.get("caption"),
            parse_mode=result.get("parse_mode"),
            entities=result.get("caption_entities"),
            kind="caption",
            required=False,
        )
    content = result.get("input_message_content")
    if content is not None:
        if not isinstance(content, dict):
            raise bad_request("can't parse InputMessageContent JSON object")
        if "message_text" in content:
            format_text(
                content.get("message_text"),
                parse_mode=content.get("parse_mode"),
                entities=content.get("entities"),
                kind="text",
                required=True,
            )
            if content.get("link_preview_options") is not None:
                validate_link_preview_options(content["link_preview_options"])
    if result.get("reply_markup") is not None:
        validate_reply_markup(result["reply_markup"], chat_type=None, inline_only=True)


def validate_inline_button(button: Any) -> dict[str, Any]:
    """Check the ``button`` of answerInlineQuery (``InlineQueryResultsButton``)."""
    if not isinstance(button, dict):
        raise bad_request("can't parse InlineQueryResultsButton JSON object")
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("[fake] InlineQueryResultsButton text must be non-empty")
    has_web_app = button.get("web_app") is not None
    start = button.get("start_parameter")
    if has_web_app == (start is not None):
        raise bad_request("[fake] use exactly one of web_app / start_parameter")
    if start is not None and (not isinstance(start, str) or not _START_PARAMETER.fullmatch(start)):
        raise bad_request("[fake] start_parameter must be 1-64 characters of A-Za-z0-9_-")
    if has_web_app:
        _https_url(button["web_app"].get("url"), "web_app.url")
    return button


# -- uploaded photos ----------------------------------------------------------------

MAX_PHOTO_BYTES = 10 * 1024 * 1024  # sendPhoto: "The photo must be at most 10 MB in size."
MAX_PHOTO_SIDES = 10_000  # "The photo's width and height must not exceed 10000 in total."
MAX_PHOTO_RATIO = 20  # "Width and height ratio must be at most 20."
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                       0xCE, 0xCF})


def validate_photo(data: bytes) -> tuple[int, int]:
    """An uploaded photo's (width, height), checked as sendPhoto documents it.

    Only PNG (signature, then an IHDR chunk with a correct CRC) and JPEG (a frame header
    before the scan) are understood; anything else is refused like Telegram refuses
    bytes it cannot decode (IMAGE_PROCESS_FAILED), so a bot that uploads a broken or
    truncated image fails here as it would in production.
    """
    if len(data) > MAX_PHOTO_BYTES:
        raise bad_request("[fake] photo must be at most 10 MB")
    if data.startswith(_PNG_SIGNATURE):
        size = _png_size(data)
    elif data.startswith(b"\xff\xd8\xff"):
        size = _jpeg_size(data)
    else:
        size = None
    if size is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    width, height = size
    if (width < 1 or height < 1 or width + height > MAX_PHOTO_SIDES
            or max(width, height) > MAX_PHOTO_RATIO * min(width, height)):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    return width, height


def _png_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[8:33]  # length, "IHDR", 13 bytes of header, CRC
    if len(chunk) < 25 or chunk[:8] != b"\x00\x00\x00\rIHDR":
        return None
    if zlib.crc32(chunk[4:21]) != struct.unpack(">I", chunk[21:25])[0]:
        return None
    width, height = struct.unpack(">II", chunk[8:16])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        if marker in _JPEG_SOF and at + 9 <= len(data):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            return None
        at += 2 + length
    return None
