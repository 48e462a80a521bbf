"""Markdown (mixed with raw, often broken HTML) to Telegram HTML: the LLM analysis.

:func:`markdown_to_html` turns whatever the summariser wrote into HTML that always passes
bot.domain.tgtext's validator, in time linear in its input (fences, inline code and
``<details>`` blocks are paired in one pass, never searched for from every opening).
Telegram's own rules (escaping, the validator, splitting) live in bot.domain.tgtext.

Why one module of some 650 lines: block structure (fences, lists, quotes, raw HTML
flattened) and inline markup (emphasis, code, links, math) share one placeholder
scheme for what was already converted; apart, each would have to know the other's.
"""

from __future__ import annotations

import bisect
import re
import textwrap
from collections.abc import Callable, Hashable, Sequence

from bot.domain.tgtext import (
    NONCHAR_RE,
    clean_text,
    escape,
    html_unescape,
    safe_url,
)

__all__ = ["markdown_to_html"]


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
        s = NONCHAR_RE.sub("", s)
        if not s:
            return
        if s.strip():
            self._sync()
        self.out.append(escape(s))

    def code(self, s: str) -> None:
        s = NONCHAR_RE.sub("", s)
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
            label = b if NONCHAR_RE.sub("", b).strip() else a
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
        if not NONCHAR_RE.sub("", stripped).strip():
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
