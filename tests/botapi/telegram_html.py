"""Telegram's ``parse_mode=HTML`` dialect, re-implemented for the fake Bot API server.

Why this exists: the bot formats almost everything it sends as Telegram HTML, and
Telegram rejects a whole message (``400 Bad Request: can't parse entities: ...``)
for one stray ``<``.  A test double that accepts anything would let such bugs ship,
so the fake server runs every text through this parser and fails the request the
way Telegram would.

The lenient mode (``strict=False``) follows the algorithm of TDLib's ``parse_html``
(the code the real Bot API server runs) byte for byte, including its error
descriptions and byte offsets.  The strict mode (the default) additionally rejects
input that Telegram *accepts but silently mangles*, because in a test that is almost
always a bug in the bot:

* a bare ``&`` or ``>`` in text (Telegram keeps ``&`` literally, so ``&lt`` inside
  an unescaped paper title would turn into ``<``), and entities without ``;``;
* unquoted or unknown attributes, and attributes on tags that take none;
* ``<a>`` without ``href`` or with an ``href`` that is not an absolute http(s)/tg
  link (Telegram drops the link, or uses the link text as the URL);
* ``<code class="...">`` outside ``<pre>`` (Telegram drops the language);
* entity nestings that the Bot API documentation forbids and Telegram silently
  "fixes" by dropping formatting (anything inside ``code``/``pre``, ``code``/``pre``
  inside anything but ``blockquote``, links inside links, nested blockquotes);
* more than 100 entities (Telegram ignores the rest);
* an empty end tag ``</>``.

Offsets and lengths of the returned entities are in UTF-16 code units, as in the
Bot API, and lengths of texts must be measured with :func:`utf16_len`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

__all__ = [
    "MAX_ENTITIES",
    "ParsedHtml",
    "TelegramHtmlError",
    "check_link",
    "is_empty_text",
    "parse_telegram_html",
    "strip_formatted",
    "utf16_len",
    "validate_entities",
]

#: Telegram displays at most this many entities and silently ignores the rest.
MAX_ENTITIES = 100

# TDLib's is_space() also treats NUL as a space; reading past the end of the input
# yields NUL there (C strings), which is how its loops stop at the end of the text.
_SPACES = frozenset(b" \t\r\n\v\x00")
_DIGITS = frozenset(b"0123456789")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_ALPHA = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NAME_TOKEN = _ALPHA | _DIGITS | frozenset(b".-")
_ATTR_NAME_STOP = _SPACES | frozenset(b"=>/\"'")

_SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "tg-time",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
# Attributes the strict mode accepts, per tag (Telegram ignores any others).
_ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href"}),
    "code": frozenset({"class"}),
    "span": frozenset({"class"}),
    "tg-emoji": frozenset({"emoji-id"}),
    "tg-time": frozenset({"unix", "format"}),
    "blockquote": frozenset({"expandable"}),
}
_SPLITTABLE = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
_CONTINUOUS = frozenset({"text_link", "custom_emoji", "date_time"})
_BLOCKQUOTES = frozenset({"blockquote", "expandable_blockquote"})
_PRE_LIKE = frozenset({"pre", "code"})
_DATE_TIME_FORMAT = re.compile(r"r|w?[dD]?[tT]?")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.\-]{1,64}")
_TG_USER_LINK = re.compile(r"tg://user\?id=(\d{1,20})", re.IGNORECASE)
_HOST = re.compile(r"[A-Za-z0-9\-._~\u0080-\U0010ffff]+")
_ASCII_WHITESPACE = " \t\n\r\v\f"


class TelegramHtmlError(ValueError):
    """The text would be rejected by Telegram; ``description`` follows Telegram's wording.

    The Bot API reports it as ``Bad Request: can't parse entities: <description>``.
    """

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class ParsedHtml(NamedTuple):
    """The visible text of a message and its Bot API ``MessageEntity`` dicts."""

    text: str
    entities: list[dict[str, Any]]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: the unit of every Telegram offset and text limit."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check_link(url: str, *, strict: bool = True) -> str | None:
    """Return the link Telegram would store for ``href=url``, or None if it would drop it.

    Telegram accepts http(s), ``tg:`` and ``ton:`` links and adds ``http://`` to links
    without a scheme; the strict mode insists on an explicit scheme, because a
    schemeless ``href`` is nearly always a relative link copied from a web page.
    """
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    lowered = url.lower()
    if lowered.startswith(("tg:", "ton:")):
        rest = url.split(":", 1)[1].lstrip("/")
        return url if rest else None
    if "://" not in url:
        if strict:
            return None
        url = "http://" + url
        lowered = url.lower()
    if not lowered.startswith(("http://", "https://")):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if port == 0 or not _HOST.fullmatch(host) or host.startswith(".") or ".." in host:
        return None
    if "." not in host and (strict or host != "localhost"):
        return None
    return url


@dataclass
class _OpenTag:
    """A start tag whose end tag has not been seen yet."""

    name: str
    kind: str  # the entity type it produces
    argument: str
    attributes: dict[str, str | None]
    utf16_offset: int
    byte_pos: int  # position in the output buffer (for <a> without href)
    source_offset: int  # byte offset of '<' in the input, for error messages
    children: list[str] = field(default_factory=list)


@dataclass
class _RawEntity:
    type: str
    offset: int
    length: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {"type": self.type, "offset": self.offset, "length": self.length, **self.extra}


class _Parser:
    """One parse of one string; see :func:`parse_telegram_html`."""

    def __init__(self, source: str, *, strict: bool) -> None:
        try:
            self.data = source.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise TelegramHtmlError("Strings must be encoded in UTF-8") from exc
        self.strict = strict
        self.out = bytearray()
        self.utf16 = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[_RawEntity] = []

    def at(self, i: int) -> int:
        return self.data[i] if i < len(self.data) else 0

    # -- character references -------------------------------------------------------

    def decode_reference(self, pos: int) -> tuple[int, int, bool] | None:
        """Decode ``&...`` at ``pos``: (code point, next position, ended with ';')."""
        end = pos + 1
        value = 0
        if self.at(pos + 1) == ord("#"):
            end += 1
            if self.at(pos + 2) == ord("x"):
                end += 1
                while self.at(end) in _HEX_DIGITS and self.at(end) != 0:
                    value = value * 16 + int(chr(self.at(end)), 16)
                    end += 1
            else:
                while self.at(end) in _DIGITS and self.at(end) != 0:
                    value = value * 10 + self.at(end) - ord("0")
                    end += 1
            if value == 0 or value >= 0x10FFFF or end - pos >= 10:
                return None
        else:
            while self.at(end) in _ALPHA and self.at(end) != 0:
                end += 1
            name = self.data[pos + 1 : end]
            named = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}.get(name)
            if named is None:
                return None
            value = ord(named)
        if self.at(end) == ord(";"):
            return value, end + 1, True
        return value, end, False

    def reference_or_error(self, pos: int) -> tuple[int, int] | None:
        """Like :meth:`decode_reference`, applying the strict-mode rules."""
        decoded = self.decode_reference(pos)
        if decoded is None:
            if self.strict:
                raise TelegramHtmlError(
                    f'Character "&" at byte offset {pos} must be escaped as "&amp;"'
                )
            return None
        value, end, terminated = decoded
        if 0xD800 <= value <= 0xDFFF:
            raise TelegramHtmlError(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        if self.strict and not terminated:
            raise TelegramHtmlError(f'HTML entity at byte offset {pos} must end with ";"')
        return value, end

    def emit_char(self, code: int) -> None:
        encoded = chr(code).encode("utf-8")
        self.out += encoded
        self.utf16 += 2 if code > 0xFFFF else 1

    # -- main loop -----------------------------------------------------------------

    def run(self) -> ParsedHtml:
        data = self.data
        i = 0
        while i < len(data):
            c = data[i]
            if c == ord("&"):
                ref = self.reference_or_error(i)
                if ref is not None:
                    self.emit_char(ref[0])
                    i = ref[1]
                    continue
            if c != ord("<"):
                if c == ord(">") and self.strict:
                    raise TelegramHtmlError(
                        f'Character ">" at byte offset {i} must be escaped as "&gt;"'
                    )
                if c & 0xC0 != 0x80:  # first byte of a UTF-8 sequence
                    self.utf16 += 2 if c >= 0xF0 else 1
                self.out.append(c)
                i += 1
                continue
            i = self.start_tag(i) if self.at(i + 1) != ord("/") else self.end_tag(i)
        if self.stack:
            raise TelegramHtmlError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        return self.finish()

    def start_tag(self, begin: int) -> int:
        i = begin + 1
        while self.at(i) not in _SPACES and self.at(i) != ord(">"):
            i += 1
        if self.at(i) == 0:
            raise TelegramHtmlError(f"Unclosed start tag at byte offset {begin}")
        name = self.data[begin + 1 : i].decode("utf-8", "replace").lower()
        if name not in _SUPPORTED_TAGS:
            raise TelegramHtmlError(f'Unsupported start tag "{name}" at byte offset {begin}')

        argument = ""
        attributes: dict[str, str | None] = {}
        while self.at(i) != ord(">"):
            while self.at(i) != 0 and self.at(i) in _SPACES:
                i += 1
            if self.at(i) == ord(">"):
                break
            name_begin = i
            while self.at(i) not in _ATTR_NAME_STOP:
                i += 1
            attr = self.data[name_begin:i].decode("utf-8", "replace")
            if not attr:
                raise TelegramHtmlError(
                    f'Empty attribute name in the tag "{name}" at byte offset {begin}'
                )
            while self.at(i) != 0 and self.at(i) in _SPACES:
                i += 1
            if self.at(i) != ord("="):
                if self.at(i) == 0:
                    raise TelegramHtmlError(f'Unclosed start tag "{name}" at byte offset {begin}')
                self.check_attribute(name, attr, None, attributes, begin)
                attributes[attr] = None
                if name == "blockquote" and attr == "expandable":
                    argument = "1"
                continue
            i += 1
            while self.at(i) != 0 and self.at(i) in _SPACES:
                i += 1
            if self.at(i) == 0:
                raise TelegramHtmlError(f'Unclosed start tag "{name}" at byte offset {begin}')
            if self.at(i) not in (ord("'"), ord('"')):
                token_begin = i
                while self.at(i) in _NAME_TOKEN and self.at(i) != 0:
                    i += 1
                value = self.data[token_begin:i].decode("utf-8", "replace").lower()
                if self.at(i) not in _SPACES and self.at(i) != ord(">"):
                    raise TelegramHtmlError(
                        f"Unexpected end of name token at byte offset {token_begin}"
                    )
                if self.strict:
                    raise TelegramHtmlError(
                        f'Value of the attribute "{attr}" of the tag "{name}" at byte offset '
                        f"{begin} must be quoted"
                    )
            else:
                quote = self.at(i)
                i += 1
                buf = bytearray()
                while self.at(i) != quote and self.at(i) != 0:
                    if self.at(i) == ord("&"):
                        ref = self.reference_or_error(i)
                        if ref is not None:
                            buf += chr(ref[0]).encode("utf-8")
                            i = ref[1]
                            continue
                    buf.append(self.at(i))
                    i += 1
                if self.at(i) == quote:
                    i += 1
                value = buf.decode("utf-8", "replace")
            if self.at(i) == 0:
                raise TelegramHtmlError(f"Unclosed start tag at byte offset {begin}")
            self.check_attribute(name, attr, value, attributes, begin)
            attributes[attr] = value
            if name == "a" and attr == "href":
                argument = value
            elif name == "code" and attr == "class" and value.startswith("language-"):
                argument = value[len("language-") :]
            elif name == "span" and attr == "class" and value.startswith("tg-"):
                argument = value[len("tg-") :]
            elif name == "tg-emoji" and attr == "emoji-id":
                argument = value
            elif name == "blockquote" and attr == "expandable":
                argument = "1"
        if name == "span" and argument != "spoiler":
            raise TelegramHtmlError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {begin}'
            )
        kind = self.kind_of(name, argument)
        tag = _OpenTag(name, kind, argument, attributes, self.utf16, len(self.out), begin)
        if self.strict:
            self.check_start_strict(tag)
        if self.stack:
            self.stack[-1].children.append(kind)
        self.stack.append(tag)
        return i + 1

    @staticmethod
    def kind_of(name: str, argument: str) -> str:
        if name in _SIMPLE_TYPES:
            return _SIMPLE_TYPES[name]
        return {
            "a": "text_link",
            "tg-emoji": "custom_emoji",
            "tg-time": "date_time",
            "pre": "pre",
            "code": "code",
            "blockquote": "expandable_blockquote" if argument else "blockquote",
        }[name]

    def check_attribute(
        self,
        tag: str,
        attr: str,
        value: str | None,
        seen: dict[str, str | None],
        begin: int,
    ) -> None:
        if not self.strict:
            return
        where = f'the tag "{tag}" at byte offset {begin}'
        if attr not in _ALLOWED_ATTRIBUTES.get(tag, frozenset()):
            raise TelegramHtmlError(f'Unsupported attribute "{attr}" in {where}')
        if attr in seen:
            raise TelegramHtmlError(f'Duplicate attribute "{attr}" in {where}')
        if value is None and attr != "expandable":
            raise TelegramHtmlError(f'Attribute "{attr}" in {where} must have a value')
        if value is not None and attr == "expandable":
            raise TelegramHtmlError(f'Attribute "expandable" in {where} must not have a value')

    def check_start_strict(self, tag: _OpenTag) -> None:
        """Reject tags Telegram would accept but render differently than written."""
        where = f'Tag "{tag.name}" at byte offset {tag.source_offset}'
        attrs = tag.attributes
        if tag.name == "a":
            href = attrs.get("href")
            if not href:
                raise TelegramHtmlError(f'{where} must have a non-empty "href" attribute')
            if check_link(href, strict=True) is None:
                raise TelegramHtmlError(f'{where} has an unsupported link "{href}"')
        if tag.name == "code" and "class" in attrs:
            cls = attrs["class"] or ""
            language = cls[len("language-") :] if cls.startswith("language-") else ""
            if not _LANGUAGE.fullmatch(language):
                raise TelegramHtmlError(f'{where} must have class "language-<name>"')
            if not self.stack or self.stack[-1].name != "pre":
                raise TelegramHtmlError(f"{where}: a language can be set only on <pre><code>")
        if tag.name == "tg-emoji" and "emoji-id" not in attrs:
            raise TelegramHtmlError("Invalid custom emoji identifier specified")
        if tag.name == "tg-time" and "unix" not in attrs:
            raise TelegramHtmlError(f'{where} must have a "unix" attribute')

        kinds = [open_tag.kind for open_tag in self.stack]
        if not kinds:
            return
        parent = self.stack[-1]
        for ancestor in self.stack:
            if ancestor.kind == "code":
                raise TelegramHtmlError(f"{where} can't be nested inside <{ancestor.name}>")
            if ancestor.kind == "pre" and not (
                tag.name == "code"
                and ancestor is parent
                and len(self.out) == parent.byte_pos
                and not parent.children
            ):
                raise TelegramHtmlError(
                    f"{where} can't be nested inside <pre> (only one <code> spanning it)"
                )
        if tag.kind in _PRE_LIKE and any(k not in _BLOCKQUOTES and k != "pre" for k in kinds):
            raise TelegramHtmlError(f"{where}: code and pre can only be nested inside blockquote")
        if tag.kind in _CONTINUOUS | _BLOCKQUOTES and any(k in _CONTINUOUS for k in kinds):
            raise TelegramHtmlError(f"{where} can't be nested inside a link or custom emoji")
        if tag.kind in _BLOCKQUOTES and any(k in _BLOCKQUOTES for k in kinds):
            raise TelegramHtmlError(f"{where}: blockquotes can't be nested")

    def end_tag(self, begin: int) -> int:
        if not self.stack:
            raise TelegramHtmlError(f"Unexpected end tag at byte offset {begin}")
        i = begin + 1
        while self.at(i) not in _SPACES and self.at(i) != ord(">"):
            i += 1
        end_name = self.data[begin + 2 : i].decode("utf-8", "replace").lower()
        while self.at(i) in _SPACES and self.at(i) != 0:
            i += 1
        if self.at(i) != ord(">"):
            raise TelegramHtmlError(f"Unclosed end tag at byte offset {begin}")
        tag = self.stack[-1]
        if end_name and end_name != tag.name:
            raise TelegramHtmlError(
                f'Unmatched end tag at byte offset {begin}, expected "</{tag.name}>", '
                f'found "</{end_name}>"'
            )
        if not end_name and self.strict:
            raise TelegramHtmlError(f'Empty end tag at byte offset {begin}, use "</{tag.name}>"')
        if self.strict and tag.name == "pre" and tag.children and self.utf16 > tag.utf16_offset:
            last = self.entities[-1] if self.entities else None
            if (
                last is None
                or last.type != "code"
                or last.offset != tag.utf16_offset
                or last.offset + last.length != self.utf16
            ):
                raise TelegramHtmlError(
                    f"<code> inside <pre> at byte offset {tag.source_offset} must span the "
                    "whole <pre> block"
                )
        self.stack.pop()
        self.close_entity(tag)
        return i + 1

    def close_entity(self, tag: _OpenTag) -> None:
        offset = tag.utf16_offset
        length = self.utf16 - offset
        if length <= 0:
            if tag.kind == "custom_emoji":
                self.custom_emoji_id(tag)  # still validated
            return
        entities = self.entities
        if tag.kind in _SPLITTABLE or tag.kind in _BLOCKQUOTES:
            entities.append(_RawEntity(tag.kind, offset, length))
        elif tag.kind == "custom_emoji":
            emoji_id = self.custom_emoji_id(tag)
            entities.append(
                _RawEntity("custom_emoji", offset, length, {"custom_emoji_id": emoji_id})
            )
        elif tag.kind == "date_time":
            entities.append(_RawEntity("date_time", offset, length, self.date_time(tag)))
        elif tag.kind == "text_link":
            url = tag.argument or self.out[tag.byte_pos :].decode("utf-8", "replace")
            user = _TG_USER_LINK.fullmatch(url.strip())
            if user is not None and int(user.group(1)) > 0:
                entities.append(
                    _RawEntity(
                        "text_mention",
                        offset,
                        length,
                        {"user": {"id": int(user.group(1)), "is_bot": False, "first_name": ""}},
                    )
                )
            else:
                checked = check_link(url, strict=self.strict)
                if checked is not None:
                    entities.append(_RawEntity("text_link", offset, length, {"url": checked}))
        elif tag.kind == "pre":
            last = entities[-1] if entities else None
            if (
                last is not None
                and last.type == "code"
                and last.offset == offset
                and last.length == length
                and (last.extra.get("language") or self.strict)
            ):
                last.type = "pre"
            else:
                entities.append(_RawEntity("pre", offset, length))
        elif tag.kind == "code":
            last = entities[-1] if entities else None
            if (
                last is not None
                and last.type == "pre"
                and last.offset == offset
                and last.length == length
                and tag.argument
            ):
                last.extra["language"] = tag.argument
            else:
                extra = {"language": tag.argument} if tag.argument else {}
                entities.append(_RawEntity("code", offset, length, extra))

    @staticmethod
    def custom_emoji_id(tag: _OpenTag) -> str:
        raw = tag.argument.strip()
        if not raw.isdigit() or int(raw) == 0 or int(raw) >= 2**63:
            raise TelegramHtmlError("Invalid custom emoji identifier specified")
        return str(int(raw))

    @staticmethod
    def date_time(tag: _OpenTag) -> dict[str, Any]:
        unix = (tag.attributes.get("unix") or "").strip()
        if not re.fullmatch(r"-?\d{1,12}", unix):
            raise TelegramHtmlError('Invalid Unix timestamp specified in the tag "tg-time"')
        extra: dict[str, Any] = {"unix_time": int(unix)}
        fmt = tag.attributes.get("format")
        if fmt is not None:
            if not _DATE_TIME_FORMAT.fullmatch(fmt):
                raise TelegramHtmlError(f'Invalid date-time format "{fmt}" specified')
            if fmt:
                extra["date_time_format"] = fmt
        return extra

    def finish(self) -> ParsedHtml:
        for entity in self.entities:
            if entity.type == "code":
                entity.extra.pop("language", None)
        ordered = sorted(self.entities, key=lambda e: (e.offset, -e.length))
        if self.strict and len(ordered) > MAX_ENTITIES:
            raise TelegramHtmlError(
                f"Too many formatting entities: {len(ordered)} > {MAX_ENTITIES} "
                "(Telegram silently ignores the rest)"
            )
        text = self.out.decode("utf-8")
        return ParsedHtml(text, [e.to_api() for e in ordered])


def parse_telegram_html(source: str, *, strict: bool = True) -> ParsedHtml:
    """Parse ``source`` as Telegram HTML into (visible text, Bot API entities).

    Raises :class:`TelegramHtmlError` with Telegram's description when Telegram would
    reject the text; with ``strict=True`` also for the silently-mangled inputs listed
    in the module docstring.
    """
    return _Parser(source, strict=strict).run()


def strip_formatted(text: str, entities: list[dict[str, Any]]) -> ParsedHtml:
    """Trim surrounding whitespace the way Telegram does before storing a message.

    Entity offsets are shifted and clipped so that they still point at the same
    characters; entities that only covered whitespace disappear.
    """
    stripped_left = text.lstrip(_ASCII_WHITESPACE)
    result = stripped_left.rstrip(_ASCII_WHITESPACE)
    shift = utf16_len(text) - utf16_len(stripped_left)
    limit = utf16_len(result)
    fixed: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, limit)
        if end > start:
            fixed.append({**entity, "offset": start, "length": end - start})
    return ParsedHtml(result, fixed)


# What Telegram counts as "no text" (TDLib, td/telegram/misc.cpp and MessageEntity.cpp):
# clean_input_string turns the C0 controls into spaces and drops \r, U+2028..U+202E and
# the combining marks U+030A, U+0333, U+033F; is_empty_string (strip_empty_characters)
# then also ignores spaces, newlines, U+00A0, U+1680, U+180E, U+2000..U+200F, U+202F,
# U+205F, U+2800, U+3000, U+FEFF, U+FFFC and the tag characters U+E0000..U+E007F.
# A message whose text holds nothing else is refused with "message text is empty" (the
# Bot API documents texts as "1-4096 characters after entities parsing").
_NOT_EMPTY = re.compile(
    "[^\x00-\x20\u00a0\u030a\u0333\u033f\u1680\u180e\u2000-\u200f\u2028-\u202f"
    "\u205f\u2800\u3000\ufeff\ufffc\U000e0000-\U000e007f]"
)


def is_empty_text(text: str) -> bool:
    """True if Telegram would find no visible character in ``text`` (see above)."""
    return _NOT_EMPTY.search(text) is None


_ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)


def validate_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """Check an explicit ``entities`` array (instead of parse_mode) against ``text``.

    Telegram answers malformed arrays with 400; the fake uses the same prefix as for
    HTML errors so the bot sees one kind of failure for bad formatting.
    """
    if not isinstance(entities, list):
        raise TelegramHtmlError('Field "entities" must be an Array')
    total = utf16_len(text)
    # UTF-16 positions between the two halves of a surrogate pair (an astral character):
    # TDLib (clean_input_string_with_entities) refuses an entity that starts or ends there.
    inside: set[int] = set()
    if total != len(text):
        position = 0
        for ch in text:
            position += 1
            if ord(ch) > 0xFFFF:
                inside.add(position)
                position += 1
    result: list[dict[str, Any]] = []
    for index, entity in enumerate(entities):
        if not isinstance(entity, dict):
            raise TelegramHtmlError(f"Entity {index} must be an Object")
        kind = entity.get("type")
        offset = entity.get("offset")
        length = entity.get("length")
        if kind not in _ENTITY_TYPES:
            raise TelegramHtmlError(f"Unsupported entity type {kind!r}")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0:
            raise TelegramHtmlError(f"Entity {index} has invalid offset or length")
        if length <= 0 or offset + length > total:
            raise TelegramHtmlError(f"Entity {index} is outside of the text")
        if offset in inside:
            raise TelegramHtmlError(
                f"Entity begins in a middle of a UTF-16 symbol at UTF-16 offset {offset}"
            )
        if offset + length in inside:
            raise TelegramHtmlError(
                f"Entity beginning at UTF-16 offset {offset} ends in a middle of a UTF-16 symbol"
            )
        if kind == "text_link" and check_link(str(entity.get("url", ""))) is None:
            raise TelegramHtmlError(f"Entity {index} has an invalid url")
        if kind == "text_mention" and not isinstance(entity.get("user"), dict):
            raise TelegramHtmlError(f"Entity {index} must have a user")
        if kind == "custom_emoji" and not str(entity.get("custom_emoji_id", "")).isdigit():
            raise TelegramHtmlError("Invalid custom emoji identifier specified")
        result.append(dict(entity))
    if len(result) > MAX_ENTITIES:
        raise TelegramHtmlError(f"Too many formatting entities: {len(result)} > {MAX_ENTITIES}")
    return result
