"""The papers related to one paper, as the "🔗 Related" button and `paperfeed related` show
them: the nearest in meaning (bot/services/related.py finds them), each with the topics
it shares with the paper. Plain data and the lines that list them; no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.chat_settings import language
from bot.domain.models import ArchivedPaper
from bot.domain.rendering import RESULT_TITLE_LEN, render_result_line
from bot.domain.tgtext import clean_text, escape, html_unescape, truncate

_TEXTS = {
    "en": {
        "header": "🔗 Papers related to <b>{title}</b>",
        "footer": "Nearest in meaning (title and abstract), with the topics they share.",
    },
    "zh": {
        "header": "🔗 与 <b>{title}</b> 相关的论文",
        "footer": "按标题和摘要的语义远近排列，附共同的主题。",
    },
}


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
