"""The trends series, the fastest-growing topic and the caption, from plain rows."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.tgtext import MAX_CAPTION_LEN, utf16_len, validate_telegram_html
from bot.domain.trends import (
    MIN_RECENT,
    TOP_TOPICS,
    Growth,
    TopicSeries,
    TrendSeries,
    build_series,
    caption,
    fastest_growing,
    week_label,
    week_starts,
)

END = date(2024, 5, 20)  # a Monday: the last week is Tue 05-14 … Mon 05-20
LAST = date(2024, 5, 14)


def week(n: int) -> date:
    """The first day of the week n weeks before the last one."""
    return LAST - timedelta(weeks=n)


def rows_for(topic: str, *counts: int) -> list[tuple[str, date, int]]:
    """One row per week, oldest first, ending with the last week; zeros left out."""
    weeks = len(counts)
    return [(topic, week(weeks - 1 - n), c) for n, c in enumerate(counts) if c]


def test_weeks_end_on_the_given_day_and_go_back_seven_days_at_a_time() -> None:
    assert week_starts(END, 3) == (date(2024, 4, 30), date(2024, 5, 7), date(2024, 5, 14))
    assert week_starts(END, 1) == (LAST,)
    for bad in (0, 105):
        with pytest.raises(ValueError, match="weeks"):
            week_starts(END, bad)


def test_empty_weeks_are_filled_with_zero_and_rows_outside_are_ignored() -> None:
    rows = [("NeRF", week(0), 3), ("NeRF", week(2), 1), ("NeRF", week(5), 9),
            ("NeRF", END + timedelta(days=1), 4), ("NeRF", date(2024, 5, 15), 7)]
    series = build_series(rows, END, 4)
    assert series.starts == (week(3), week(2), week(1), week(0))
    assert series.end == END
    [nerf] = series.topics
    assert nerf == TopicSeries("NeRF", (0, 1, 0, 3))  # not a week start: not counted
    assert nerf.total == 4
    assert series.other is None


def test_topics_are_ordered_by_volume_then_name() -> None:
    rows = [("b", week(0), 2), ("A", week(0), 2), ("c", week(1), 5)]
    assert [t.name for t in build_series(rows, END, 2).topics] == ["c", "A", "b"]


def test_many_topics_show_the_largest_and_sum_the_rest_as_other() -> None:
    rows = [(f"topic {n:02d}", week(0), 100 - n) for n in range(TOP_TOPICS + 4)]
    series = build_series(rows, END, 1)
    assert [t.name for t in series.topics] == [f"topic {n:02d}" for n in range(TOP_TOPICS)]
    assert series.other is not None
    assert series.other.counts == (sum(100 - n for n in range(TOP_TOPICS, TOP_TOPICS + 4)),)
    assert series.other_topics == 4
    assert series.topic_count == TOP_TOPICS + 4


def test_one_topic_too_many_is_drawn_rather_than_called_other() -> None:
    rows = [(f"t{n}", week(0), 10 + n) for n in range(TOP_TOPICS + 1)]
    series = build_series(rows, END, 1)
    assert len(series.topics) == TOP_TOPICS + 1
    assert series.other is None


def test_the_fastest_growing_topic_is_drawn_by_name_even_when_small() -> None:
    big = [row for n in range(TOP_TOPICS + 2) for row in rows_for(f"big {n}", *[50] * 8)]
    series = build_series([*big, *rows_for("riser", 0, 0, 0, 0, 1, 2, 3, 4)], END, 8)
    assert series.fastest == Growth("riser", recent=10, before=0, window=4)
    assert "riser" in [t.name for t in series.topics]
    assert len(series.topics) == TOP_TOPICS
    assert series.other is not None
    assert series.other_topics == 3


def test_fastest_growing_is_the_largest_increase_of_the_last_four_weeks() -> None:
    series = [
        TopicSeries("steady", (5, 5, 5, 5, 5, 5, 5, 5)),
        TopicSeries("grows", (1, 1, 1, 1, 3, 3, 3, 3)),  # +8
        TopicSeries("jumps", (0, 0, 9, 9, 0, 0, 0, 30)),  # 18 before, 30 now: +12
        TopicSeries("falls", (9, 9, 9, 9, 0, 0, 0, 0)),
    ]
    assert fastest_growing(series, 4) == Growth("jumps", recent=30, before=18, window=4)


def test_a_topic_going_from_nothing_to_one_paper_does_not_win() -> None:
    series = [TopicSeries("new", (0, 0, 0, 0, 0, 0, 0, MIN_RECENT - 1)),
              TopicSeries("old", (3, 3, 3, 3, 3, 3, 3, 3))]
    assert fastest_growing(series, 4) is None
    series.append(TopicSeries("real", (0, 0, 0, 0, 0, 0, 1, MIN_RECENT - 1)))
    assert fastest_growing(series, 4) == Growth("real", MIN_RECENT, 0, 4)


def test_ties_go_to_the_topic_that_grew_from_less_then_by_name() -> None:
    a = TopicSeries("Beta", (0, 0, 0, 0, 0, 0, 0, 5))
    b = TopicSeries("alpha", (0, 0, 0, 0, 0, 0, 0, 5))
    c = TopicSeries("big", (0, 0, 0, 10, 0, 0, 0, 15))  # also +5, but from 10
    assert fastest_growing([c, a, b], 4) == Growth("alpha", 5, 0, 4)


def test_short_charts_compare_shorter_windows_and_one_week_compares_nothing() -> None:
    rows = rows_for("x", 1, 2, 3, 9)
    assert build_series(rows, END, 4).fastest == Growth("x", 12, 3, 2)
    assert build_series(rows, END, 2).fastest == Growth("x", 9, 3, 1)
    one = build_series(rows, END, 1)
    assert one.window == 0
    assert one.fastest is None


def test_a_tag_is_drawn_alone_even_without_papers() -> None:
    rows = [*rows_for("NeRF", 1, 2), *rows_for("3DGS", 5, 5)]
    series = build_series(rows, END, 2, tag="NeRF")
    assert [t.name for t in series.topics] == ["NeRF"]
    assert series.fastest == Growth("NeRF", 2, 1, 1)
    empty = build_series(rows, END, 2, tag="GAN")
    assert empty.topics == (TopicSeries("GAN", (0, 0)),)


def test_caption_names_the_period_and_the_fastest_growing_topic() -> None:
    rows = [*rows_for("3DGS", 1, 1, 1, 1, 4, 4, 4, 4), *rows_for("A & <B>", 2, 2, 2, 2, 2, 2, 2, 2)]
    series = build_series(rows, END, 8)
    en = caption(series, "en")
    assert en == ("📈 Papers per topic per week, 2024-03-26 – 2024-05-20 (8 weeks, 2 topics).\n"
                  "🚀 Fastest-growing: <b>3DGS</b>, 16 papers in the last 4 weeks, up from 4.")
    zh = caption(series, "zh-hans")
    assert zh == ("📈 各主题每周论文数，2024-03-26 – 2024-05-20（8 周，2 个主题）。\n"
                  "🚀 增长最快：<b>3DGS</b>，最近 4 周 16 篇，此前 4 周 4 篇。")
    for text in (en, zh):
        validate_telegram_html(text)


def test_caption_when_nothing_grew_or_nothing_was_listed() -> None:
    flat = build_series(rows_for("NeRF", 3, 3, 3, 3, 3, 3, 3, 3), END, 8)
    assert caption(flat, "en").splitlines()[1] == (
        "No topic grew noticeably over the last 4 weeks.")
    assert caption(flat, "zh").splitlines()[1] == "最近 4 周没有主题明显增长。"
    empty = build_series([], END, 8)
    assert caption(empty, "en").splitlines() == [
        "📈 Papers per topic per week, 2024-03-26 – 2024-05-20 (8 weeks, 0 topics).",
        "No papers in these weeks."]
    assert caption(build_series([], END, 1), "zh").splitlines()[1] == "至少需要 2 周才能比较。"


@pytest.mark.parametrize(("counts", "en", "zh"), [
    ((1, 1, 2, 3), "Last 2 weeks: 5 papers, up from 2 in the 2 before.",
     "最近 2 周 5 篇，比此前 2 周的 2 篇多。"),
    ((3, 3, 1, 0), "Last 2 weeks: 1 paper, down from 6 in the 2 before.",
     "最近 2 周 1 篇，比此前 2 周的 6 篇少。"),
    ((1, 1, 2, 0), "Last 2 weeks: 2 papers, as many as in the 2 before.",
     "最近 2 周 2 篇，与此前 2 周持平。"),
])
def test_caption_of_one_topic_says_which_way_it_went(counts: tuple[int, ...], en: str,
                                                      zh: str) -> None:
    series = build_series(rows_for("元宇宙/虚拟人", *counts), END, 4, tag="元宇宙/虚拟人")
    first, second = caption(series, "en").splitlines()
    assert first == (f"📈 <b>元宇宙/虚拟人</b>: {sum(counts)} papers in 4 weeks, "
                     "2024-04-23 – 2024-05-20.")
    assert second == en
    assert caption(series, "zh").splitlines()[1] == zh


@given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=12, unique=True),
       st.integers(1, 104), st.sampled_from(["en", "zh"]))
def test_caption_is_valid_html_within_telegrams_limit_whatever_the_names(
        names: list[str], weeks: int, lang: str) -> None:
    rows = [(name, week(0), 5 + n) for n, name in enumerate(names)]
    rows += [(name, week(1), 1) for name in names if weeks > 1]
    for series in (build_series(rows, END, weeks), build_series(rows, END, weeks, tag=names[0])):
        text = caption(series, lang)
        assert len(text.splitlines()) == 2
        validate_telegram_html(text)
        assert utf16_len(text) <= MAX_CAPTION_LEN // 2


def test_week_labels_are_short_in_both_languages() -> None:
    assert week_label(date(2024, 3, 4), "en") == "Mar 04"
    assert week_label(date(2024, 12, 31), "zh") == "12/31"


def test_series_properties() -> None:
    series = TrendSeries((LAST,), END, (), None, 0, None, 0)
    assert (series.weeks, series.first_day, series.topic_count) == (1, LAST, 0)
