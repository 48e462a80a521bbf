"""Telegram text helpers: the validator is the oracle, hypothesis throws garbage at it."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.markdown import markdown_to_html
from bot.domain.tgtext import (
    clean_text,
    escape,
    hashtag,
    is_blank,
    safe_url,
    split_html,
    truncate,
    utf16_len,
    validate_telegram_html,
    visible_len,
)

# --------------------------------------------------------------------------- basics


@pytest.mark.parametrize(
    ("text", "units"),
    [("", 0), ("abc", 3), ("中文", 2), ("𝒙", 2), ("a😀b", 4), ("é", 1), ("e\u0301", 2)],
)
def test_utf16_len(text: str, units: int) -> None:
    assert utf16_len(text) == units


def test_escape() -> None:
    assert escape("<3% & A&A > x") == "&lt;3% &amp; A&amp;A &gt; x"
    assert escape('say "hi"') == 'say "hi"'
    assert escape('say "hi"', quote=True) == "say &quot;hi&quot;"
    assert escape("&lt;") == "&amp;lt;"  # escape is literal; decoding is the caller's choice


def test_clean_text() -> None:
    assert clean_text("a\r\nb\rc") == "a\nb\nc"
    assert clean_text("a\x0bb\x00c\td") == "a b c\td"
    assert clean_text("x\ud800y") == "x\ufffdy"
    assert clean_text("non\ufdd0char") == "nonchar"
    assert clean_text("nbsp\xa0zw\u200b") == "nbsp\xa0zw\u200b"


def test_truncate() -> None:
    assert truncate("hello", 5) == "hello"
    assert truncate("hello world", 8) == "hello…"  # backs off to a whole word
    assert truncate("hello world", 7) == "hello…"  # no space before the ellipsis
    assert truncate("helloworld", 8) == "hellowo…"
    assert truncate("a" + "b" * 30, 20) == "a" + "b" * 18 + "…"
    assert truncate("中文" * 10, 5) == "中文中文…"
    assert truncate("𝒙𝒙𝒙", 4) == "𝒙…"  # never half a surrogate pair
    assert utf16_len(truncate("𝒙" * 10, 6)) <= 6
    assert truncate("abc", 0) == ""
    assert truncate("abc", 1, ellipsis="……") == ""


@given(st.text(), st.integers(min_value=0, max_value=50))
def test_truncate_fits(text: str, limit: int) -> None:
    out = truncate(text, limit)
    assert utf16_len(out) <= limit
    if utf16_len(text) <= limit:
        assert out == text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/a/b", "https://github.com/a/b"),
        ("http://usrc-sea.github.io/UltrAvatar/.", "http://usrc-sea.github.io/UltrAvatar/"),
        ("https://x.org/page),", "https://x.org/page"),
        ("https://en.wikipedia.org/wiki/A_(b)", "https://en.wikipedia.org/wiki/A_(b)"),
        ("./crop_3DGS/img.png", None),
        ("3", None),
        ("javascript:alert(1)", None),
        ("https://localhost/x", None),
        ("https://exa mple.org", None),
        ('https://x.org/"><b>', None),
        ("ftp://x.org/file", None),
        ("https://x.org/\ud800", None),
    ],
)
def test_safe_url(url: str, expected: str | None) -> None:
    assert safe_url(url) == expected


# --------------------------------------------------------------------------- validator

VALID = [
    ("plain text", "plain text"),
    ("<b>bold</b>, <strong>bold</strong>", "bold, bold"),
    ("<i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>", "ieunskd"),
    ('<span class="tg-spoiler">sp</span><tg-spoiler>sp</tg-spoiler>', "spsp"),
    ("<b>bold <i>italic bold <s>st <tg-spoiler>all</tg-spoiler></s> <u>u</u></i> b</b>",
     "bold italic bold st all u b"),
    ('<a href="http://www.example.com/">inline URL</a>', "inline URL"),
    ("<a href='https://x.org/?a=1&amp;b=2'><b>x</b></a>", "x"),
    ('<a href="tg://user?id=123456789">mention</a>', "mention"),
    ("<code>inline &lt;code&gt;</code>", "inline <code>"),
    ("<pre>pre-formatted\n  block</pre>", "pre-formatted\n  block"),
    ('<pre><code class="language-python">print(1)</code></pre>', "print(1)"),
    ("<blockquote>Block quotation\nstarted</blockquote>", "Block quotation\nstarted"),
    ("<blockquote expandable>hidden <b>part</b> <a href=\"https://x.org\">l</a></blockquote>",
     "hidden part l"),
    ("&lt;&gt;&amp;&quot;&#60;&#x3C;&#128512;", '<>&"<<😀'),
    ("<b >x</b >", "x"),
    ("", ""),
]


@pytest.mark.parametrize(("html", "plain"), VALID)
def test_validate_accepts(html: str, plain: str) -> None:
    assert validate_telegram_html(html) == plain


INVALID = [
    "<3%",  # not a tag
    "a & b",  # bare ampersand
    "a > b",  # bare >, stricter than Telegram on purpose
    "&nbsp;",  # named entities other than the four
    "&lt",  # entity without semicolon
    "&#0;",
    "&#xD800;",  # surrogate by entity
    "&#1114112;",
    "<p>x</p>",
    "<br>",
    "<B>x</B>",
    "<b>x",
    "x</b>",
    "<b><i>x</b></i>",
    "<a>x</a>",
    '<a href="">x</a>',
    '<a href="/relative">x</a>',
    '<a href="https://x.org"><a href="https://y.org">x</a></a>',
    '<a href="https://x.org" title="t">x</a>',
    "<span>x</span>",
    '<span class="other">x</span>',
    '<b class="x">x</b>',
    "<code><b>x</b></code>",
    "<pre><b>x</b></pre>",
    '<code class="language-py">x</code>',
    '<pre><code class="py">x</code></pre>',
    "<b><code>x</code></b>",  # strict reading of the nesting rules
    '<a href="https://x.org"><code>x</code></a>',
    "<blockquote><blockquote>x</blockquote></blockquote>",
    "<b><blockquote>x</blockquote></b>",
    "<blockquote><pre>x</pre></blockquote>",
    '<blockquote expandable="yes">x</blockquote>',
    "<tg-emoji emoji-id=\"1\">👍</tg-emoji>",
    "<b>x</b",
    "<b x>y</b>",
    "x\ud800",
    "nul\x00",
]


@pytest.mark.parametrize("html", INVALID)
def test_validate_rejects(html: str) -> None:
    with pytest.raises(ValueError, match=r"offset|end of text|surrogate"):
        validate_telegram_html(html)


def test_visible_len_counts_entities_and_astral() -> None:
    assert visible_len("&amp;") == 1
    assert visible_len("<b>𝒙</b>") == 2
    assert visible_len('<a href="https://very.long.example.org/path">ab</a>') == 2
    with pytest.raises(ValueError, match="offset 0"):
        visible_len("<")


@given(st.text())
def test_escape_roundtrips_through_validator(text: str) -> None:
    text = clean_text(text)
    assert validate_telegram_html(escape(text)) == text
    href = escape("https://x.org/?q=" + re.sub(r"\s", "", text), quote=True)
    assert validate_telegram_html(f'<a href="{href}">{escape(text)}</a>') == text


# --------------------------------------------------------------------------- hashtags


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("Talking Head Generation", "#TalkingHeadGeneration"),
        ("元宇宙/虚拟人", "#元宇宙_虚拟人"),
        ("3DGS", "#3DGS"),
        ("NeRF", "#NeRF"),
        ("Diffusion Models", "#DiffusionModels"),
        ("医学图像", "#医学图像"),
        ("3D reconstruction", "#3DReconstruction"),
        ("text-to-image", "#textToImage"),
        ("C++ & C#", "#CC"),
        ("2024", "#tag_2024"),
        ("snake_case", "#snake_case"),
        ("", ""),
        ("!!! ???", ""),
    ],
)
def test_hashtag(tag: str, expected: str) -> None:
    assert hashtag(tag) == expected


# TDLib's hashtag rule: '#', then 1..256 letters/decimal digits/_/ZWNJ/middle dot, at least
# one letter. Python's \w is a close stand-in for "letter or digit" in these tests.
_TG_HASHTAG = re.compile(r"#[\w\u200c\u00b7]{1,256}")


@given(st.text())
def test_hashtag_is_recognised_by_telegram(tag: str) -> None:
    h = hashtag(tag)
    if h:
        assert _TG_HASHTAG.fullmatch(h)
        assert any(ch.isalpha() for ch in h)
        assert validate_telegram_html(escape(h)) == h


# --------------------------------------------------------------------------- markdown


def md(text: str) -> str:
    out = markdown_to_html(text)
    validate_telegram_html(out)
    return out


def test_markdown_inline() -> None:
    assert md("**bold** and *it* and `a<b`") == "<b>bold</b> and <i>it</i> and <code>a&lt;b</code>"
    assert md("__bold__ snake_case_name") == "<b>bold</b> snake_case_name"
    assert md("[text](https://x.org/a?b=1&c=2)") == '<a href="https://x.org/a?b=1&amp;c=2">text</a>'
    assert md("see <https://github.com/a/b>.") == (
        'see <a href="https://github.com/a/b">https://github.com/a/b</a>.')
    assert md("[rel](./x.png) [js](javascript:x)") == "rel js"
    assert md("**[link](https://x.org)** done") == '<a href="https://x.org"><b>link</b></a> done'


def test_markdown_unbalanced_is_literal() -> None:
    assert md("end **unbalanced") == "end **unbalanced"
    assert md("a * b * c") == "a * b * c"
    assert md("2*3*4") == "2<i>3</i>4"


def test_markdown_tex_is_literal() -> None:
    assert md("$a_b*c*$ and $<0.01$") == "$a_b*c*$ and $&lt;0.01$"


def test_markdown_text_that_looks_like_tags() -> None:
    assert md("<Methods>: x") == "&lt;Methods&gt;: x"
    assert md("规则 <jm≤n 与 <topic>") == "规则 &lt;jm≤n 与 &lt;topic&gt;"
    assert md("没有重复<summary>中的内容") == "没有重复&lt;summary&gt;中的内容"
    assert md("<Github链接未提供，填“None”>") == "&lt;Github链接未提供，填“None”&gt;"
    assert md("a<3% and A&A") == "a&lt;3% and A&amp;A"


def test_markdown_entities_are_decoded_then_escaped() -> None:
    assert md("&lt;Methods&gt; &amp; 0&lt;β1") == "&lt;Methods&gt; &amp; 0&lt;β1"
    assert md("&lt;b&gt;not bold&lt;/b&gt;") == "&lt;b&gt;not bold&lt;/b&gt;"
    assert md("a&nbsp;b &copy; &#8212;") == "a\xa0b © —"
    assert md("&bogus; & &") == "&amp;bogus; &amp; &amp;"


def test_markdown_headings_rules_quotes() -> None:
    out = md("### Heading **x**\n<h2>Paper:1</h2>\ntext\n---\n------\n> quoted")
    assert out == ("<b>Heading x</b>\n\n<b>Paper:1</b>\n\ntext\n——————————\n——————————\n"
                   "│ quoted")


def test_markdown_lists() -> None:
    assert md("- a\n* b\n+ c\n• d") == "• a\n• b\n• c\n• d"
    assert md("7. seven\n8. eight") == "7. seven\n8. eight"  # numbering kept as written
    assert md("1. top\n    - (1) nested\n        1. deeper") == (
        "1. top\n    • (1) nested\n        1. deeper")


def test_markdown_html_lists() -> None:
    src = ("<ol>\n<li><p>题目：X</p>\n</li>\n<li><p>摘要：\n（1）：a\n（2）：b</p>\n</li>\n</ol>\n"
           "<ul>\n<li>one <em>x</em></li>\n<li>two<ul><li>inner</li></ul></li>\n</ul>\n"
           '<ol start="7"><li>seven</li></ol>')
    assert md(src) == ("1. 题目：X\n2. 摘要：\n（1）：a\n（2）：b\n• one <i>x</i>\n• two\n"
                       "  • inner\n7. seven")


def test_markdown_broken_html() -> None:
    assert md("<b>bold <i>both</b> italic?</i>") == "<b>bold <i>both</i></b><i> italic?</i>"
    assert md("Bao<em>, Gong</em>, Zhou") == "Bao<i>, Gong</i>, Zhou"
    assert md("T<em>步中...T</em>步") == "T<i>步中...T</i>步"
    assert md("x</b></i></code></a> y") == "x y"
    assert md('<a href="3">∥x0∥</a>') == "∥x0∥"
    assert md("<div>a</div><table><tr><td>1</td><td>2</td></tr></table>") == "a\n1  2"
    assert md("<b>never closed") == "<b>never closed</b>"
    assert md("<code>never closed") == "<code>never closed</code>"


def test_markdown_pre_and_fences() -> None:
    src = ("<li>结论：<pre><code>            (1):本文 <b>x</b> &lt;\n"
           "            (2):第二</code></pre>\n"
           "```python\nif a < b: pass\n```\n")
    assert md(src) == ("• 结论：\n<pre>(1):本文 x &lt;\n(2):第二</pre>\n\n"
                       "<pre>if a &lt; b: pass</pre>")


def test_markdown_removes_screenshots_and_collapses_blank_lines() -> None:
    src = ("a\n\n\n\n\nb\n<details>\n  <summary>点此查看论文截图</summary>\n"
           '<img src="https://x.org/1.jpg" align="middle">\n</details>\n\u200b\n\n\nc<br/>d')
    assert md(src) == "a\n\nb\n\n\u200b\n\nc\nd"


def test_markdown_empty() -> None:
    assert md("") == ""
    assert md("\n\n  \n") == ""
    assert md("<p></p><b></b>**") == "**"


NASTY = [
    "<b>", "</b>", "<i>", "</i>", "<em>", "</strong>", "**", "*", "__", "_", "`", "```", "$",
    "<pre>", "</pre>", "<code>", "</code>", "<pre><code>", "<li>", "<ol>", "</ol>", "<ul>",
    "</li>", "<p>", "</p>", "<br>", "<h2>", "</h2>", "<hr>", "&lt;", "&amp;", "&", "<", ">",
    '<a href="https://x.org/?a=1&b=2">', '<a href="3">', "</a>", "[x](https://y.org)",
    "[", "](", ")", "<https://z.org/p>", "\n", "\n\n", "#", "### ", "- ", "1. ", "    ", "𝒙",
    "<Methods>", "<jm≤n", "<summary>", "<details>", "</details>", "---", "\ufdd0", "\ufddd",
    "\r", "\x0b", "\x00", "\u200b", "\xa0", "&#60;", "&#xD800;", "&nbsp;", "<img src=x>",
    "<span class=x>", "<blockquote>", "text", " ", "中文", "A&A", "<3%",
]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=60))
def test_markdown_always_valid(parts: list[str]) -> None:
    out = markdown_to_html("".join(parts))
    validate_telegram_html(out)


@given(st.text())
def test_markdown_always_valid_on_any_text(text: str) -> None:
    validate_telegram_html(markdown_to_html(text))


# --------------------------------------------------------------------------- splitting


def chunks_ok(html: str, limit: int) -> list[str]:
    chunks = split_html(html, limit)
    for chunk in chunks:
        plain = validate_telegram_html(chunk)
        assert utf16_len(plain) <= limit
        assert plain.strip()
    return chunks


def nesting(html: str) -> int:
    depth = deepest = 0
    for m in re.finditer(r"<(/?)[a-z]", html):
        depth += -1 if m.group(1) else 1
        deepest = max(deepest, depth)
    return deepest


def squash(s: str) -> str:
    """Visible characters only: whitespace and what Telegram counts as no text dropped."""
    return "".join(ch for ch in s if not ch.isspace() and not is_blank(ch))


def test_split_short_text_is_unchanged() -> None:
    html = "<b>x</b> &amp; y"
    assert split_html(html, 4096) == [html]
    assert split_html("  \n ", 10) == []
    assert split_html("<b> </b>", 10) == []


def test_split_prefers_paragraphs_then_lines_then_spaces() -> None:
    para = "a" * 30
    assert chunks_ok(f"{para}\n\n{para}\n{para}", 70) == [f"{para}\n\n{para}", para]
    assert chunks_ok(f"{para}\n{para} {para}", 70) == [f"{para}\n{para}", para]
    assert chunks_ok("word " * 20, 22) == ["word word word word"] * 5
    assert chunks_ok("x" * 10, 4) == ["xxxx", "xxxx", "xx"]


def test_split_reopens_tags_with_attributes() -> None:
    html = '<a href="https://x.org/?a=1&amp;b=2"><b>' + "word " * 10 + "</b></a> tail"
    chunks = chunks_ok(html, 20)
    assert len(chunks) > 1
    for chunk in chunks[:-1]:
        assert chunk.startswith('<a href="https://x.org/?a=1&amp;b=2"><b>')
        assert chunk.endswith("</b></a>")
    pre = '<pre><code class="language-python">' + "x = 1\n" * 10 + "</code></pre>"
    for chunk in chunks_ok(pre, 15):
        assert chunk.startswith('<pre><code class="language-python">')
        assert chunk.endswith("</code></pre>")


def test_split_never_cuts_entities_or_surrogates() -> None:
    html = "&amp;" * 50
    chunks = chunks_ok(html, 7)
    assert "".join(validate_telegram_html(c) for c in chunks) == "&" * 50
    astral = "𝒙" * 21
    chunks = chunks_ok(astral, 5)
    assert "".join(chunks) == astral
    assert all(utf16_len(c) <= 4 for c in chunks)


def test_split_moves_dangling_start_tags_to_next_chunk() -> None:
    chunks = chunks_ok("aaaa <b>bbbb</b>", 6)
    assert chunks == ["aaaa", "<b>bbbb</b>"]


def test_split_keeps_entities_per_chunk_under_the_limit() -> None:
    html = "\n".join(f"<b>{i}</b> <i>x</i>" for i in range(120))
    chunks = chunks_ok(html, 4096)
    assert len(chunks) == 3
    assert all(c.count("<b>") + c.count("<i>") <= 100 for c in chunks)
    assert chunks[0].endswith("<i>x</i>")  # cut at a line break
    assert split_html("<b>a</b><i>b</i>", 10, max_entities=1) == ["<b>a</b>", "<i>b</i>"]


@pytest.mark.parametrize(
    "text", ["", " \n\t", "\u200b", "\ufeff\u200c\u200d\u200e", "\xa0\u2003\u3000", "\u2800",
             "\u2028\u2029", "\x01\x1f", "\U000e0041", "\ufffc"],
)
def test_is_blank_is_what_telegram_calls_an_empty_text(text: str) -> None:
    """TDLib's is_empty_string after clean_input_string: "message text is empty"."""
    assert is_blank(text)
    assert not is_blank(text + "x")


@pytest.mark.parametrize("text", ["x", ".", "\u00ad", "\u2060", "\u3164", "\x7f"])
def test_is_blank_keeps_what_telegram_keeps(text: str) -> None:
    assert not is_blank(text)


def test_split_leaves_out_chunks_of_zero_width_characters() -> None:
    """The digests contain lines of U+200B; Telegram refuses a message of only those."""
    html = markdown_to_html("A" * 4090 + "\n\n" + "\u200b" * 10 + "\n\n\u2800")
    assert split_html(html) == ["A" * 4090]
    assert split_html("\u200b<b>\u00a0</b>") == []


def test_split_rejects_invalid_html_and_tiny_limits() -> None:
    with pytest.raises(ValueError, match="unsupported tag <p>"):
        split_html("<p>x</p>")
    with pytest.raises(ValueError, match="at least 2"):
        split_html("x", 1)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=12)), max_size=80),
       st.integers(min_value=2, max_value=120), st.integers(min_value=1, max_value=100))
def test_split_property(parts: list[str], limit: int, max_entities: int) -> None:
    html = markdown_to_html("".join(parts))
    chunks = split_html(html, limit, max_entities)
    for chunk in chunks:
        assert not is_blank(validate_telegram_html(chunk))
        assert utf16_len(validate_telegram_html(chunk)) <= limit
        # More tags than allowed only when the nesting itself is deeper than that.
        assert len(re.findall(r"<[a-z]", chunk)) <= max(max_entities, nesting(html))
    # Only whitespace at the cuts (and chunks Telegram would call empty) may be lost;
    # every visible character survives, in order.
    joined = "".join(validate_telegram_html(c) for c in chunks)
    assert squash(joined) == squash(validate_telegram_html(html))
