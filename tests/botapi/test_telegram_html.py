"""Tests of the Telegram HTML parser the fake Bot API relies on.

The parser is the core of "at least as strict as Telegram": if it wrongly accepted a
malformed text, the bot's HTML bugs would reach production; if it wrongly rejected a
valid one, bot tests would fail for nothing.  Both directions are pinned here, with
Telegram's own error descriptions and byte offsets.
"""

from __future__ import annotations

import pytest

from tests.botapi.telegram_html import (
    MAX_ENTITIES,
    TelegramHtmlError,
    check_link,
    is_empty_text,
    parse_telegram_html,
    strip_formatted,
    utf16_len,
    validate_entities,
)


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("𝐱") == 2
    assert utf16_len("é👍") == 3


def test_nested_bold_italic_with_utf16_offsets() -> None:
    text, entities = parse_telegram_html("𝐱 <b>bold <i>both</i></b>")
    assert text == "𝐱 bold both"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 9},
        {"type": "italic", "offset": 8, "length": 4},
    ]


def test_link_with_escaped_ampersand_in_href() -> None:
    text, entities = parse_telegram_html(
        '<a href="https://arxiv.org/a?x=1&amp;y=2">paper &amp; code</a>'
    )
    assert text == "paper & code"
    assert entities == [
        {"type": "text_link", "offset": 0, "length": 12, "url": "https://arxiv.org/a?x=1&y=2"}
    ]


@pytest.mark.parametrize(
    ("html", "expected_type"),
    [
        ("<blockquote>quote</blockquote>", "blockquote"),
        ("<blockquote expandable>long quote</blockquote>", "expandable_blockquote"),
        ('<span class="tg-spoiler">secret</span>', "spoiler"),
        ("<tg-spoiler>secret</tg-spoiler>", "spoiler"),
        ("<strong>x</strong>", "bold"),
        ("<em>x</em>", "italic"),
        ("<ins>x</ins>", "underline"),
        ("<del>x</del>", "strikethrough"),
        ("<strike>x</strike>", "strikethrough"),
        ("<code>x</code>", "code"),
        ("<pre>x</pre>", "pre"),
        ("<B>upper case tags are fine</B>", "bold"),
    ],
)
def test_supported_tags(html: str, expected_type: str) -> None:
    _, entities = parse_telegram_html(html)
    assert [e["type"] for e in entities] == [expected_type]


def test_pre_code_with_language_becomes_one_pre_entity() -> None:
    text, entities = parse_telegram_html(
        '<pre><code class="language-python">print("hi")\n</code></pre>'
    )
    assert text == 'print("hi")\n'
    assert entities == [{"type": "pre", "offset": 0, "length": 12, "language": "python"}]


def test_code_inside_blockquote_and_links_inside_expandable_quote() -> None:
    html = (
        "<blockquote expandable><b>Title</b> <code>2401.00001</code> "
        '<a href="https://arxiv.org/abs/2401.00001">abs</a></blockquote>'
    )
    _, entities = parse_telegram_html(html)
    assert [e["type"] for e in entities] == [
        "expandable_blockquote",
        "bold",
        "code",
        "text_link",
    ]


def test_entities_named_and_numeric() -> None:
    text, _ = parse_telegram_html("&lt;&gt;&amp;&quot; &#65;&#x42; &#128512;")
    assert text == '<>&" AB 😀'


def test_custom_emoji_and_date_time() -> None:
    _, entities = parse_telegram_html(
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
        '<tg-time unix="1647531900" format="wDT">Thu</tg-time>'
    )
    assert entities == [
        {
            "type": "custom_emoji",
            "offset": 0,
            "length": 2,
            "custom_emoji_id": "5368324170671202286",
        },
        {
            "type": "date_time",
            "offset": 2,
            "length": 3,
            "unix_time": 1647531900,
            "date_time_format": "wDT",
        },
    ]


def test_tg_user_link_is_a_text_mention() -> None:
    _, entities = parse_telegram_html('<a href="tg://user?id=42">Bob</a>')
    assert entities[0]["type"] == "text_mention"
    assert entities[0]["user"]["id"] == 42


def test_empty_entities_are_dropped_like_telegram_does() -> None:
    assert parse_telegram_html("a<b></b>b") == ("ab", [])


@pytest.mark.parametrize(
    ("html", "description"),
    [
        ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
        ("line<br>break", 'Unsupported start tag "br" at byte offset 4'),
        ("<br/>", 'Unsupported start tag "br/" at byte offset 0'),
        ("<p>para</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("I <3 you", 'Unsupported start tag "3" at byte offset 2'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("x <", "Unclosed start tag at byte offset 2"),
        ("<b>unclosed", 'Can\'t find end tag corresponding to start tag "b"'),
        (
            "<b><i>x</b></i>",
            'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"',
        ),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        (
            '<span class="spoiler">x</span>',
            'Tag "span" must have class "tg-spoiler" at byte offset 0',
        ),
        ('<a href="x>y</a>', "Unclosed start tag at byte offset 0"),
        ("<a =x>y</a>", 'Empty attribute name in the tag "a" at byte offset 0'),
        ("<a href=x/>y</a>", "Unexpected end of name token at byte offset 8"),
        ('<tg-emoji emoji-id="abc">👍</tg-emoji>', "Invalid custom emoji identifier specified"),
        (
            "caf&#xD83D;",
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units",
        ),
    ],
)
def test_rejected_like_telegram(html: str, description: str) -> None:
    """These are rejected by Telegram itself, with exactly these descriptions."""
    for strict in (True, False):
        with pytest.raises(TelegramHtmlError) as info:
            parse_telegram_html(html, strict=strict)
        assert info.value.description == description


@pytest.mark.parametrize(
    ("html", "fragment"),
    [
        # Telegram keeps a bare '&' literally; "&lt" in an unescaped title becomes "<".
        ("R&D", 'Character "&" at byte offset 1 must be escaped'),
        ("AT&T &nbsp;", 'Character "&" at byte offset 2 must be escaped'),
        ("x &lt y", 'must end with ";"'),
        ("1 > 0", 'Character ">" at byte offset 2 must be escaped'),
        ("<a>https://example.com</a>", 'must have a non-empty "href"'),
        ('<a href="">x</a>', 'must have a non-empty "href"'),
        ('<a href="/relative">x</a>', "unsupported link"),
        ('<a href="javascript:alert(1)">x</a>', "unsupported link"),
        ('<a href="example.com">x</a>', "unsupported link"),
        ("<a href=https>x</a>", "must be quoted"),
        ('<a href="https://e.com" target="_blank">x</a>', 'Unsupported attribute "target"'),
        ('<b class="x">y</b>', 'Unsupported attribute "class"'),
        ('<blockquote expandable="yes">q</blockquote>', "must not have a value"),
        ('<code class="language-py">x</code>', "only on <pre><code>"),
        ("<code><b>x</b></code>", "can't be nested inside <code>"),
        ("<pre>a<code>b</code></pre>", "can't be nested inside <pre>"),
        ("<pre><code>a</code>b</pre>", "must span the whole <pre>"),
        ("<b><code>x</code></b>", "only be nested inside blockquote"),
        ('<a href="https://a.org"><code>x</code></a>', "only be nested inside blockquote"),
        (
            '<a href="https://a.org"><a href="https://b.org">x</a></a>',
            "can't be nested inside a link",
        ),
        ("<blockquote><blockquote>x</blockquote></blockquote>", "can't be nested"),
        ("<b>x</>", "Empty end tag"),
    ],
)
def test_strict_rejects_what_telegram_silently_mangles(html: str, fragment: str) -> None:
    with pytest.raises(TelegramHtmlError) as info:
        parse_telegram_html(html)
    assert fragment in info.value.description
    parse_telegram_html(html, strict=False)  # ...while Telegram itself accepts it


def test_lenient_mode_matches_telegram_on_literal_ampersands() -> None:
    assert parse_telegram_html("R&D &nbsp; &lt3", strict=False) == ("R&D &nbsp; <3", [])
    # <a> without href links its own text, as Telegram does.
    _, entities = parse_telegram_html("<a>https://example.com</a>", strict=False)
    assert entities[0]["url"] == "https://example.com"


def test_too_many_entities() -> None:
    html = "<b>x</b> " * (MAX_ENTITIES + 1)
    with pytest.raises(TelegramHtmlError, match="Too many formatting entities"):
        parse_telegram_html(html)
    parse_telegram_html("<b>x</b> " * MAX_ENTITIES)


def test_strip_formatted_shifts_entities() -> None:
    text, entities = parse_telegram_html("\n\n <b>x</b> \n")
    assert strip_formatted(text, entities) == ("x", [{"type": "bold", "offset": 0, "length": 1}])


def test_check_link() -> None:
    assert check_link("https://arxiv.org/abs/1") == "https://arxiv.org/abs/1"
    assert check_link("tg://resolve?domain=x") == "tg://resolve?domain=x"
    assert check_link("example.com") is None
    assert check_link("example.com", strict=False) == "http://example.com"
    assert check_link("ftp://example.com") is None
    assert check_link("https://") is None


def test_validate_explicit_entities() -> None:
    assert validate_entities("hello", [{"type": "bold", "offset": 0, "length": 5}])
    with pytest.raises(TelegramHtmlError, match="outside of the text"):
        validate_entities("𝐱", [{"type": "bold", "offset": 0, "length": 3}])
    with pytest.raises(TelegramHtmlError, match="Unsupported entity type"):
        validate_entities("x", [{"type": "blink", "offset": 0, "length": 1}])


def test_validate_entities_refuses_halves_of_surrogate_pairs() -> None:
    """TDLib: "Entity begins in a middle of a UTF-16 symbol" (and "ends in a middle")."""
    assert validate_entities("a𝐱b", [{"type": "bold", "offset": 1, "length": 2}])
    with pytest.raises(TelegramHtmlError, match="begins in a middle of a UTF-16 symbol"):
        validate_entities("a𝐱b", [{"type": "bold", "offset": 2, "length": 2}])
    with pytest.raises(TelegramHtmlError, match="ends in a middle of a UTF-16 symbol"):
        validate_entities("a𝐱b", [{"type": "bold", "offset": 0, "length": 2}])


@pytest.mark.parametrize(
    "text",
    ["", " \n ", "\u200b", "\ufeff\u200c\u200d", "\u00a0", "\u2800", "\u3000\u2003",
     "\x01\x1f\t", "\u2028\u2029", "\u0333", "\U000e0041", "\ufffc"],
)
def test_is_empty_text_follows_tdlib(text: str) -> None:
    """Texts Telegram refuses with "message text is empty" (TDLib is_empty_string after
    clean_input_string)."""
    assert is_empty_text(text)
    assert not is_empty_text(text + "x")


@pytest.mark.parametrize("text", ["x", "\u00ad", "\x7f", "\u2060", "·", "\u3164"])
def test_is_empty_text_keeps_what_tdlib_keeps(text: str) -> None:
    assert not is_empty_text(text)
