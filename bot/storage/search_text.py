"""Text on both sides of the search index: what it holds for a paper, the terms a query
looks for. Pure (no SQL, no I/O); search.py writes and queries the index with them.

Chinese (and Japanese, Korean): SQLite's unicode61 would keep a run of CJK characters
as one token, so at index time every CJK character becomes a token of its own
("扩散模型" -> "扩 散 模 型"), and a query term becomes the phrase of its characters
("扩散" -> the phrase "扩 散"). A phrase needs its tokens at consecutive positions, so
this finds exactly the texts containing the term, like indexing overlapping bigrams
would, with the same bm25 scores (FTS5 scores phrases; document lengths are equal),
and a single character needs no prefix query. Measured on 17k real summaries it
indexes about twice as fast as bigrams, because the vocabulary stays a few thousand
characters; the price is slower queries for very common characters (tens of ms at
100k papers).

User text is reduced to letters and digits here (`split_terms`), so nothing a user
types is ever an operator of either dialect's query language.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

MAX_QUERY_CHARS: Final = 500
MAX_TERMS: Final = 32  # phrases per query
MAX_TOKENS_PER_TERM: Final = 32

_CJK_CLASS = (
    "\u3005\u3007"  # 々 〇
    "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff"  # kana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # han
    "\uac00-\ud7a3"  # hangul syllables
    "\U00020000-\U0003134f"  # han extensions B-H
)
_CJK_RUN = re.compile(f"[{_CJK_CLASS}]+")
_CJK_SPLIT = re.compile(f"([{_CJK_CLASS}]+)")
_WORD = re.compile(r"[^\W_]+")  # letters and digits: a subset of unicode61's token chars
_PIECE = re.compile(r'"([^"]*)"?|([^\s"]+)')  # a "quoted phrase" (closing quote optional) or a word


# --- the index side -----------------------------------------------------------------------


def cjk_index_text(text: str) -> str:
    """Index-time transform: every CJK character becomes a token of its own.

    "利用新型Mesh" -> " 利 用 新 型 Mesh": CJK is also cut off from adjacent Latin
    letters, which unicode61 would otherwise glue to it.
    """
    if text.isascii():  # titles, authors, abstracts mostly: nothing to do (O(1) check)
        return text
    # split() with a group alternates other text and CJK runs: a list comprehension
    # over the runs is about twice as fast as sub() with a callback per run.
    parts = _CJK_SPLIT.split(text)
    parts[1::2] = [" " + " ".join(run) + " " for run in parts[1::2]]
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class PaperText:
    """What the index holds for one paper, before dialect-specific transforms."""

    paper_id: int
    title: str
    authors: Sequence[str]
    abstract: str
    summaries: Sequence[str] = ()
    takeaways: Sequence[str] = ()
    tags: Sequence[str] = ()

    def columns(self) -> dict[str, str]:
        """Column texts in the index's column order (search.FTS_COLUMNS); repeated
        summaries, takeaways and tags are indexed once."""
        return {
            "title": self.title,
            "authors": ", ".join(self.authors),
            "abstract": self.abstract,
            "summary": "\n".join(dict.fromkeys(s for s in self.summaries if s)),
            "takeaways": "\n".join(dict.fromkeys(t for t in self.takeaways if t)),
            "tags": "\n".join(dict.fromkeys(self.tags)),
        }


@dataclass(slots=True)
class PaperTextBuilder:
    """Collects the appearances of papers while they stream by, then yields PaperTexts."""

    papers: dict[int, tuple[str, Sequence[str], str]] = field(default_factory=dict)
    summaries: defaultdict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    takeaways: defaultdict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    tags: defaultdict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def paper(self, paper_id: int, title: str, authors: Sequence[str], abstract: str) -> None:
        self.papers[paper_id] = (title, authors, abstract)

    def appearance(
        self, paper_id: int, topic: str, summary: str, takeaways: Iterable[str]
    ) -> None:
        self.summaries[paper_id].append(summary)
        self.takeaways[paper_id].extend(takeaways)
        self.tags[paper_id].append(topic)

    def build(self) -> list[PaperText]:
        return [
            PaperText(pid, title, authors, abstract, self.summaries[pid], self.takeaways[pid],
                      self.tags[pid])
            for pid, (title, authors, abstract) in self.papers.items()
        ]


# --- the query side -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """One query term: tokens that must appear consecutively, in this order."""

    tokens: tuple[str, ...]


def _term(piece: str) -> Term | None:
    tokens: list[str] = []
    for word in _WORD.findall(piece):
        pos = 0
        for run in _CJK_RUN.finditer(word):
            if run.start() > pos:
                tokens.append(word[pos : run.start()])
            tokens.extend(run.group(0))
            pos = run.end()
        if pos < len(word):
            tokens.append(word[pos:])
    return Term(tuple(tokens[:MAX_TOKENS_PER_TERM])) if tokens else None


def split_terms(user_text: str) -> list[Term]:
    """Tokenise user text into at most MAX_TERMS terms; never raises, may return [].

    A word or "quoted phrase" gives one term of its letter/digit runs ("talking-head"
    -> talking head, as a phrase); CJK characters are tokens of their own; everything
    else (punctuation, operators, emoji, NUL, lone surrogates) is dropped.
    """
    terms: list[Term] = []
    for match in _PIECE.finditer(user_text[:MAX_QUERY_CHARS]):
        term = _term(match.group(1) if match.group(1) is not None else match.group(2))
        if term is not None and term not in terms:
            terms.append(term)
            if len(terms) == MAX_TERMS:
                break
    return terms


def author_term(name: str) -> Term | None:
    """An author's name as one phrase (None when nothing of it is searchable)."""
    tokens = [tok for term in split_terms(clean(name)) for tok in term.tokens]
    return Term(tuple(tokens[:MAX_TOKENS_PER_TERM])) if tokens else None


def clean(value: str, limit: int = 200) -> str:
    """Drop what no driver can bind (lone surrogates, NUL) and cap the length."""
    return value[:limit].encode("utf-8", "ignore").decode("utf-8").replace("\x00", "").strip()
