"""The papers related to one paper, as the "🔗 Related" button and `paperfeed related` show
them: the nearest in meaning, papers of the same topics first (bot/services/related.py
finds the candidates; :func:`topics_first` orders them), each with the topics it shares
with the paper. Plain data, the ranking and the lines that list them; no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.chat_settings import language
from bot.domain.models import ArchivedPaper
from bot.domain.rendering import RESULT_TITLE_LEN, render_result_line
from bot.domain.tgtext import clean_text, escape, html_unescape, truncate

_TEXTS = {
    "en": {
        "header": "🔗 Papers related to <b>{title}</b>",
        "footer": "Nearest in meaning, same-topic papers first, with the topics they share.",
    },
    "zh": {
        "header": "🔗 与 <b>{title}</b> 相关的论文",
        "footer": "按语义远近排列，同主题的论文优先，附共同的主题。",
    },
}

TOPIC_BONUS = 0.2
"""A candidate that shares a topic with the paper counts this much closer: its cosine
score is raised by this share of itself (0.6 ranks as 0.72). Relative, not a fixed
amount, so it weighs the same for another model, whose cosines have another scale. A
reader who asks for the papers related to a NeRF paper expects NeRF papers first; one
of another topic still wins when it is more than 20 % closer. Chosen on the real
digests (docs/benchmarks.md, "Related papers"): from 0.1 to 0.5 the share of the 5
sharing a topic goes from 0.84 to 0.97 (0.65 by meaning alone), but 0.1 fell short of
0.8 on one half of them; 0.2 gives 0.92 and keeps 3.7 of the 5 nearest on average."""
POOL = 50
"""Candidates ranked: the nearest by meaning. Wide enough that every paper the bonus
could lift into the first 5 is in it (0.919 at 40, 0.921 at 50 and at 100)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A paper near another, before the ranking: its row id, its cosine similarity and
    its tags."""

    id: int
    score: float
    tags: tuple[str, ...] = ()


def topics_first(tags: Iterable[str], candidates: Iterable[Candidate], k: int,
                 bonus: float = TOPIC_BONUS) -> list[Candidate]:
    """The k best candidates for a paper with these tags, by cosine score raised by
    `bonus` of itself for those sharing a tag (a soft prior: far closer in meaning still
    wins); equal ranks by id, as the index orders equal scores."""
    mine = frozenset(tags)

    def rank(candidate: Candidate) -> tuple[float, int]:
        score = candidate.score
        if not mine.isdisjoint(candidate.tags):
            score += bonus * abs(score)  # closer by a share of itself, whatever its sign
        return -score, candidate.id

    return sorted(candidates, key=rank)[:max(k, 0)]


@dataclass(frozen=True, slots=True)
class RelatedPaper:
    """A paper near another: its cosine similarity (1 is the same direction) and the tags
    the two share, in this paper's order."""

    paper: ArchivedPaper
    score: float
    shared_tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RelatedPapers:
    """The answer for one paper. ``ready`` is False while the paper has no vector yet
    (just stored, or the archive is still being embedded): then ``papers`` is empty and
    means nothing; when ready and empty, the archive holds no other embedded paper."""

    paper: ArchivedPaper
    papers: tuple[RelatedPaper, ...] = ()
    ready: bool = True


def shared_tags(paper: ArchivedPaper, other: ArchivedPaper) -> tuple[str, ...]:
    """The tags of `other` that `paper` has too, in `other`'s order."""
    mine = set(paper.tags)
    return tuple(tag for tag in other.tags if tag in mine)


def related_line(item: RelatedPaper, index: int) -> str:
    """``N. <b>title</b> · date · #shared #tags`` (HTML), like a search result's line."""
    return render_result_line(item.paper, index, tags=item.shared_tags)


def title_line(paper: ArchivedPaper, limit: int = RESULT_TITLE_LEN) -> str:
    """The paper's title as one line of plain text, cut to `limit` (the list's header)."""
    title = " ".join(clean_text(html_unescape(paper.paper.title)).replace("**", "").split())
    return truncate(title or paper.arxiv_id, limit)


def render_related(found: RelatedPapers, lang: str = "en") -> str:
    """The list as one message (HTML): a header naming the paper, a numbered line per
    related paper, a one-line key."""
    texts = _TEXTS[language(lang)]
    lines = [related_line(item, i) for i, item in enumerate(found.papers, 1)]
    header = texts["header"].format(title=escape(title_line(found.paper)))
    return f"{header}\n\n" + "\n".join(lines) + "\n\n" + texts["footer"]
