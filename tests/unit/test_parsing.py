"""The digest parser against the synthetic fixture folder and small inline texts.

`tests/fixtures/digests/` is a coherent digest folder (see `tests/fixtures/expected.py`):

- 8 digest files (`<date>/<topic>.md`) and 1 non-digest post at the root;
- 28 paper sections as written, 26 papers once each file is de-duplicated (the two-run
  file lists 2 papers twice), 24 distinct arXiv ids over the folder;
- 3 parse warnings without a blog base URL (1 broken section, 2 relative image paths);
- `2402.00003` appears in NeRF and 3DGS on 2024-02-01; `2401.00001` is v1 on 2024-02-01
  and v2 on 2024-03-15.
"""

from __future__ import annotations

import contextlib
import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.models import Digest, Paper, ParseWarning
from bot.domain.parsing import (
    decode_digest,
    digest_date_from_path,
    parse_digest,
    parse_sections,
    topic_from_filename,
)
from bot.errors import DigestError, NotADigest
from tests.fixtures.expected import (
    FIXTURE_DIGESTS,
    FIXTURE_DIR,
    FIXTURE_DISTINCT_IDS,
    FIXTURE_NON_DIGESTS,
    FIXTURE_PAPERS,
    FIXTURE_SECTIONS,
    FIXTURE_TOPICS,
    FIXTURE_WARNINGS,
    NON_DIGEST_PATH,
    SAME_DAY_TWO_TOPICS_ID,
    TWO_RUNS_PATH,
    TWO_VERSIONS_ID,
    ZERO_PAPER_PATH,
)

CPF = "**[ChatPaperFree](https://huggingface.co/spaces/Kedreamix/ChatPaperFree)**"


def read(rel: str) -> str:
    return (FIXTURE_DIR / rel).read_text(encoding="utf-8")


def load(rel: str, *, blog_base_url: str | None = None) -> Digest:
    return parse_digest(read(rel), rel, blog_base_url=blog_base_url)


def by_id(digest: Digest) -> dict[str, Paper]:
    return {p.arxiv_id: p for p in digest.papers}


def make_section(
    title: str = "A Made-Up Title",
    *,
    arxiv: str = "2401.00099v1",
    meta: str = "**Summary**\n一句摘要。\n\n**Key Takeaways**\n- 一条要点。\n",
    analysis: str = "分析。",
    heading: str = "##",
    details: bool = True,
) -> str:
    return (
        f"{heading} {title}\n**Authors:Ann Inline, Bob Inline**\n\nAn inline abstract.\n\n"
        f"[PDF](http://arxiv.org/abs/{arxiv}) \n\n{meta}\n{CPF}\n\n{analysis}\n\n"
        + (
            "<details>\n  <summary>点此查看论文截图</summary>\n"
            '<img src="https://img.example.org/inline.jpg" align="middle">\n</details>\n\n'
            if details
            else ""
        )
    )


FRONT_MATTER = "\n---\ntitle: Inline\ndate: 2024-06-01 12:00:00\ntags:\n    - Inline\ncover:\n---\n"


def make_digest(*sections: str, front_matter: str = FRONT_MATTER) -> str:
    return f"{front_matter}\n>⚠️ 免责声明\n\n# 2024-06-01 更新\n\n" + "".join(sections)


# --- the fixture folder as a whole ------------------------------------------------


def test_fixture_folder_counts() -> None:
    digests: list[Digest] = []
    not_digests: list[str] = []
    sections = 0
    for file in sorted(FIXTURE_DIR.rglob("*.md")):
        rel = file.relative_to(FIXTURE_DIR).as_posix()
        text = file.read_text(encoding="utf-8")
        try:
            digests.append(parse_digest(text, rel))
        except NotADigest:
            not_digests.append(rel)
            continue
        sections += len(parse_sections(text, rel)[0])

    assert len(digests) == FIXTURE_DIGESTS
    assert not_digests == [NON_DIGEST_PATH]
    assert len(not_digests) == FIXTURE_NON_DIGESTS
    assert sections == FIXTURE_SECTIONS
    assert sum(len(d.papers) for d in digests) == FIXTURE_PAPERS
    assert len({p.arxiv_id for d in digests for p in d.papers}) == FIXTURE_DISTINCT_IDS
    assert sum(len(d.warnings) for d in digests) == FIXTURE_WARNINGS
    assert sorted({d.topic for d in digests}) == sorted(FIXTURE_TOPICS)

    same_day = {
        (d.date, d.topic) for d in digests for p in d.papers if p.arxiv_id == SAME_DAY_TWO_TOPICS_ID
    }
    assert same_day == {(date(2024, 2, 1), "NeRF"), (date(2024, 2, 1), "3DGS")}
    versions = sorted(
        (d.date, p.version) for d in digests for p in d.papers if p.arxiv_id == TWO_VERSIONS_ID
    )
    assert versions == [(date(2024, 2, 1), 1), (date(2024, 3, 15), 2)]


# --- the normal shape ---------------------------------------------------------------


def test_normal_digest_fields() -> None:
    digest = load("2024-02-01/NeRF.md")
    assert digest.path == "2024-02-01/NeRF.md"
    assert digest.topic == "NeRF"
    assert digest.date == date(2024, 2, 1)
    assert digest.title == "NeRF"
    assert digest.description == (
        "NeRF 方向最新论文已更新，请持续关注 Update in 2024-02-01  "
        "Radiance   Fields for Tiny Teapots"
    )
    assert digest.cover == "https://img.example.org/cover/nerf-0201.jpg"
    assert digest.warnings == ()
    assert [p.arxiv_id for p in digest.papers] == ["2401.00001", "2402.00002", "2402.00003"]


def test_normal_paper_every_field() -> None:
    paper = load("2024-02-01/NeRF.md").papers[0]
    assert paper == Paper(
        arxiv_id="2401.00001",
        version=1,
        title="Radiance Fields for Tiny Teapots",
        authors=("Ada Example", "Bo Sample", "Chen Placeholder"),
        abstract="We study radiance fields for very small teapots. Our made-up method renders "
        "them at 1000 FPS on a toaster.",
        abs_url="https://arxiv.org/abs/2401.00001v1",
        pdf_url="https://arxiv.org/pdf/2401.00001v1",
        comment="Project page: https://teapots.example.org/nerf. Code: "
        "https://github.com/example/teapot-nerf",
        links=("https://teapots.example.org/nerf", "https://github.com/example/teapot-nerf"),
        summary="提出一种面向微型茶壶的辐射场方法，渲染极快。",
        takeaways=(
            "针对微型茶壶的辐射场表示。",
            "在烤面包机上达到1000 FPS。",
            "这是一段虚构的要点。",
        ),
        analysis="1. 标题：微型茶壶的辐射场\n2. 作者：Ada Example 等\n"
        "3. 总结：这是虚构的分析文本。",
        figures=(
            "https://img.example.org/fig/2401.00001-1.jpg",
            "https://img.example.org/fig/2401.00001-2.jpg",
        ),
        line=24,
    )


def test_authors_without_blank_line_and_pdf_line_without_comment() -> None:
    paper = by_id(load("2024-02-01/NeRF.md"))["2402.00002"]
    assert paper.line == 55
    assert paper.authors == ("Dana Mock", "Eli Fake")
    assert paper.abstract == "A synthetic abstract about sparse views and dense dreams."
    assert paper.comment == ""
    assert paper.links == ()
    assert paper.analysis == "<ol>\n<li><p>标题：稀疏视角，稠密梦境</p>\n</li>\n</ol>"


def test_comment_with_markdown_link_and_parenthesised_url() -> None:
    paper = by_id(load("2024-02-01/NeRF.md"))["2402.00003"]
    assert paper.comment == (
        "Accepted to a [project page](https://shared.example.org/) workshop "
        "(https://workshop.example.org/2024)."
    )
    assert paper.links == ("https://shared.example.org/", "https://workshop.example.org/2024")


# --- front matter -------------------------------------------------------------------


def test_no_blank_line_before_front_matter_blank_line_inside_and_empty_cover() -> None:
    digest = load("2024-02-01/3DGS.md")
    assert read("2024-02-01/3DGS.md").startswith("---\n")
    assert digest.topic == "3DGS"
    assert digest.date == date(2024, 2, 1)
    assert digest.cover is None
    assert digest.warnings == ()
    assert len(digest.papers) == 6


def test_cover_none_string_is_none() -> None:
    assert load("2024-03-15/Diffusion Models.md").cover is None
    assert load(ZERO_PAPER_PATH).cover is None


def test_cjk_topic_from_tag_and_folder_date_wins() -> None:
    digest = load("2024-03-15/元宇宙_虚拟人.md")
    assert digest.topic == "元宇宙/虚拟人"
    assert digest.title == "元宇宙/虚拟人"
    assert digest.date == date(2024, 3, 15)  # front matter and heading say 2024-03-17
    paper = digest.papers[0]
    assert (paper.arxiv_id, paper.version) == ("2401.00001", 2)
    assert paper.abs_url == "https://arxiv.org/abs/2401.00001v2"
    assert paper.authors[-1] == "Dee Newcomer"


def test_broken_yaml_falls_back_to_file_name_and_folder_date() -> None:
    text = make_digest(make_section(), front_matter="---\ntitle: [unclosed\ntags: {\n---\n")
    digest = parse_digest(text, "2024-06-03/My Topic.md")
    assert digest.topic == "My Topic"
    assert digest.date == date(2024, 6, 3)
    assert len(digest.papers) == 1
    [warning] = digest.warnings
    assert warning.line == 1
    assert warning.message.startswith("front matter is not valid YAML")


def test_invalid_date_in_yaml_is_a_warning() -> None:
    text = make_digest(make_section(), front_matter="---\ndate: 2024-13-45 01:01:01\n---\n")
    digest = parse_digest(text, "2024-06-03/X.md")
    assert digest.date == date(2024, 6, 3)
    assert [w.line for w in digest.warnings] == [1]


def test_front_matter_that_is_not_a_mapping() -> None:
    text = make_digest(make_section(), front_matter="---\n- a\n- b\n---\n")
    digest = parse_digest(text, "2024-06-03/X.md")
    assert digest.topic == "X"
    assert [w.message for w in digest.warnings] == ["front matter is not a mapping; ignored"]


def test_no_front_matter() -> None:
    text = make_digest(make_section(), front_matter="")
    digest = parse_digest(text, "2024-06-03/Plain.md")
    assert (digest.topic, digest.date, digest.title, digest.cover) == (
        "Plain",
        date(2024, 6, 3),
        "",
        None,
    )
    assert [w.message for w in digest.warnings] == ["no YAML front matter"]


def test_unclosed_front_matter_is_ignored_with_a_warning() -> None:
    text = "---\ntitle: x\n\n# 2024-06-01 更新\n\n" + make_section()
    digest = parse_digest(text, "2024-06-03/Open.md")
    assert len(digest.papers) == 1
    assert digest.warnings[0] == ParseWarning(
        "2024-06-03/Open.md", 1, "front matter has no closing '---' line; ignored"
    )


def test_topic_falls_back_to_title_then_stem() -> None:
    fm = "---\ntitle: From Title\ndate: 2024-06-01 12:00:00\n---\n"
    assert parse_digest(make_digest(front_matter=fm), "2024-06-01/stem.md").topic == "From Title"
    fm = "---\ndate: 2024-06-01 12:00:00\n---\n"
    assert parse_digest(make_digest(front_matter=fm), "2024-06-01/元宇宙_虚拟人.md").topic == (
        "元宇宙_虚拟人"
    )


def test_date_fallbacks_front_matter_then_run_heading() -> None:
    fm = "---\ntags: [T]\ndate: '2024-07-08 09:00:00'\n---\n"
    assert parse_digest(make_digest(front_matter=fm), "T.md").date == date(2024, 7, 8)
    assert parse_digest(make_digest(front_matter=""), "T.md").date == date(2024, 6, 1)
    with pytest.raises(DigestError, match="cannot tell the digest date"):
        parse_digest("[PDF](http://arxiv.org/abs/2401.00001v1)\n", "T.md")


def test_bom_and_crlf_change_nothing() -> None:
    text = read("2024-02-01/NeRF.md")
    plain = parse_digest(text, "2024-02-01/NeRF.md")
    odd = parse_digest("\ufeff" + text.replace("\n", "\r\n"), "2024-02-01/NeRF.md")
    assert odd == plain


# --- summary ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arxiv_id", "summary"),
    [
        ("2402.00003", "在 3DGS 主题中的另一段摘要。"),  # **Summary:**
        ("2402.00011", "摘要标题之后隔一个空行的摘要。"),  # **摘要** + blank line
        ("2402.00012", "带冒号的摘要标题。"),  # **摘要：**
        ("2402.00013", "概述标题的摘要。"),  # **概述**
        ("2402.00014", "摘要与标题写在同一行。"),  # **Summary**：<text>
        ("2402.00015", "摘要文本本身是粗体的。"),  # **Summary**␠␠ + bold text
    ],
)
def test_summary_spellings_in_fixture(arxiv_id: str, summary: str) -> None:
    assert by_id(load("2024-02-01/3DGS.md"))[arxiv_id].summary == summary


def test_summary_heading_repeated_in_analysis_is_not_the_summary() -> None:
    paper = by_id(load("2024-02-01/3DGS.md"))["2402.00011"]
    assert paper.summary == "摘要标题之后隔一个空行的摘要。"
    assert paper.analysis.startswith("**摘要**：分析里重复的摘要标题")


@pytest.mark.parametrize(
    "heading",
    [
        "**Summary**",
        "**Summary**  ",
        "**Summary:**",
        "**Summary**：",
        "**摘要**",
        "**摘要：**",
        "**概述**",
        "**A Summary Spelt Some Other Way**",
    ],
)
def test_summary_heading_spellings(heading: str) -> None:
    meta = f"{heading}\n一句摘要。\n\n**Key Takeaways**\n- 一条要点。\n"
    [paper] = parse_digest(make_digest(make_section(meta=meta)), "2024-06-01/T.md").papers
    assert (paper.summary, paper.takeaways) == ("一句摘要。", ("一条要点。",))


@pytest.mark.parametrize(
    ("line", "summary"),
    [
        ("**Summary**：同一行的摘要。", "同一行的摘要。"),
        ("**Summary:** 同一行的摘要。", "同一行的摘要。"),
        ("**摘要**: **粗体的同一行摘要。**", "粗体的同一行摘要。"),
    ],
)
def test_summary_on_the_heading_line(line: str, summary: str) -> None:
    meta = f"{line}\n\n**Key Takeaways**：\n\n1. 一条要点。\n"
    [paper] = parse_digest(make_digest(make_section(meta=meta)), "2024-06-01/T.md").papers
    assert (paper.summary, paper.takeaways) == (summary, ("一条要点。",))


def test_missing_summary_is_a_warning_not_an_error() -> None:
    text = make_digest(make_section(meta="**Key Takeaways**\n- 只有要点。\n"))
    digest = parse_digest(text, "2024-06-01/T.md")
    [paper] = digest.papers
    assert (paper.summary, paper.takeaways) == ("", ("只有要点。",))
    assert digest.warnings == (ParseWarning("2024-06-01/T.md", 14, "paper section has no summary"),)


# --- takeaways ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arxiv_id", "takeaways"),
    [
        ("2403.00021", ("星号一。", "星号二。")),
        ("2403.00022", ("圆点后两个空格。", "圆点后一个空格。", "圆点后没有空格。")),
        ("2403.00023", ("EVER式的紧凑编号。", "第二条，含有3.5倍的提升。")),
        ("2403.00024", ("缩进的第一条。", "缩进的第二条。", "右括号编号。")),
        ("2403.00025", ("真正的要点一。", "真正的要点二。")),
        ("2403.00026", ("第一行要点。", "第二行要点。")),
        ("2403.00027", ()),
    ],
)
def test_takeaway_markers_in_fixture(arxiv_id: str, takeaways: tuple[str, ...]) -> None:
    assert by_id(load("2024-03-15/Diffusion Models.md"))[arxiv_id].takeaways == takeaways


def test_indented_summary_and_no_takeaways_need_no_warning() -> None:
    digest = load("2024-03-15/Diffusion Models.md")
    assert digest.warnings == ()
    assert by_id(digest)["2403.00024"].summary == "缩进的摘要。"
    assert by_id(digest)["2403.00027"].summary == "只有摘要，没有要点。"
    assert by_id(digest)["2403.00021"].analysis == "分析 T1。\n- 分析里的列表不是要点。"


@pytest.mark.parametrize(
    "heading",
    [
        "**Key Takeaways**",
        "**Key Takeaways**  ",
        "**Key Takeaways:**",
        "**Key Takeaways**：",
        "**要点**",
        "**要点:**",
        "**要点：**",
        "**关键要点**",
        "**关键要点：**",
        "**主要要点**",
        "**关键见解**",
        "**主要结论**",
        "**主要内容**",
        "**重要要点**",
        "**关键点**",
    ],
)
def test_takeaway_heading_spellings(heading: str) -> None:
    meta = f"**Summary**\n一句摘要。\n\n{heading}\n1. 第一条。\n2. 第二条。\n"
    [paper] = parse_digest(make_digest(make_section(meta=meta)), "2024-06-01/T.md").papers
    assert paper.takeaways == ("第一条。", "第二条。")


@pytest.mark.parametrize(
    ("line", "item"),
    [
        ("- 要点", "要点"),
        ("-  两个空格", "两个空格"),
        ("* 星号", "星号"),
        ("• 圆点", "圆点"),
        ("•无空格", "无空格"),
        ("1. 编号", "编号"),
        ("12. 两位编号", "两位编号"),
        ("1.EVER 紧贴", "EVER 紧贴"),
        ("3) 右括号", "右括号"),
        ("(4) 括号", "括号"),
        ("   - 缩进", "缩进"),
        ("\t2. 制表符缩进", "制表符缩进"),
        ("- 1. 双重标记", "双重标记"),  # seen in the real data
        ("- 3D 高斯不是编号", "3D 高斯不是编号"),
        ("- 3.5 倍不是编号", "3.5 倍不是编号"),
    ],
)
def test_takeaway_item_markers(line: str, item: str) -> None:
    meta = f"**Summary**\n摘要。\n\n**Key Takeaways**\n{line}\n"
    [paper] = parse_digest(make_digest(make_section(meta=meta)), "2024-06-01/T.md").papers
    assert paper.takeaways == (item,)


def test_takeaways_heading_without_summary_heading() -> None:
    meta = "**关键要点**\n- 第一条。\n"
    [paper] = parse_digest(make_digest(make_section(meta=meta)), "2024-06-01/T.md").papers
    assert (paper.summary, paper.takeaways) == ("", ("第一条。",))


def test_takeaways_stop_at_the_analysis_when_chatpaperfree_line_is_missing() -> None:
    section = (
        "## No Marker\n**Authors:A**\n\nAbstract.\n\n[PDF](http://arxiv.org/abs/2401.00098v1) \n\n"
        "**Summary**\n摘要。\n\n**Key Takeaways**\n- 一。\n- 二。\n\n以下是分析。\n- 不是要点。\n"
    )
    [paper] = parse_digest(make_digest(section), "2024-06-01/T.md").papers
    assert paper.takeaways == ("一。", "二。")
    assert paper.analysis == ""


# --- structure ----------------------------------------------------------------------


def test_zero_paper_digest() -> None:
    digest = load(ZERO_PAPER_PATH)
    assert (digest.topic, digest.date, digest.papers, digest.warnings) == (
        "NeRF",
        date(2024, 5, 6),
        (),
        (),
    )


def test_two_runs_keep_last_text_at_first_position() -> None:
    digest = load(TWO_RUNS_PATH)
    assert digest.warnings == ()
    assert [(p.arxiv_id, p.line) for p in digest.papers] == [
        ("2405.00061", 86),
        ("2405.00062", 64),
        ("2405.00063", 108),
    ]
    a, b, c = digest.papers
    assert (a.summary, a.analysis) == ("重新生成的 A 摘要。", "重新生成的 A 分析。")
    assert (b.summary, b.figures) == (
        "重新生成的 B 摘要。",
        ("https://img.example.org/fig/2405.00062-1.jpg",),
    )
    assert c.takeaways == ("C 的要点。",)


def test_two_runs_raw_sections_and_no_disclaimer_pollution() -> None:
    papers, warnings = parse_sections(read(TWO_RUNS_PATH), TWO_RUNS_PATH)
    assert warnings == ()
    assert [(p.arxiv_id, p.line) for p in papers] == [
        ("2405.00061", 19),
        ("2405.00062", 41),
        ("2405.00062", 64),
        ("2405.00061", 86),
        ("2405.00063", 108),
    ]
    first_b = papers[1]
    assert first_b.summary == "第一次生成的 B 摘要。"
    assert first_b.analysis == "第一次生成的 B 分析，没有截图块。"
    assert first_b.figures == ()


def test_headings_inside_the_analysis_do_not_start_papers() -> None:
    digest = load("2024-04-02/Talking Head Generation.md")
    paper = by_id(digest)["2404.00041"]
    assert paper.authors == ("Jo Trap",)
    assert paper.summary == "分析中包含各种标题的论文。"
    assert paper.takeaways == ("真正的要点。",)
    assert paper.analysis.startswith("1. **标题**：分析里的陷阱\n\n**Authors**: Jo Trap")
    assert "\n## 方法概述\n" in paper.analysis
    assert "\n### 细节\n" in paper.analysis
    assert paper.analysis.endswith("<h2>HTML 标题</h2>\n\n---")
    assert paper.figures == ("https://img.example.org/fig/2404.00041-1.jpg",)


def test_broken_section_is_skipped_with_a_warning_and_the_rest_is_read() -> None:
    digest = load("2024-04-02/Talking Head Generation.md")
    assert [p.arxiv_id for p in digest.papers] == ["2404.00041", "2404.00042", "hep-th/9901001"]
    assert digest.warnings == (
        ParseWarning(
            "2024-04-02/Talking Head Generation.md",
            59,
            "section has an **Authors: line but no [PDF](…) line; skipped",
        ),
    )


def test_odd_characters() -> None:
    paper = by_id(load("2024-04-02/Talking Head Generation.md"))["2404.00042"]
    assert paper.title == "Less Than <3% Error on A&A Benchmarks with $<0.01$ Loss for 𝐱-Prediction"
    assert paper.authors == ("Zoë Example", "Tab Person", "Vertical Tab")
    assert paper.abstract == (
        "We report &lt;3% error and p$<0.01$ on A&A data; a broken byte became \ufffd here."
    )
    assert paper.comment == "Submitted to A&A, comments are welcome"
    assert paper.links == ()
    assert paper.summary == "误差小于 3%，且 𝐱 预测更准。"
    assert paper.takeaways == ("误差 <3% 且 A&A 数据集上 p$<0.01$。", "含有零宽空格的要点。")
    assert paper.analysis == "<Methods> 不是标签，<jm≤n 也不是。"


def test_old_style_arxiv_id() -> None:
    paper = by_id(load("2024-04-02/Talking Head Generation.md"))["hep-th/9901001"]
    assert paper.version == 2
    assert paper.abs_url == "https://arxiv.org/abs/hep-th/9901001v2"
    assert paper.pdf_url == "https://arxiv.org/pdf/hep-th/9901001v2"
    assert paper.figures == ()
    assert paper.analysis == "旧式编号的分析。"


def test_non_paper_heading_before_the_first_paper_is_ignored() -> None:
    text = make_digest("## 前言\n\n这不是论文。\n\n" + make_section())
    digest = parse_digest(text, "2024-06-01/T.md")
    assert [p.title for p in digest.papers] == ["A Made-Up Title"]
    assert digest.warnings == ()


def test_pdf_line_outside_a_section_is_a_warning() -> None:
    text = make_digest("[PDF](http://arxiv.org/abs/2401.00097v1) \n\n" + make_section())
    digest = parse_digest(text, "2024-06-01/T.md")
    assert len(digest.papers) == 1
    assert digest.warnings == (
        ParseWarning("2024-06-01/T.md", 14, "[PDF](…) line outside any paper section; ignored"),
    )


def test_unreadable_sections_are_skipped_and_reported() -> None:
    text = make_digest(
        make_section("Bad Link", arxiv="not-an-id"),
        "##   \n**Authors:A**\n\nx\n\n[PDF](http://arxiv.org/abs/2401.00095v1) \n\n",
        make_section("No Version", arxiv="2401.00096"),
        make_section("Good"),
    )
    digest = parse_digest(text, "2024-06-01/T.md")
    assert [(p.title, p.version) for p in digest.papers] == [("No Version", 1), ("Good", 1)]
    assert [(w.line, w.message) for w in digest.warnings] == [
        (
            14,
            "cannot read the arXiv id in '[PDF](http://arxiv.org/abs/not-an-id) '; section skipped",
        ),
        (36, "paper section has an empty title; skipped"),
        (43, "arXiv link 2401.00096 has no version; v1"),
    ]


def test_section_without_authors_line() -> None:
    section = make_section().replace("**Authors:Ann Inline, Bob Inline**\n", "")
    digest = parse_digest(make_digest(section), "2024-06-01/T.md")
    [paper] = digest.papers
    assert (paper.authors, paper.abstract) == ((), "An inline abstract.")
    assert [w.message for w in digest.warnings] == ["paper section has no **Authors: line"]


def test_only_the_first_authors_line_counts() -> None:
    section = make_section().replace(
        "An inline abstract.", "An inline abstract.\n**Authors:Not, The, Authors**"
    )
    [paper] = parse_digest(make_digest(section), "2024-06-01/T.md").papers
    assert paper.authors == ("Ann Inline", "Bob Inline")


# --- heading levels ---------------------------------------------------------------
# The summariser writes `## ` titles today; the parser finds the paper level by structure.

# An analysis with every kind of heading the real files have (and a few more).
TRAP_ANALYSIS = (
    "1. 标题：陷阱\n\n# 一级标题\n\n## 方法概述\n\n### 细节\n\n#### (1) 工作意义：\n\n"
    "<h2>HTML 标题</h2>\n\n**粗体行**\n\n---"
)


def leveled_digest(heading: str, *, details: bool = True) -> str:
    return make_digest(
        make_section("First Paper", arxiv="2401.00091v1", heading=heading,
                     analysis=TRAP_ANALYSIS, details=details),
        make_section("Second Paper", arxiv="2401.00092v2", heading=heading,
                     analysis=TRAP_ANALYSIS, details=details),
        make_section("Third Paper", arxiv="2401.00093v1", heading=heading, details=details),
    )


@pytest.mark.parametrize("heading", ["#", "###", "####"])
@pytest.mark.parametrize("details", [True, False])
def test_titles_at_another_heading_level_parse_like_level_two(heading: str, details: bool) -> None:
    expected = parse_digest(leveled_digest("##", details=details), "2024-06-01/T.md")
    assert [p.title for p in expected.papers] == ["First Paper", "Second Paper", "Third Paper"]
    assert expected.papers[0].analysis == TRAP_ANALYSIS
    digest = parse_digest(leveled_digest(heading, details=details), "2024-06-01/T.md")
    assert digest == expected
    papers, warnings = parse_sections(leveled_digest(heading, details=details), "2024-06-01/T.md")
    assert (papers, warnings) == (expected.papers, ())


def test_analysis_headings_at_the_paper_level_stay_in_the_analysis() -> None:
    # `### ` titles; the analysis has `### `, `## ` and `# ` headings too, no <details>.
    analysis = "### 摘要\n\n内容。\n\n## 总结\n\n### 结论：\n\n#### (1) 意义"
    text = make_digest(
        *(make_section(f"Paper {i}", arxiv=f"2401.0009{i}v1", heading="###", analysis=analysis,
                       details=False) for i in range(1, 4))
    )
    digest = parse_digest(text, "2024-06-01/T.md")
    assert [p.title for p in digest.papers] == ["Paper 1", "Paper 2", "Paper 3"]
    assert [p.analysis for p in digest.papers] == [analysis] * 3
    assert digest.warnings == ()


def test_sub_heading_above_the_authors_does_not_steal_the_paper() -> None:
    with_sub = make_section("Second Paper", arxiv="2401.00082v1").replace(
        "## Second Paper\n", "## Second Paper\n\n### 第二篇论文的中文标题\n"
    )
    text = make_digest(make_section("First Paper", arxiv="2401.00081v1"), with_sub,
                       make_section("Third Paper", arxiv="2401.00083v1"))
    digest = parse_digest(text, "2024-06-01/T.md")
    assert [p.title for p in digest.papers] == ["First Paper", "Second Paper", "Third Paper"]
    second = digest.papers[1]
    assert (second.authors, second.abstract) == (("Ann Inline", "Bob Inline"),
                                                 "An inline abstract.")
    assert digest.papers[0].analysis == "分析。"  # the `## Second Paper` line is not merged
    assert digest.warnings == ()


@pytest.mark.parametrize("papers", [1, 3])
def test_every_paper_with_a_sub_heading_keeps_its_own_title(papers: int) -> None:
    # Level 2 and level 3 head every header: a tie, which the known level (2) wins.
    sections = [
        make_section(f"Paper {i}", arxiv=f"2401.0008{i}v1").replace(
            f"## Paper {i}\n", f"## Paper {i}\n### 论文 {i} 的副标题\n"
        )
        for i in range(1, papers + 1)
    ]
    digest = parse_digest(make_digest(*sections), "2024-06-01/T.md")
    assert [p.title for p in digest.papers] == [f"Paper {i}" for i in range(1, papers + 1)]
    assert digest.warnings == ()


def test_group_headings_above_deeper_paper_titles() -> None:
    # Level 3 heads every header, level 2 only the first of each group.
    text = make_digest(
        "## 第一组\n\n",
        make_section("Paper 1", arxiv="2401.00071v1", heading="###"),
        make_section("Paper 2", arxiv="2401.00072v1", heading="###"),
        "## 第二组\n\n",
        make_section("Paper 3", arxiv="2401.00073v1", heading="###"),
    )
    digest = parse_digest(text, "2024-06-01/T.md")
    assert [p.title for p in digest.papers] == ["Paper 1", "Paper 2", "Paper 3"]
    assert digest.papers[0].analysis == "分析。"
    assert digest.warnings == ()


def test_level_one_heading_that_is_not_a_run_heading() -> None:
    # A run heading reworded (no date): a `# ` heading above the first `## ` title.
    text = make_digest(
        "# 今日论文\n\n",
        make_section("Paper 1", arxiv="2401.00061v1"),
        make_section("Paper 2", arxiv="2401.00062v1"),
    )
    digest = parse_digest(text, "2024-06-01/T.md")
    assert [p.title for p in digest.papers] == ["Paper 1", "Paper 2"]
    # One `# ` title among `## ` ones is shallower than the paper level: still a paper.
    text = make_digest(
        make_section("Paper 1", arxiv="2401.00061v1"),
        make_section("Paper 2", arxiv="2401.00062v1", heading="#"),
        make_section("Paper 3", arxiv="2401.00063v1"),
    )
    digest = parse_digest(text, "2024-06-01/T.md")
    assert [p.title for p in digest.papers] == ["Paper 1", "Paper 2", "Paper 3"]


def test_broken_section_at_a_deeper_paper_level_is_reported() -> None:
    broken = "### Lost Its PDF Line\n**Authors:Eve Broken**\n\nNo PDF here.\n\n"
    text = make_digest(
        make_section("Paper 1", arxiv="2401.00051v1", heading="###"),
        broken,
        make_section("Paper 2", arxiv="2401.00052v1", heading="###"),
    )
    digest = parse_digest(text, "2024-06-01/T.md")
    assert [p.title for p in digest.papers] == ["Paper 1", "Paper 2"]
    assert [w.message for w in digest.warnings] == [
        "section has an **Authors: line but no [PDF](…) line; skipped"
    ]
    assert "Lost Its PDF Line" not in digest.papers[0].analysis


def test_broken_section_with_a_sub_heading_is_still_reported() -> None:
    broken = "## Lost Its PDF Line\n### 副标题\n**Authors:Eve Broken**\n\nNo PDF here.\n\n"
    text = make_digest(make_section("Paper 1", arxiv="2401.00051v1"), broken,
                       make_section("Paper 2", arxiv="2401.00052v1"))
    digest = parse_digest(text, "2024-06-01/T.md")
    assert [p.title for p in digest.papers] == ["Paper 1", "Paper 2"]
    assert [w.message for w in digest.warnings] == [
        "section has an **Authors: line but no [PDF](…) line; skipped"
    ]


def test_post_with_deep_headings_and_no_pdf_lines_is_not_a_digest() -> None:
    text = (
        "---\ntitle: Notes\n---\n\n# Notes\n\n### Part 1\n**Authors:Someone**\n\ntext\n\n"
        "#### Details\n\n[Paper](https://arxiv.org/abs/2401.00001)\n\n### Part 2\n\nmore\n"
    )
    with pytest.raises(NotADigest):
        parse_digest(text, "2024-06-01/Notes.md")
    with pytest.raises(NotADigest):
        parse_digest(text, "Notes.md")


# --- figures ------------------------------------------------------------------------


def test_relative_figures_are_dropped_with_warnings_without_base_url() -> None:
    digest = load("2024-04-02/3DGS.md")
    first, second = digest.papers
    assert first.figures == (
        "https://img.example.org/fig/2404.00051-1.jpg",
        "http://legacy.example.net/fig/2404.00051-3.jpg",
    )
    assert second.figures == (
        "https://img.example.org/fig/2404.00052-1.jpg",
        "https://img.example.org/fig/2404.00052-2.jpg",
        "https://img.example.org/fig/2404.00052-3.jpg",
    )
    dropped = "1 image path(s) dropped (no blog_base_url), first"
    assert [(w.line, w.message) for w in digest.warnings] == [
        (38, f"{dropped} './crop_3DGS/2404.00051v1/page_0_0.jpg'"),
        (72, f"{dropped} 'crop_3DGS/2404.00052v1/page 1.png'"),
    ]


def test_relative_figures_resolve_against_the_post_url() -> None:
    digest = load("2024-04-02/3DGS.md", blog_base_url="https://blog.example.org/")
    assert digest.warnings == ()
    first, second = digest.papers
    assert first.figures[1] == (
        "https://blog.example.org/2024-04-02/3DGS/crop_3DGS/2404.00051v1/page_0_0.jpg"
    )
    assert second.figures[-1] == (
        "https://blog.example.org/2024-04-02/3DGS/crop_3DGS/2404.00052v1/page%201.png"
    )
    assert second.analysis == "替换后的分析。"


def test_figure_urls_with_other_schemes_are_dropped() -> None:
    analysis = "<img src=\"data:image/png;base64,AAAA\"> <img src='//cdn.example.org/x.png'>"
    text = make_digest(make_section(analysis=analysis))
    digest = parse_digest(text, "2024-06-01/T.md", blog_base_url="https://blog.example.org")
    [paper] = digest.papers
    assert paper.figures == ("https://cdn.example.org/x.png", "https://img.example.org/inline.jpg")
    assert [w.message for w in digest.warnings] == [
        "1 image path(s) dropped (not http(s)), first 'data:image/png;base64,AAAA'"
    ]


# --- not a digest, helpers ----------------------------------------------------------


def test_awesome_list_is_not_a_digest() -> None:
    with pytest.raises(NotADigest) as caught:
        parse_digest(read(NON_DIGEST_PATH), NON_DIGEST_PATH)
    assert str(caught.value) == (
        "not a daily digest: no arXiv [PDF](…) line and no '# YYYY-MM-DD 更新' heading, "
        "and the path is not <YYYY-MM-DD>/<topic>.md"
    )


def test_dated_file_without_structure_is_not_a_digest() -> None:
    with pytest.raises(NotADigest, match=r"no arXiv \[PDF\]"):
        parse_digest("---\ntitle: x\n---\n\n## Notes\n\ntext\n", "2024-06-01/x.md")


def test_pdf_links_that_are_not_arxiv_do_not_make_a_digest() -> None:
    text = "---\ntitle: Survey\n---\n\n## Part 1\n[PDF](https://example.org/survey.pdf)\n"
    with pytest.raises(NotADigest):
        parse_digest(text, "2024-06-01/Survey.md")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("2024-09-24/元宇宙_虚拟人.md", date(2024, 9, 24)),
        ("digests/2024-01-30/Talking Head Generation.md", date(2024, 1, 30)),
        ("2024-02-30/x.md", None),
        ("2024-2-3/x.md", None),
        ("Awesome-Talking-Head-Synthesis.md", None),
        ("", None),
    ],
)
def test_digest_date_from_path(path: str, expected: date | None) -> None:
    assert digest_date_from_path(path) == expected


def test_topic_from_filename() -> None:
    assert topic_from_filename("元宇宙_虚拟人.md") == "元宇宙_虚拟人"
    assert topic_from_filename("2024-01-30/Talking Head Generation.md") == "Talking Head Generation"
    assert topic_from_filename("notes.txt") == "notes.txt"


# --- robustness ---------------------------------------------------------------------

FRAGMENTS = [
    "",
    "---",
    "...",
    "title: T",
    "date: 2024-13-45 01:01:01",
    "tags: [x",
    "tags:\n    - A/B",
    "cover: None",
    "## A Title",
    "##",
    "## ",
    "###  sub",
    "# 2024-02-30 更新",
    "# 2024-06-01 更新",
    ">⚠️ x",
    "**Authors:A, B**",
    "**Authors**: C",
    "[PDF](http://arxiv.org/abs/2401.00001v1) c \\url{https://x.org}",
    "[PDF](http://arxiv.org/abs/2401.00001v99999999) ",
    "[PDF](http://arxiv.org/abs/hep-th/9901001) ",
    "[PDF](http://example.org/x.pdf)",
    "[PDF](",
    "**Summary**",
    "**Summary**：s",
    "**Key Takeaways**",
    "**x**",
    "- item",
    "1.item",
    "**[ChatPaperFree](u)**",
    "<details>",
    "</details>",
    '<img src="./a b.png">',
    "<img src=http://[::1",
    '<img src="http://[::1/x.png">',
    "\ufeff",
    "\r",
    "\u200b",
    "\x0b",
    "\u2028",
]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=20), max_size=40),
    path=st.sampled_from(["2024-01-01/T.md", "T.md", "2024-99-99/T.md", "", "a/b/c"]),
    base=st.sampled_from([None, "https://blog.example.org", "http://[::1"]),
)
def test_structured_noise_never_crashes(lines: list[str], path: str, base: str | None) -> None:
    text = "\n".join(lines)
    try:
        digest = parse_digest(text, path, blog_base_url=base)
    except DigestError:
        return
    ids = [p.arxiv_id for p in digest.papers]
    assert len(ids) == len(set(ids))
    for paper in digest.papers:
        assert paper.title
        assert paper.line >= 1
        assert re.fullmatch(r"https://arxiv\.org/abs/\S+v\d+", paper.abs_url)
        assert all(f.startswith(("http://", "https://")) for f in paper.figures)
    assert all(w.line >= 1 for w in digest.warnings)


@settings(max_examples=300, deadline=None)
@given(text=st.text(), path=st.text(max_size=30))
def test_arbitrary_text_raises_only_digest_errors(text: str, path: str) -> None:
    with contextlib.suppress(DigestError):
        parse_digest(text, path)
    parse_sections(text, path)


def test_decoding_repairs_bytes_and_drops_nul_with_warnings() -> None:
    text, warnings = decode_digest(b"# 2024-10-12 \xe6\x9b\xb4\xe6\x96\xb0\n\x00\x00a\xff", "d.md")
    assert text == "# 2024-10-12 更新\na\ufffd"
    assert [w.message for w in warnings] == [
        "not valid UTF-8 (invalid start byte); undecodable bytes replaced",
        "2 NUL character(s) removed"]
    assert decode_digest("plain 文本".encode(), "d.md") == ("plain 文本", [])
