"""Who wants which paper: tag choices and keyword filters, as pure functions."""

from __future__ import annotations

from bot.domain.models import ArchivedPaper, Chat


def _haystack(paper: ArchivedPaper) -> str:
    p = paper.paper
    parts = [p.title, " ".join(p.authors), p.abstract, p.summary, " ".join(p.takeaways),
             " ".join(paper.tags)]
    parts.extend(a.summary for a in paper.appearances)
    return " ".join(parts).casefold()


def matches_keywords(paper: ArchivedPaper, include: tuple[str, ...],
                     exclude: tuple[str, ...]) -> bool:
    """Include: at least one word must occur; exclude: none may occur (case-insensitive)."""
    if not include and not exclude:
        return True
    text = _haystack(paper)
    if include and not any(word.casefold() in text for word in include):
        return False
    return not any(word.casefold() in text for word in exclude)


def wants(chat: Chat, paper: ArchivedPaper) -> bool:
    """Whether a chat's subscription and filters select this paper."""
    if not chat.active or not chat.subscribed:
        return False
    if not chat.all_topics:
        followed = {t.casefold() for t in chat.tags}
        if not any(tag.casefold() in followed for tag in paper.tags):
            return False
    return matches_keywords(paper, chat.include, chat.exclude)
