"""Read one daily digest (markdown text) into a `Digest` of `Paper`s.

The format
==========

A digest is one topic on one day, stored as ``<YYYY-MM-DD>/<topic>.md``::

    ---                                  YAML front matter: title, date, tags: [<topic>],
    ...                                  description, cover (may be empty or "None")
    ---
    >⚠️ … >🔴 … >💗 …                    disclaimer (blockquote)
    # 2024-10-12 更新                    run heading
    ## <paper title>                     one section per paper (any heading level 1-4)
    **Authors:A, B, C**
    <abstract>
    [PDF](http://arxiv.org/abs/2410.07971v1) <optional arXiv comment>
    **Summary**                          or **摘要**, **Summary**：<text>, …
    <one line>
    **Key Takeaways**                    or **要点**, **关键要点：**, …
    1. … / - … / * … / • …
    **[ChatPaperFree](https://…)**
    <LLM analysis, free form markdown and HTML>
    <details><summary>…</summary><img src="…"> …</details>

Two complete runs may be joined in one file (a second disclaimer and ``# … 更新``
heading, then the same papers again). Non-digest posts (an awesome list) live in the
same folder and raise `NotADigest`.

The approach, and why
=====================

The LLM analysis is free text: it repeats bold headings (``**摘要**：``,
``**Authors**:``), contains ``###`` headings, raw HTML and, in principle, ``## `` lines.
And the summariser writes paper titles as ``## `` today but may write ``### `` (or
``#``, ``####``) tomorrow. So the parser trusts neither a heading nor a heading level
by itself; it decides by *structure*:

1. One regex pass over the body finds the only lines that matter for structure:
   ``# YYYY-MM-DD 更新`` run headings, the other ATX headings of level 1-4 (``# `` to
   ``#### ``) and ``[PDF](`` lines.
   Everything else is sliced out of the text by offset, so the cost is a few C-level
   searches per section rather than Python work per line.
2. The file's *paper level*. Every arXiv ``[PDF](…)`` line has a *header*: the headings
   above it, back to the previous PDF line or run heading, that no
   ``**[ChatPaperFree]`` or ``<details>`` line separates from it. The paper level is the
   heading level found in the most headers; on a tie, 2 (the known format) wins, then
   the shallower level. Headings at the paper level or shallower start candidates;
   deeper ones are plain text of the section they sit in. (With nothing to vote on,
   headings of a single level or no PDF line under any heading, every heading is a
   candidate.) Examples: ``## Title`` / ``### subtitle`` / ``**Authors:…`` is one paper
   titled ``Title``: level 2 is in every header, level 3 at most in as many. Group
   headings ``## Group`` above ``### Paper`` titles lose to level 3, which is in every
   header. A file of ``### `` titles has paper level 3, so its ``####`` analysis
   headings are text; in a ``## `` file the analysis ``###`` headings never become
   candidates at all. The vote is global on purpose: a heading's level says nothing
   alone, but one file is written by one prompt, in one format.
3. A candidate section runs to the next candidate or run heading. A candidate is a
   **paper** when an arXiv ``[PDF](…)`` line follows its heading before any
   ``**[ChatPaperFree]`` or ``<details>`` line. A candidate with an ``**Authors:`` line
   right under its heading (and any deeper sub-headings) but no PDF line is a **broken**
   paper: it is skipped with a `ParseWarning`. Any other candidate (an analysis heading
   at or above the paper level) belongs to the analysis of the paper before it (its
   region is merged back), or is ignored before the first paper.
4. A run heading ends the paper before it; the disclaimer blockquote just above it is cut
   off, so neither pollutes that paper's analysis or figures.
5. Inside a paper, the summary and takeaways headings are searched for only between the
   PDF line and ``**[ChatPaperFree]`` (the analysis repeats those headings). The first
   bold heading there is the summary, the next one the takeaways, whatever their
   spelling; known spellings (``**Summary**``, ``**摘要：**``, ``**关键要点**``, …) also
   work when one of the two is missing.
6. The analysis is the raw text after ``**[ChatPaperFree](…)**`` up to the first
   ``<details>`` line. Figures are the ``<img src>`` of the whole section after the PDF
   line, in order, without repeats.

A paper listed twice in one file (two joined runs) is one paper: the last occurrence's
text (the regenerated one, with its line number) at the first occurrence's position.
`parse_sections` returns every section as written, duplicates included.

Relative image paths (``./crop_3DGS/x.png``) are resolved against the post's own URL,
``f"{blog_base_url}/{path without .md}/"`` (each path segment percent-encoded), because
that is where a Hexo post with an asset folder serves them. Without ``blog_base_url``
they are dropped with a warning.

Everything here is pure: text in, objects out; no file I/O, clock or logging.

Why one module of some 850 lines: the format is one grammar (front matter, runs, paper
sections and their parts), and most of this file is the tolerance each part needs,
with the reasons written next to it; the pieces only make sense read together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urljoin

import yaml
from frontmatter.default_handlers import YAMLHandler

from bot.domain.models import Digest, Paper, ParseWarning
from bot.errors import DigestError, NotADigest

__all__ = [
    "decode_digest",
    "digest_date_from_path",
    "parse_digest",
    "parse_sections",
    "topic_from_filename",
]

_YamlLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
try:
    _YamlLoader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _YamlLoader = yaml.SafeLoader

# Whitespace (as str.split() sees it) plus zero-width characters: what "blank" means.
_BLANK = (
    " \t\n\r\v\f\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\u200c\u200d"
    "\u2060\ufeff"
)

# --- file level -------------------------------------------------------------------
_FM_OPEN_RE = re.compile(r"\A(?:[ \t\u200b]*\n)*(?=---[ \t]*\n)")  # blank lines, then ---
_ANCHOR = (  # the run heading first: it is a level-1 heading that never starts a section
    r"(?:(?P<run>#[ \t]+(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b[^\n]*?(?:更新|[Uu]pdate))"
    r"|(?P<h>#{1,4})(?=[ \t\n]|\Z)"
    r"|(?P<pdf>\[PDF\]\())"
)
# Searched from the newline before the line: a literal first character makes the search
# several times faster than `^` with re.M.
_ANCHOR_RE = re.compile("\n" + _ANCHOR)
_ANCHOR_FIRST_RE = re.compile(_ANCHOR)  # the body's first line has no newline before it
_SUBHEADING_RE = re.compile(r"#{1,6}(?:[ \t]|$)")
_DATE_DIR_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATE_TEXT_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")

# --- paper section ----------------------------------------------------------------
# The generated form is `**Authors:A, B**`; the analysis writes `**Authors**: …`.
# Possessive quantifiers throughout this module: adjacent `\s*` (and a lazy `.*?` before
# `\s*$`) backtracked quadratically on a long run of spaces. Trailing whitespace of
# group 1 is stripped by the caller instead.
_AUTHORS_RE = re.compile(
    r"^\s*+\*\*\s*+Authors?+\s*+(?:\*\*)?+\s*+[:：]\s*+(?:\*\*)?+(.*+)", re.I
)
_GENERATED_AUTHORS_RE = re.compile(r"\*\*Authors?\s*[:：]", re.I)
_PDF_RE = re.compile(
    r"\[PDF\]\(\s*<?(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/"
    r"(?P<id>\d{4}\.\d{4,5}|[A-Za-z][A-Za-z\-]*(?:\.[A-Za-z]{2})?/\d{7})"
    r"(?:v(?P<v>\d{1,4}))?(?:\.pdf)?/?>?\s*\)(?P<rest>.*)$",
    re.I,
)
_CPF = "\n**[ChatPaper"  # the analysis starts after this line (str.find is fastest)
_DETAILS = "<details"  # figures start at the first line that begins with it
_IMG_RE = re.compile(
    r"""<img\b[^<>]{0,1000}?\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I
)
_URL_RE = re.compile(r"https?://[^\s<>\"'`\[\]{}()，。；：、）（【】]+", re.I)
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")

# --- summary and takeaways --------------------------------------------------------
_H = r"^\s*+(?:#{1,6}+\s*+)?+\*\*\s*+(?:"
_T = r")\s*+[:：]?+\s*+\*\*\s*+[:：]?+\s*+(.*)$"
_SUMMARY_RE = re.compile(_H + r"Summary|TL;?DR|摘要|概述|概要|总结|简介" + _T, re.I)
_TAKEAWAYS_RE = re.compile(
    _H + r"Key\s*Takeaways?|Takeaways?|Key\s*Points?|Highlights?|要点|关键要点|主要要点"
    r"|关键见解|主要结论|主要内容|重要要点|关键点|核心要点|关键信息|主要观点|主要发现" + _T,
    re.I,
)
_BOLD_HEADING_RE = re.compile(
    r"^\s*+(?:#{1,6}+\s*+)?+\*\*[^*\n]{1,40}+\*\*\s*+[:：]?+\s*+$"
)
_ITEM_RE = re.compile(
    r"^\s*(?:(?:[-*+]\s+|[•·●▪◦‣∙]\s*)(?:\d{1,3}[.)、．]\s+)?"  # "- ", "• ", also "- 1. "
    r"|\d{1,3}[.)、．](?!\d)\s*|[(（]\d{1,3}[)）]\s*)(.*)$"  # "1. ", "1.X", "1)", "(1)"
)
_TRAILING_URL_PUNCT = ".,;:!?'\"*_~"


def digest_date_from_path(path: str) -> date | None:
    """The ``YYYY-MM-DD`` folder a digest lives in: ``"2024-09-24/NeRF.md"`` → 2024-09-24."""
    parts = path.replace("\\", "/").split("/")
    if len(parts) < 2:
        return None
    m = _DATE_DIR_RE.fullmatch(parts[-2])
    return _ymd(m[1], m[2], m[3]) if m else None


def topic_from_filename(name: str) -> str:
    """The file stem, as written: ``"元宇宙_虚拟人.md"`` → ``"元宇宙_虚拟人"``.

    Only a fallback: the real topic is the front-matter tag (``元宇宙/虚拟人``); ``_`` is
    not turned back into ``/`` because a topic may contain ``_`` itself.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base[:-3] if base.lower().endswith(".md") else base


def decode_digest(raw: bytes, path: str) -> tuple[str, list[ParseWarning]]:
    """A digest file's bytes as text, with what had to be repaired said.

    Bytes that are not UTF-8 become U+FFFD; NUL characters are dropped (no digest means
    one, and PostgreSQL cannot store them in text, so one would fail its whole batch).
    """
    warnings: list[ParseWarning] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        warnings.append(ParseWarning(path, 0, f"not valid UTF-8 ({exc.reason}); "
                                              "undecodable bytes replaced"))
    if "\x00" in text:
        warnings.append(ParseWarning(path, 0, f"{text.count(chr(0))} NUL character(s) "
                                              "removed"))
        text = text.replace("\x00", "")
    return text, warnings


def parse_digest(text: str, path: str, *, blog_base_url: str | None = None) -> Digest:
    """Parse one digest file; `path` is relative to the digest folder, POSIX separators.

    Papers come once per arXiv id, in file order (see the module docstring for repeats).
    `blog_base_url` resolves relative screenshot paths; without it they are dropped.

    Raises `NotADigest` for a post of another kind (no arXiv ``[PDF](…)`` line and no
    ``# YYYY-MM-DD 更新`` heading), `DigestError` when no date can be found at all.
    Anything else that cannot be read (a broken section, broken front matter) becomes a
    `ParseWarning` on the returned digest, in line order.
    """
    text = _normalise(text)
    fm = _split_front_matter(text, path)
    scan = _scan(text, fm.body_start, path, blog_base_url)
    if not scan.has_structure:
        reason = "no arXiv [PDF](…) line and no '# YYYY-MM-DD 更新' heading"
        if digest_date_from_path(path) is None:
            reason += ", and the path is not <YYYY-MM-DD>/<topic>.md"
        raise NotADigest(reason)

    warnings = list(fm.warnings)
    meta = _load_yaml(fm, path, warnings)
    warnings.extend(sorted(scan.warnings, key=_by_line))

    day = digest_date_from_path(path) or _meta_date(meta.get("date")) or scan.run_date
    if day is None:
        raise DigestError(
            "cannot tell the digest date: the folder is not YYYY-MM-DD and neither the "
            "front matter nor a '# YYYY-MM-DD 更新' heading has a date"
        )
    title = _clean(_as_text(meta.get("title")))
    topic = _first_tag(meta.get("tags")) or title or topic_from_filename(path)
    cover = _as_text(meta.get("cover")).strip()
    return Digest(
        path=path,
        topic=topic,
        date=day,
        papers=_dedupe(scan.papers),
        warnings=tuple(warnings),
        title=title,
        description=_as_text(meta.get("description")).strip(),
        cover=None if cover.lower() in ("", "none", "null") else cover,
    )


def parse_sections(
    text: str, path: str, *, blog_base_url: str | None = None
) -> tuple[tuple[Paper, ...], tuple[ParseWarning, ...]]:
    """Every paper section in file order, duplicates included, with the section warnings.

    `parse_digest` is what the archive wants; this is for counting and diagnostics (two
    joined runs list the same papers twice). It neither reads the front matter nor
    decides whether the text is a digest.
    """
    text = _normalise(text)
    fm = _split_front_matter(text, path)
    scan = _scan(text, fm.body_start, path, blog_base_url)
    return tuple(scan.papers), tuple(sorted(scan.warnings, key=_by_line))


# --- file level -------------------------------------------------------------------


@dataclass(slots=True)
class _FrontMatter:
    block: str | None  # the YAML text, None when there is no front matter
    line: int  # line of the opening ---
    body_start: int  # offset where the markdown body starts
    warnings: list[ParseWarning] = field(default_factory=list)


def _normalise(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text


class _DigestFrontMatter(YAMLHandler):
    """python-frontmatter's YAML handler, as the digests need it: the block may close with
    ``...`` as well as ``---``, and it is loaded with PyYAML's safe C loader after the
    checks of :func:`_yaml_refusal` (size, aliases)."""

    FM_BOUNDARY = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.M)

    def load(self, fm: str, **kwargs: object) -> Any:
        return yaml.load(fm, Loader=_YamlLoader)


_HANDLER = _DigestFrontMatter()


def _split_front_matter(text: str, path: str) -> _FrontMatter:
    """The front matter block and where the body starts. python-frontmatter splits; the
    blank lines a summariser may leave before the opening ``---`` are skipped first, and
    offsets are kept so that warnings name lines of the file."""
    opening = _FM_OPEN_RE.match(text)
    if opening is None:
        return _FrontMatter(None, 1, 0, [ParseWarning(path, 1, "no YAML front matter")])
    line = text.count("\n", 0, opening.end()) + 1
    try:
        block, body = _HANDLER.split(text[opening.end():])
    except ValueError:  # no closing line: split finds one boundary, not two
        warning = ParseWarning(path, line, "front matter has no closing '---' line; ignored")
        return _FrontMatter(None, line, 0, [warning])
    body_start = min(len(text) - len(body) + 1, len(text))  # after the closing line's \n
    return _FrontMatter(block.removeprefix("\n"), line, body_start)


# Real front matter is under 1 KB. A block this large is not one, and PyYAML's cost on
# some scalars (sexagesimal ints like 1:2:3:…) grows faster than their length.
_MAX_FRONT_MATTER = 64 * 1024


def _yaml_refusal(block: str) -> str | None:
    """Why the front matter is not even given to the YAML loader, or None.

    Aliases (``*name``) let a few lines stand for an exponentially large document (the
    "billion laughs"; merge keys ``<<: [*a, *a]`` multiplied it in PyYAML < 6.0.2); the
    digests never use them, so any alias refuses the block. Checked on the event stream,
    which never builds the document.
    """
    if len(block) > _MAX_FRONT_MATTER:
        return f"is {len(block)} characters long (at most {_MAX_FRONT_MATTER})"
    if "*" not in block:
        return None
    try:
        for event in yaml.parse(block, Loader=_YamlLoader):
            if isinstance(event, yaml.AliasEvent):
                return "uses YAML aliases (*name)"
    except Exception:  # not valid YAML: the loader says so
        return None
    return None


def _load_yaml(fm: _FrontMatter, path: str, warnings: list[ParseWarning]) -> dict[str, Any]:
    if fm.block is None:
        return {}
    refusal = _yaml_refusal(fm.block)
    if refusal is not None:
        warnings.append(
            ParseWarning(
                path, fm.line, f"front matter {refusal}; ignored, using the file name and dates"
            )
        )
        return {}
    try:
        data = _HANDLER.load(fm.block)  # a safe loader (C if available)
    except Exception as exc:  # yaml.YAMLError, or ValueError for a date like 2024-13-45
        problem = " ".join(str(exc).split())[:200]
        warnings.append(
            ParseWarning(
                path,
                fm.line,
                f"front matter is not valid YAML ({problem}); using the file name and dates",
            )
        )
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        warnings.append(ParseWarning(path, fm.line, "front matter is not a mapping; ignored"))
        return {}
    return {str(k): v for k, v in data.items()}


def _by_line(warning: ParseWarning) -> int:
    return warning.line


def _ymd(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _meta_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        m = _DATE_TEXT_RE.search(value)
        return _ymd(m[1], m[2], m[3]) if m else None
    return None


def _as_text(value: object) -> str:
    if value is None or isinstance(value, (dict, list, tuple, set)):
        return ""
    try:
        return str(value)
    except ValueError:  # an int of more than 4300 digits (YAML 1:00:00:… is one)
        return ""


def _first_tag(tags: object) -> str:
    if isinstance(tags, (list, tuple)):
        for tag in tags:
            name = _clean(_as_text(tag))
            if name:
                return name
        return ""
    return _clean(_as_text(tags))


# --- sections ---------------------------------------------------------------------

_PAPER, _BROKEN, _OTHER = 1, 2, 3


@dataclass(slots=True)
class _Candidate:
    start: int  # offset of the heading line
    level: int  # its number of `#`
    line: int
    end: int  # offset where the next candidate or run heading starts, or len(text)
    ends_at_run: bool = False
    pdf: int = -1  # offset of the first `[PDF](` line inside
    kind: int = _OTHER


@dataclass(slots=True)
class _Scan:
    papers: list[Paper] = field(default_factory=list)
    warnings: list[ParseWarning] = field(default_factory=list)
    has_structure: bool = False
    run_date: date | None = None


def _scan(text: str, body_start: int, path: str, blog_base_url: str | None) -> _Scan:
    out = _Scan()
    cands: list[_Candidate] = []
    cur: _Candidate | None = None
    end = len(text)
    anchors = list(_anchors(text, body_start))
    paper_level = _paper_level(text, anchors)
    for kind, start, lineno, m in anchors:
        if kind == "pdf":
            if not out.has_structure:  # one arXiv PDF line makes the file a digest
                out.has_structure = _PDF_RE.match(text, start, _eol(text, start, end)) is not None
            if cur is None:
                out.warnings.append(
                    ParseWarning(path, lineno, "[PDF](…) line outside any paper section; ignored")
                )
            elif cur.pdf < 0:
                cur.pdf = start
        elif kind == "h":
            level = m.end("h") - start
            if level > paper_level:
                continue  # a sub-heading: text of the section it sits in
            if cur is not None:
                cur.end = start
            cur = _Candidate(start, level, lineno, end)
            cands.append(cur)
        else:  # a `# YYYY-MM-DD 更新` run heading
            out.has_structure = True
            if out.run_date is None:
                out.run_date = _ymd(m["y"], m["m"], m["d"])
            if cur is not None:
                cur.end = start
                cur.ends_at_run = True
            cur = None

    # Classify, then let non-paper candidates extend the paper they follow.
    owner: _Candidate | None = None
    regions: list[_Candidate] = []
    for c in cands:
        if c.pdf >= 0 and _header_is_clean(text, c.start, c.pdf):
            c.kind = _PAPER
        elif _authors_under_heading(text, c.start, c.end):
            c.kind = _BROKEN
            out.warnings.append(
                ParseWarning(
                    path, c.line, "section has an **Authors: line but no [PDF](…) line; skipped"
                )
            )
        if c.kind == _OTHER:
            if owner is not None and owner.end == c.start:
                owner.end = c.end
                owner.ends_at_run = c.ends_at_run
            continue
        owner = c
        if c.kind == _PAPER:
            regions.append(c)

    base = _figure_base(blog_base_url, path)
    for c in regions:
        if c.ends_at_run:
            c.end = _cut_run_preamble(text, c.pdf, c.end)
        paper = _parse_paper(text, c, path, base, out.warnings)
        if paper is not None:
            out.papers.append(paper)
    return out


_Anchor = tuple[str | None, int, int, re.Match[str]]


def _anchors(text: str, body_start: int) -> Iterator[_Anchor]:
    """(kind, offset, line number, match) of every heading, run heading and PDF line."""
    lineno = text.count("\n", 0, body_start) + 1
    first = _ANCHOR_FIRST_RE.match(text, body_start)
    if first is not None:
        yield first.lastgroup, body_start, lineno, first
    pos = body_start
    for m in _ANCHOR_RE.finditer(text, body_start):
        newline = m.start()
        lineno += text.count("\n", pos, newline + 1)
        pos = newline + 1
        yield m.lastgroup, pos, lineno, m


def _paper_level(text: str, anchors: list[_Anchor]) -> int:
    """The heading level of the file's paper titles (module docstring, point 2).

    Headings deeper than it are text. Returns 4 (every heading counts) when there is
    nothing to vote on: headings of a single level, or no arXiv PDF line under any.
    """
    votes = {m.end("h") - start: 0 for kind, start, _, m in anchors if kind == "h"}
    if len(votes) < 2:
        return 4
    header: list[tuple[int, int]] = []  # (offset, level) since the last PDF line or run heading
    for kind, start, _, m in anchors:
        if kind == "h":
            header.append((start, m.end("h") - start))
            continue
        if header and kind == "pdf" and _PDF_RE.match(text, start, _eol(text, start, len(text))):
            levels: set[int] = set()
            upto = start
            for at, level in reversed(header):  # nearest first, up to a ChatPaper/<details
                if not _header_is_clean(text, at, upto):
                    break
                levels.add(level)
                upto = at
            for level in levels:
                votes[level] += 1
        header.clear()  # a PDF line or run heading closes the header
    if not any(votes.values()):
        return 4
    return max(votes, key=lambda level: (votes[level], level == 2, -level))


def _header_is_clean(text: str, start: int, pdf: int) -> bool:
    """The PDF line comes before any analysis or figures of the candidate."""
    # <details first: in an analysis it is found near the end, the ChatPaper line never.
    return _find_details(text, start, pdf) == -1 and text.find(_CPF, start, pdf) == -1


def _find_details(text: str, start: int, end: int) -> int:
    """Offset of the first line in [start, end) that begins with ``<details``, or -1.

    A line whose first ``<details`` is not at its start cannot begin with one, so the
    search goes on at the next line (re-reading the line for each later ``<details`` on
    it was quadratic on a line of them).
    """
    at = text.find(_DETAILS, start, end)
    while at != -1:
        newline = text.rfind("\n", start, at)
        line_start = newline + 1 if newline != -1 else start  # start is a line start
        if not text[line_start:at].strip(" \t"):
            return line_start
        eol = text.find("\n", at, end)
        if eol == -1:
            return -1
        at = text.find(_DETAILS, eol + 1, end)
    return -1


def _authors_under_heading(text: str, start: int, end: int) -> bool:
    """The first line after the heading that is neither blank nor a (deeper) sub-heading
    is a generated ``**Authors:`` line."""
    eol = text.find("\n", start, end)
    while eol != -1:
        nxt = text.find("\n", eol + 1, end)
        line = text[eol + 1 : nxt if nxt != -1 else end]
        if line.strip(_BLANK) and _SUBHEADING_RE.match(line) is None:
            return _GENERATED_AUTHORS_RE.match(line.lstrip(_BLANK)) is not None
        eol = nxt
    return False


def _cut_run_preamble(text: str, floor: int, end: int) -> int:
    """Drop the blank and blockquote (disclaimer) lines just above a run heading."""
    while end > floor:
        stop = end
        while stop > floor and text[stop - 1] in _BLANK:
            stop -= 1
        newline = text.rfind("\n", floor, stop)
        if newline == -1 or text[newline + 1] != ">":
            return stop
        end = newline + 1
    return end


def _figure_base(blog_base_url: str | None, path: str) -> str | None:
    if not blog_base_url:
        return None
    post = path[:-3] if path.lower().endswith(".md") else path
    return f"{blog_base_url.rstrip('/')}/{quote(post.strip('/'), safe='/')}/"


def _parse_paper(
    text: str, c: _Candidate, path: str, base: str | None, warnings: list[ParseWarning]
) -> Paper | None:
    heading_end = _eol(text, c.start, c.end)
    title = _clean(text[c.start + c.level : heading_end])
    if not title:
        warnings.append(ParseWarning(path, c.line, "paper section has an empty title; skipped"))
        return None
    pdf_end = _eol(text, c.pdf, c.end)
    link = _PDF_RE.match(text, c.pdf, pdf_end)
    if link is None:
        warnings.append(
            ParseWarning(
                path,
                c.line,
                f"cannot read the arXiv id in {text[c.pdf : pdf_end][:80]!r}; section skipped",
            )
        )
        return None
    arxiv_id = link["id"]
    if link["v"] is None:
        version = 1
        warnings.append(ParseWarning(path, c.line, f"arXiv link {arxiv_id} has no version; v1"))
    else:
        version = int(link["v"])
    comment = _clean(_unwrap_latex_urls(link["rest"]))

    # Header: authors (the first **Authors line only) and the abstract after it.
    authors: tuple[str, ...] = ()
    abstract_lines: list[str] = []
    found_authors = False
    for line in text[heading_end + 1 : c.pdf].split("\n"):
        if not found_authors:
            m = _AUTHORS_RE.match(line)
            if m is not None:
                found_authors = True
                authors = _split_authors(m[1].rstrip())
                abstract_lines.clear()
                continue
        abstract_lines.append(line)
    if not found_authors:
        warnings.append(ParseWarning(path, c.line, "paper section has no **Authors: line"))

    # Summary and takeaways live between the PDF line and **[ChatPaperFree](…)**.
    cpf = text.find(_CPF, pdf_end, c.end)
    if cpf != -1:
        meta_end = cpf
        analysis_start = _eol(text, cpf + 1, c.end) + 1
        details = _find_details(text, analysis_start, c.end)
        analysis = text[analysis_start : details if details != -1 else c.end].strip(_BLANK)
    else:
        details = _find_details(text, pdf_end, c.end)
        meta_end = details if details != -1 else c.end
        analysis = ""
    summary, takeaways, has_summary = _summary_and_takeaways(
        text[pdf_end + 1 : meta_end], bounded=cpf != -1
    )
    if not has_summary:
        warnings.append(ParseWarning(path, c.line, "paper section has no summary"))

    return Paper(
        arxiv_id=arxiv_id,
        version=version,
        title=title,
        authors=authors,
        abstract=_clean(" ".join(abstract_lines)),
        abs_url=f"https://arxiv.org/abs/{arxiv_id}v{version}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}v{version}",
        comment=comment,
        links=_links(comment),
        summary=summary,
        takeaways=takeaways,
        analysis=analysis,
        figures=_figures(text, pdf_end, c, base, path, warnings),
        line=c.line,
    )


def _eol(text: str, start: int, end: int) -> int:
    i = text.find("\n", start, end)
    return end if i == -1 else i


def _clean(s: str) -> str:
    """Collapse every whitespace run (NBSP, tab, VT, arXiv 3-space wraps) to one space."""
    if "\u200b" in s or "\ufeff" in s:
        s = s.replace("\u200b", "").replace("\ufeff", "")
    return " ".join(s.split())


def _unbold(s: str) -> str:
    if len(s) > 4 and s.startswith("**") and s.endswith("**") and "**" not in s[2:-2]:
        return s[2:-2].strip()
    return s


def _unwrap_latex_urls(s: str) -> str:
    r"""``\url{x}`` -> ``x``, as ``re.sub(r"\\url\{([^}]*)\}", r"\1", s)`` but linear: once
    a ``\url{`` has no ``}`` after it, no later one has."""
    out: list[str] = []
    pos = 0
    while (at := s.find("\\url{", pos)) != -1:
        close = s.find("}", at + 5)
        if close == -1:
            break
        out.append(s[pos:at])
        out.append(s[at + 5 : close])
        pos = close + 1
    if not out:
        return s
    out.append(s[pos:])
    return "".join(out)


def _split_authors(raw: str) -> tuple[str, ...]:
    raw = _clean(raw)
    if raw.startswith("**"):
        raw = raw[2:]
    if raw.endswith("**"):
        raw = raw[:-2]
    names = (name.strip() for name in raw.replace("，", ",").split(","))
    return tuple(name for name in names if name)


def _links(comment: str) -> tuple[str, ...]:
    if "http" not in comment.lower():
        return ()
    seen: dict[str, None] = {}
    for url in _URL_RE.findall(comment):
        url = url.rstrip(_TRAILING_URL_PUNCT)
        if len(url) > len("https://"):
            seen.setdefault(url, None)
    return tuple(seen)


def _summary_and_takeaways(block: str, *, bounded: bool) -> tuple[str, tuple[str, ...], bool]:
    """Read ``**Summary**`` / ``**Key Takeaways**`` and their text from the block.

    States: 0 before the summary heading, 1 waiting for the summary text, 2 after it,
    3 inside the takeaways. Returns (summary, takeaways, saw a summary heading).
    """
    state = 0
    summary = ""
    seen_summary = False
    raw: list[str] = []
    for line in block.split("\n"):
        if not line.strip(_BLANK):
            continue
        if state == 3:
            raw.append(line)
            continue
        m = _SUMMARY_RE.match(line) if state == 0 else None
        if m is not None:
            seen_summary = True
            summary = _unbold(_clean(m[1]))
            state = 2 if summary else 1
            continue
        m = _TAKEAWAYS_RE.match(line)
        if m is not None:
            state = 3
            if m[1].strip(_BLANK):
                raw.append(m[1])
            continue
        if _BOLD_HEADING_RE.match(line):
            if state == 0:  # a summary heading spelt some other way
                seen_summary = True
                state = 1
                continue
            if state == 2:  # a takeaways heading spelt some other way
                state = 3
                continue
        if state == 1:
            summary = _unbold(_clean(line))
            state = 2
        # state 0 or 2: chatter before or after the summary; dropped
    return summary, _takeaway_items(raw, bounded=bounded), seen_summary


def _takeaway_items(lines: list[str], *, bounded: bool) -> tuple[str, ...]:
    items: list[str] = []
    listed = False
    for line in lines:
        m = _ITEM_RE.match(line)
        if m is None:
            if listed and not bounded:
                break  # no ChatPaperFree line: stop before the analysis begins
            continue  # chatter around the list
        listed = True
        item = _clean(m[1])
        if item:
            items.append(item)
    if not listed:
        items = [c for c in (_clean(line) for line in lines) if c]
    return tuple(items)


def _figures(
    text: str, start: int, c: _Candidate, base: str | None, path: str,
    warnings: list[ParseWarning],
) -> tuple[str, ...]:
    end = c.end
    if text.find("<img", start, end) == -1 and text.find("<IMG", start, end) == -1:
        return ()
    seen: dict[str, None] = {}
    dropped: list[tuple[int, str]] = []
    for m in _IMG_RE.finditer(text, start, end):
        src = m[m.lastindex or 1].strip()  # exactly one of the three quoting groups matched
        if src.startswith(("https://", "http://")):
            seen.setdefault(src, None)
            continue
        if not src:
            continue
        url = _resolve(src, base)
        if url is None:
            dropped.append((m.start(), src))
        else:
            seen.setdefault(url, None)
    if dropped:
        offset, src = dropped[0]
        why = "no blog_base_url" if base is None and not _SCHEME_RE.match(src) else "not http(s)"
        warnings.append(
            ParseWarning(
                path,
                c.line + text.count("\n", c.start, offset),  # not from 0: once per paper
                f"{len(dropped)} image path(s) dropped ({why}), first {src[:80]!r}",
            )
        )
    return tuple(seen)


def _resolve(src: str, base: str | None) -> str | None:
    low = src[:8].lower()
    if low.startswith(("http://", "https://")):
        return src
    if src.startswith("//"):
        return "https:" + src
    if _SCHEME_RE.match(src) or base is None:
        return None
    try:
        url = urljoin(base, quote(src, safe="/:?#[]@!$&'()*+,;=%~"))
    except ValueError:
        return None
    return url if url.lower().startswith(("http://", "https://")) else None


def _dedupe(papers: list[Paper]) -> tuple[Paper, ...]:
    """One paper per arXiv id: the last occurrence's text at the first one's position."""
    index: dict[str, int] = {}
    out: list[Paper] = []
    for paper in papers:
        at = index.get(paper.arxiv_id)
        if at is None:
            index[paper.arxiv_id] = len(out)
            out.append(paper)
        else:
            out[at] = paper
    return tuple(out)
