"""Hostile input costs linear time: every entry point, timed on the same input at 1x and 8x.

Linear code takes about 8 times as long on 8 times the input, quadratic code about 64
times. A test fails when the ratio reaches `MAX_RATIO` (20) four times in a row, so noise
on a shared machine is forgiven and a quadratic pass is not. No absolute timings: the
inputs are grown until the 1x run takes a few milliseconds, and the cyclic garbage
collector is off while timing (its pauses follow the heap's history, not the algorithm).

The inputs are a few building blocks (runs of spaces, code fences, ``<details>``, nested
list markers, ``**``, ``[``, ``(``, tables, emoji, ``\\r``, …) that hypothesis picks and
the test repeats; the known killers of the issue "Hostile input costs linear time" have
deterministic cases of their own.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.domain.markdown import markdown_to_html
from bot.domain.models import ArchivedPaper, Paper
from bot.domain.parsing import parse_digest
from bot.domain.query import find_paper_link, parse_query
from bot.domain.rendering import plain_text, render_analysis, render_card
from bot.domain.tgtext import split_html

MAX_RATIO = 20.0  # linear: ~8; quadratic: ~64
ATTEMPTS = 4
MIN_SECONDS = 0.002  # grow the 1x input until it takes this long…
MAX_CHARS = 200_000  # …or is this long

CPF = "**[ChatPaperFree](https://huggingface.co/spaces/Kedreamix/ChatPaperFree)**"
FRONT = "---\ntitle: NeRF\ndate: 2024-10-12 10:00:00\ntags:\n- NeRF\n---\n\n# 2024-10-12 更新\n\n"
PATH = "2024-10-12/NeRF.md"

BLOCKS = [
    " ", "    ", "\t", "\r", "\r\n", "\n", "\n\n", "\u200b", "\xa0", "\x0b",
    "```x\n", "```\n", "~~~\n", "`", "``", "`a", "``x", "$", "$$", "\\",
    "<details>", "</details>", "<details>\n", "<summary>", "<pre>", "</pre>", "<b>", "<i>",
    "<ul>", "<ol>", "<li>", "<p>", "<br>", "<a ", "<a href='http://x.y'>", "</a>", "<x", "<",
    ">", "</", "<https://e.org ", "<img src=\"", "&", "&#", "&#1", "&lt;",
    "  - ", "- ", "* ", "1. ", "> ", "#", "## ", "# ", "---",
    "**", "*", "__", "_", "*a ", "a** ", "**a", "[", "]", "(", ")", "[a](", "[a](http://e.org/",
    ".", "|", "| a | b |\n", "|---|---|\n",
    "😀", "𝒙", "中文", "。", "!", "a", "word ", "http://e.org/x.",
    "**Summary", "**Authors:", "**Key Takeaways**", "[PDF](", "\\url{",
    "tag:", "author:\"", "since:", "#NeRF ", "\"", "2409.12156v", "arXiv:",
]


def _seconds(work: Callable[[], object], repeat: int) -> float:
    """Best of `repeat` runs, in this thread's CPU time: other processes competing for
    the CPU (a busy CI machine) stretch wall-clock time, not the work's own CPU time."""
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        work()
        best = min(best, time.thread_time() - start)
    return best


def assert_linear(make: Callable[[int], Callable[[], object]], unit_chars: int = 1,
                  *, grow: bool = True) -> None:
    """`make(k)` is the work on an input of k repetitions; its time at 8k must stay within
    MAX_RATIO times the time at k. With `grow`, k starts near 2,000 characters and doubles
    until the 1x run is measurable; without, k is 1."""
    unit_chars = max(unit_chars, 1)
    k = max(1, 2_000 // unit_chars) if grow else 1
    ratios: list[float] = []
    gc.collect()
    gc.disable()
    try:
        while grow and _seconds(make(k), 1) < MIN_SECONDS and k * unit_chars * 2 <= MAX_CHARS:
            k *= 2
        small, big = make(k), make(8 * k)
        for attempt in range(ATTEMPTS):
            # Interleaved, so that a busy moment of the machine slows both sizes alike.
            small_time = big_time = float("inf")
            for _ in range(2 + attempt):
                small_time = min(small_time, _seconds(small, 2))
                big_time = min(big_time, _seconds(big, 1))
            ratios.append(round(big_time / max(small_time, 1e-6), 1))
            if ratios[-1] < MAX_RATIO:
                return
    finally:
        gc.enable()
    pytest.fail(f"time grows faster than linearly: 8x input took {ratios} times as long "
                f"(k={k} repetitions of {unit_chars} chars)")


def digest(*, title: str = "A Paper", authors: str = "**Authors:Ann, Bob**",
           abstract: str = "An abstract.", comment: str = "", summary: str = "A summary.",
           takeaways: str = "- one\n- two", analysis: str = "Some analysis.",
           tail: str = "", front: str = FRONT) -> str:
    """One digest of one paper section, any part of which can be hostile."""
    return (
        f"{front}## {title}\n{authors}\n{abstract}\n"
        f"[PDF](http://arxiv.org/abs/2410.07971v1) {comment}\n\n"
        f"**Summary**\n{summary}\n\n**Key Takeaways**\n{takeaways}\n\n{CPF}\n\n{analysis}\n\n"
        '<details>  <summary>点此查看论文截图</summary> '
        '<img src="https://pic1.zhimg.com/x.png" align="middle"> </details>\n' + tail
    )


PLACES: dict[str, Callable[[str], str]] = {
    "title": lambda s: digest(title=s),
    "authors": lambda s: digest(authors="**Authors:" + s + "x"),
    "abstract": lambda s: digest(abstract=s),
    "comment": lambda s: digest(comment=s),
    "summary": lambda s: digest(summary="**Summary" + s),
    "takeaways": lambda s: digest(takeaways=s),
    "analysis": lambda s: digest(analysis=s),
    "after": lambda s: digest(tail=s),
    "body": lambda s: FRONT + s,
    "front matter": lambda s: digest(front="---\ntitle: " + s + "\n---\n"),
}


def paper(text: str) -> Paper:
    """A paper with `text` in every field the cards and the analysis show."""
    return Paper(
        arxiv_id="2410.07971", version=1, title=text, authors=(text, "Bob"), abstract=text,
        abs_url="https://arxiv.org/abs/2410.07971v1",
        pdf_url="https://arxiv.org/pdf/2410.07971v1", comment=text, links=(text,),
        summary=text, takeaways=(text, text), analysis=text, figures=(text,), line=1,
    )


units = st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=3).map("".join)
fast = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- properties


@fast
@given(unit=units, place=st.sampled_from(sorted(PLACES)))
@example(unit=" ", place="authors")
@example(unit=" ", place="summary")
@example(unit="<details", place="after")
@example(unit="\\url{", place="comment")
def test_parse_digest_is_linear(unit: str, place: str) -> None:
    def make(k: int) -> Callable[[], object]:
        text = PLACES[place](unit * k)
        return lambda: parse_digest(text, PATH)

    assert_linear(make, len(unit))


@fast
@given(unit=units)
@example(unit="```x\n")
@example(unit="<details>")
@example(unit="`")
@example(unit="<ul><li>")
@example(unit="# a ")
@example(unit="<a  ")
def test_markdown_to_html_is_linear(unit: str) -> None:
    assert_linear(lambda k: lambda: markdown_to_html(unit * k), len(unit))


# Valid HTML made of a unit's conversion, repeated (valid pieces make a valid whole):
# converting the whole 8x input each time would cost more than the splitting itself.


@fast
@given(unit=units, limit=st.sampled_from([4096, 200]))
@example(unit="**a ", limit=200)
def test_split_html_is_linear(unit: str, limit: int) -> None:
    piece = markdown_to_html(unit * 16) + "\n"

    def make(k: int) -> Callable[[], object]:
        html = piece * k
        return lambda: split_html(html, limit)

    assert_linear(make, len(piece))


@fast
@given(unit=units, valid=st.booleans())
@example(unit="<", valid=False)
def test_plain_text_is_linear(unit: str, valid: bool) -> None:
    piece = markdown_to_html(unit * 16) if valid else unit

    def make(k: int) -> Callable[[], object]:
        html = piece * k
        return lambda: plain_text(html)

    assert_linear(make, len(piece))


@fast
@given(unit=units)
def test_parse_query_is_linear(unit: str) -> None:
    assert_linear(lambda k: lambda: parse_query(unit * k), len(unit))


@fast
@given(unit=units)
@example(unit=".")
def test_render_card_is_linear(unit: str) -> None:
    def make(k: int) -> Callable[[], object]:
        archived = ArchivedPaper(paper(unit * k), ())
        return lambda: render_card(archived, blog_base_url="https://blog.example.org")

    assert_linear(make, len(unit))


@fast
@given(unit=units)
@example(unit="*a a** ")
@example(unit="[a](")
def test_render_analysis_is_linear(unit: str) -> None:
    def make(k: int) -> Callable[[], object]:
        p = paper(unit * k)
        return lambda: render_analysis(p)

    assert_linear(make, len(unit))


def test_parsed_paper_renders_in_linear_time() -> None:
    """Parse, then render the card and the analysis, as ``paperfeed preview`` does."""
    unit = "**a [b](c `d ```x\n<details>\n  - 1. <li>中文😀\t| x |\n"

    def make(k: int) -> Callable[[], object]:
        text = digest(analysis=unit * k, summary=unit * k, takeaways=unit * k)

        def work() -> None:
            for p in parse_digest(text, PATH).papers:
                render_card(ArchivedPaper(p, ()))
                render_analysis(p)

        return work

    assert_linear(make, 3 * len(unit))


# --------------------------------------------------------------------------- killers
# Each is timed at 1/8 of its size and at its full size.


def _whole_pipeline(text: str) -> Callable[[], object]:
    def work() -> None:
        for p in parse_digest(text, PATH).papers:
            render_analysis(p)

    return work


KILLERS: dict[str, Callable[[int], str]] = {
    # 40,000 lines of "```x": each was an opening fence that the regex closed nowhere.
    "40,000 fence lines": lambda n: digest(analysis="```x\n" * (40_000 * n // 8)),
    "fence lines of growing length": lambda n: digest(
        analysis="".join("`" * (3 + i % 50) + "x\n" for i in range(5_000 * n // 8))),
    # 2 MB of spaces wherever a regex had `\s*` next to `\s*` or a lazy group before one.
    "2 MB of spaces in the analysis": lambda n: digest(analysis="a" + " " * (2_000_000 * n // 8)
                                                       + "b"),
    "2 MB of spaces in the authors": lambda n: digest(
        authors="**Authors:" + " " * (2_000_000 * n // 8) + "x"),
    "2 MB of spaces after a summary heading": lambda n: digest(
        summary="**Summary" + " " * (2_000_000 * n // 8) + "x"),
    "2 MB of spaces in a heading": lambda n: digest(
        analysis="# a" + " " * (2_000_000 * n // 8) + "b"),
    "2 MB of spaces in a tag": lambda n: digest(analysis="<a" + " " * (2_000_000 * n // 8)),
    "2 MB of spaces in a bold heading": lambda n: digest(
        summary="**a**" + " " * (2_000_000 * n // 8) + "x"),
    # <details> without an end, on lines of their own and on one line; and nested.
    "10,000 unclosed <details> lines": lambda n: digest(analysis="<details>\n" * (10_000 * n // 8)),
    "10,000 <details> on one line": lambda n: digest(analysis="x <details>" * (10_000 * n // 8)),
    "10,000 nested <details>": lambda n: digest(
        analysis="<details>" * (10_000 * n // 8) + "x" + "</details>" * (10_000 * n // 8)),
    "10,000 unclosed <pre>": lambda n: digest(analysis="<pre>" * (10_000 * n // 8)),
    "10,000 nested HTML lists": lambda n: digest(analysis="<ul><li>x" * (10_000 * n // 8)),
    "10,000 nested ol/li/p": lambda n: digest(analysis="<ol><li><p>x" * (10_000 * n // 8)),
    "deeply nested markdown list": lambda n: digest(analysis="  - " * (50_000 * n // 8) + "x"),
    "unclosed bold": lambda n: digest(analysis="**a " * (50_000 * n // 8)),
    "italic openers, then bold closers": lambda n: digest(
        analysis="*a " * (20_000 * n // 8) + "a** " * (20_000 * n // 8)),
    "unclosed links": lambda n: digest(analysis="[a](" * (50_000 * n // 8)),
    "unclosed link text": lambda n: digest(analysis="[" * (100_000 * n // 8)),
    "a link to a URL ending in dots": lambda n: digest(
        analysis="[a](http://e.org/" + "." * (200_000 * n // 8) + ")"),
    "a run of backticks, then text": lambda n: digest(
        analysis="`" * (3_000 * n // 8) + "x" * (3_000 * n // 8)),
    "unclosed \\url{ in the comment": lambda n: digest(comment="\\url{" * (50_000 * n // 8)),
    "<details on a long line before the figures": lambda n: digest(
        tail="x" * 1000 + "<details" * (10_000 * n // 8)),
}


@pytest.mark.parametrize("name", sorted(KILLERS))
def test_known_killer_is_linear(name: str) -> None:
    assert_linear(lambda n: _whole_pipeline(KILLERS[name](n)), grow=False)


@pytest.mark.parametrize(
    "html",
    [
        pytest.param("<b>" * 10_000 + "x" + "</b>" * 10_000, id="deeply nested tags"),
        pytest.param("<" * 100_000, id="a run of <"),
        pytest.param("<b " + " " * 100_000, id="spaces in an unclosed tag"),
    ],
)
def test_plain_text_of_hostile_html_is_linear(html: str) -> None:
    assert_linear(lambda n: lambda: plain_text(html * n), grow=False)


def test_parse_query_of_huge_numbers_is_linear() -> None:
    """A version of thousands of digits once made int() raise (Python's 4300-digit limit)."""
    assert parse_query("2409.12156v" + "1" * 5_000).arxiv_ids == ()
    assert_linear(lambda n: lambda: parse_query(("2409.12156v" + "1" * 5_000 + " ") * n * 20),
                  grow=False)


@pytest.mark.parametrize("unit", [
    "arxiv.org/abs/", "huggingface.co/papers/aaaa-", "arxiv.org/abs/aaaa-bbbb.cc",
    "2409.1215 ", "arXiv:" * 3 + "1", "alphaxiv.org/abs/" + "9" * 20, "hep-th/99",
])
def test_finding_a_paper_link_is_linear(unit: str) -> None:
    assert_linear(lambda k: lambda: find_paper_link(unit * k), len(unit))
