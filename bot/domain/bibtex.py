"""Papers as BibTeX: an ``@misc`` entry per paper, as arXiv's own export writes them.

Why here and pure: `paperfeed export --format bibtex` writes them, and anything else that
hands out citations (a card button, a saved list) can give the very same entries.
Titles and names are TeX: the characters TeX gives a meaning
(``& % $ # _ { } ~ ^ \\``) are escaped (braces as ``\textbraceleft{}``, because BibTeX
counts even escaped braces), so an entry always parses and typesets as written.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from bot.domain.models import ArchivedPaper, Paper

__all__ = ["bibtex_entry", "bibtex_key", "tex_escape", "unique_entry"]

_TEX_SPECIALS: Final = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    # BibTeX counts braces even after a backslash: \{ alone would unbalance the value.
    "{": r"\textbraceleft{}", "}": r"\textbraceright{}", "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_SPECIALS_RE: Final = re.compile("[\\\\&%$#_{}~^]")
_NEW_ID: Final = re.compile(r"([0-9]{2})[0-9]{2}\.[0-9]{4,5}")
_OLD_ID: Final = re.compile(r"[a-z\-]+(?:\.[A-Z]{2})?/([0-9]{2})[0-9]{5}", re.IGNORECASE)
_KEY_WORD: Final = re.compile(r"[a-z0-9]+")
_STOP_WORDS: Final = frozenset({"a", "an", "the", "on", "of", "for", "in", "to", "and", "with",
                                "towards", "via", "from"})


def tex_escape(text: str) -> str:
    """``text`` with TeX's special characters escaped and whitespace made single."""
    return _SPECIALS_RE.sub(lambda m: _TEX_SPECIALS[m.group()], " ".join(text.split()))


def _year(arxiv_id: str) -> str | None:
    """The year an arXiv id was issued in: 2409.12156 → 2024, hep-th/9901001 → 1999."""
    match = _NEW_ID.fullmatch(arxiv_id) or _OLD_ID.fullmatch(arxiv_id)
    if match is None:
        return None
    yy = int(match.group(1))
    return str(1900 + yy if yy >= 91 else 2000 + yy)


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _KEY_WORD.findall(folded)


def bibtex_key(paper: Paper) -> str:
    """``lastname2024firstword`` as Google Scholar makes them (ASCII only), or one made
    of the arXiv id when the names and title have no ASCII letters."""
    first = next((a.split() for a in paper.authors if a.split()), [])
    surname = _ascii_words(first[-1]) if first else []
    title = [w for w in _ascii_words(paper.title) if w not in _STOP_WORDS
             and not w.isdigit()]
    if surname and title:
        return f"{surname[-1]}{_year(paper.arxiv_id) or ''}{title[0]}"
    return "arxiv" + "".join(_ascii_words(paper.arxiv_id))


def bibtex_entry(paper: Paper | ArchivedPaper, *, max_authors: int | None = None) -> str:
    """One ``@misc`` entry: title, authors joined by ``and``, year, eprint,
    archivePrefix and url. ``max_authors``: more become BibTeX's ``and others`` (a
    message has room for some 4,000 characters; a collaboration paper lists thousands)."""
    p = paper.paper if isinstance(paper, ArchivedPaper) else paper
    names = [tex_escape(a) for a in p.authors if a.strip()]
    if max_authors is not None and len(names) > max_authors:
        names = [*names[:max_authors], "others"]
    fields = [("title", "{" + tex_escape(p.title) + "}"), ("author", " and ".join(names))]
    year = _year(p.arxiv_id)
    if year:
        fields.append(("year", year))
    fields += [("eprint", p.arxiv_id), ("archivePrefix", "arXiv"),
               ("url", f"https://arxiv.org/abs/{p.arxiv_id}")]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@misc{{{bibtex_key(p)},\n{body}\n}}"


def unique_entry(paper: Paper | ArchivedPaper, keys: set[str]) -> str:
    """The paper's entry with a key not in ``keys`` (a second ``smith2024gaussian``
    becomes ``smith2024gaussianb``), which is then added to them: for one file."""
    p = paper.paper if isinstance(paper, ArchivedPaper) else paper
    key = base = bibtex_key(p)
    suffixes = iter([chr(c) for c in range(ord("b"), ord("z") + 1)]
                    + [str(n) for n in range(2, 1_000_000)])
    while key in keys:
        key = base + next(suffixes)
    keys.add(key)
    entry = bibtex_entry(p)
    return entry if key == base else entry.replace("{" + base + ",", "{" + key + ",", 1)
