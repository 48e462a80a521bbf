"""Telegram's text rules: escaping, a strict HTML validator, lengths, splitting.

Everything here is pure (no I/O, no clock, no ``telegram`` import), so the renderer, the
bot and ``paperfeed preview`` can share it and the tests can hammer it with hypothesis.

Telegram's HTML parse mode (core.telegram.org/bots/api#html-style, implemented by
``parse_html`` in TDLib) fails the whole message with ``400 can't parse entities`` on
one stray ``<``, an unknown tag or an unclosed one, and it limits a message to 4096
characters *after* entity parsing. The functions below make sure we never send such a
message:

* :func:`validate_telegram_html` accepts a strict *subset* of what Telegram accepts, so
  "valid here" implies "accepted there"; it returns the visible plain text.
* bot.domain.markdown turns the LLM analysis (markdown mixed with raw, often broken
  HTML) into HTML that always passes the validator, whatever the input.
* :func:`split_html` cuts valid HTML into messages that each fit the limit and are each
  valid on their own.
* Lengths are measured in UTF-16 code units (:func:`utf16_len`), which is how Telegram
  counts entity offsets; it is never smaller than the code-point count Telegram uses for
  the length limit, so a budget met in UTF-16 units is always met.

Why one module of some 700 lines: the validator's tokenizer is what splitting cuts
along (a message never ends inside a tag or an entity), so the two share private
structures; markdown conversion, their user, is bot.domain.markdown.
"""

from __future__ import annotations

import bisect
import html as _html
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "MAX_CAPTION_LEN",
    "MAX_ENTITIES",
    "MAX_MESSAGE_LEN",
    "NONCHAR_RE",
    "clean_text",
    "escape",
    "hashtag",
    "html_unescape",
    "is_blank",
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
NONCHAR_RE = re.compile("[\ufdd0-\ufdef]")


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
    return NONCHAR_RE.sub("", s)


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
    if _SURROGATE_RE.search(url) or NONCHAR_RE.search(url):
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
