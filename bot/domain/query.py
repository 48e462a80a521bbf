"""Read what a user typed into a SearchQuery: `tag:NeRF since:2024-06 gaussian splatting`.

Pure and total: any string gives a SearchQuery, never an exception. A filter whose
value does not parse (`since:banana`) stays in the free text, so nothing the user
typed silently disappears.

    tag:NeRF  tag:"Talking Head Generation"  #NeRF     -> tags (any of them)
    since:2024-06-01  since:2024-06  since:2024        -> since (first day)
    until:2024-06-30  until:2024-06  until:2024        -> until (last day)
    author:Chakkera  author:"Sai Tanmay"               -> authors (all of them)
    2409.12156  2409.12156v2  arXiv:2409.12156
    https://arxiv.org/abs/2409.12156v1  hep-th/9901001 -> arxiv_ids (without version)
    anything else, "quoted phrases" included           -> text
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from bot.domain.models import SearchQuery

_OLD_ARCHIVES = frozenset({
    "acc-phys", "adap-org", "alg-geom", "ao-sci", "astro-ph", "atom-ph", "bayes-an",
    "chao-dyn", "chem-ph", "cmp-lg", "comp-gas", "cond-mat", "cs", "dg-ga", "funct-an",
    "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math", "math-ph", "mtrl-th", "nlin",
    "nucl-ex", "nucl-th", "patt-sol", "physics", "plasm-ph", "q-alg", "q-bio", "quant-ph",
    "solv-int", "supr-con",
})

_NEW_ID = re.compile(r"(\d{2})(\d{2})\.(\d{4,5})(?:v(\d+))?", re.ASCII | re.IGNORECASE)
_OLD_ID = re.compile(
    r"([a-z]+(?:-[a-z]+)?)(?:\.([a-z]{2}))?/(\d{2})(\d{2})(\d{3})(?:v(\d+))?",
    re.ASCII | re.IGNORECASE,
)
_URL = re.compile(
    r"(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html|format)/([^?#\s]+)"
    r"(?:[?#]\S*)?",
    re.IGNORECASE,
)
_PREFIX = re.compile(r"arxiv:\s*", re.IGNORECASE)
_MAX_VERSION_DIGITS = 9

_TOKEN = re.compile(
    r"""
      (?P<key>tag|since|until|author)[:：](?:"(?P<quoted>[^"]*)"?|(?P<bare>[^\s"]*))
    | \#(?P<hash>[^\s#"]+)
    | "(?P<phrase>[^"]*)"?
    | (?P<word>[^\s"]+)
    """,
    re.IGNORECASE | re.VERBOSE,
)
_DATE = re.compile(r"(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?", re.ASCII)
_EDGE_PUNCT = "()[]{}<>,;.!?'`“”‘’（）【】，。；！？"


def normalize_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """The arXiv id (without version) and version named by an id, `arXiv:` id or URL.

    "2409.12156v2" -> ("2409.12156", 2); "https://arxiv.org/pdf/2409.12156" ->
    ("2409.12156", None); "hep-th/9901001" -> ("hep-th/9901001", None); not an id -> None.
    """
    candidate = text.strip()
    url = _URL.fullmatch(candidate)
    if url:
        candidate = url.group(1).rstrip("/")
        if candidate.lower().endswith(".pdf"):
            candidate = candidate[:-4]
    else:
        prefix = _PREFIX.match(candidate)
        if prefix:
            candidate = candidate[prefix.end() :]
    new = _NEW_ID.fullmatch(candidate)
    if new:
        yy, mm, number, version = new.groups()
        if not 1 <= int(mm) <= 12 or not _good_version(version):
            return None
        return f"{yy}{mm}.{number}", int(version) if version else None
    old = _OLD_ID.fullmatch(candidate)
    if old:
        archive, subject, yy, mm, number, version = old.groups()
        if archive.lower() not in _OLD_ARCHIVES or not 1 <= int(mm) <= 12:
            return None
        if not _good_version(version):
            return None
        subject_part = f".{subject.upper()}" if subject else ""
        return f"{archive.lower()}{subject_part}/{yy}{mm}{number}", (
            int(version) if version else None
        )
    return None


_PAPER_LINK = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)|alphaxiv\.org/(?:abs|overview|pdf)"
    r"|(?:huggingface|hf)\.co/papers)/"
    r"((?:[a-z]+(?:-[a-z]+)?(?:\.[a-z]{2})?/)?[0-9]{4,7}(?:\.[0-9]{4,5})?(?:v[0-9]{1,9})?)",
    re.ASCII | re.IGNORECASE,
)
_BARE_ID = re.compile(
    r"(?<![\w./])(?:arxiv:[ \t]?)?([0-9]{4}\.[0-9]{4,5}(?:v[0-9]{1,9})?)(?![\w.]|/)",
    re.ASCII | re.IGNORECASE,
)


def find_paper_link(text: str) -> tuple[str, int | None] | None:
    """The paper a message points at: an arXiv, alphaXiv or Hugging Face papers link
    (abs or pdf, any version) or a bare arXiv id anywhere in it; None otherwise.

    What a reader pastes to open a paper, so a message holding one is not a search.
    """
    for pattern in (_PAPER_LINK, _BARE_ID):
        for match in pattern.finditer(text):
            found = normalize_arxiv_id(match.group(1))
            if found is not None:
                return found
    return None


def _good_version(version: str | None) -> bool:
    """No version, or a usable one: not 0 and at most 9 digits (int() raises ValueError
    beyond 4300 digits, and no arXiv paper has a billion versions)."""
    return version is None or (len(version) <= _MAX_VERSION_DIGITS and int(version) != 0)


def _day(value: str, *, last: bool) -> date | None:
    """YYYY-MM-DD, YYYY-MM or YYYY as a date: the first day, or the last if `last`."""
    match = _DATE.fullmatch(value.strip())
    if not match:
        return None
    year_s, month_s, day_s = match.groups()
    try:
        year = int(year_s)
        if month_s is None:
            return date(year, 12, 31) if last else date(year, 1, 1)
        month = int(month_s)
        if day_s is None:
            end = calendar.monthrange(year, month)[1] if 1 <= month <= 12 else 0
            return date(year, month, end if last else 1)
        return date(year, month, int(day_s))
    except ValueError:
        return None


def parse_query(text: str) -> SearchQuery:
    """Split user text into filters and free text; total, never raises."""
    words: list[str] = []
    tags: list[str] = []
    authors: list[str] = []
    ids: list[str] = []
    since: date | None = None
    until: date | None = None
    for match in _TOKEN.finditer(text):
        key = match.group("key")
        if key is not None:
            quoted = match.group("quoted")
            value = (quoted if quoted is not None else match.group("bare") or "").strip()
            kind = key.lower()
            if kind == "tag" and value.lstrip("#").strip():
                tags.append(value.lstrip("#").strip())
                continue
            if kind == "author" and value:
                authors.append(" ".join(value.split()))
                continue
            if kind in ("since", "until"):
                day = _day(value, last=kind == "until")
                if day is not None and kind == "since":
                    since = day if since is None else max(since, day)
                    continue
                if day is not None:
                    until = day if until is None else min(until, day)
                    continue
            words.append(match.group(0))
        elif match.group("hash") is not None:
            tags.append(match.group("hash"))
        elif match.group("phrase") is not None:
            phrase = " ".join(match.group("phrase").split())
            if phrase:
                words.append(f'"{phrase}"')
        else:
            word = match.group("word")
            arxiv = normalize_arxiv_id(word.strip(_EDGE_PUNCT))
            if arxiv is not None:
                ids.append(arxiv[0])
            else:
                words.append(word)
    return SearchQuery(
        text=" ".join(words),
        tags=tuple(dict.fromkeys(tags)),
        authors=tuple(dict.fromkeys(authors)),
        arxiv_ids=tuple(dict.fromkeys(ids)),
        since=since,
        until=until,
    )
