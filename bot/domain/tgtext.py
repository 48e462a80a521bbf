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

import bisect
import html as _html
import re
import textwrap
import unicodedata
from collections.abc import Callable, Hashable, Sequence
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
    "html_unescape",
    "is_blank",
    "markdown_to_html",
    "safe_url",
    "split_html",
    "strip_tags",
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


# A decimal character reference of 8 or more significant digits is above U+10FFFF, which
# html.unescape turns into U+FFFD; it would first feed the digits to int(), which raises
# ValueError beyond 4300 digits (and takes quadratic time below that).
_LONG_DECIMAL_REF_RE = re.compile(r"&#([0-9]{8,})(;?)")


def _shorten_decimal_ref(m: re.Match[str]) -> str:
    digits = m.group(1).lstrip("0")
    return "\ufffd" if len(digits) > 7 else f"&#{digits or '0'}{m.group(2)}"


def html_unescape(s: str) -> str:
    """:func:`html.unescape` that cannot raise and stays linear on hostile numbers.

    ``&#`` followed by thousands of digits makes the standard function raise ValueError
    (Python's limit on int() of long digit strings); such a reference is out of range
    anyway and becomes U+FFFD, exactly as a short out-of-range one does.
    """
    if "&#" in s:
        s = _LONG_DECIMAL_REF_RE.sub(_shorten_decimal_ref, s)
    return _html.unescape(s)


def strip_tags(s: str) -> str:
    """Drop everything from each ``<`` to the next ``>``: a crude plain-text fallback for
    HTML the validator refused.

    The result of ``re.sub(r"<[^>]*>", "", s)``, which rescanned the rest of the text from
    every ``<`` that has no ``>`` after it (quadratic on a run of ``<``).
    """
    out: list[str] = []
    pos = 0
    while (lt := s.find("<", pos)) != -1:
        gt = s.find(">", lt + 1)
        if gt == -1:
            break
        out.append(s[pos:lt])
        pos = gt + 1
    out.append(s[pos:])
    return "".join(out)


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
    # One pass from the end (a slice and two counts per character were quadratic on a
    # URL followed by a long run of dots or brackets). "(" is not trailing punctuation,
    # so only the ")" count changes while stripping.
    end, opens, closes = len(url), url.count("("), url.count(")")
    while end and url[end - 1] in _URL_TRAIL:
        if url[end - 1] == ")":
            if opens >= closes:
                break
            closes -= 1
        end -= 1
    url = url[:end]
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
# Possessive quantifiers: what a tag may hold is unambiguous (attributes are separated by
# whitespace, values quoted), so no backtracking is needed and none is allowed.
_START_TAG_RE = re.compile(
    r"<([a-z][a-z0-9-]*+)"
    r"((?:\s++[a-z][a-z0-9-]*+(?:\s*+=\s*+(?:\"[^\"<>]*+\"|'[^'<>]*+'))?+)*+)\s*+>"
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


def _check_open(name: str, attrs: dict[str, str | None], stack: list[str], in_link: bool,
                at: int) -> None:
    """Telegram's nesting and attribute rules, read strictly (see the module docstring).

    ``in_link`` says whether an ``<a>`` is open (the caller counts them: searching the
    stack was quadratic on deeply nested tags).
    """
    if name not in _ALLOWED:
        raise ValueError(f"unsupported tag <{name}> at offset {at}")
    if stack and stack[-1] in ("code", "pre") and not (name == "code" and stack[-1] == "pre"):
        raise ValueError(f"<{name}> inside <{stack[-1]}> at offset {at}")
    if name == "a" and in_link:
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
    links = 0  # open <a> tags
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
                links -= name == "a"
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
                _check_open(name, attrs, stack, links > 0, i)
                flush()
                stack.append(name)
                links += name == "a"
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

# Blocks are found by small scanners, not by one `<open>.*?</close>` regex: that regex
# rescans the rest of the text from every unclosed opening (quadratic on 10,000 lines of
# "```x" or of "<details>"). See _sub_blocks and _fence_pairs.
_DETAILS_OPEN_RE = re.compile(r"<details\b[^<>]*+>", re.I)
_DETAILS_CLOSE_RE = re.compile(r"</details\s*+>", re.I)
_PRE_OPEN_RE = re.compile(r"<pre\b[^<>]*+>", re.I)
_PRE_CLOSE_RE = re.compile(r"</pre\s*+>", re.I)
# A tag is `<name` plus anything up to the next `>`; _html_token decides whether that is
# a tag (one scan, where the former `(?:\s[^<>]*?)?\s*/?>` was quadratic on a run of
# spaces inside an unclosed tag).
_HTML_TOKEN_RE = re.compile(
    r"<(?:((?:https?|ftp)://[^\s<>]++)>"  # markdown autolink <https://…>
    r"|(/?)([A-Za-z][A-Za-z0-9]*+)([^<>]*+)>)"
)
_HREF_ATTR_RE = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_START_ATTR_RE = re.compile(r"""\bstart\s*=\s*["']?(\d{1,6})""", re.I)


def _sub_blocks(text: str, open_re: re.Pattern[str], close_re: re.Pattern[str],
                repl: Callable[[str], str]) -> str:
    """Replace every ``open … close`` block by ``repl(inner text)``, like
    ``re.sub(open + "(.*?)" + close, …, flags=re.S)`` but linear: once an opening has no
    closing after it, no later one can have either, so the scan stops there."""
    out: list[str] = []
    pos = 0
    while (opening := open_re.search(text, pos)) is not None:
        closing = close_re.search(text, opening.end())
        if closing is None:
            break
        out.append(text[pos : opening.start()])
        out.append(repl(text[opening.end() : closing.start()]))
        pos = closing.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _pair_runs(openers: Sequence[tuple[Hashable, int] | None],
               closers: Sequence[tuple[Hashable, int] | None]) -> list[tuple[int, int] | None]:
    r"""Match fence-like runs the way a backtracking regex ``(`{3,})…\1`` would.

    ``openers[i] = (char, k)``: item i can open with a run of up to k chars;
    ``closers[i] = (char, j)``: item i closes exactly a run of j. For each opener the
    answer is ``(index, j)`` of the nearest later closer with the largest j <= k that
    has a later closer at all (the regex tries k, then k - 1, …), or None. One sweep from
    the right keeps, per char, the sorted run lengths seen so far and the nearest closer
    of each: O(n log n) where the regex needed O(n²) or worse.
    """
    out: list[tuple[int, int] | None] = [None] * len(openers)
    nearest: dict[tuple[Hashable, int], int] = {}
    lengths: dict[Hashable, list[int]] = {}
    for i in range(len(openers) - 1, -1, -1):
        op = openers[i]
        if op is not None and op[0] in lengths:
            known = lengths[op[0]]
            at = bisect.bisect_right(known, op[1])
            if at:
                out[i] = (nearest[op[0], known[at - 1]], known[at - 1])
        cl = closers[i]
        if cl is not None:
            if cl not in nearest:
                bisect.insort(lengths.setdefault(cl[0], []), cl[1])
            nearest[cl] = i
    return out


def _sub_fences(text: str, repl: Callable[[str], str]) -> str:
    r"""Replace fenced code blocks by ``repl(body)``, exactly like the regex
    ``^[ \t]*(`{3,}|~{3,})[^\n]*\n(.*?)^[ \t]*\1[ \t]*$`` (multiline, dotall) would,
    but in linear time (see _pair_runs)."""
    if "```" not in text and "~~~" not in text:
        return text
    lines = text.split("\n")
    openers: list[tuple[str, int] | None] = []
    closers: list[tuple[str, int] | None] = []
    for number, line in enumerate(lines):
        body = line.lstrip(" \t")
        if body[:3] not in ("```", "~~~"):
            openers.append(None)
            closers.append(None)
            continue
        fence = body[0]
        run = len(body) - len(body.lstrip(fence))
        # An opening line needs the newline after it; the last piece of split() has none.
        openers.append((fence, run) if number < len(lines) - 1 else None)
        rest = body[run:]
        closers.append((fence, run) if not rest.strip(" \t") else None)
    pairs = _pair_runs(openers, closers)
    out: list[str] = []
    starts: list[int] = []  # offset of each line
    offset = 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    pos = 0
    number = 0
    while number < len(lines):
        pair = pairs[number]
        if pair is None:
            number += 1
            continue
        close = pair[0]
        out.append(text[pos : starts[number]])
        out.append(repl(text[starts[number + 1] : starts[close]]))
        pos = starts[close] + len(lines[close])  # the match ends before the newline
        number = close + 1
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _html_token(m: re.Match[str]) -> tuple[str | None, bool, str, str] | None:
    r"""(autolink URL, is end tag, name, attributes) of a `_HTML_TOKEN_RE` match, or None
    when it is not a tag.

    The same answer as the former regex ``<(/?)(name)((?:\s[^<>]*?)?)\s*/?>``: after the
    name comes nothing, ``/``, or whitespace and anything; the attributes are that text
    minus trailing whitespace and ``/``, but at least its first (whitespace) character.
    """
    if m.group(1) is not None:
        return m.group(1), False, "", ""
    rest = m.group(4)
    if not rest or rest == "/":
        return None, bool(m.group(2)), m.group(3), ""
    if not rest[0].isspace():
        return None
    core = rest[:-1] if rest.endswith("/") else rest
    return None, bool(m.group(2)), m.group(3), rest[: max(1, len(core.rstrip()))]


def _strip_known_tags(raw: str) -> str:
    """Remove HTML tags we know (``<code>``, ``<b>``…) from raw pre content; keep the rest."""

    def strip(m: re.Match[str]) -> str:
        token = _html_token(m)
        known = token is not None and token[0] is None and token[2].lower() in _KNOWN_TAGS
        return "" if known else m.group(0)

    return _HTML_TOKEN_RE.sub(strip, raw)


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
            token = _html_token(m)
            if token is None:
                continue  # not a tag: stays literal text
            url, closing, name, attrs = token
            if url is None and name.lower() not in _KNOWN_TAGS:
                continue  # not a tag we know: stays literal text
            self.text(text[pos:m.start()])
            pos = m.end()
            if url is not None:
                self.autolink(url)
            else:
                self.tag(name.lower(), closing, attrs)
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
            self.emit(part if part.startswith(_PRE) else clean_text(html_unescape(part)))

    def autolink(self, url: str) -> None:
        good = safe_url(html_unescape(url))
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
            good = safe_url(html_unescape(href))
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
            # markdown_to_html indents by at most _MAX_INDENT levels anyway; more here made
            # the text quadratic in the nesting depth (10,000 nested <ul><li>).
            indent = "  " * min(max(len(self.lists) - 1, 0), _MAX_INDENT)
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


# Every inline construct starts with one of these characters; the scanner jumps between
# them and tries _INLINE_RE only there.
_INLINE_START_RE = re.compile("[\ufdd0-\ufddc`$\\[*_]")
_INLINE_RE = re.compile(
    "(?P<hlink>" + _A_ON + "(?P<hurl>[^" + _A_MID + _A_ON + "]*+)" + _A_MID
    + "(?P<hlabel>[^" + _A_OFF + _A_ON + "]*+)(?:" + _A_OFF + "|$))"
    + "|(?P<hcode>" + _C_ON + "(?P<hctext>[^" + _C_OFF + "]*+)(?:" + _C_OFF + "|$))"
    + "|(?P<mk>[\ufdd0-\ufddc])"
    # A backtick run; _code_spans decides where its code span (if any) ends.
    + r"|(?P<ticks>`++)"
    + r"|(?P<tex>\$\$.+?\$\$|\$[^$\s](?:[^$]*?[^$\s\\])?\$)"
    + r"|(?P<link>\[(?P<label>[^\[\]]*+)\]\((?P<url>[^()\s]++(?:\([^()\s]*+\)[^()\s]*+)*+)"
    + r"(?:\s++\"[^\"]*+\")?\))"
    + r"|(?P<delim>\*\*|__|\*)"
)
_TICKS_RE = re.compile("`+")
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


def _code_spans(line: str) -> dict[int, tuple[int, int]]:
    r"""Code spans of a line: backtick-run offset -> (ticks used, offset of the closing run).

    The answer of the former regex ``(`+)(.+?)(?<!`)\1(?!`)``: a run of k backticks opens
    a span that ends at the next run of exactly k; without one, the regex tried k - 1,
    k - 2, … backticks of the same run (and cost O(n) each time, O(n³) on a line of
    backticks). Spans never cross a newline (``.`` does not match one).
    """
    runs: list[tuple[int, int]] = []
    keys: list[tuple[Hashable, int] | None] = []
    segment, previous = 0, 0
    for m in _TICKS_RE.finditer(line):
        segment += line.count("\n", previous, m.start())
        previous = m.start()
        runs.append((m.start(), m.end() - m.start()))
        keys.append((segment, m.end() - m.start()))
    spans: dict[int, tuple[int, int]] = {}
    for (start, _), pair in zip(runs, _pair_runs(keys, keys), strict=True):
        if pair is not None:
            spans[start] = (pair[1], runs[pair[0]][0])
    return spans


def _render_inline(line: str, base: dict[str, int] | None = None, *, nested: bool = False) -> str:
    """Render one line of inline markdown (plus markers) as valid Telegram HTML."""
    # Pass 1: tokenise; emphasis delimiters are resolved into pairs before emitting.
    events: list[tuple[str, str, str]] = []  # (kind, a, b)
    spans = _code_spans(line) if "`" in line else {}
    pos = 0  # start of the text not yet in an event
    at = 0  # where to look for the next construct
    while (hit := _INLINE_START_RE.search(line, at)) is not None:
        start = hit.start()
        m = _INLINE_RE.match(line, start)
        if m is None:
            at = start + 1  # a `$`, `[` or `_` that starts nothing: text
            continue
        if m.group("ticks") is not None:
            span = spans.get(start)
            if span is None:
                at = m.end()  # backticks without a closing run: text
                continue
            ticks, close = span
            if start > pos:
                events.append(("text", line[pos:start], ""))
            ctext = line[start + ticks : close]
            events.append(("code", ctext.strip(" ") or ctext, ""))
            pos = at = close + ticks
            continue
        if start > pos:
            events.append(("text", line[pos:start], ""))
        pos = at = m.end()
        if m.group("hlink") is not None:
            events.append(("link", m.group("hurl"), m.group("hlabel")))
        elif m.group("hcode") is not None:
            events.append(("code", m.group("hctext"), ""))
        elif m.group("mk") is not None:
            events.append(("mark", m.group("mk"), ""))
        elif m.group("tex") is not None:
            events.append(("text", m.group("tex"), ""))  # TeX stays literal: no emphasis
        elif m.group("link") is not None:
            url = safe_url(html_unescape(m.group("url")))
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

    # A closer pairs with the nearest open delimiter of its kind; the openers above that one
    # are dropped. One stack per kind (a single stack searched from the top was quadratic
    # on many `*` openers followed by many `**` closers).
    role: dict[int, int] = {}  # event index -> +1 opens, -1 closes
    opened: dict[str, list[int]] = {"**": [], "__": [], "*": []}
    for idx, (kind, d, flags) in enumerate(events):
        if kind != "delim":
            continue
        same = opened[d]
        if "c" in flags and same:
            opener = same.pop()
            role[opener] = 1
            role[idx] = -1
            for stack in opened.values():
                while stack and stack[-1] > opener:
                    stack.pop()
        elif "o" in flags:
            same.append(idx)

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


_RULE_SAME_RE = re.compile(r"^([-*_])(?:[ \t]*+\1){2,}+[ \t]*+$")
_BULLET_RE = re.compile(r"^([-*+•·▪●◦])[ \t]+(.*)$")
_NUMBER_RE = re.compile(r"^(\d{1,4}[.)、]|[(（]\d{1,3}[)）])[ \t]+(.*)$")
_QUOTE_RE = re.compile(r"^>+[ \t]?(.*)$")
_PRE_LINE_RE = re.compile("^" + _PRE + r"(\d+)" + _PRE + "$")
_RULE_TEXT = "—" * 10
_MAX_INDENT = 6  # list levels shown by indentation; deeper items stay at this depth


def _heading(line: str) -> str | None:
    r"""The text of an ATX heading line (``## Title ##``), or None if it is not one.

    The answer of the former regex ``^#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$|^#{1,6}$``
    (group 1, "" for a bare ``##``), whose lazy group was quadratic on a run of spaces.
    """
    hashes = len(line) - len(line.lstrip("#"))
    if not 1 <= hashes <= 6:
        return None
    if hashes == len(line):
        return ""
    if line[hashes] not in " \t":
        return None
    text = line[hashes:].lstrip(" \t").rstrip(" \t")
    closing = text.rstrip("#")  # an optional closing sequence: whitespace, then #s
    if len(closing) < len(text) and closing[-1:] in (" ", "\t"):
        text = closing.rstrip(" \t")
    return text


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
    text = _sub_blocks(text, _DETAILS_OPEN_RE, _DETAILS_CLOSE_RE, lambda _: "\n")
    pres: list[str] = []

    def keep_pre(body: str) -> str:
        pres.append(_dedent_block(body))
        return f"\n{_PRE}{len(pres) - 1}{_PRE}\n"

    text = _sub_fences(text, keep_pre)
    text = _sub_blocks(
        text, _PRE_OPEN_RE, _PRE_CLOSE_RE,
        lambda body: keep_pre(clean_text(html_unescape(_strip_known_tags(body)))),
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
        heading = _heading(stripped)
        if heading is not None:
            content = heading.strip()
            if content:
                lines_out.append(_render_inline(content, {"b": 1}))
            continue
        if _RULE_SAME_RE.match(stripped) and len(stripped) >= 3:
            lines_out.append(_RULE_TEXT)
            continue
        pad = "  " * min(indent // 2, _MAX_INDENT)
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

_SENTENCE_END = "。！？；!?;"


@dataclass(frozen=True, slots=True)
class _Open:
    """One open tag of split_html's stack, linked to the tag around it (tags share the
    stack they sit in instead of each copying it, which was quadratic on deep nesting)."""

    name: str
    raw: str
    parent: _Open | None
    depth: int
    in_pre: bool


def _open_tags(node: _Open | None) -> list[_Open]:
    """The open tags, outermost first."""
    out: list[_Open] = []
    while node is not None:
        out.append(node)
        node = node.parent
    out.reverse()
    return out


def _fitting(s: str, start: int, room: int, wide: bool) -> int:
    """The largest ``end`` with ``utf16_len(s[start:end]) <= room``."""
    end = min(len(s), start + room)
    if not wide or utf16_len(s[start:end]) <= room:
        return end
    lo, hi = start + room // 2, end  # room // 2 characters always fit, `end` does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if utf16_len(s[start:mid]) <= room:
            lo = mid
        else:
            hi = mid
    return lo


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

    # Positions are item indices: each character of a text token is one item, each tag
    # one. Text is handled a token slice at a time with str methods, never one Python
    # object per character (a 25 MB analysis took 16 s that way).
    base: list[int] = []  # item index of each token's first item
    before: list[_Open | None] = []  # open tags before each token
    wide: list[bool] = []  # text with astral characters (2 UTF-16 units each)
    node: _Open | None = None
    n = 0
    for tok in toks:
        base.append(n)
        before.append(node)
        wide.append(tok.kind == "text" and utf16_len(tok.value) != len(tok.value))
        if tok.kind == "text":
            n += len(tok.value)
            continue
        n += 1
        if tok.kind == "open":
            depth = node.depth + 1 if node is not None else 1
            in_pre = tok.value == "pre" or (node is not None and node.in_pre)
            node = _Open(tok.value, tok.raw, node, depth, in_pre)
        elif node is not None:
            node = node.parent
    base.append(n)
    before.append(node)

    def token_at(item: int) -> int:
        return bisect.bisect_right(base, item) - 1

    def is_tag(item: int, kind: str) -> bool:
        return toks[token_at(item)].kind == kind

    def units(s: str, a: int, b: int, w: bool) -> int:
        return utf16_len(s[a:b]) if w else b - a

    chunks: list[str] = []
    start = 0
    while start < n:
        # Scan as far as the limit allows, remembering the last cut of each tier:
        # 0 paragraph break, 1 line break, 2 sentence end, 3 space; (cut, visible before).
        first = token_at(start)
        vis = 0
        best: dict[int, tuple[int, int]] = {}
        prev = ""
        outer = before[first]
        entities = outer.depth if outer is not None else 0
        too_many = False
        stop = n  # the item the scan stopped at; n when it reached the end
        t, off = first, start - base[first]
        while t < len(toks):
            tok = toks[t]
            if tok.kind == "open":
                entities += 1
                if entities > max_entities and vis > 0:
                    too_many = True
                    stop = base[t]
                    break
            elif tok.kind == "text":
                s, w, at = tok.value, wide[t], base[t]
                end = _fitting(s, off, limit - vis, w)
                if end > off:
                    last_nl = s.rfind("\n", off, end)
                    if last_nl >= 0:
                        pair = s.rfind("\n\n", off, end)
                        cut0 = pair + 1 if pair >= 0 else (
                            off if s[off] == "\n" and prev == "\n" else -1)
                        run = off + len(s[off : last_nl + 1].rstrip("\n"))
                        cut1 = run if run > off or prev != "\n" else -1
                        for tier, p in ((0, cut0), (1, cut1)):
                            if p >= 0:
                                best[tier] = (at + p + 1, vis + units(s, off, p + 1, w))
                    p2 = max(s.rfind(ch, off, end) for ch in _SENTENCE_END)
                    p3 = max(s.rfind(" ", off, end), s.rfind("\u3000", off, end))
                    for tier, p in ((2, p2), (3, p3)):
                        if p >= 0:
                            best[tier] = (at + p + 1, vis + units(s, off, p + 1, w))
                    vis += units(s, off, end, w)
                    prev = s[end - 1]
                if end < len(s):
                    stop = at + end
                    break
            t, off = t + 1, 0
        if stop >= n:
            cut = n
        else:
            cut = stop
            for tier in range(4):
                if tier in best and (best[tier][1] >= limit // 2 or (too_many and tier < 2)):
                    cut = best[tier][0]
                    break
            while cut < n and is_tag(cut, "close"):
                cut += 1
            while cut > start + 1 and is_tag(cut - 1, "open"):
                cut -= 1
        last = token_at(cut - 1)
        # Whitespace at both ends of the chunk is dropped (outside <pre>); tags stay.
        keep_from, keep_to = cut, start
        for t in range(first, last + 1):
            if toks[t].kind != "text":
                continue
            a, b = max(start, base[t]) - base[t], min(cut, base[t + 1]) - base[t]
            node = before[t]
            if node is not None and node.in_pre:
                keep_from = base[t] + a
                break
            piece = toks[t].value[a:b]
            lead = len(piece) - len(piece.lstrip())
            if lead < len(piece):
                keep_from = base[t] + a + lead
                break
        for t in range(last, first - 1, -1):
            if toks[t].kind != "text":
                continue
            a, b = max(start, base[t]) - base[t], min(cut, base[t + 1]) - base[t]
            node = before[t]
            if node is not None and node.in_pre:
                keep_to = base[t] + b
                break
            tail = len(toks[t].value[a:b].rstrip())
            if tail:
                keep_to = base[t] + a + tail
                break
        parts = [o.raw for o in _open_tags(before[first])]
        for t in range(first, last + 1):
            tok = toks[t]
            if tok.kind == "open":
                parts.append(tok.raw)
            elif tok.kind == "close":
                parts.append(f"</{tok.value}>")
            else:
                a = max(start, base[t], keep_from) - base[t]
                b = min(cut, base[t + 1], keep_to) - base[t]
                if a < b:
                    parts.append(escape(tok.value[a:b]))
        parts.extend(f"</{o.name}>" for o in reversed(_open_tags(before[token_at(cut)])))
        chunk = "".join(parts)
        if not is_blank(validate_telegram_html(chunk)):  # Telegram refuses an empty text
            chunks.append(chunk)
        start = cut
    return chunks
