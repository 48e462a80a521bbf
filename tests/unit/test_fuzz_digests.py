"""A fuzz corpus: hostile digest files, with good paper sections in the same file.

Each file is what the ingest step or ``paperfeed preview`` would read: bytes, decoded as
UTF-8 with undecodable bytes replaced. Whatever a hostile section holds (runs of
spaces, unclosed fences and tags, deep nesting, random and invalid bytes, NUL, empty
bodies, front matter garbage, YAML alias bombs, a 5 MB section), parsing and rendering
must not raise, the good sections around it must come through unchanged, and what the
parser skipped must be named in a warning, with the line and the reason.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.models import Appearance, ArchivedPaper, Digest, Paper
from bot.domain.parsing import decode_digest, parse_digest, parse_sections
from bot.domain.query import parse_query
from bot.domain.rendering import plain_text, render_analysis, render_card, render_figures
from bot.domain.tgtext import MAX_MESSAGE_LEN, is_blank, utf16_len, validate_telegram_html
from bot.errors import NotADigest

PATH = "2024-10-12/NeRF.md"
CPF = "**[ChatPaperFree](https://huggingface.co/spaces/Kedreamix/ChatPaperFree)**"
FRONT = (
    "\n---\ntitle: NeRF\ndate: 2024-10-12 10:00:00\ntags:\n- NeRF\n"
    "description: NeRF 方向最新论文已更新\ncover: https://pic1.zhimg.com/cover.png\n---\n"
)
RUN = (">⚠️ 以下所有内容总结都来自于大语言模型\n>🔴 请注意\n>💗 如果您觉得有用\n\n"
       "# 2024-10-12 更新\n\n")
GOOD = [
    ("2410.00001", "Good Paper One: Radiance Fields"),
    ("2410.00002", "Good Paper Two, with $x<1$ & A&A"),
    ("2410.00003", "Good Paper Three"),
]


def good(number: int) -> str:
    """A well-formed paper section, as the summariser writes it."""
    arxiv, title = GOOD[number]
    return (
        f"## {title}\n\n**Authors:Ann Good, Bob Good**\n\nA good abstract about fields.\n\n"
        f"[PDF](http://arxiv.org/abs/{arxiv}v1) \n\n**Summary**\n一句好的摘要。\n\n"
        f"**Key Takeaways**\n1. 第一条。\n2. 第二条。\n\n{CPF}\n\n"
        "<ol><li><p>好的分析：**粗体**与 `code`。</p></li></ol>\n\n"
        "<details>\n  <summary>点此查看论文截图</summary>\n"
        f'<img src="https://pic1.zhimg.com/{arxiv}.jpg" align="middle">\n</details>\n\n'
    )


def hostile_paper(analysis: str, *, arxiv: str = "2410.09999", title: str = "Hostile") -> str:
    """A paper section whose analysis is `analysis`."""
    return (
        f"## {title}\n**Authors:Eve Hostile**\nAn abstract.\n"
        f"[PDF](http://arxiv.org/abs/{arxiv}v1) \n\n**Summary**\n摘要。\n\n"
        f"**Key Takeaways**\n- 要点。\n\n{CPF}\n\n{analysis}\n\n"
    )


def digest_file(*hostile: str, front: str = FRONT) -> bytes:
    """The good sections with the hostile parts between and after them, as file bytes."""
    parts = [front + RUN + good(0)]
    for number in (1, 2):
        parts.extend(hostile)
        parts.append(good(number))
    parts.extend(hostile)
    return "\n\n".join(parts).encode("utf-8", "surrogatepass")


def decode(raw: bytes) -> str:
    """What ingest and ``paperfeed preview`` do with a file's bytes."""
    return decode_digest(raw, PATH)[0]


def assert_sendable(html: str) -> None:
    """Telegram would accept the message, and its plain-text fallback exists."""
    text = validate_telegram_html(html)
    assert not is_blank(text)
    assert utf16_len(text) <= MAX_MESSAGE_LEN
    assert plain_text(html).strip()


def parse_and_render(raw: bytes) -> Digest:
    """Parse the file and render every paper as the bot and the preview would."""
    text = decode(raw)
    digest = parse_digest(text, PATH, blog_base_url="https://blog.example.org")
    parse_sections(text, PATH)
    for position, paper in enumerate(digest.papers):
        appearance = Appearance(digest.path, digest.topic, digest.date, paper.summary,
                                paper.takeaways, position=position)
        archived = ArchivedPaper(paper, (appearance,))
        for style in ("full", "compact"):
            card = render_card(archived, blog_base_url="https://blog.example.org",
                               style=style, appearance=appearance, lang="zh")
            assert_sendable(card.html)
        for message in render_analysis(archived):
            assert_sendable(message)
        assert len(render_figures(archived)) <= 10
        parse_query(paper.title)
    return digest


def assert_good_sections(digest: Digest) -> None:
    """The good sections are all there, in order, read exactly as written."""
    papers = {p.arxiv_id: p for p in digest.papers}
    for arxiv, title in GOOD:
        assert arxiv in papers, f"good section {arxiv} lost; warnings: {digest.warnings}"
        paper: Paper = papers[arxiv]
        assert paper.title == title
        assert paper.authors == ("Ann Good", "Bob Good")
        assert paper.summary == "一句好的摘要。"
        assert paper.takeaways == ("第一条。", "第二条。")
        assert paper.figures == (f"https://pic1.zhimg.com/{arxiv}.jpg",)
    order = [p.arxiv_id for p in digest.papers if p.arxiv_id in dict(GOOD)]
    assert order == [arxiv for arxiv, _ in GOOD]
    assert digest.topic == "NeRF" or any("front matter" in w.message for w in digest.warnings)


def line_of(raw: bytes, needle: str) -> int:
    """1-based line of the first occurrence of `needle` in the decoded file."""
    text = decode(raw)
    return text.count("\n", 0, text.index(needle)) + 1


# --------------------------------------------------------------------------- the corpus

SPACES = " " * 200_000


def _random_bytes(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(size))


# name -> hostile parts placed between and after the good sections.
HOSTILE: dict[str, Callable[[], list[str]]] = {
    "runs of spaces": lambda: [
        hostile_paper("a" + SPACES + "b\n# x" + SPACES + "y\n<a" + SPACES,
                      title="Sp" + SPACES + "ace"),
        "**Authors:" + SPACES + "x\n**Summary" + SPACES + "x\n**a**" + SPACES + "x",
    ],
    "unclosed fences": lambda: [hostile_paper("```x\n" * 20_000 + "~~~\n" * 1_000)],
    "fences of every length": lambda: [
        hostile_paper("".join("`" * n + "x\n" for n in range(3, 400)) + "`" * 5_000)
    ],
    "nested details": lambda: [
        hostile_paper("<details>" * 5_000 + "x" + "</details>" * 4_000),
        "<details>\n" * 5_000,
    ],
    "nested lists": lambda: [
        hostile_paper("<ul><li>" * 5_000 + "<ol><li><p>" * 5_000 + "\n" + "  - " * 20_000)
    ],
    "unclosed tags and markers": lambda: [
        hostile_paper("<b><i><a href='http://x.y/" + "**a " * 5_000 + "[a](" * 5_000
                      + "<pre>" * 2_000 + "$" * 3_000 + "`" * 3_000 + "<" * 5_000
                      + "&#" + "9" * 6_000 + ";" + "[x](http://e.org/" + "." * 50_000 + ")")
    ],
    "hostile header fields": lambda: [
        "## " + "&#" + "1" * 5_000 + "\n**Authors:" + "*" * 10_000 + "\n" + "<" * 10_000
        + "\n[PDF](http://arxiv.org/abs/2410.09998v1) " + "\\url{" * 10_000
        + " https://e.org/" + ")" * 10_000 + "\n\n**Summary**\n" + "**" * 5_000
        + "\n**Key Takeaways**\n" + "- " * 5_000 + "\n" + "1.\n" * 5_000 + "\n" + CPF + "\n"
    ],
    "random bytes": lambda: [
        hostile_paper(_random_bytes(1, 20_000).decode("utf-8", "replace")),
        _random_bytes(2, 20_000).decode("utf-8", "replace"),
    ],
    "NUL and control characters": lambda: [
        hostile_paper("\x00" * 1_000 + "\x0b\x0c\x1b[31m\x7f\x85" * 500 + "\ufdd0\ufddd1\ufddd"),
        "\x00\n" * 1_000,
    ],
    "table and emoji soup": lambda: [
        hostile_paper(("| 𝒙 | 😀 | 中文 |\n|---|---|---|\n" * 2_000) + "\r\n\r\r" * 2_000)
    ],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_sections_leave_the_good_ones_alone(name: str) -> None:
    digest = parse_and_render(digest_file(*HOSTILE[name]()))
    assert_good_sections(digest)


def test_invalid_utf8_bytes_between_sections() -> None:
    junk = (b"\xff\xfe\xc3\x28\xed\xa0\x80\xf0\x28\x8c\xbc\x00\x80" * 2_000
            + _random_bytes(3, 10_000))
    raw = digest_file("BYTES").replace(b"BYTES", junk)
    digest = parse_and_render(raw)
    assert_good_sections(digest)


def test_a_five_megabyte_file() -> None:
    prose = "This paper proposes a method that works well on radiance fields. 中文分析。\n\n"
    marked = "**A** [link](https://e.org/x) `code` <b>b</b> $x$\n\n"
    analysis = (prose * 100 + marked) * (5_000_000 // (100 * len(prose) + len(marked)))
    analysis += "```x\n<details>\n" * 1_000
    raw = (FRONT + RUN + good(0) + hostile_paper(analysis) + good(1) + good(2)).encode()
    assert len(raw) > 5_000_000
    digest = parse_and_render(raw)
    assert_good_sections(digest)
    [huge] = [p for p in digest.papers if p.arxiv_id == "2410.09999"]
    assert huge.analysis.startswith(prose)
    assert huge.analysis.endswith("```x")  # up to the first <details line


# --------------------------------------------------------------------------- skipped, and why


def test_broken_and_empty_sections_are_skipped_with_their_reasons() -> None:
    raw = digest_file(
        "## Broken Section\n**Authors:Eve Broken**\nNo PDF line here.\n",
        "## \n**Authors:Eve Untitled**\n[PDF](http://arxiv.org/abs/2410.09997v1) \n",
        "## Bad Id\n**Authors:Eve Bad**\n[PDF](http://arxiv.org/abs/not-an-id) \n",
        "##\n\n##   \n\n",
        "## Empty Body\n",
    )
    digest = parse_and_render(raw)
    assert_good_sections(digest)
    assert {p.arxiv_id for p in digest.papers} == {arxiv for arxiv, _ in GOOD}
    messages = [(w.line, w.message) for w in digest.warnings]
    first = line_of(raw, "## Broken Section")
    assert (first, "section has an **Authors: line but no [PDF](…) line; skipped") in messages
    assert (line_of(raw, "## \n**Authors:Eve Untitled"),
            "paper section has an empty title; skipped") in messages
    assert any(line == line_of(raw, "## Bad Id") and "cannot read the arXiv id" in message
               and message.endswith("section skipped") for line, message in messages)
    assert [w.line for w in digest.warnings] == sorted(w.line for w in digest.warnings)
    assert all(w.path == PATH for w in digest.warnings)


def test_a_pdf_line_outside_any_section_is_named() -> None:
    raw = (FRONT + RUN + "[PDF](http://arxiv.org/abs/2410.09996v1) \n\n" + good(0) + good(1)
           + good(2)).encode()
    digest = parse_and_render(raw)
    assert_good_sections(digest)
    assert (line_of(raw, "[PDF](http://arxiv.org/abs/2410.09996"),
            "[PDF](…) line outside any paper section; ignored") in [
        (w.line, w.message) for w in digest.warnings]


# --------------------------------------------------------------------------- front matter


def laughs(levels: int) -> str:
    """The "billion laughs": each level is nine aliases of the one before."""
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        refs = ", ".join([f"*lol{n - 1}"] * 9)
        lines.append(f"lol{n}: &lol{n} [{refs}]")
    return "\n".join(lines)


def merge_bomb(levels: int) -> str:
    """Merge keys of aliases, each level merging ten copies of the one before."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for n in range(1, levels):
        refs = ", ".join([f"*m{n - 1}"] * 10)
        lines.append(f"m{n}: &m{n}\n  <<: [{refs}]\n  k{n}: {n}")
    return "\n".join(lines)


FRONT_MATTERS: dict[str, tuple[str, str]] = {
    # name -> (front matter block, start of the expected warning at the '---' line)
    "billion laughs": ("---\ntitle: NeRF\n" + laughs(12) + "\n---\n",
                       "front matter uses YAML aliases (*name); ignored"),
    "merge-key bomb": ("---\ntitle: NeRF\n" + merge_bomb(9) + "\n---\n",
                       "front matter uses YAML aliases (*name); ignored"),
    "alias in a tag list": ("---\ntitle: &t NeRF\ntags:\n- *t\n---\n",
                            "front matter uses YAML aliases (*name); ignored"),
    "huge block": ("---\ntitle: NeRF\ndescription: " + "x" * 100_000 + "\n---\n",
                   "front matter is 100026 characters long (at most 65536); ignored"),
    "deep nesting": ("---\ntitle: " + "[" * 5_000 + "]" * 5_000 + "\n---\n",
                     "front matter is not valid YAML"),
    "garbage": ("---\n: : :\n\t- ]] {{ &&& ***\n@@\n---\n", "front matter is not valid YAML"),
    "binary": ("---\n" + _random_bytes(4, 2_000).decode("latin-1") + "\n---\n",
               "front matter is not valid YAML"),
    "not a mapping": ("---\n- just\n- a list\n---\n", "front matter is not a mapping; ignored"),
    "unclosed": ("---\ntitle: NeRF\ntags: [NeRF\n", "front matter has no closing '---' line"),
    "bad date": ("---\ntitle: NeRF\ndate: 2024-13-45 99:99:99\n---\n",
                 "front matter is not valid YAML"),
}


@pytest.mark.parametrize("name", sorted(FRONT_MATTERS))
def test_front_matter_garbage_is_refused_with_a_reason(name: str) -> None:
    block, reason = FRONT_MATTERS[name]
    digest = parse_and_render(digest_file(front=block))
    assert_good_sections(digest)
    assert digest.date.isoformat() == "2024-10-12"  # from the path
    [warning] = [w for w in digest.warnings if w.message.startswith("front matter")]
    assert warning.line == 1
    assert warning.message.startswith(reason)


@pytest.mark.parametrize(
    "value",
    ["1" + ":00" * 20_000, "9" * 5_000, "&#" + "9" * 5_000, "1e999999", "!!binary aGVsbG8="],
)
def test_hostile_front_matter_values_do_not_break_the_digest(value: str) -> None:
    digest = parse_and_render(digest_file(front=f"---\ntitle: {value}\ndescription: {value}\n"
                                                f"tags:\n- NeRF\n---\n"))
    assert_good_sections(digest)
    assert digest.topic == "NeRF"


@pytest.mark.parametrize("raw", [b"", b"\n", b"---\n---\n", b"\x00", FRONT.encode()])
def test_a_file_without_structure_is_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(NotADigest, match="no arXiv"):
        parse_digest(decode(raw), PATH)


@pytest.mark.parametrize("raw", [(FRONT + RUN).encode(), RUN.encode(), (RUN + "## \n").encode()])
def test_a_digest_without_papers_is_empty(raw: bytes) -> None:
    assert parse_and_render(raw).papers == ()


# --------------------------------------------------------------------------- random mixes

_pieces = st.sampled_from([
    " " * 500, "```x\n" * 50, "<details>" * 50, "<ul><li>" * 50, "**" * 50, "[a](" * 50,
    "`" * 100, "<" * 100, "\x00" * 10, "\r\n" * 50, "# \n" * 20, "### x\n", "**Authors:x\n",
    "**Summary**\n", "<pre>", "&#" + "1" * 5_000, "😀𝒙中文" * 20, "| a |\n|---|\n" * 20,
    "## \n", "## Hostile Title\n**Authors:Eve**\n", "\ufdd0\ufddd0\ufddd", "\ud800",
])
_hostile = st.lists(_pieces | st.text(max_size=40)
                    | st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
                    max_size=8).map("".join)


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(before=_hostile, inside=_hostile, after=_hostile)
def test_random_hostile_mixes(before: str, inside: str, after: str) -> None:
    raw = digest_file(before, hostile_paper(inside), after)
    digest = parse_and_render(raw)
    assert_good_sections(digest)
