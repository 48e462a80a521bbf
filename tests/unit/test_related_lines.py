"""The related list's pure parts: the tags two papers share, its lines and its header."""

from __future__ import annotations

from datetime import date

from bot.domain.models import Appearance, ArchivedPaper
from bot.domain.related import (
    RelatedPaper,
    RelatedPapers,
    related_line,
    render_related,
    shared_tags,
    title_line,
)
from bot.domain.tgtext import validate_telegram_html
from tests.storage.factories import make_paper


def listed(arxiv_id: str, *topics: str, title: str | None = None) -> ArchivedPaper:
    day = date(2024, 6, 1)
    return ArchivedPaper(make_paper(arxiv_id, title=title), tuple(
        Appearance(f"{day}/{t}.md", t, day) for t in topics))


def test_shared_tags_in_the_other_papers_order() -> None:
    paper = listed("2406.00001", "NeRF", "3DGS", "元宇宙/虚拟人")
    other = listed("2406.00002", "元宇宙/虚拟人", "GAN", "3DGS")
    assert shared_tags(paper, other) == ("3DGS", "元宇宙/虚拟人")
    assert shared_tags(paper, listed("2406.00003", "GAN")) == ()


def test_lines_and_header_are_valid_html_in_both_languages() -> None:
    paper = listed("2406.00001", "NeRF", title="Splats <&> **bold** &amp; more " * 8)
    assert title_line(paper).startswith("Splats <&> bold & more")
    assert len(title_line(paper)) <= 80
    near = RelatedPaper(listed("2406.00002", "NeRF", "GAN", title="A <b>"), 0.8, ("NeRF",))
    assert related_line(near, 2) == "2. <b>A &lt;b&gt;</b> · 2024-06-01 · #NeRF"
    found = RelatedPapers(paper, (near,) * 5)
    for lang, header in (("en", "🔗 Papers related to Splats <&> bold"),
                         ("zh", "🔗 与 Splats <&> bold")):
        text = validate_telegram_html(render_related(found, lang))  # raises if invalid
        assert text.startswith(header)
        assert [line[:3] for line in text.splitlines() if line[:1].isdigit()] == [
            "1. ", "2. ", "3. ", "4. ", "5. "]
