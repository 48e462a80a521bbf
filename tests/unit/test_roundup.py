"""The weekly roundup's caption: dates, topics most papers first, within 1024 units."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.roundup import TOPICS_SHOWN, render_roundup
from bot.domain.tgtext import (
    MAX_CAPTION_LEN,
    clean_text,
    escape,
    validate_telegram_html,
    visible_len,
)

MONDAY = date(2024, 7, 8)


def test_the_week_before_monday_most_papers_first() -> None:
    text = render_roundup(MONDAY, {"NeRF": 3, "3DGS": 12, "Avatars": 3}, "📈 chart")
    assert text == ("📈 <b>Your week</b> · 2024-07-01 – 2024-07-07\n3DGS: <b>12</b>\n"
                    "Avatars: <b>3</b>\nNeRF: <b>3</b>\n\n📈 chart")


def test_a_quiet_week_says_so_in_chinese() -> None:
    assert render_roundup(MONDAY, {"NeRF": 0}, lang="zh") == (
        "📈 <b>本周回顾</b> · 2024-07-01 – 2024-07-07\n本周你订阅的主题没有新论文。")


def test_many_topics_are_summed_after_the_first_ones() -> None:
    counts = {f"Topic {n:02d}": n for n in range(1, 21)}
    text = render_roundup(MONDAY, counts)
    assert f"{20 - TOPICS_SHOWN} more topics: <b>{sum(range(1, 21 - TOPICS_SHOWN))}</b>" in text


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=300), st.integers(0, 10**6), max_size=40),
       st.text(max_size=2000).map(lambda t: escape(clean_text(t))))  # a caption is HTML
def test_it_always_fits_a_caption(counts: dict[str, int], caption: str) -> None:
    text = render_roundup(MONDAY, counts, caption)
    validate_telegram_html(text)
    assert visible_len(text) <= MAX_CAPTION_LEN
