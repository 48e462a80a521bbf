"""Paper cards and other Telegram messages, built from plain domain data.

Pure: no ``telegram`` import, no I/O, no clock. The bot layer turns a :class:`Card` into
``send_message(text=card.html, parse_mode=HTML, link_preview_options=…(url=preview_url,
show_above_text=True), reply_markup=…buttons…)``.

Every message built here passes :func:`~bot.domain.tgtext.validate_telegram_html` and fits
Telegram's 4096-unit limit, whatever the paper holds: fields are cut as *plain text*
before escaping (so a cut never lands inside a tag or entity) and the result is measured
exactly after entity parsing.

Text decisions: the digest fields are markdown, so ``&lt;`` in a summary is shown as
``<`` (entities are decoded, then everything is escaped again), ``**`` emphasis markers in
card fields are dropped and whitespace runs (arXiv's 3-space line-wrap runs, tabs, NBSP)
become one space. Only the long analysis is rendered as markdown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal
from urllib.parse import quote, urlsplit

from bot.domain.chat_settings import language
from bot.domain.markdown import markdown_to_html
from bot.domain.models import Appearance, ArchivedPaper, Paper
from bot.domain.tgtext import (
    MAX_MESSAGE_LEN,
    clean_text,
    escape,
    hashtag,
    html_unescape,
    is_blank,
    safe_url,
    split_html,
    strip_tags,
    truncate,
    utf16_len,
    validate_telegram_html,
    visible_len,
)

__all__ = [
    "CB_ANALYSIS",
    "CB_BIBTEX",
    "CB_CARD",
    "CB_FIGURES",
    "CB_RELATED",
    "CB_SAVE",
    "MAX_FIGURES",
    "Button",
    "Card",
    "blog_url",
    "callback_data",
    "count_words",
    "format_authors",
    "paper_links",
    "parse_callback",
    "plain_line",
    "plain_text",
    "render_analysis",
    "render_card",
    "render_figures",
    "render_header",
    "render_paused_notice",
    "render_result_line",
    "save_label",
    "shows_saved",
]

CB_CARD = "pp"
"""Callback prefix of a button that opens a paper's card: ``pp:<arxiv_id>``."""
CB_ANALYSIS = "an"
"""Callback prefix of the "show analysis" button: ``an:<arxiv_id>``."""
CB_FIGURES = "fg"
"""Callback prefix of the "show figures" button: ``fg:<arxiv_id>``."""
CB_BIBTEX = "bx"
"""Callback prefix of the "BibTeX" button: ``bx:<arxiv_id>``."""
CB_SAVE = "sv"
"""Callback prefix of the ☆ Save / ⭐ Saved button: ``sv:<arxiv_id>``."""
CB_RELATED = "rl"
"""Callback prefix of the "Related" button (the papers nearest in meaning): ``rl:<arxiv_id>``."""
SAVED_MARK = "⭐"
"""What a save button shows first once the paper is saved (``☆`` before)."""
MAX_CALLBACK_BYTES = 64
"""Telegram's limit for callback_data (telegram.constants.InlineKeyboardButtonLimit
.MAX_CALLBACK_DATA; the domain does not import telegram, a test checks they agree)."""
MAX_FIGURES = 10  # Telegram's limit for a media group
MAX_EXTRA_LINKS = 4  # project/code links from the arXiv comment shown on a card
FULL_AUTHORS = (6, 3)  # show all up to 6 names, else the first 3 and a count
COMPACT_AUTHORS = (3, 2)
RESULT_TITLE_LEN = 80
RESULT_TAGS = 3

# Smallest useful remainder when a field is cut to fit; below it the field is dropped.
_MIN_ITEM = 24
_MIN_ABSTRACT = 100
_MIN_SHORT = 20

_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "summary": "Summary:",
        "takeaways": "Key takeaways",
        "abstract": "Abstract",
        "more": "{names} … and {more} more",
        "arxiv": "arXiv",
        "pdf": "PDF",
        "code": "Code",
        "project": "Project",
        "blog": "Blog",
        "analysis_button": "📖 Analysis",
        "figures_button": "🖼 Figures ({n})",
        "arxiv_button": "arXiv",
        "pdf_button": "📄 PDF",
        "blog_button": "📝 Blog",
        "save_button": "☆ Save",
        "saved_button": "⭐ Saved",
        "related_button": "🔗 Related",
    },
    "zh": {
        "summary": "总结：",
        "takeaways": "要点",
        "abstract": "摘要",
        "more": "{names} 等 {total} 人",
        "arxiv": "arXiv",
        "pdf": "PDF",
        "code": "代码",
        "project": "项目主页",
        "blog": "博客",
        "analysis_button": "📖 解读",
        "figures_button": "🖼 截图 ({n})",
        "arxiv_button": "arXiv",
        "pdf_button": "📄 PDF",
        "blog_button": "📝 博客",
        "save_button": "☆ 收藏",
        "saved_button": "⭐ 已收藏",
        "related_button": "🔗 相关",
    },
}


def _labels(lang: str) -> dict[str, str]:
    """Labels for ``lang`` (``zh``, ``zh-hans``, ``zh_CN`` all map to zh); English otherwise."""
    return _LABELS.get(lang.lower().replace("_", "-").split("-")[0], _LABELS["en"])


def save_label(saved: bool, lang: str = "en") -> str:
    """The save button's text: ``☆ Save`` to save, ``⭐ Saved`` once saved."""
    return _labels(lang)["saved_button" if saved else "save_button"]


def shows_saved(label: str) -> bool | None:
    """What a save button's text says of the paper: saved (⭐), not saved (☆), or
    None for any other text."""
    if label.startswith(SAVED_MARK):
        return True
    return False if label.startswith("☆") else None


@dataclass(frozen=True, slots=True)
class Button:
    """An inline keyboard button: either a URL button or a callback button."""

    text: str
    url: str | None = None
    callback: str | None = None


@dataclass(frozen=True, slots=True)
class Card:
    """A paper as one Telegram message.

    ``html`` is for parse_mode HTML; ``preview_url`` (the first figure, or None) is for
    ``link_preview_options(url=…, show_above_text=True)``; ``links`` are the (label, URL)
    pairs shown on the card's link line.
    """

    html: str
    preview_url: str | None = None
    buttons: tuple[tuple[Button, ...], ...] = ()
    links: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- helpers


def callback_data(action: str, arxiv_id: str) -> str | None:
    """``"<action>:<arxiv_id>"``, or None if it exceeds Telegram's 64-byte limit.

    Real ids (``2409.12156``, ``hep-th/9901001``) are far below the limit; None only
    protects against garbage (empty or huge) ids, and the caller then leaves the button
    out.
    """
    if not action or ":" in action or not arxiv_id.strip() or clean_text(arxiv_id) != arxiv_id:
        return None  # empty, or holds characters that cannot be sent (surrogates, controls)
    data = f"{action}:{arxiv_id}"
    return data if len(data.encode("utf-8")) <= MAX_CALLBACK_BYTES else None


def parse_callback(data: str) -> tuple[str, str] | None:
    """Inverse of :func:`callback_data`: ``(action, arxiv_id)`` or None if malformed."""
    action, sep, arxiv_id = data.partition(":")
    if not sep or not action or not arxiv_id:
        return None
    return action, arxiv_id


def _plain(s: str) -> str:
    """A digest field as one line of plain text (see the module docstring)."""
    s = clean_text(html_unescape(s))
    s = s.replace("**", "")
    return " ".join(s.split())


plain_line = _plain


def format_authors(authors: tuple[str, ...] | list[str], limit: int, keep: int,
                   lang: str = "en") -> str:
    """``A, B, C`` or, above ``limit`` names, the first ``keep`` and a count.

    en: ``A, B, C … and 14 more``; zh: ``A, B, C 等 17 人`` (Chinese counts everyone).
    """
    names = [n for n in (_plain(a) for a in authors) if n]
    if len(names) <= limit:
        return ", ".join(names)
    shown = ", ".join(names[:keep])
    return _labels(lang)["more"].format(names=shown, more=len(names) - keep, total=len(names))


def blog_url(blog_base_url: str, digest_path: str) -> str | None:
    """The blog post of a digest: ``{base}/{path without .md}/``, segments URL-quoted.

    ``2024-10-12/Talking Head Generation.md`` → ``…/2024-10-12/Talking%20Head%20Generation/``;
    CJK names are percent-encoded as UTF-8. None if the base is not an http(s) URL.
    """
    path = clean_text(digest_path).replace("\\", "/").strip()
    if path.lower().endswith(".md"):
        path = path[:-3]
    segments = [quote(seg, safe="") for seg in path.split("/") if seg not in ("", ".")]
    if not segments:
        return None
    return safe_url(f"{blog_base_url.strip().rstrip('/')}/{'/'.join(segments)}/")


_CODE_HOSTS = ("github.com", "gitlab.com", "huggingface.co", "bitbucket.org", "gitee.com")


def paper_links(paper: Paper, labels: dict[str, str] | None = None,
                blog: str | None = None) -> tuple[tuple[str, str], ...]:
    """(label, URL) pairs for a card: arXiv page, PDF, project/code pages, blog post.

    Links from the comment are cleaned (trailing punctuation) and deduplicated; code
    hosts are labelled Code, anything else Project; arXiv's own pages are skipped; at most
    :data:`MAX_EXTRA_LINKS` of them. Invalid URLs are left out.
    """
    lab = labels or _LABELS["en"]
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(label: str, url: str | None) -> None:
        if url and url not in seen:
            seen.add(url)
            out.append((label, url))

    add(lab["arxiv"], safe_url(paper.abs_url))
    add(lab["pdf"], safe_url(paper.pdf_url))
    counts = {"code": 0, "project": 0}
    for raw in paper.links:
        if sum(counts.values()) >= MAX_EXTRA_LINKS:
            break
        url = safe_url(raw)
        if not url or url in seen:
            continue
        host = (urlsplit(url).hostname or "").lower()
        if host == "arxiv.org" or host.endswith(".arxiv.org"):
            continue
        kind = "code" if any(host == h or host.endswith("." + h) for h in _CODE_HOSTS) \
            else "project"
        counts[kind] += 1
        add(lab[kind] if counts[kind] == 1 else f"{lab[kind]} {counts[kind]}", url)
    add(lab["blog"], blog)
    return tuple(out)


def render_figures(paper: ArchivedPaper | Paper) -> list[str]:
    """Up to 10 distinct absolute http(s) figure URLs, for one media group (album).

    Broken relative paths from the digests (``./crop_3DGS/…``) are left out.
    """
    p = paper.paper if isinstance(paper, ArchivedPaper) else paper
    out: list[str] = []
    for raw in p.figures:
        url = safe_url(raw)
        if url and url not in out:
            out.append(url)
            if len(out) == MAX_FIGURES:
                break
    return out


def _has_text(html: str) -> bool:
    """Whether valid ``html`` shows anything Telegram counts as text (not only zero-width
    spaces, NBSP and the like, which the digests do contain)."""
    return not is_blank(validate_telegram_html(html))


_PROBE = 2048
"""Characters of an analysis rendered to decide whether a card offers it."""


def _analysis_has_text(markdown: str) -> bool:
    """Whether the analysis shows any text, without rendering all of it for every card:
    its first characters nearly always settle it (rendering up to ANALYSIS_MAX_BYTES per
    card would cost a broadcast or an inline answer dearly). Only an analysis that opens
    with no visible text is rendered whole."""
    if not markdown.strip():
        return False
    head = markdown[:_PROBE]
    # Cut inside a block that rendering drops (<details>, a comment), the opening could
    # show text the whole does not: such an analysis is rendered whole.
    hides = "<details" in head.lower() or "<!--" in head
    if len(markdown) > _PROBE and not hides and _has_text(markdown_to_html(head)):
        return True
    return _has_text(markdown_to_html(markdown))


def _pick_appearance(paper: ArchivedPaper, appearance: Appearance | None) -> Appearance | None:
    if appearance is not None:
        return appearance
    return min(paper.appearances, key=lambda a: (a.date, a.topic, a.digest_path), default=None)


def _hashtags(tags: tuple[str, ...] | list[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        h = hashtag(tag)
        if h and h not in out:
            out.append(h)
    return out


# --------------------------------------------------------------------------- cards


@dataclass(slots=True)
class _Fields:
    """The visible, cuttable parts of a card, as plain text."""

    title: str
    authors: str
    tags: list[str]
    date: str
    comment: str
    summary: str
    takeaways: list[str]
    abstract: str
    links: tuple[tuple[str, str], ...]
    labels: dict[str, str] = field(default_factory=dict)


def _compose(f: _Fields, style: str) -> str:
    head = [f"<b>{escape(f.title)}</b>"]
    if f.authors:
        head.append(escape(f.authors))
    meta = " · ".join(x for x in (" ".join(f.tags), f.date) if x)
    if meta:
        head.append(escape(meta))
    if f.comment and style == "full":
        head.append(f"<i>{escape(f.comment)}</i>")
    blocks = ["\n".join(head)]
    if f.summary:
        blocks.append(f"<b>{escape(f.labels['summary'])}</b> {escape(f.summary)}")
    if style == "full":
        if f.takeaways:
            items = "\n".join(f"{i}. {escape(t)}" for i, t in enumerate(f.takeaways, 1))
            blocks.append(f"<b>{escape(f.labels['takeaways'])}</b>\n{items}")
        if f.abstract:
            blocks.append(f"<blockquote expandable><b>{escape(f.labels['abstract'])}</b>\n"
                          f"{escape(f.abstract)}</blockquote>")
    if f.links:
        blocks.append(" · ".join(f'<a href="{escape(u, quote=True)}">{escape(label)}</a>'
                                 for label, u in f.links))
    return "\n\n".join(blocks)


def _cut(text: str, over: int, min_keep: int) -> str:
    """Shorten ``text`` by at least ``over`` units; "" if less than ``min_keep`` would stay."""
    target = utf16_len(text) - over
    return truncate(text, target) if target >= min_keep else ""


def _fit(f: _Fields, style: str, limit: int) -> str:
    """Cut fields, least important first, until the card fits ``limit`` visible units.

    Order: takeaways (drop items from the end, or cut the last one), abstract, summary,
    comment, hashtags (from the end), authors, title. Each cut is computed from the exact
    excess, then re-measured.
    """

    def over() -> int:
        return visible_len(_compose(f, style)) - limit

    excess = over()
    while excess > 0 and f.takeaways:
        cut = _cut(f.takeaways[-1], excess, _MIN_ITEM)
        if cut:
            f.takeaways[-1] = cut
            excess = over()
        elif len(f.takeaways) > 1:
            # Dropping a last item with others above it removes exactly its line
            # ("\nN. text"); measuring the whole card again for each of hundreds of
            # tiny items cost a third of a second.
            excess -= utf16_len(f"\n{len(f.takeaways)}. {f.takeaways.pop()}")
        else:
            f.takeaways.pop()
            excess = over()
    for name, minimum in (("abstract", _MIN_ABSTRACT), ("summary", _MIN_SHORT),
                          ("comment", _MIN_SHORT)):
        if excess > 0 and getattr(f, name):
            setattr(f, name, _cut(getattr(f, name), excess, minimum))
            excess = over()
    while excess > 0 and f.tags:
        f.tags.pop()
        excess = over()
    if excess > 0 and f.authors:
        f.authors = _cut(f.authors, excess, _MIN_SHORT)
        excess = over()
    if excess > 0:
        f.title = _cut(f.title, excess, 1) or truncate(f.title, 1)
        excess = over()
    html = _compose(f, style)
    if excess > 0:  # only fixed labels left; cannot happen with real limits, but be safe
        html = split_html(html, limit)[0]
    return html


def render_card(
    paper: ArchivedPaper,
    *,
    blog_base_url: str | None = None,
    style: Literal["full", "compact"] = "full",
    appearance: Appearance | None = None,
    lang: str = "en",
    limit: int = MAX_MESSAGE_LEN,
    saved: bool = False,
) -> Card:
    """A paper as one message: always valid Telegram HTML within ``limit`` visible units.

    Full: bold title; authors (first 3 and a count above 6); all tags as hashtags and the
    digest date (of ``appearance``, else the first appearance); the arXiv comment (venue,
    pages; its URLs are linkified by Telegram); the one-line summary and the takeaways of
    ``appearance`` (they differ between topics), falling back to the paper's own; the
    abstract in an expandable blockquote; a line of links. Compact: title, authors
    (first 2 above 3), tags, summary, links.

    ``appearance`` also selects the digest whose blog post is linked (when
    ``blog_base_url`` is set). Buttons, two rows of at most four short labels: analysis and
    figures (callbacks ``an:<id>``, ``fg:<id>``, only when there is something to show),
    save (``sv:<id>``, ``⭐ Saved`` when ``saved``, else ``☆ Save``: a card sent to
    many chats shows the default) and related papers (``rl:<id>``); then BibTeX
    (``bx:<id>``), arXiv page, PDF and blog post (URLs).
    """
    p = paper.paper
    lab = _labels(lang)
    app = _pick_appearance(paper, appearance)
    blog = blog_url(blog_base_url, app.digest_path) if blog_base_url and app else None
    day = appearance.date if appearance is not None else paper.first_seen
    summary = (appearance.summary if appearance and appearance.summary.strip() else p.summary)
    takeaways = (appearance.takeaways if appearance and appearance.takeaways else p.takeaways)
    limits = FULL_AUTHORS if style == "full" else COMPACT_AUTHORS
    links = paper_links(p, lab, blog)
    cap = limit  # no single field can usefully be longer than the whole message

    f = _Fields(
        title=truncate(_plain(p.title) or _plain(p.arxiv_id) or "?", cap),
        authors=truncate(format_authors(p.authors, *limits, lang=lang), cap),
        tags=_hashtags(paper.tags)[:64],
        date=day.isoformat() if day else "",
        comment=truncate(_plain(re.sub(r"\\url\{([^{}]*)\}", r"\1", p.comment)), cap),
        summary=truncate(_plain(summary), cap),
        takeaways=[],
        abstract=truncate(_plain(p.abstract), cap),
        links=links,
        labels=lab,
    )
    total = 0
    for item in takeaways:
        text = truncate(_plain(item), cap)
        if text and total <= cap:
            f.takeaways.append(text)
            total += utf16_len(text) + 4
    if style != "full":  # compact cards never show these; keep them out of the fitting
        f.comment, f.abstract, f.takeaways = "", "", []
    html = _fit(f, style, limit)

    figures = render_figures(p)
    first: list[Button] = []
    cb = callback_data(CB_ANALYSIS, p.arxiv_id)
    if cb and _analysis_has_text(p.analysis):
        first.append(Button(lab["analysis_button"], callback=cb))
    cb = callback_data(CB_FIGURES, p.arxiv_id)
    if cb and figures:
        first.append(Button(lab["figures_button"].format(n=len(figures)), callback=cb))
    cb = callback_data(CB_SAVE, p.arxiv_id)
    if cb:
        first.append(Button(save_label(saved, lang), callback=cb))
    cb = callback_data(CB_RELATED, p.arxiv_id)
    if cb:
        first.append(Button(lab["related_button"], callback=cb))
    second: list[Button] = []
    cb = callback_data(CB_BIBTEX, p.arxiv_id)
    if cb:
        second.append(Button("BibTeX", callback=cb))
    abs_url = safe_url(p.abs_url)
    if abs_url:
        second.append(Button(lab["arxiv_button"], url=abs_url))
    pdf = safe_url(p.pdf_url)
    if pdf:
        second.append(Button(lab["pdf_button"], url=pdf))
    if blog:
        second.append(Button(lab["blog_button"], url=blog))
    return Card(
        html=html,
        preview_url=figures[0] if figures else None,
        buttons=tuple(tuple(row) for row in (first, second) if row),
        links=links,
    )


def render_analysis(paper: ArchivedPaper | Paper, limit: int = MAX_MESSAGE_LEN) -> list[str]:
    """The LLM analysis as Telegram HTML messages, each within ``limit``.

    The first message starts with the bold title and a link to the arXiv page. Returns
    ``[]`` when the paper has no analysis, so the caller can say so in its own words.
    """
    p = paper.paper if isinstance(paper, ArchivedPaper) else paper
    body = markdown_to_html(p.analysis)
    if not _has_text(body):
        return []
    header = f"<b>{escape(truncate(_plain(p.title) or _plain(p.arxiv_id), 300))}</b>"
    abs_url = safe_url(p.abs_url)
    if abs_url:
        label = truncate(f"arXiv:{_plain(p.arxiv_id)}", 64)
        header += f'\n<a href="{escape(abs_url, quote=True)}">{escape(label)}</a>'
    return split_html(f"{header}\n\n{body}", limit)


def render_result_line(paper: ArchivedPaper, index: int,
                       tags: Sequence[str] | None = None) -> str:
    """One line for a search result list: ``N. <b>title</b> · date · #tags``.

    The title is cut to about 80 characters and at most 3 hashtags are shown (they are
    clickable in Telegram, which makes them a cheap way to refine a search): the paper's
    own tags, or ``tags`` when given (a related paper shows those it shares).
    """
    p = paper.paper
    title = truncate(_plain(p.title) or _plain(p.arxiv_id), RESULT_TITLE_LEN)
    parts = [f"{index}. <b>{escape(title)}</b>"]
    if paper.first_seen:
        parts.append(paper.first_seen.isoformat())
    tags = _hashtags(list(paper.tags if tags is None else tags))[:RESULT_TAGS]
    if tags:
        parts.append(escape(" ".join(tags)))
    return " · ".join(parts)


# --------------------------------------------------------------------------- delivery texts


_HEADER_WORDS = {
    "en": ("{n} new paper", "{n} new papers", "{n} paper", "{n} papers"),
    "zh": ("{n} 篇新论文", "{n} 篇新论文", "{n} 篇论文", "{n} 篇论文"),
}


def count_words(papers: int, *, lang: str = "en", reason: str = "new") -> str:
    """``3 new papers`` (or ``3 papers`` for a repost), in plain text."""
    words = _HEADER_WORDS[language(lang)]
    return words[(0 if papers == 1 else 1) + (0 if reason == "new" else 2)].format(n=papers)


def render_header(topic: str, day: date | str | None, papers: int, *, lang: str = "en",
                  reason: str = "new") -> str:
    """The line that opens a digest in a chat: ``📚 <b>topic</b> · 2024-06-01 · 3 new papers``."""
    parts = [f"<b>{escape(truncate(clean_text(topic).strip() or '?', 200))}</b>"]
    if day:
        parts.append(escape(day.isoformat() if isinstance(day, date) else str(day)))
    parts.append(escape(count_words(papers, lang=lang, reason=reason)))
    return "📚 " + " · ".join(parts)


_PAUSED_WORDS = {
    "en": ("⏸ <b>I can't post the new papers in {title}</b> for now: {reason}\n\n"
           "They wait and I try again every hour. Reopen the topic or give me the right to "
           "send messages, and they arrive in order. (I say this once.)"),
    "zh": ("⏸ <b>暂时无法在 {title} 发布新论文</b>：{reason}\n\n"
           "论文会保留，我每小时重试一次。重新打开话题或授予我发送消息的权限后，它们会按顺序送达。"
           "（此提示只发一次。）"),
}


def render_paused_notice(title: str, reason: str, *, lang: str = "en") -> str:
    """What a paused chat's admins are told once: why, and that nothing is lost."""
    words = _PAUSED_WORDS[language(lang)]
    return words.format(title=escape(truncate(clean_text(title).strip() or "this chat", 100)),
                        reason=escape(truncate(clean_text(reason).strip(), 300)))


def plain_text(html: str, fallback: str = "") -> str:
    """What a message shows, as plain text that Telegram cannot refuse.

    Uses the validator's visible text; for HTML it rejects (the reason we are here),
    tags are stripped and entities decoded. Cut to 4096 UTF-16 units; never empty.
    """
    try:
        text = validate_telegram_html(html)
    except ValueError:
        text = html_unescape(strip_tags(html))
    text = clean_text(text).strip() or clean_text(fallback).strip() or "…"
    return truncate(text, MAX_MESSAGE_LEN)
