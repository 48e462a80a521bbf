"""The related list's pure parts: the ranking that puts papers of the same topics first,
the tags two papers share, its lines and its header."""

from __future__ import annotations

from datetime import date

from bot.domain.models import Appearance, ArchivedPaper
from bot.domain.related import (
    TOPIC_BONUS,
    Candidate,
    RelatedPaper,
    RelatedPapers,
    related_line,
    render_related,
    shared_tags,
    title_line,
    topics_first,
)
from bot.domain.tgtext import validate_telegram_html
from tests.storage.factories import make_paper


def listed(arxiv_id: str, *topics: str, title: str | None = None) -> ArchivedPaper:
    day = date(2024, 6, 1)
    return ArchivedPaper(make_paper(arxiv_id, title=title), tuple(
        Appearance(f"{day}/{t}.md", t, day) for t in topics))


def ids(found: list[Candidate]) -> list[int]:
    return [c.id for c in found]


def test_a_same_topic_paper_wins_a_near_tie() -> None:
    other = Candidate(1, 0.70, ("GAN",))
    same = Candidate(2, 0.65, ("GAN", "NeRF"))
    assert ids(topics_first(["NeRF"], [other, same], 2)) == [2, 1]
    assert ids(topics_first(["NeRF"], [other, same], 2, bonus=0.0)) == [1, 2]  # meaning alone


def test_a_paper_much_closer_in_meaning_wins_across_topics() -> None:
    """The bonus is a prior, not a filter: 20 % closer and more beats the shared topic."""
    closer = Candidate(1, 0.80, ("3DGS",))
    same = Candidate(2, 0.80 / (1 + TOPIC_BONUS) - 0.01, ("NeRF",))
    near_same = Candidate(3, 0.80 / (1 + TOPIC_BONUS) + 0.01, ("NeRF",))
    assert ids(topics_first(("NeRF",), [same, closer], 2)) == [1, 2]
    assert ids(topics_first(("NeRF",), [same, closer, near_same], 1)) == [3]


def test_the_shown_score_is_the_cosine_and_negative_scores_move_up_too() -> None:
    far_same = Candidate(5, -0.10, ("NeRF",))
    far_other = Candidate(4, -0.09, ("GAN",))
    found = topics_first(["NeRF"], [far_other, far_same], 2)
    assert found == [far_same, far_other]  # -0.08 against -0.09; candidates unchanged


def test_equal_ranks_go_by_id_whatever_the_order_given() -> None:
    pool = [Candidate(9, 0.5, ("NeRF",)), Candidate(3, 0.5, ("NeRF",)),
            Candidate(7, 0.7, ()), Candidate(5, 0.5, ("GAN",)), Candidate(1, 0.5, ("GAN",))]
    expected = [7, 3, 9, 1, 5]  # 0.7, the two 0.5s raised to 0.6, the two plain 0.5s
    assert ids(topics_first(["NeRF"], pool, 5)) == expected
    assert ids(topics_first(["NeRF"], pool[::-1], 5)) == expected
    assert ids(topics_first(["NeRF"], pool, 2)) == [7, 3]


def test_fewer_candidates_than_asked_and_no_topics() -> None:
    pool = [Candidate(2, 0.3, ("GAN",)), Candidate(1, 0.4, ("NeRF",))]
    assert ids(topics_first(["NeRF"], pool, 5)) == [1, 2]
    assert ids(topics_first([], [Candidate(2, 0.5, ("NeRF",)), Candidate(1, 0.4)], 5)) == [2, 1]
    assert topics_first(["NeRF"], [], 5) == []
    assert topics_first(["NeRF"], pool, 0) == []


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
