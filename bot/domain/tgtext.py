"""Telegram text utilities: escaping, a strict HTML validator, markdown conversion, splitting.

Everything here is pure (no I/O, no clock, no ``telegram`` import), so the renderer, the
bot and ``paperfeed preview`` can share it and the tests can hammer it with hypothesis.

Telegram's HTML parse mode (core.telegram.org/bots/api#html-style, implemented by
``parse_html`` in TDLib) fails the whole message with ``400 can't parse entities`` on
one stray ``<``, an unknown tag or an unclosed one, and it limits a message to 4096
characters *after* entity parsing. The functions below make sure we never send such a
message:

* :func:`validate_telegram_html` accepts a strict *subset* of what Telegram accepts, so
  "valid here" implies "accepted there"; it returns the visible plain text.
* :func:`markdown_to_html` turns the LLM analysis (markdown mixed with raw, often broken
  HTML) into HTML that always passes the validator, whatever the input.
* :func:`split_html` cuts valid HTML into messages that each fit the limit and are each
  valid on their own.
* Lengths are measured in UTF-16 code units (:func:`utf16_len`), which is how Telegram
  counts entity offsets; it is never smaller than the code-point count Telegram uses for
  the length limit, so a budget met in UTF-16 units is always met.
"""

from __future__ import annotations

import html as _html
import re
import textwrap
import unicodedata
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "MAX_CAPTION_LEN",
    "MAX_ENTITIES",
    "MAX_MESSAGE_LEN",
    "clean_text",
    "escape",
    "hashtag",
    "is_blank",
    "markdown_to_html",
    "safe_url",
    "split_html",
    "truncate",
    "utf16_len",
    "validate_telegram_html",
    "visible_len",
]

MAX_MESSAGE_LEN = 4096
"""Telegram's limit for a text message, counted after entity parsing."""
MAX_CAPTION_LEN = 1024
"""Telegram's limit for a media caption (albums of figures)."""
MAX_ENTITIES = 100
"""Telegram silently ignores formatting after the 100th entity of a message."""

ELLIPSIS = "…"
_WORD_BACKOFF = 20


# --------------------------------------------------------------------------- basics


def utf16_len(s: str) -> int:
    """Length of ``s`` in UTF-16 code units, the unit Telegram uses for offsets.

    Astral characters (emoji, math letters like 𝒙) count 2 though Python's ``len`` says
    1. ``surrogatepass`` keeps a lone surrogate countable instead of raising.
    """
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def escape(s: str, *, quote: bool = False) -> str:
    """Escape text for Telegram HTML: ``&``, ``<``, ``>`` always, ``"`` when ``quote``.

    Use ``quote=True`` for attribute values (``href``). Only the four named entities
    Telegram knows are produced (``&amp; &lt; &gt; &quot;``).
    """
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if quote:
        s = s.replace('"', "&quot;")
    return s


# Characters we never pass through: C0/C1 controls other than tab and newline (Telegram
# turns them into spaces or rejects them), lone surrogates (not encodable as UTF-8, so
# the HTTP request itself fails) and the Unicode noncharacters U+FDD0..U+FDEF, which
# markdown_to_html uses internally as markers.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_NONCHAR_RE = re.compile("[\ufdd0-\ufdef]")


def clean_text(s: str) -> str:
    """Normalise text so that it is safe to send: newlines, controls, surrogates.

    ``\\r\\n``/``\\r`` become ``\\n``; other control characters (the digests contain a
    vertical tab) become spaces, as Telegram itself would do; lone surrogates become
    U+FFFD. Nothing else changes, so lengths stay predictable.
    """
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _CONTROL_RE.sub(" ", s)
    s = _SURROGATE_RE.sub("\ufffd", s)
    return _NONCHAR_RE.sub("", s)


# What Telegram does not count as text (TDLib: clean_input_string turns C0 controls into
# spaces and drops U+2028..U+202E and three combining marks; is_empty_string then skips
# spaces, newlines, NBSP, zero-width characters, U+2000..U+200A, U+2800, U+3000, U+FEFF,
# U+FFFC and the tag characters). A message of nothing else is refused: "message text is
# empty". Python's str.strip() misses most of these (U+200B, U+2800, U+FEFF...).
_BLANK_RE = re.compile(
    "[\x00-\x20\u00a0\u030a\u0333\u033f\u1680\u180e\u2000-\u200f\u2028-\u202f"
    "\u205f\u2800\u3000\ufeff\ufffc\U000e0000-\U000e007f]*"
)


def is_blank(s: str) -> bool:
    """True if Telegram would see no text in ``s`` (plain text, not HTML) and refuse it."""
    return _BLANK_RE.fullmatch(s) is not None


def truncate(s: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """Cut plain text to at most ``limit`` UTF-16 units, ending in ``ellipsis`` if cut.

    Works on plain text (escape afterwards), so it can never cut inside a tag or an
    entity, and it never splits a surrogate pair. A cut inside a word backs off to the
    previous space if that is at most 20 characters back (CJK text has no spaces and is
    cut anywhere); whitespace before the ellipsis is dropped. Returns ``""`` when even
    the ellipsis does not fit.
    """
    if limit <= 0:
        return ""
    if utf16_len(s) <= limit:
        return s
    room = limit - utf16_len(ellipsis)
    if room < 0:
        return ""
    out: list[str] = []
    used = 0
    for ch in s:
        w = 2 if ord(ch) > 0xFFFF else 1
        if used + w > room:
            break
        out.append(ch)
        used += w
    kept = "".join(out)
    if kept and not kept[-1].isspace() and not s[len(kept)].isspace():
        space = kept.rfind(" ")
        if space > 0 and len(kept) - space <= _WORD_BACKOFF:
            kept = kept[:space]  # end on a whole word when one is close
    return kept.rstrip() + ellipsis


_URL_HOST_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+(?::\d{1,5})?$"
)
_URL_TRAIL = ".,;:!?)]}>'\"，。；：！？）】」』》"


def safe_url(url: str) -> str | None:
    """Return ``url`` if it is an absolute http(s) URL Telegram will accept, else None.

    Telegram answers ``400`` for an inline button whose URL it cannot parse and silently
    drops text links with bad URLs, so we only emit absolute http(s) URLs with a plain
    ASCII host name. Trailing punctuation that a comment or prose glued onto the URL
    (``…/UltrAvatar/.``, ``…page)``) is removed. Relative paths (the digests have
    ``./crop_3DGS/…`` images and ``<a href="3">``) yield None.
    """
    url = url.strip()
    while url and url[-1] in _URL_TRAIL:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    if not re.match(r"(?i)^https?://", url) or re.search(r"[\s<>\"\\\x00-\x1f\x7f]", url):
        return None
    if _SURROGATE_RE.search(url) or _NONCHAR_RE.search(url):
        return None  # not encodable as UTF-8, the request would fail
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.netloc.rsplit("@", 1)[-1]
    if not _URL_HOST_RE.match(host):
        return None
    return url


# --------------------------------------------------------------------------- validator

# The tags Telegram documents for parse_mode HTML. tg-emoji and tg-time are left out on
# purpose: they need a premium/Fragment bot or a recent server, and we never produce them.
_FORMATTING = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del",
                         "tg-spoiler", "span"})
_ALLOWED = _FORMATTING | {"a", "code", "pre", "blockquote"}

_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TEXT_RE = re.compile(r"[^<>&]+")
_START_TAG_RE = re.compile(
    r"<([a-z][a-z0-9-]*)((?:\s+[a-z][a-z0-9-]*(?:\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'))?)*)\s*>"
)
_END_TAG_RE = re.compile(r"</([a-z][a-z0-9-]*)\s*>")
_ATTR_RE = re.compile(r"\s+([a-z][a-z0-9-]*)(?:\s*=\s*(?:\"([^\"<>]*)\"|'([^'<>]*)'))?")
_HREF_RE = re.compile(r"(?i)^(?:https?://|tg://|mailto:)\S+$")


def _decode_entity(m: re.Match[str], where: int) -> str:
    named, dec, hexa = m.groups()
    if named:
        return _NAMED[named]
    code = int(dec) if dec else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise ValueError(f"numeric entity out of range at offset {where}: {m.group(0)!r}")
    return chr(code)


def _decode_value(value: str, where: int) -> str:
    """Decode an attribute value, which must follow the same entity rules as text."""
    out: list[str] = []
    i = 0
    while i < len(value):
        amp = value.find("&", i)
        if amp < 0:
            out.append(value[i:])
            break
        out.append(value[i:amp])
        m = _ENTITY_RE.match(value, amp)
        if not m:
            raise ValueError(f"bare '&' in an attribute at offset {where}")
        out.append(_decode_entity(m, where))
        i = m.end()
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: Literal["text", "open", "close"]
    value: str  # decoded text, or the tag name
    raw: str = ""  # the start tag as written, to reopen it after a split


def _check_open(name: str, attrs: dict[str, str | None], stack: list[str], at: int) -> None:
    """Telegram's nesting and attribute rules, read strictly (see the module docstring)."""
    if name not in _ALLOWED:
        raise ValueError(f"unsupported tag <{name}> at offset {at}")
    if stack and stack[-1] in ("code", "pre") and not (name == "code" and stack[-1] == "pre"):
        raise ValueError(f"<{name}> inside <{stack[-1]}> at offset {at}")
    if name == "a" and "a" in stack:
        raise ValueError(f"nested <a> at offset {at}")
    if name == "code" and stack and stack[-1] not in ("pre", "blockquote"):
        raise ValueError(f"<code> inside <{stack[-1]}> at offset {at}")
    if name in ("pre", "blockquote") and stack:
        raise ValueError(f"<{name}> must not be nested (inside <{stack[-1]}>) at offset {at}")
    allowed: dict[str, set[str]] = {
        "a": {"href"}, "span": {"class"}, "code": {"class"}, "blockquote": {"expandable"},
    }
    extra = set(attrs) - allowed.get(name, set())
    if extra:
        raise ValueError(f"attribute {sorted(extra)[0]!r} not allowed on <{name}> at offset {at}")
    for key, value in attrs.items():
        if (key == "expandable") != (value is None):
            raise ValueError(f"attribute {key!r} of <{name}> has a bad form at offset {at}")
    if name == "a":
        href = attrs.get("href")
        if not href or not _HREF_RE.match(href):
            raise ValueError(f"<a> needs an absolute href at offset {at}")
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise ValueError(f'<span> needs class="tg-spoiler" at offset {at}')
    if name == "code" and "class" in attrs:
        cls = attrs["class"] or ""
        if not (stack and stack[-1] == "pre") or not re.fullmatch(r"language-[\w+#.-]+", cls):
            raise ValueError(f"<code class> only as language-… directly inside <pre>, offset {at}")


def _tokenize(html: str) -> list[_Tok]:
    """Parse Telegram HTML strictly; raise ValueError with an offset on the first problem."""
    m_sur = _SURROGATE_RE.search(html)
    if m_sur:
        raise ValueError(f"lone surrogate at offset {m_sur.start()}")
    if "\x00" in html:
        raise ValueError(f"NUL character at offset {html.index(chr(0))}")
    toks: list[_Tok] = []
    stack: list[str] = []
    buf: list[str] = []
    i, n = 0, len(html)

    def flush() -> None:
        if buf:
            toks.append(_Tok("text", "".join(buf)))
            buf.clear()

    while i < n:
        c = html[i]
        if c == "&":
            m = _ENTITY_RE.match(html, i)
            if not m:
                raise ValueError(f"bare '&' (not one of &lt; &gt; &amp; &quot; &#N;) at offset {i}")
            buf.append(_decode_entity(m, i))
            i = m.end()
        elif c == ">":
            raise ValueError(f"bare '>' at offset {i}")
        elif c == "<":
            if html.startswith("</", i):
                m = _END_TAG_RE.match(html, i)
                if not m:
                    raise ValueError(f"malformed end tag at offset {i}")
                name = m.group(1)
                if not stack:
                    raise ValueError(f"unexpected end tag </{name}> at offset {i}")
                if stack[-1] != name:
                    raise ValueError(f"</{name}> at offset {i} but <{stack[-1]}> is open")
                flush()
                stack.pop()
                toks.append(_Tok("close", name))
            else:
                m = _START_TAG_RE.match(html, i)
                if not m:
                    raise ValueError(f"'<' that does not start a valid tag at offset {i}")
                name = m.group(1)
                attrs: dict[str, str | None] = {}
                for am in _ATTR_RE.finditer(m.group(2)):
                    key = am.group(1)
                    if key in attrs:
                        raise ValueError(f"duplicate attribute {key!r} at offset {i}")
                    value = am.group(2) if am.group(2) is not None else am.group(3)
                    attrs[key] = None if value is None else _decode_value(value, i)
                _check_open(name, attrs, stack, i)
                flush()
                stack.append(name)
                toks.append(_Tok("open", name, m.group(0)))
            i = m.end()
        else:
            m = _TEXT_RE.match(html, i)
            assert m is not None
            buf.append(m.group(0))
            i = m.end()
    if stack:
        raise ValueError(f"unclosed <{stack[-1]}> at end of text")
    flush()
    return toks


def validate_telegram_html(html: str) -> str:
    """Check ``html`` against Telegram's HTML style; return the visible plain text.

    Raises ValueError (message names the offset) on anything Telegram might refuse:
    tags other than b/strong/i/em/u/ins/s/strike/del/tg-spoiler/span class="tg-spoiler"/
    a href/code/pre/blockquote [expandable]; upper-case or malformed tags; unknown
    attributes; bad nesting (end tags must match, no tags inside code/pre except
    ``<pre><code class="language-x">``, no nested links, pre/blockquote only at top
    level, code only at top level or directly in pre/blockquote); ``&`` that is not
    ``&lt; &gt; &amp; &quot;`` or a valid numeric entity; bare ``<`` or ``>``; lone
    surrogates. It is deliberately stricter than Telegram (which, for example, lets a
    bare ``>`` or an unknown ``&foo`` through), so passing it is a safe guarantee. It does
    not check the length; see :func:`visible_len`.
    """
    return "".join(t.value for t in _tokenize(html) if t.kind == "text")


def visible_len(html: str) -> int:
    """UTF-16 length of the text Telegram will count for valid ``html`` (tags excluded,
    ``&amp;`` counting 1). Raises ValueError if ``html`` is not valid."""
    return utf16_len(validate_telegram_html(html))


# --------------------------------------------------------------------------- hashtags


def _is_hashtag_char(ch: str) -> bool:
    """TDLib's ``is_hashtag_letter``: letters, decimal digits, ``_``, ZWNJ, middle dot,
    Sinhala."""
    if ch in "_\u200c\u00b7" or 0xD80 <= ord(ch) <= 0xDFF:
        return True
    cat = unicodedata.category(ch)
    return cat.startswith("L") or cat == "Nd"


def hashtag(tag: str) -> str:
    """Turn a topic tag into a hashtag Telegram recognises, or ``""`` if nothing is left.

    Telegram (TDLib ``match_hashtags``) takes ``#`` followed by up to 256 letters,
    decimal digits, ``_``, ZWNJ or middle dots, and only if at least one of them is a
    letter; so ``#3DGS`` and ``#元宇宙_虚拟人`` work but ``#2024`` does not. Words are
    joined CamelCase (``Talking Head Generation`` → ``#TalkingHeadGeneration``, the
    first letter of each later word is upper-cased), ``/`` becomes ``_`` (as in the
    digest file names), other characters are dropped. A tag without any letter gets a
    ``tag_`` prefix (``2024`` → ``#tag_2024``) because a leading underscore alone would
    still not make it a hashtag.
    """
    parts: list[str] = []
    for part in clean_text(tag).split("/"):
        out: list[str] = []
        for word in re.split(r"[^\w\u200c\u00b7]+", part):
            if out and word:
                word = word[0].upper() + word[1:]
            kept = "".join(ch for ch in word if _is_hashtag_char(ch))
            if kept:
                out.append(kept)
        if out:
            parts.append("".join(out))
    body = "_".join(parts)
    if not body:
        return ""
    if not any(unicodedata.category(ch).startswith("L") for ch in body):
        body = "tag_" + body
    return "#" + body[:256]


# --------------------------------------------------------------------------- markdown

# Internal markers (Unicode noncharacters, stripped from the input by clean_text) that
# carry inline HTML through the line-based markdown pass.
_B_ON, _B_OFF = "\ufdd0", "\ufdd1"
_I_ON, _I_OFF = "\ufdd2", "\ufdd3"
_U_ON, _U_OFF = "\ufdd4", "\ufdd5"
_S_ON, _S_OFF = "\ufdd6", "\ufdd7"
_C_ON, _C_OFF = "\ufdd8", "\ufdd9"
_A_ON, _A_MID, _A_OFF = "\ufdda", "\ufddb", "\ufddc"
_PRE = "\ufddd"  # _PRE + index + _PRE stands for an extracted pre block

_INLINE_TAGS = {
    "b": (_B_ON, _B_OFF), "strong": (_B_ON, _B_OFF),
    "i": (_I_ON, _I_OFF), "em": (_I_ON, _I_OFF), "cite": (_I_ON, _I_OFF),
    "u": (_U_ON, _U_OFF), "ins": (_U_ON, _U_OFF),
    "s": (_S_ON, _S_OFF), "strike": (_S_ON, _S_OFF), "del": (_S_ON, _S_OFF),
    "code": (_C_ON, _C_OFF), "tt": (_C_ON, _C_OFF), "kbd": (_C_ON, _C_OFF),
}
_NEWLINE_TAGS = frozenset({"br", "div", "table", "thead", "tbody", "tfoot", "tr", "dl", "dt",
                           "dd", "blockquote", "section", "article", "header", "footer",
                           "figure", "figcaption", "center", "pre"})
_CELL_TAGS = frozenset({"td", "th"})
_DROP_TAGS = frozenset({"img", "span", "font", "sup", "sub", "small", "big", "mark", "abbr",
                        "var", "samp", "q", "input", "source", "video", "audio", "iframe",
                        "picture", "col", "colgroup", "caption", "nobr", "wbr", "meta", "link"})
# `summary` and `details` are not here on purpose: the analysis uses `<summary>` as prose
# ("没有重复<summary>中的内容"); whole screenshot `<details>` blocks are removed first.
_KNOWN_TAGS = (set(_INLINE_TAGS) | _NEWLINE_TAGS | _CELL_TAGS | _DROP_TAGS
               | {"p", "ol", "ul", "li", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "a"})

_DETAILS_RE = re.compile(r"<details\b[^<>]*>.*?</details\s*>", re.I | re.S)
_PRE_BLOCK_RE = re.compile(r"<pre\b[^<>]*>(.*?)</pre\s*>", re.I | re.S)
_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)
_HTML_TOKEN_RE = re.compile(
    r"<((?:https?|ftp)://[^\s<>]+)>"  # markdown autolink <https://…>
    r"|<(/?)([A-Za-z][A-Za-z0-9]*)((?:\s[^<>]*?)?)\s*/?>"
)
_HREF_ATTR_RE = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_START_ATTR_RE = re.compile(r"""\bstart\s*=\s*["']?(\d{1,6})""", re.I)


def _strip_known_tags(raw: str) -> str:
    """Remove HTML tags we know (``<code>``, ``<b>``…) from raw pre content; keep the rest."""
    return _HTML_TOKEN_RE.sub(
        lambda m: "" if m.group(1) is None and m.group(3).lower() in _KNOWN_TAGS else m.group(0),
        raw,
    )


def _dedent_block(text: str) -> str:
    return textwrap.dedent(text.expandtabs(4)).strip("\n")


class _HtmlFlattener:
    """Turns raw HTML inside markdown into markdown lines plus inline markers.

    Block tags become newlines, list items become ``• `` / ``N. `` lines indented by
    depth, headings become ``#`` lines, inline tags become markers. Tags it does not know
    (``<Methods>``, ``<topic>``) stay as text; broken ones never reach the output as tags.
    Newlines asked for by block tags are pending and merged (the largest wins) so that
    ``</p></li><li>`` gives one line break, not three; whitespace-only text between tags
    counts as such a request, as in HTML.
    """

    def __init__(self) -> None:
        self.out: list[str] = []
        self.lists: list[list[int]] = []  # per open list: [is_ordered, counter]
        self.after_li = False  # just emitted a list marker: swallow a following <p>
        self.links: list[bool] = []  # per open <a>: did we emit a link marker?
        self.newlines = 0  # pending line breaks, written before the next output

    def run(self, text: str) -> str:
        pos = 0
        for m in _HTML_TOKEN_RE.finditer(text):
            if m.group(1) is None and m.group(3).lower() not in _KNOWN_TAGS:
                continue  # not a tag we know: stays literal text
            self.text(text[pos:m.start()])
            pos = m.end()
            if m.group(1) is not None:
                self.autolink(m.group(1))
            else:
                self.tag(m.group(3).lower(), bool(m.group(2)), m.group(4) or "")
        self.text(text[pos:])
        self.emit("")
        return "".join(self.out)

    def emit(self, s: str) -> None:
        if self.newlines:
            self.out.append("\n" * self.newlines)
            self.newlines = 0
        self.out.append(s)

    def want_newlines(self, count: int) -> None:
        self.newlines = max(self.newlines, count)

    def text(self, raw: str) -> None:
        if not raw:
            return
        if not raw.strip():
            if "\n" in raw:
                self.want_newlines(min(raw.count("\n"), 2))
            elif self.out or self.newlines:
                self.emit(raw)
            return
        self.after_li = False
        # Entities are decoded here, after tags were recognised, so "&lt;b&gt;" stays text;
        # pre placeholders are kept out of the decoding and cleaning.
        for part in re.split("(" + _PRE + r"\d+" + _PRE + ")", raw):
            self.emit(part if part.startswith(_PRE) else clean_text(_html.unescape(part)))

    def autolink(self, url: str) -> None:
        good = safe_url(_html.unescape(url))
        if good:
            self.emit(f"{_A_ON}{good}{_A_MID}{good}{_A_OFF}")
        else:
            self.text(url)

    def tag(self, name: str, closing: bool, attrs: str) -> None:
        if name in _INLINE_TAGS:
            self.emit(_INLINE_TAGS[name][1 if closing else 0])
        elif name == "a":
            if closing:
                if self.links and self.links.pop():
                    self.emit(_A_OFF)
                return
            hm = _HREF_ATTR_RE.search(attrs)
            href = next((g for g in hm.groups() if g is not None), "") if hm else ""
            good = safe_url(_html.unescape(href))
            self.links.append(good is not None)
            if good:
                self.emit(f"{_A_ON}{good}{_A_MID}")
        elif name in ("ol", "ul"):
            self.want_newlines(1)
            if closing:
                if self.lists:
                    self.lists.pop()
            else:
                sm = _START_ATTR_RE.search(attrs) if name == "ol" else None
                self.lists.append([name == "ol", int(sm.group(1)) - 1 if sm else 0])
        elif name == "li":
            self.want_newlines(1)
            if closing:
                return
            indent = "  " * max(len(self.lists) - 1, 0)
            marker = "• "
            if self.lists and self.lists[-1][0]:
                self.lists[-1][1] += 1
                marker = f"{self.lists[-1][1]}. "
            self.emit(indent + marker)
            self.after_li = True
            return
        elif name == "p":
            if closing:
                self.want_newlines(1)
            elif not self.after_li:
                self.want_newlines(2)
            return
        elif name[0] == "h" and name[1:].isdigit():
            self.want_newlines(2)
            if not closing:
                self.emit("#" * int(name[1:]) + " ")
        elif name == "hr":
            self.want_newlines(2)
            self.emit("---")
            self.want_newlines(2)
        elif name in _NEWLINE_TAGS:
            self.want_newlines(1)
        elif name in _CELL_TAGS:
            self.emit(" ")
        # _DROP_TAGS: nothing
        self.after_li = False


_INLINE_RE = re.compile(
    "(?P<hlink>" + _A_ON + "(?P<hurl>[^" + _A_MID + "]*)" + _A_MID
    + "(?P<hlabel>[^" + _A_OFF + _A_ON + "]*)(?:" + _A_OFF + "|$))"
    + "|(?P<hcode>" + _C_ON + "(?P<hctext>[^" + _C_OFF + "]*)(?:" + _C_OFF + "|$))"
    + "|(?P<mk>[\ufdd0-\ufddc])"
    + r"|(?P<code>(?P<ticks>`+)(?P<ctext>.+?)(?<!`)(?P=ticks)(?!`))"
    + r"|(?P<tex>\$\$.+?\$\$|\$[^$\s](?:[^$]*?[^$\s\\])?\$)"
    + r"|(?P<link>\[(?P<label>[^\[\]]*)\]\((?P<url>[^()\s]+(?:\([^()\s]*\)[^()\s]*)*)"
    + r"(?:\s+\"[^\"]*\")?\))"
    + r"|(?P<delim>\*\*|__|\*)"
)
_MARKER_STYLE = {_B_ON: ("b", 1), _B_OFF: ("b", -1), _I_ON: ("i", 1), _I_OFF: ("i", -1),
                 _U_ON: ("u", 1), _U_OFF: ("u", -1), _S_ON: ("s", 1), _S_OFF: ("s", -1)}
_STYLE_ORDER = ("b", "i", "u", "s")


class _Emitter:
    """Writes inline HTML that is valid by construction.

    Styles are counters, not a stack: the tags actually open are re-synced (closed and
    reopened in a fixed order) only right before visible text. So unbalanced or crossed
    markup (``<b><i>x</b></i>``, a lone ``**``) can never produce bad nesting, empty
    elements are never written, and code and links, which Telegram does not let sit
    inside formatting in our strict reading, are written after closing everything.
    """

    def __init__(self, base: dict[str, int] | None = None) -> None:
        self.want = dict.fromkeys(_STYLE_ORDER, 0)
        if base:
            self.want.update(base)
        self.open: list[str] = []
        self.out: list[str] = []

    def style(self, key: str, delta: int) -> None:
        self.want[key] = max(0, self.want[key] + delta)

    def _sync(self) -> None:
        target = [k for k in _STYLE_ORDER if self.want[k] > 0]
        keep = 0
        while keep < min(len(target), len(self.open)) and target[keep] == self.open[keep]:
            keep += 1
        self.out.extend(f"</{k}>" for k in reversed(self.open[keep:]))
        self.out.extend(f"<{k}>" for k in target[keep:])
        self.open = target

    def close_all(self) -> None:
        self.out.extend(f"</{k}>" for k in reversed(self.open))
        self.open = []

    def text(self, s: str) -> None:
        s = _NONCHAR_RE.sub("", s)
        if not s:
            return
        if s.strip():
            self._sync()
        self.out.append(escape(s))

    def code(self, s: str) -> None:
        s = _NONCHAR_RE.sub("", s)
        if not s.strip():
            self.text(s)
            return
        self.close_all()
        self.out.append(f"<code>{escape(s)}</code>")

    def link(self, url: str, label_html: str) -> None:
        self.close_all()
        self.out.append(f'<a href="{escape(url, quote=True)}">{label_html}</a>')

    def finish(self) -> str:
        self.close_all()
        return "".join(self.out)


def _can_open(line: str, start: int, end: int, delim: str) -> bool:
    nxt = line[end] if end < len(line) else " "
    if nxt.isspace():
        return False
    if delim[0] == "_":
        prev = line[start - 1] if start else " "
        return not prev.isalnum()
    return True


def _can_close(line: str, start: int, end: int, delim: str) -> bool:
    prev = line[start - 1] if start else " "
    if prev.isspace():
        return False
    if delim[0] == "_":
        nxt = line[end] if end < len(line) else " "
        return not nxt.isalnum()
    return True


def _render_inline(line: str, base: dict[str, int] | None = None, *, nested: bool = False) -> str:
    """Render one line of inline markdown (plus markers) as valid Telegram HTML."""
    # Pass 1: tokenise; emphasis delimiters are resolved into pairs before emitting.
    events: list[tuple[str, str, str]] = []  # (kind, a, b)
    pos = 0
    for m in _INLINE_RE.finditer(line):
        if m.start() > pos:
            events.append(("text", line[pos:m.start()], ""))
        pos = m.end()
        if m.group("hlink") is not None:
            events.append(("link", m.group("hurl"), m.group("hlabel")))
        elif m.group("hcode") is not None:
            events.append(("code", m.group("hctext"), ""))
        elif m.group("mk") is not None:
            events.append(("mark", m.group("mk"), ""))
        elif m.group("code") is not None:
            events.append(("code", m.group("ctext").strip(" ") or m.group("ctext"), ""))
        elif m.group("tex") is not None:
            events.append(("text", m.group("tex"), ""))  # TeX stays literal: no emphasis
        elif m.group("link") is not None:
            url = safe_url(_html.unescape(m.group("url")))
            if url:
                events.append(("link", url, m.group("label")))
            else:
                events.append(("text", m.group("label"), ""))
        else:
            d = m.group("delim")
            flags = ("o" if _can_open(line, m.start(), m.end(), d) else "") + (
                "c" if _can_close(line, m.start(), m.end(), d) else "")
            events.append(("delim", d, flags))
    if pos < len(line):
        events.append(("text", line[pos:], ""))

    role: dict[int, int] = {}  # event index -> +1 opens, -1 closes
    opened: list[int] = []
    for idx, (kind, d, flags) in enumerate(events):
        if kind != "delim":
            continue
        match = next((j for j in range(len(opened) - 1, -1, -1) if events[opened[j]][1] == d),
                     None) if "c" in flags else None
        if match is not None:
            role[opened[match]] = 1
            role[idx] = -1
            del opened[match:]
        elif "o" in flags:
            opened.append(idx)

    em = _Emitter(base)
    for idx, (kind, a, b) in enumerate(events):
        if kind == "text":
            em.text(a)
        elif kind == "mark":
            if a in _MARKER_STYLE:
                em.style(*_MARKER_STYLE[a])
        elif kind == "code":
            if nested:
                em.text(a)
            else:
                em.code(a)
        elif kind == "link":
            if nested:
                em.text(b)
                continue
            label = b if _NONCHAR_RE.sub("", b).strip() else a
            label_html = _render_inline(label, dict(em.want), nested=True)
            em.link(a, label_html)
        elif idx in role:
            em.style("b" if len(a) == 2 else "i", role[idx])
        else:
            em.text(a)
    return em.finish()


_HEADING_RE = re.compile(r"^#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$|^#{1,6}$")
_RULE_SAME_RE = re.compile(r"^([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BULLET_RE = re.compile(r"^([-*+•·▪●◦])[ \t]+(.*)$")
_NUMBER_RE = re.compile(r"^(\d{1,4}[.)、]|[(（]\d{1,3}[)）])[ \t]+(.*)$")
_QUOTE_RE = re.compile(r"^>+[ \t]?(.*)$")
_PRE_LINE_RE = re.compile("^" + _PRE + r"(\d+)" + _PRE + "$")
_RULE_TEXT = "—" * 10


def markdown_to_html(md: str) -> str:
    """Convert the LLM analysis (markdown with raw HTML) into valid Telegram HTML.

    Robustness beats fidelity: the result always passes :func:`validate_telegram_html`,
    whatever ``md`` holds. What it does:

    * ``<pre>…</pre>`` and fenced code become ``<pre>`` blocks (dedented);
    * headings (``#``…``######``, ``<h1>``…``<h6>``) become bold lines, ``---`` rules a
      line of dashes, ``> quotes`` a ``│`` prefix;
    * ``<li>`` items become ``• `` or ``N. `` lines (indented by depth), markdown bullets
      ``-``/``*``/``+`` become ``• ``, numbered lines keep their own number (the analysis
      has lists that start at 7);
    * ``<p>``/``<br>``/block tags become newlines; runs of blank lines collapse to one;
    * ``**bold**``, ``__bold__``, ``*italic*``, ``` `code` ```, ``[text](url)``,
      ``<https://…>`` and inline HTML (b/strong/i/em/u/s/del/code/a) are kept;
      unbalanced markers stay literal text, unbalanced tags are dropped;
    * ``$…$`` TeX is left as literal text (no emphasis inside);
    * anything that only looks like a tag (``<Methods>``, ``<jm≤n``, ``<summary>``) is
      shown as text; screenshot ``<details>`` blocks and ``<img>`` are removed;
    * entities are decoded (``&lt;`` shows as ``<``, ``&nbsp;`` as NBSP) and re-escaped,
      since Telegram knows only four named ones; links need an absolute http(s) URL.
    """
    text = clean_text(md)
    text = _DETAILS_RE.sub("\n", text)
    pres: list[str] = []

    def keep_pre(body: str) -> str:
        pres.append(_dedent_block(body))
        return f"\n{_PRE}{len(pres) - 1}{_PRE}\n"

    text = _FENCE_RE.sub(lambda m: keep_pre(m.group(2)), text)
    text = _PRE_BLOCK_RE.sub(
        lambda m: keep_pre(clean_text(_html.unescape(_strip_known_tags(m.group(1))))), text
    )
    text = _HtmlFlattener().run(text)

    lines_out: list[str] = []
    for raw_line in text.split("\n"):
        expanded = raw_line.expandtabs(4)
        stripped = expanded.strip()
        indent = len(expanded) - len(expanded.lstrip())
        if not _NONCHAR_RE.sub("", stripped).strip():
            lines_out.append("")
            continue
        pm = _PRE_LINE_RE.match(stripped)
        if pm:
            body = pres[int(pm.group(1))]
            if body.strip():
                lines_out.append(f"<pre>{escape(body)}</pre>")
            continue
        hm = _HEADING_RE.match(stripped)
        if hm:
            content = (hm.group(1) or "").strip()
            if content:
                lines_out.append(_render_inline(content, {"b": 1}))
            continue
        if _RULE_SAME_RE.match(stripped) and len(stripped) >= 3:
            lines_out.append(_RULE_TEXT)
            continue
        pad = "  " * min(indent // 2, 6)
        bm = _BULLET_RE.match(stripped)
        if bm and bm.group(2).strip():
            lines_out.append(pad + "• " + _render_inline(bm.group(2)))
            continue
        nm = _NUMBER_RE.match(stripped)
        if nm:
            lines_out.append(pad + escape(nm.group(1)) + " " + _render_inline(nm.group(2)))
            continue
        qm = _QUOTE_RE.match(stripped)
        if qm:
            lines_out.append("│ " + _render_inline(qm.group(1)))
            continue
        lines_out.append(_render_inline(stripped))

    result: list[str] = []
    for line in lines_out:
        blank = not line.strip()
        if blank and (not result or not result[-1]):
            continue
        result.append("" if blank else line.rstrip())
    while result and not result[-1]:
        result.pop()
    return "\n".join(result)


# --------------------------------------------------------------------------- splitting

_SENTENCE_END = frozenset("。！？；!?;")


def split_html(html: str, limit: int = MAX_MESSAGE_LEN,
               max_entities: int = MAX_ENTITIES) -> list[str]:
    """Split valid Telegram HTML into messages of at most ``limit`` visible UTF-16 units.

    Cuts preferably after a paragraph break (blank line), then a line break, then a
    sentence end, then a space; each only if it keeps the chunk at least half full,
    otherwise a hard cut between two characters. Never cuts inside a tag, an entity or
    a surrogate pair. Tags open at a cut are closed at the end of the chunk and reopened
    (with their attributes) at the start of the next, so every chunk is valid on its
    own. Whitespace at the cut is dropped (except inside ``<pre>``), and chunks without
    visible text (see :func:`is_blank`) are left out. Raises ValueError if ``html`` is not
    valid or ``limit < 2`` (an astral character needs 2 units).

    A chunk also ends before it would hold more than ``max_entities`` tags (reopened
    ones included), at the last line break if there is one: Telegram does not fail on
    more, it silently drops the formatting after the 100th entity. Entities Telegram
    detects by itself (URLs, hashtags) are not counted.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2 UTF-16 units")
    toks = _tokenize(html)
    plain = "".join(t.value for t in toks if t.kind == "text")
    if is_blank(plain):
        return []
    if utf16_len(plain) <= limit and sum(t.kind == "open" for t in toks) <= max_entities:
        return [html]

    # Flatten into items: one per character (kind "c"), or a tag ("o"/"x").
    kinds: list[str] = []
    vals: list[str] = []
    raws: list[str] = []
    for t in toks:
        if t.kind == "text":
            for ch in t.value:
                kinds.append("c")
                vals.append(ch)
                raws.append("")
        else:
            kinds.append("o" if t.kind == "open" else "x")
            vals.append(t.value)
            raws.append(t.raw)
    n = len(kinds)
    # Open-tag stack before each item, as (name, raw start tag) tuples.
    stacks: list[tuple[tuple[str, str], ...]] = []
    cur: tuple[tuple[str, str], ...] = ()
    for k in range(n):
        stacks.append(cur)
        if kinds[k] == "o":
            cur = (*cur, (vals[k], raws[k]))
        elif kinds[k] == "x":
            cur = cur[:-1]
    stacks.append(cur)

    def in_pre(k: int) -> bool:
        return any(name == "pre" for name, _ in stacks[k])

    chunks: list[str] = []
    start = 0
    while start < n:
        vis = 0
        best: dict[int, tuple[int, int]] = {}  # tier -> (cut index, visible before cut)
        prev = ""
        j = start
        entities = len(stacks[start])
        too_many = False
        while j < n:
            if kinds[j] == "o":
                entities += 1
                if entities > max_entities and vis > 0:
                    too_many = True
                    break
            elif kinds[j] == "c":
                ch = vals[j]
                w = 2 if ord(ch) > 0xFFFF else 1
                if vis + w > limit:
                    break
                vis += w
                if ch == "\n":
                    best[0 if prev == "\n" else 1] = (j + 1, vis)
                elif ch in _SENTENCE_END:
                    best[2] = (j + 1, vis)
                elif ch == " " or ch == "\u3000":
                    best[3] = (j + 1, vis)
                prev = ch
            j += 1
        if j >= n:
            cut = n
        else:
            cut = j
            for tier in range(4):
                if tier in best and (best[tier][1] >= limit // 2 or (too_many and tier < 2)):
                    cut = best[tier][0]
                    break
            while cut < n and kinds[cut] == "x":
                cut += 1
            while cut > start + 1 and kinds[cut - 1] == "o":
                cut -= 1
        # Drop whitespace at both ends of the chunk (tags stay, so nesting is unchanged).
        drop: set[int] = set()
        for rng in (range(start, cut), range(cut - 1, start - 1, -1)):
            for k in rng:
                if kinds[k] != "c":
                    continue
                if vals[k].isspace() and not in_pre(k):
                    drop.add(k)
                    continue
                break
        parts = [raw for _, raw in stacks[start]]
        text_run: list[str] = []
        for k in range(start, cut):
            if kinds[k] == "c":
                if k not in drop:
                    text_run.append(vals[k])
                continue
            parts.append(escape("".join(text_run)))
            text_run.clear()
            parts.append(raws[k] if kinds[k] == "o" else f"</{vals[k]}>")
        parts.append(escape("".join(text_run)))
        parts.extend(f"</{name}>" for name, _ in reversed(stacks[cut]))
        chunk = "".join(parts)
        if not is_blank(validate_telegram_html(chunk)):  # Telegram refuses an empty text
            chunks.append(chunk)
        start = cut
    return chunks
