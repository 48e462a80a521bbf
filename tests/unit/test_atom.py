"""bot.domain.atom: Atom feeds that feed readers parse and the RFC's schema accepts,
whatever the digests hold.

Every feed here is checked twice: feedparser (what most readers are built on) parses it
without complaint, and lxml validates it against atom.rng, RFC 4287's RELAX NG schema for
the elements paperfeed writes (with ids as absolute IRIs and dates with a time zone).
"""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from bot.domain.atom import (
    ATOM_NS,
    MAX_AUTHORS,
    MAX_SUMMARY,
    feed_file_name,
    feed_info,
    render_feed,
    xml_text,
)
from bot.domain.models import Appearance, ArchivedPaper, Paper

SCHEMA = etree.RelaxNG(etree.parse(str(Path(__file__).with_name("atom.rng"))))
NS = {"a": ATOM_NS}


def paper(arxiv_id: str = "2409.12156", *, title: str = "Gaussian Avatars",
          authors: tuple[str, ...] = ("Ada Lovelace", "Alan Turing"),
          abstract: str = "We study avatars.", summary: str = "", comment: str = "",
          takeaways: tuple[str, ...] = (), links: tuple[str, ...] = (),
          appearances: tuple[Appearance, ...] | None = None) -> ArchivedPaper:
    p = Paper(arxiv_id, 2, title, authors, abstract, f"https://arxiv.org/abs/{arxiv_id}v2",
              f"https://arxiv.org/pdf/{arxiv_id}v2", comment=comment, links=links,
              summary=summary, takeaways=takeaways)
    if appearances is None:
        appearances = (Appearance("2024-02-01/NeRF.md", "NeRF", date(2024, 2, 1),
                                  "一句话总结。", ("要点一", "要点二")),)
    return ArchivedPaper(p, appearances)


def check(body: bytes) -> tuple[Any, Any]:
    """The feed parsed by feedparser and by lxml, after both found nothing wrong."""
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    root = etree.fromstring(body)
    assert SCHEMA.validate(root), SCHEMA.error_log
    # RFC 4287 4.1.1: a feed without an author needs one in every entry; ours has one.
    assert root.find("a:author/a:name", NS).text == "paperfeed"
    return parsed, root


def test_an_entry_carries_the_paper() -> None:
    both = ArchivedPaper(paper(comment="CVPR 2024", links=("https://github.com/x/y",)).paper, (
        Appearance("2024-02-01/NeRF.md", "NeRF", date(2024, 2, 1), "NeRF 的总结", ("甲", "乙")),
        Appearance("2024-03-15/3DGS.md", "3DGS", date(2024, 3, 15), "3DGS 的总结", ("丙",)),
    ))
    parsed, root = check(render_feed([both], feed_info(None)))
    [entry] = parsed.entries
    assert entry.id == "https://arxiv.org/abs/2409.12156"  # the arXiv id, without version
    assert entry.title == "Gaussian Avatars"
    assert [a.name for a in entry.authors] == ["Ada Lovelace", "Alan Turing"]
    assert [t.term for t in entry.tags] == ["NeRF", "3DGS"]
    links = {link.rel: link for link in entry.links}
    assert links["alternate"].href == "https://arxiv.org/abs/2409.12156v2"
    assert (links["related"].href, links["related"].type) == (
        "https://arxiv.org/pdf/2409.12156v2", "application/pdf")
    assert entry.summary == "We study avatars."  # the abstract
    # Every tag's feed: the newest listing's summary and takeaways, the venue, the links.
    content = entry.content[0]
    assert content.type == "text/html"
    assert "<p>3DGS 的总结</p>" in content.value
    assert "<ol><li>丙</li></ol>" in content.value
    assert "CVPR 2024" in content.value
    assert '<a href="https://github.com/x/y">Code</a>' in content.value
    assert (entry.published, entry.updated) == ("2024-02-01T00:00:00Z", "2024-03-15T00:00:00Z")
    assert root.findtext("a:updated", namespaces=NS) == "2024-03-15T00:00:00Z"

    # One tag's feed: that tag's listing.
    parsed, _ = check(render_feed([both], feed_info("NeRF")))
    [entry] = parsed.entries
    assert "<p>NeRF 的总结</p>" in entry.content[0].value
    assert "<ol><li>甲</li><li>乙</li></ol>" in entry.content[0].value
    assert entry.updated == entry.published == "2024-02-01T00:00:00Z"
    assert [t.term for t in entry.tags] == ["NeRF", "3DGS"]  # all its tags, still


def test_the_order_is_kept_and_the_feed_is_dated_by_its_newest_entry() -> None:
    older = paper("2401.00001", appearances=(
        Appearance("2024-01-05/NeRF.md", "NeRF", date(2024, 1, 5)),))
    newer = paper("2405.00001", appearances=(
        Appearance("2024-05-06/NeRF.md", "NeRF", date(2024, 5, 6)),))
    parsed, _ = check(render_feed([newer, older], feed_info("NeRF")))
    assert [e.id[-10:] for e in parsed.entries] == ["2405.00001", "2401.00001"]
    assert parsed.feed.updated == "2024-05-06T00:00:00Z"


def test_the_same_papers_give_the_same_bytes() -> None:
    """The ETag is a hash of the body: it must not depend on when or where it is rendered."""
    papers = [paper("2401.00001"), paper("2401.00002")]
    assert render_feed(papers, feed_info("NeRF")) == render_feed(papers, feed_info("NeRF"))


def test_an_empty_feed_is_valid() -> None:
    parsed, _ = check(render_feed([], feed_info("NeRF")))
    assert parsed.entries == []
    assert parsed.feed.updated == "1970-01-01T00:00:00Z"


def test_ids_and_self_links() -> None:
    assert feed_file_name(None) == "all.atom"
    assert feed_file_name("Talking Head Generation") == "Talking%20Head%20Generation.atom"
    assert feed_file_name("元宇宙/虚拟人") == (
        "%E5%85%83%E5%AE%87%E5%AE%99%2F%E8%99%9A%E6%8B%9F%E4%BA%BA.atom")

    public = feed_info("元宇宙/虚拟人", base_url="https://bot.example.org/feeds/")
    assert public.self_url == public.feed_id == (
        "https://bot.example.org/feeds/%E5%85%83%E5%AE%87%E5%AE%99%2F%E8%99%9A%E6%8B%9F%E4%BA%BA.atom")
    assert public.title == "paperfeed · 元宇宙/虚拟人"
    parsed, root = check(render_feed([paper()], public))
    assert parsed.feed.id == public.feed_id
    [self_link] = root.findall("a:link[@rel='self']", NS)
    assert self_link.get("type") == "application/atom+xml"

    # Without FEED_BASE_URL: a self link relative to wherever the feed is served, and a
    # stable name-based id that differs between feeds and between sites.
    bare = feed_info("NeRF")
    assert bare.self_url == "NeRF.atom"
    assert bare.feed_id.startswith("urn:uuid:")
    assert bare.feed_id == feed_info("NeRF").feed_id
    assert bare.feed_id != feed_info(None).feed_id
    assert bare.feed_id != feed_info("NeRF", blog_base_url="https://blog.example.org").feed_id
    check(render_feed([paper()], bare))

    blog = feed_info("NeRF", blog_base_url="https://blog.example.org")
    parsed, _ = check(render_feed([paper()], blog))
    assert {(link.rel, link.href) for link in parsed.feed.links} >= {
        ("alternate", "https://blog.example.org")}
    assert '<a href="https://blog.example.org/2024-02-01/NeRF/">Blog</a>' in (
        parsed.entries[0].content[0].value)


HOSTILE = ("<script>alert(1)</script> ]]> &amp; &lt;b&gt; \x00\x01\x08\x0b\x0c\x1b\x7f "
           "\ud800 \ufffe\uffff \U0001f600 end")


def test_hostile_text_is_escaped_and_stripped_of_what_xml_forbids() -> None:
    evil = paper(
        "2409.99999", title=HOSTILE, authors=(HOSTILE, "\x00", ""), abstract=HOSTILE,
        summary=HOSTILE, comment=HOSTILE, takeaways=(HOSTILE, "\x01"),
        links=('https://example.org/"><script>x</script>',),
        appearances=(Appearance("2024-02-01/a]]>b.md", 'a]]>"<b>\x00', date(2024, 2, 1),
                                HOSTILE, (HOSTILE,)),),
    )
    body = render_feed([evil], feed_info('a]]>"<b>\x00', base_url="https://x.example/feeds"))
    parsed, root = check(body)
    assert b"<script>" not in body
    [entry] = parsed.entries
    # Text elements hold the text itself: markup shows as written, never as markup.
    title = root.findtext("a:entry/a:title", namespaces=NS)
    assert title.startswith("<script>alert(1)</script> ]]>")
    assert "\x00" not in entry.title
    assert "\ufffe" not in entry.title
    assert "\U0001f600" in entry.title  # astral characters are allowed
    [author] = entry.authors  # blank names are dropped
    assert author.name.startswith("<script>")
    assert [t.term for t in entry.tags] == ['a]]>"<b>']
    # The html content: the text escaped once, so a reader shows it and runs nothing.
    content = root.findtext("a:entry/a:content", namespaces=NS)
    assert "<script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    # Summary, takeaway and comment, each as text in a paragraph or list item.
    assert html.unescape(content).count("<script>") == 3
    fragment = lxml.html.fragment_fromstring(content, create_parent="div")
    assert fragment.findall(".//script") == []
    assert fragment.text_content().count("<script>alert(1)</script>") == 3
    hrefs = [a.get("href") for a in fragment.iter("a")]
    assert hrefs == ["https://arxiv.org/abs/2409.99999v2", "https://arxiv.org/pdf/2409.99999v2"]


def test_fields_are_cut() -> None:
    crowd = tuple(f"Author {i}" for i in range(500))
    long = paper(authors=crowd, summary="字" * 50_000, takeaways=("x" * 10,) * 200,
                 appearances=(Appearance("2024-02-01/NeRF.md", "NeRF", date(2024, 2, 1)),))
    parsed, _ = check(render_feed([long], feed_info(None)))
    [entry] = parsed.entries
    assert len(entry.authors) == MAX_AUTHORS
    assert entry.authors[-1].name == f"… and {500 - MAX_AUTHORS + 1} more"
    text = entry.content[0].value
    assert "字" * (MAX_SUMMARY - 1) in text
    assert "字" * (MAX_SUMMARY + 1) not in text
    assert text.count("<li>") == 20


def test_xml_text_keeps_every_allowed_character() -> None:
    kept = "a\tb\nc\rdé中\U0010ffff"
    assert xml_text("a\tb\nc\rd\x00\x1f\ufffe\uffff\ud800é中\U0010ffff") == kept


texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=texts, author=texts, summary=texts, takeaway=texts, topic=texts, comment=texts)
def test_any_text_gives_a_valid_feed(title: str, author: str, summary: str, takeaway: str,
                                     topic: str, comment: str) -> None:
    evil = paper(title=title, authors=(author,), summary=summary, comment=comment,
                 takeaways=(takeaway,), abstract=summary,
                 appearances=(Appearance("2024-02-01/x.md", topic, date(2024, 2, 1),
                                         summary, (takeaway,)),))
    check(render_feed([evil], feed_info(topic)))


@pytest.mark.parametrize("tag", [None, "NeRF", "Talking Head Generation", "元宇宙/虚拟人"])
def test_every_feed_name_round_trips_through_a_url(tag: str | None) -> None:
    from urllib.parse import unquote

    name = feed_file_name(tag)
    assert "/" not in name
    assert " " not in name
    assert unquote(name.removesuffix(".atom")) == (tag or "all")
