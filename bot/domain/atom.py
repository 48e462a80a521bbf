"""Atom feeds (RFC 4287) of the archive's newest papers: papers in, XML bytes out.

Pure: no I/O, no clock. The same bytes for the same papers and settings, whoever renders
them (the bot's HTTP server, `paperfeed feed`, a second instance), so a feed's ETag is
a hash of its body and stays put across restarts.

Why the standard library's ElementTree and not feedgen (the usual feed library): Atom
needs a dozen elements, which ElementTree writes with correct escaping (`&`, `<`, `>`
in text; quotes and newlines in attributes too), and feedgen would bring lxml and
python-dateutil into the bot for them. Neither removes what XML 1.0 forbids (ElementTree
writes it as is, lxml raises), so both need `xml_text` anyway: the text comes from an
LLM and from files anyone can drop into the folder.

Choices:
- Entry id: the arXiv abs URL without version (`https://arxiv.org/abs/2409.12156`), an
  absolute IRI that stays the same when a new version arrives, and the same in every
  feed (it is the same paper).
- published / updated: the first and the last date the feed's scope (its tag, or every
  tag) listed the paper, at 00:00 UTC: digests have days, not times. The order is the
  archive's "newest first" (by last listing), as in /latest.
- content (html): that last listing's summary and takeaways (they differ between topics),
  the venue comment and the links; summary (text): the abstract.
- A feed-level author ("paperfeed"), so an entry without authors is still valid Atom.
- Every field is cut (see the limits below): a hostile digest cannot make a feed of
  megabytes.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Final
from urllib.parse import quote

from bot.domain.models import Appearance, ArchivedPaper
from bot.domain.rendering import blog_url, paper_links
from bot.domain.tgtext import clean_text, html_unescape, safe_url, truncate

__all__ = [
    "ALL_NAME",
    "ATOM_NS",
    "CONTENT_TYPE",
    "FEED_SIZE",
    "FeedInfo",
    "feed_file_name",
    "feed_info",
    "render_feed",
    "xml_text",
]

ATOM_NS: Final = "http://www.w3.org/2005/Atom"
CONTENT_TYPE: Final = "application/atom+xml; charset=utf-8"
FEED_SIZE: Final = 50
"""Entries in a feed: the newest papers of its scope."""
ALL_NAME: Final = "all"
"""The feed of every tag: `all.atom`."""

# Limits, in UTF-16 units (tgtext.truncate's measure): far above real text, and bounding
# a feed of 50 entries to about a megabyte whatever a digest holds.
MAX_TITLE: Final = 1000
MAX_SUMMARY: Final = 4000
MAX_TAKEAWAY: Final = 1000
MAX_TAKEAWAYS: Final = 20
MAX_ABSTRACT: Final = 6000
MAX_COMMENT: Final = 1000
MAX_NAME: Final = 200
MAX_AUTHORS: Final = 100
MAX_CATEGORIES: Final = 50

_EPOCH: Final = "1970-01-01T00:00:00Z"  # `updated` of a feed without entries

# Everything XML 1.0 does not allow in a document (its Char production): C0 controls but
# tab, newline and carriage return; lone surrogates; U+FFFE and U+FFFF.
_NOT_XML_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(s: str) -> str:
    """`s` without the characters XML 1.0 forbids (a parser refuses the whole feed)."""
    return _NOT_XML_RE.sub("", s)


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What a feed says about itself, besides its entries."""

    feed_id: str  # an absolute IRI, stable for this feed
    title: str
    self_url: str  # absolute, or relative to the feed's own URL
    tag: str | None = None  # the scope: this tag's listings; None: every tag
    site_url: str | None = None  # rel=alternate of the feed (BLOG_BASE_URL)
    blog_base_url: str | None = None  # entries link their digest's blog post


def feed_file_name(tag: str | None) -> str:
    """`all.atom`, or the tag percent-encoded (UTF-8): `Talking%20Head%20Generation.atom`."""
    # errors: a lone surrogate (a file name that was not UTF-8) becomes ? (%3F).
    return f"{ALL_NAME if tag is None else quote(tag, safe='', errors='replace')}.atom"


def feed_info(tag: str | None, *, base_url: str | None = None,
              blog_base_url: str | None = None) -> FeedInfo:
    """Id, title and links of the feed of `tag` (None: every tag).

    ``base_url`` is where the feeds are published (FEED_BASE_URL, e.g.
    `https://bot.example.org/feeds`): the self link and the id are `<base>/<file name>`.
    Without it the self link is the bare file name, which resolves against the feed's own
    URL wherever it is served, and the id a name-based UUID (an absolute IRI is required)
    of the file name and BLOG_BASE_URL.
    """
    name = feed_file_name(tag)
    base = base_url.rstrip("/") if base_url else None
    if base:
        self_url = feed_id = f"{base}/{name}"
    else:
        self_url = name
        seed = f"paperfeed:{blog_base_url or ''}:{name}"
        feed_id = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, seed)}"
    title = "paperfeed" if tag is None else f"paperfeed · {tag}"
    return FeedInfo(feed_id, title, self_url, tag, blog_base_url, blog_base_url)


def render_feed(papers: Sequence[ArchivedPaper], info: FeedInfo) -> bytes:
    """The Atom document, UTF-8 with an XML declaration; entries in the given order."""
    # Plain names and an xmlns attribute: ElementTree's default_namespace option refuses
    # attributes without a namespace, which is every attribute of Atom.
    feed = ET.Element("feed", xmlns=ATOM_NS)
    _text(feed, "id", info.feed_id)
    _text(feed, "title", info.title)
    entries = [_entry(paper, info) for paper in papers]
    stamps = [e.findtext("updated") or _EPOCH for e in entries]
    _text(feed, "updated", max(stamps, default=_EPOCH))
    _link(feed, "self", info.self_url, "application/atom+xml")
    site = safe_url(info.site_url) if info.site_url else None
    if site:
        _link(feed, "alternate", site, "text/html")
    author = ET.SubElement(feed, "author")
    _text(author, "name", "paperfeed")
    _text(feed, "generator", "paperfeed")
    feed.extend(entries)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _entry(paper: ArchivedPaper, info: FeedInfo) -> ET.Element:
    p = paper.paper
    scope = [a for a in paper.appearances if info.tag is None or a.topic == info.tag]
    scope = scope or list(paper.appearances)
    newest = max(scope, key=lambda a: (a.date, a.digest_path), default=None)
    entry = ET.Element("entry")
    _text(entry, "id", f"https://arxiv.org/abs/{quote(p.arxiv_id, safe='/')}")
    _text(entry, "title", _plain(p.title, MAX_TITLE) or p.arxiv_id)
    _text(entry, "updated", _stamp(max((a.date for a in scope), default=None)))
    _text(entry, "published", _stamp(min((a.date for a in scope), default=None)))
    names = [n for n in (_plain(a, MAX_NAME) for a in p.authors) if n]
    if len(names) > MAX_AUTHORS:
        names = [*names[:MAX_AUTHORS - 1], f"… and {len(names) - MAX_AUTHORS + 1} more"]
    for name in names:
        _text(ET.SubElement(entry, "author"), "name", name)
    abs_url, pdf_url = safe_url(p.abs_url), safe_url(p.pdf_url)
    if abs_url:
        _link(entry, "alternate", abs_url, "text/html")
    if pdf_url:
        _link(entry, "related", pdf_url, "application/pdf", title="PDF")
    for tag in paper.tags[:MAX_CATEGORIES]:
        ET.SubElement(entry, "category", term=xml_text(tag))
    abstract = _plain(p.abstract, MAX_ABSTRACT)
    if abstract:
        _text(entry, "summary", abstract, type="text")
    _text(entry, "content", _content(paper, newest, info, abstract), type="html")
    return entry


def _content(paper: ArchivedPaper, newest: Appearance | None, info: FeedInfo,
             abstract: str) -> str:
    """The entry's HTML: summary, takeaways, venue comment, links (the abstract alone when
    the digest gave neither summary nor takeaways)."""
    p = paper.paper
    summary = newest.summary if newest and newest.summary.strip() else p.summary
    takeaways = newest.takeaways if newest and newest.takeaways else p.takeaways
    parts: list[str] = []
    text = _plain(summary, MAX_SUMMARY)
    if text:
        parts.append(f"<p>{escape(text)}</p>")
    items = [t for t in (_plain(t, MAX_TAKEAWAY) for t in takeaways[:MAX_TAKEAWAYS]) if t]
    if items:
        parts.append("<ol>" + "".join(f"<li>{escape(t)}</li>" for t in items) + "</ol>")
    if not parts and abstract:
        parts.append(f"<p>{escape(abstract)}</p>")
    comment = _plain(re.sub(r"\\url\{([^{}]*)\}", r"\1", p.comment), MAX_COMMENT)
    if comment:
        parts.append(f"<p><i>{escape(comment)}</i></p>")
    blog = (blog_url(info.blog_base_url, newest.digest_path)
            if info.blog_base_url and newest else None)
    links = [f'<a href="{escape(url, quote=True)}">{escape(label)}</a>'
             for label, url in paper_links(p, blog=blog)]
    if links:
        parts.append("<p>" + " · ".join(links) + "</p>")
    return "\n".join(parts)


def _plain(s: str, limit: int) -> str:
    """A digest field as one line of plain text, as a card shows it: entities decoded,
    `**` dropped, whitespace runs one space, cut to `limit`."""
    s = clean_text(html_unescape(s)).replace("**", "")
    return truncate(" ".join(s.split()), limit)


def _stamp(day: date | None) -> str:
    """RFC 3339 date-time of a digest day (00:00 UTC)."""
    return f"{day.isoformat()}T00:00:00Z" if day else _EPOCH


def _text(parent: ET.Element, name: str, value: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, name, attrs)
    element.text = xml_text(value)
    return element


def _link(parent: ET.Element, rel: str, href: str, media_type: str, **attrs: str) -> None:
    values = {"rel": rel, "type": media_type, "href": href, **attrs}
    ET.SubElement(parent, "link", {k: xml_text(v) for k, v in values.items()})
