"""Paper cards: content, escaping, buttons, and the 4096-unit limit under any input."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.models import Appearance, ArchivedPaper, Paper
from bot.domain.rendering import (
    Button,
    blog_url,
    callback_data,
    format_authors,
    paper_links,
    parse_callback,
    render_analysis,
    render_card,
    render_figures,
    render_result_line,
)
from bot.domain.tgtext import utf16_len, validate_telegram_html, visible_len

LIMIT = 4096


def make_paper(**kw: object) -> Paper:
    fields: dict[str, object] = {
        "arxiv_id": "2409.12156",
        "version": 1,
        "title": "JoyHallo: Digital human model for Mandarin",
        "authors": ("Sheng Shi", "Xuyang Cao", "Jun Zhao"),
        "abstract": "In audio-driven video generation, creating Mandarin videos is hard.",
        "abs_url": "https://arxiv.org/abs/2409.12156v1",
        "pdf_url": "https://arxiv.org/pdf/2409.12156v1",
        "summary": "提出 JoyHallo 模型。",
        "takeaways": ("first point", "second point"),
        "analysis": "1. **标题**：JoyHallo\n2. 作者：Sheng Shi",
        "figures": ("https://pic1.zhimg.com/a.jpg", "https://pic1.zhimg.com/b.jpg"),
    }
    fields.update(kw)
    return Paper(**fields)  # type: ignore[arg-type]


def make_archived(paper: Paper | None = None, *apps: Appearance) -> ArchivedPaper:
    if not apps:
        apps = (Appearance("2024-09-24/Talking Head Generation.md", "Talking Head Generation",
                           date(2024, 9, 24)),)
    return ArchivedPaper(paper or make_paper(), apps)


def plain(html: str) -> str:
    text = validate_telegram_html(html)
    assert utf16_len(text) <= LIMIT
    return text


# --------------------------------------------------------------------------- content


def test_full_card_content() -> None:
    ap = make_archived(make_paper(comment="Accepted by CVPR 2024. Project: https://x.org/p",
                                  links=("https://x.org/p", "https://github.com/a/b")))
    card = render_card(ap, blog_base_url="https://blog.example.org/")
    text = plain(card.html)
    assert card.html.startswith("<b>JoyHallo: Digital human model for Mandarin</b>\n")
    assert "Sheng Shi, Xuyang Cao, Jun Zhao" in text
    assert "#TalkingHeadGeneration · 2024-09-24" in text
    assert "<i>Accepted by CVPR 2024. Project: https://x.org/p</i>" in card.html
    assert "Summary: 提出 JoyHallo 模型。" in text
    assert "Key takeaways\n1. first point\n2. second point" in text
    assert "<blockquote expandable><b>Abstract</b>\nIn audio-driven" in card.html
    assert card.links == (
        ("arXiv", "https://arxiv.org/abs/2409.12156v1"),
        ("PDF", "https://arxiv.org/pdf/2409.12156v1"),
        ("Project", "https://x.org/p"),
        ("Code", "https://github.com/a/b"),
        ("Blog", "https://blog.example.org/2024-09-24/Talking%20Head%20Generation/"),
    )
    assert text.endswith("arXiv · PDF · Project · Code · Blog")
    assert card.preview_url == "https://pic1.zhimg.com/a.jpg"


def test_compact_card_has_no_takeaways_abstract_or_comment() -> None:
    authors = tuple(f"Author {i}" for i in range(5))
    ap = make_archived(make_paper(comment="CVPR", authors=authors))
    text = plain(render_card(ap, style="compact").html)
    assert "Author 0, Author 1 … and 3 more" in text
    assert "Summary: 提出 JoyHallo 模型。" in text
    assert "first point" not in text
    assert "audio-driven" not in text
    assert "CVPR" not in text
    assert text.endswith("arXiv · PDF")


def test_chinese_labels() -> None:
    authors = tuple(f"作者{i}" for i in range(17))
    card = render_card(make_archived(make_paper(authors=authors)), lang="zh",
                       blog_base_url="https://b.org")
    text = plain(card.html)
    assert "作者0, 作者1, 作者2 等 17 人" in text
    assert "总结： 提出" in text
    assert "要点\n1. first point" in text
    assert "摘要\nIn audio-driven" in text
    assert text.endswith("arXiv · PDF · 博客")
    assert render_card(make_archived(), lang="zh-Hans").html == render_card(
        make_archived(), lang="zh").html
    assert render_card(make_archived(), lang="fr").html == render_card(make_archived()).html


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "A0"),
        (6, "A0, A1, A2, A3, A4, A5"),
        (7, "A0, A1, A2 … and 4 more"),
        (17, "A0, A1, A2 … and 14 more"),
    ],
)
def test_long_author_lists(count: int, expected: str) -> None:
    authors = tuple(f"A{i}" for i in range(count))
    assert format_authors(authors, 6, 3) == expected
    assert expected in plain(render_card(make_archived(make_paper(authors=authors))).html)


def test_author_spacing_is_normalised() -> None:
    assert format_authors(("Kuan-Chieh,  Wang", " ", "B\tC"), 6, 3) == "Kuan-Chieh, Wang, B C"


def test_escaping_and_entities() -> None:
    paper = make_paper(
        title="Less than <3% error & A&A   results",
        summary="0&lt;β1 and <b>not bold</b>",
        takeaways=("**bold** &amp; more", "a > b"),
        abstract="$<0.01$ \\textbf{x}",
        comment="A&A 2024, see \\url{https://x.org/p}",
    )
    card = render_card(make_archived(paper))
    text = plain(card.html)
    assert "<b>Less than &lt;3% error &amp; A&amp;A results</b>" in card.html
    # The digest is markdown: an already escaped "&lt;" is shown as "<".
    assert "0<β1 and <b>not bold</b>" in text
    assert "1. bold & more\n2. a > b" in text
    assert "$<0.01$ \\textbf{x}" in text
    assert "A&A 2024, see https://x.org/p" in text


def test_date_and_tags_follow_the_appearance() -> None:
    a1 = Appearance("2024-01-24/3DGS.md", "3DGS", date(2024, 1, 24), summary="s1",
                    takeaways=("t1",))
    a2 = Appearance("2024-06-14/元宇宙_虚拟人.md", "元宇宙/虚拟人", date(2024, 6, 14),
                    summary="s2", takeaways=("t2",))
    ap = make_archived(make_paper(summary="own"), a2, a1)
    text = plain(render_card(ap).html)
    assert "#3DGS #元宇宙_虚拟人 · 2024-01-24" in text
    assert "own" in text
    assert "t1" not in text
    card = render_card(ap, appearance=a2, blog_base_url="https://b.org")
    text = plain(card.html)
    assert "#3DGS #元宇宙_虚拟人 · 2024-06-14" in text
    assert "Summary: s2" in text
    assert "1. t2" in text
    assert card.links[-1] == ("Blog", "https://b.org/2024-06-14/%E5%85%83%E5%AE%87%E5%AE%99_"
                                      "%E8%99%9A%E6%8B%9F%E4%BA%BA/")
    # Without blog_base_url there is no blog link; without appearances no date.
    assert "Blog" not in plain(render_card(ap).html)
    bare = plain(render_card(ArchivedPaper(make_paper())).html)
    assert "·" not in bare.splitlines()[2]


def test_blog_url() -> None:
    assert blog_url("https://b.org/", "2024-10-12/Talking Head Generation.md") == (
        "https://b.org/2024-10-12/Talking%20Head%20Generation/")
    assert blog_url("https://b.org/blog", "./a/b.md") == "https://b.org/blog/a/b/"
    assert blog_url("not a url", "a.md") is None
    assert blog_url("https://b.org", "") is None
    assert blog_url("https://b.org", "a/\ud800.md") == "https://b.org/a/%EF%BF%BD/"


def test_no_figure_means_no_preview() -> None:
    card = render_card(make_archived(make_paper(figures=())))
    assert card.preview_url is None
    assert all(b.callback is None or not b.callback.startswith("fg:")
               for row in card.buttons for b in row)
    broken = render_card(make_archived(make_paper(figures=("./crop_3DGS/x.png",))))
    assert broken.preview_url is None


def test_buttons() -> None:
    card = render_card(make_archived(), blog_base_url="https://b.org")
    assert card.buttons == (
        (Button("📖 Analysis", callback="an:2409.12156"),
         Button("🖼 Figures (2)", callback="fg:2409.12156"),
         Button("☆ Save", callback="sv:2409.12156"),
         Button("🔗 Related", callback="rl:2409.12156")),
        (Button("BibTeX", callback="bx:2409.12156"),
         Button("arXiv", url="https://arxiv.org/abs/2409.12156v1"),
         Button("📄 PDF", url="https://arxiv.org/pdf/2409.12156v1"),
         Button("📝 Blog", url="https://b.org/2024-09-24/Talking%20Head%20Generation/")),
    )
    old = make_paper(arxiv_id="hep-th/9901001", analysis="", figures=(), abs_url="",
                     pdf_url="https://arxiv.org/pdf/hep-th/9901001v1")
    assert render_card(make_archived(old), lang="zh", saved=True).buttons == (
        (Button("⭐ 已收藏", callback="sv:hep-th/9901001"),
         Button("🔗 相关", callback="rl:hep-th/9901001")),
        (Button("BibTeX", callback="bx:hep-th/9901001"),
         Button("📄 PDF", url="https://arxiv.org/pdf/hep-th/9901001v1")),)
    assert callback_data("an", "hep-th/9901001") == "an:hep-th/9901001"
    assert parse_callback("an:hep-th/9901001") == ("an", "hep-th/9901001")
    assert parse_callback("garbage") is None
    assert callback_data("an", "x" * 62) is None
    assert callback_data("an", "") is None
    assert callback_data("an", "1\ud800") is None
    huge = render_card(make_archived(make_paper(arxiv_id="9" * 80)))
    assert all(b.callback is None for row in huge.buttons for b in row)


def test_links_are_cleaned_and_limited() -> None:
    paper = make_paper(links=("https://github.com/a/b.", "https://github.com/a/b",
                              "https://arxiv.org/abs/1", "./rel", "https://x.org/1",
                              "https://x.org/2", "https://gitlab.com/c", "https://x.org/3",
                              "https://x.org/4"))
    assert paper_links(paper) == (
        ("arXiv", "https://arxiv.org/abs/2409.12156v1"),
        ("PDF", "https://arxiv.org/pdf/2409.12156v1"),
        ("Code", "https://github.com/a/b"),
        ("Project", "https://x.org/1"),
        ("Project 2", "https://x.org/2"),
        ("Code 2", "https://gitlab.com/c"),
    )


def test_astral_characters_count_twice() -> None:
    title = "𝒙" * 3000  # 6000 UTF-16 units but only 3000 code points
    card = render_card(make_archived(make_paper(title=title)))
    text = plain(card.html)
    assert visible_len(card.html) <= LIMIT
    assert len(text) < LIMIT // 2 + 200
    assert "𝒙…" in text


# --------------------------------------------------------------------------- limit


def test_takeaways_are_cut_first() -> None:
    takeaways = tuple(f"{i:02d} " + "t" * 147 for i in range(30))
    paper = make_paper(abstract="a" * 1500, takeaways=takeaways, summary="s" * 100)
    text = plain(render_card(make_archived(paper)).html)
    assert "a" * 1500 in text
    assert "s" * 100 in text
    items = [line.split(". ", 1)[1] for line in text.splitlines()
             if line[:1].isdigit() and ". " in line]
    assert 1 < len(items) < 30
    # A prefix of the takeaways is kept; only the last one may be cut, and only a cut
    # that keeps a useful part is made (otherwise the item is dropped).
    assert items[:-1] == list(takeaways[:len(items) - 1])
    assert items[-1] == takeaways[len(items) - 1] or (
        items[-1].endswith("…") and takeaways[len(items) - 1].startswith(items[-1][:-1]))
    assert LIMIT - 160 < utf16_len(text) <= LIMIT


def test_cut_takeaway_item_ends_with_ellipsis() -> None:
    paper = make_paper(abstract="a" * 1500, takeaways=("x" * 3000,), summary="s")
    text = plain(render_card(make_archived(paper)).html)
    assert "1. xxx" in text
    assert "x…\n" in text
    assert "a" * 1500 in text
    assert LIMIT - 5 <= utf16_len(text) <= LIMIT


def test_abstract_is_cut_after_takeaways() -> None:
    # Spec order: all takeaways go before the abstract is touched.
    paper = make_paper(abstract="word " * 2000, takeaways=("kept",), summary="sum")
    text = plain(render_card(make_archived(paper)).html)
    assert "kept" not in text
    assert "Summary: sum" in text
    assert "word…" in text
    assert utf16_len(text) > LIMIT - 10
    short = make_paper(abstract="word " * 700, takeaways=("kept",), summary="sum")
    text = plain(render_card(make_archived(short)).html)
    assert "1. kept" in text
    assert text.count("word") == 700


def test_everything_huge_still_fits() -> None:
    big = "<&𝒙> " * 3000
    paper = make_paper(title=big, authors=(big,) * 5, abstract=big, summary=big, comment=big,
                       takeaways=(big,) * 5, links=tuple(f"https://x.org/{i}" for i in range(50)))
    apps = tuple(Appearance(f"2024-01-{i:02d}/t{i}.md", f"Topic number {i} {'y' * 200}",
                            date(2024, 1, 1)) for i in range(1, 29))
    for style in ("full", "compact"):
        card = render_card(ArchivedPaper(paper, apps), style=style,
                           blog_base_url="https://b.org")
        text = plain(card.html)
        assert text.startswith("<&𝒙>")


_nasty_text = st.text(
    alphabet=st.sampled_from(list("ab <>&;\"'#*_`$\n\t\x0b\xa0\u200b中文𝒙😀\ufffd/"))
    | st.characters(),
    max_size=40,
)
_big_text = st.one_of(
    _nasty_text,
    st.tuples(_nasty_text, st.integers(min_value=0, max_value=400)).map(lambda t: t[0] * t[1]),
)


@st.composite
def archived_papers(draw: st.DrawFn) -> ArchivedPaper:
    paper = Paper(
        arxiv_id=draw(st.one_of(st.just("2409.12156"), st.just("hep-th/9901001"), _nasty_text)),
        version=1,
        title=draw(_big_text),
        authors=tuple(draw(st.lists(_big_text, max_size=30))),
        abstract=draw(_big_text),
        abs_url=draw(st.one_of(st.just("https://arxiv.org/abs/2409.12156v1"), _nasty_text)),
        pdf_url=draw(st.one_of(st.just("https://arxiv.org/pdf/2409.12156v1"), _nasty_text)),
        comment=draw(_big_text),
        links=tuple(draw(st.lists(st.one_of(st.just("https://github.com/a/b"), _nasty_text),
                                  max_size=8))),
        summary=draw(_big_text),
        takeaways=tuple(draw(st.lists(_big_text, max_size=40))),
        analysis=draw(_big_text),
        figures=tuple(draw(st.lists(st.one_of(st.just("https://x.org/f.jpg"), _nasty_text),
                                    max_size=12))),
    )
    apps = draw(st.lists(st.builds(
        Appearance,
        digest_path=_nasty_text,
        topic=_nasty_text,
        date=st.dates(),
        summary=_big_text,
        takeaways=st.lists(_big_text, max_size=10).map(tuple),
    ), max_size=5))
    return ArchivedPaper(paper, tuple(apps))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(archived_papers(), st.sampled_from(["full", "compact"]), st.sampled_from(["en", "zh"]),
       st.booleans(), st.one_of(st.none(), st.just("https://blog.example.org"), _nasty_text))
def test_any_paper_renders_valid_and_fits(paper: ArchivedPaper, style: str, lang: str,
                                          use_appearance: bool, blog: str | None) -> None:
    appearance = paper.appearances[0] if use_appearance and paper.appearances else None
    card = render_card(paper, style=style, lang=lang, appearance=appearance,  # type: ignore[arg-type]
                       blog_base_url=blog)
    text = plain(card.html)
    assert text.strip()
    for row in card.buttons:
        assert row
        for button in row:
            assert (button.url is None) != (button.callback is None)
            if button.callback is not None:
                assert len(button.callback.encode()) <= 64
                assert parse_callback(button.callback) is not None
    assert card.preview_url is None or card.preview_url in render_figures(paper)
    for chunk in render_analysis(paper):
        assert plain(chunk).strip()
    line = render_result_line(paper, 1)
    assert "\n" not in plain(line)


# --------------------------------------------------------------------------- others


def test_render_analysis() -> None:
    chunks = render_analysis(make_archived())
    assert chunks == [
        "<b>JoyHallo: Digital human model for Mandarin</b>\n"
        '<a href="https://arxiv.org/abs/2409.12156v1">arXiv:2409.12156</a>\n\n'
        "1. <b>标题</b>：JoyHallo\n2. 作者：Sheng Shi"
    ]
    assert render_analysis(make_paper(analysis="")) == []
    assert render_analysis(make_paper(analysis="<details><summary>x</summary></details>")) == []


def test_analysis_of_zero_width_characters_only_is_no_analysis() -> None:
    """Telegram refuses a message with nothing but U+200B/NBSP/U+2800 ("message text is
    empty"), so such an analysis is none: no button, no messages, no empty last part."""
    blank = make_paper(analysis="\u200b\n\n\u00a0\u2800")
    assert render_analysis(blank) == []
    assert all(b.callback != "an:2409.12156" for row in render_card(
        make_archived(blank)).buttons for b in row)
    tail = make_paper(analysis="A" * 4000 + "\n\n" + "\u200b" * 50)
    [chunk] = render_analysis(tail)  # the zero-width spaces would have been a 2nd message
    assert chunk.endswith("\n\n" + "A" * 4000)


def test_the_analysis_button_follows_what_the_analysis_shows() -> None:
    """A long analysis is judged by its opening; one that opens with nothing visible
    (a long run of blank lines, a figure block) is judged whole."""
    def offered(analysis: str) -> bool:
        card = render_card(make_archived(make_paper(analysis=analysis)))
        return any(b.callback == "an:2409.12156" for row in card.buttons for b in row)

    assert offered("Text. " * 10_000)
    assert offered("\u200b\n" * 5_000 + "Text at the end.")
    assert not offered("\u200b\n" * 5_000)
    assert not offered("<details><summary>figures</summary>" + "x" * 5_000 + "</details>")


def test_long_analysis_is_split() -> None:
    analysis = "\n\n".join(f"{i}. **Point** " + "内容" * 400 for i in range(1, 9))
    chunks = render_analysis(make_paper(analysis=analysis))
    assert len(chunks) > 1
    assert chunks[0].startswith("<b>JoyHallo")
    for chunk in chunks:
        plain(chunk)
    assert "".join(validate_telegram_html(c) for c in chunks).count("Point") == 8


def test_render_figures() -> None:
    figs = (*tuple(f"https://x.org/{i}.jpg" for i in range(12)), "https://x.org/0.jpg")
    assert render_figures(make_paper(figures=figs)) == [f"https://x.org/{i}.jpg"
                                                         for i in range(10)]
    assert render_figures(make_archived(make_paper(figures=("./crop/x.png",)))) == []


def test_render_result_line() -> None:
    title = "A very long title " * 10
    a = Appearance("2024-01-24/NeRF.md", "NeRF", date(2024, 1, 24))
    b = Appearance("2024-02-01/3DGS.md", "3DGS", date(2024, 2, 1))
    line = render_result_line(make_archived(make_paper(title=title), a, b), 3)
    text = plain(line)
    assert text.startswith("3. A very long title")
    assert text.endswith(" · 2024-01-24 · #NeRF #3DGS")
    title_part = text.split(" · ")[0][3:]
    assert utf16_len(title_part) <= 80
    assert title_part.endswith("…")
    assert render_result_line(make_archived(make_paper(title="x < y")), 1).startswith(
        "1. <b>x &lt; y</b>")
    # A related paper shows only the tags it shares (none: no tag part at all).
    paper = make_archived(make_paper(title="T"), a, b)
    assert plain(render_result_line(paper, 1, tags=("3DGS",))) == "1. T · 2024-01-24 · #3DGS"
    assert plain(render_result_line(paper, 1, tags=())) == "1. T · 2024-01-24"
