"""Papers per topic per week, as plain data: the series a chart draws, the topic that
grew fastest, and the chart's two-line caption (English and Chinese).

Weeks. A week is the 7 days ending on a given day, counted back from the `end` the
caller passes in: the last week is `end - 6 … end`, the one before `end - 13 … end - 7`,
and so on. Callers pass the newest digest date of the archive, not today: an archive
whose digests stopped (or a historic import) still shows its last weeks, and the caption
names the dates, so nothing looks more current than it is. Weeks ending on the newest
digest are never partial, so the newest week is not undercounted against the older ones
(calendar weeks would leave the current one half empty and make every topic look like
it is shrinking on a Wednesday).

Counts are distinct papers per topic per week: a paper listed in two topics counts for
each, one listed on two days of the same week in the same topic counts once.

Fastest-growing. Over the last `window` weeks (4, or half the weeks shown when fewer
than 8) against the `window` weeks before, the topic whose count rose most, in papers.
It needs at least MIN_RECENT papers in the recent window, so a topic going from 0 to 1
never wins; on a tie, the one that grew from less (the faster growth), then by name.
No topic at all when none rose.

Readability. With many topics the chart shows the TOP_TOPICS largest of the period and
sums the rest as "other"; a single topic (a `/trends TAG`) is drawn alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from bot.domain.chat_settings import language
from bot.domain.tgtext import clean_text, escape, truncate

DEFAULT_WEEKS: Final = 12
MAX_WEEKS: Final = 104
TOP_TOPICS: Final = 8
"""Topics drawn by name; the rest are summed as "other" (a ninth line, grey)."""
GROWTH_WINDOW: Final = 4
MIN_RECENT: Final = 3
"""Papers a topic needs in the recent window to be called the fastest-growing."""
NAME_LEN: Final = 40  # a topic name in a legend or the caption is cut to this

WeekRow = tuple[str, date, int]
"""(topic, first day of its week, papers): what the archive counts, one row per topic
and week that has any."""


@dataclass(frozen=True, slots=True)
class TopicSeries:
    """One line of the chart: a topic (or "other") and its papers per week."""

    name: str
    counts: tuple[int, ...]  # in the order of TrendSeries.starts

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class Growth:
    """A topic's papers in the recent window against the window before it."""

    topic: str
    recent: int
    before: int
    window: int  # weeks in each of the two windows

    @property
    def increase(self) -> int:
        return self.recent - self.before


@dataclass(frozen=True, slots=True)
class TrendSeries:
    """What a trends chart shows: weeks, one series per drawn topic, and the growth."""

    starts: tuple[date, ...]  # the first day of each week, oldest first
    end: date  # the last day of the last week
    topics: tuple[TopicSeries, ...]  # drawn by name, largest first
    other: TopicSeries | None  # the remaining topics summed (name ""), if any
    other_topics: int  # how many topics `other` sums
    fastest: Growth | None  # the fastest-growing topic (or the tag's own trend)
    window: int  # weeks compared for growth (0: too few weeks to compare)
    tag: str | None = None  # the one topic asked for, if one was

    @property
    def weeks(self) -> int:
        return len(self.starts)

    @property
    def first_day(self) -> date:
        return self.starts[0]

    @property
    def topic_count(self) -> int:
        return len(self.topics) + self.other_topics


def week_starts(end: date, weeks: int) -> tuple[date, ...]:
    """The first day of each of the `weeks` weeks ending on `end`, oldest first."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"weeks must be 1..{MAX_WEEKS}, not {weeks}")
    last = end - timedelta(days=6)
    return tuple(last - timedelta(weeks=n) for n in range(weeks - 1, -1, -1))


def growth_window(weeks: int) -> int:
    """Weeks in each of the two compared windows: 4, fewer for short charts, 0 for one week."""
    return min(GROWTH_WINDOW, weeks // 2)


def build_series(rows: Iterable[WeekRow], end: date, weeks: int, *,
                 tag: str | None = None, top: int = TOP_TOPICS) -> TrendSeries:
    """The chart's data from the archive's counts: empty weeks filled with 0, rows outside
    the weeks ignored, the largest `top` topics by name and the rest as "other" (unless
    that would hide just one topic: then it is drawn too); the fastest-growing topic is
    always drawn by name. With a `tag`, only that topic, drawn even when it has no
    papers."""
    starts = week_starts(end, weeks)
    index = {start: n for n, start in enumerate(starts)}
    table: dict[str, list[int]] = {}
    for topic, start, count in rows:
        if (tag is not None and topic != tag) or start not in index or count <= 0:
            continue
        table.setdefault(topic, [0] * weeks)[index[start]] += count
    if tag is not None:
        table.setdefault(tag, [0] * weeks)
    series = sorted((TopicSeries(name, tuple(counts)) for name, counts in table.items()),
                    key=lambda s: (-s.total, s.name.casefold(), s.name))
    window = growth_window(weeks)
    fastest = _growth(series[0], window) if tag is not None else fastest_growing(series, window)
    shown, rest = (series, []) if len(series) <= top + 1 else (series[:top], series[top:])
    if fastest is not None and rest and all(s.name != fastest.topic for s in shown):
        # The caption names the fastest-growing topic: the chart draws it by name too.
        grower = next(s for s in rest if s.name == fastest.topic)
        shown, rest = [*shown[:-1], grower], [shown[-1], *(s for s in rest if s is not grower)]
    other = None
    if rest:
        other = TopicSeries("", tuple(sum(col) for col in zip(*(s.counts for s in rest),
                                                                  strict=True)))
    return TrendSeries(starts, end, tuple(shown), other, len(rest), fastest, window, tag)


def fastest_growing(series: Sequence[TopicSeries], window: int) -> Growth | None:
    """The topic whose papers rose most from the `window` weeks before to the last
    `window` weeks (see the module docstring); None when none rose enough to say."""
    candidates = [g for s in series if (g := _growth(s, window)) is not None
                  and g.increase > 0 and g.recent >= MIN_RECENT]
    if not candidates:
        return None
    return min(candidates, key=lambda g: (-g.increase, g.before, g.topic.casefold(), g.topic))


def _growth(series: TopicSeries, window: int) -> Growth | None:
    """The last `window` weeks against the `window` before, whichever way it went."""
    if window <= 0 or len(series.counts) < 2 * window:
        return None
    recent = sum(series.counts[-window:])
    before = sum(series.counts[-2 * window:-window])
    return Growth(series.name, recent, before, window)


def topic_label(name: str) -> str:
    """A topic name as a legend or caption shows it: one line, cut to NAME_LEN."""
    return truncate(" ".join(clean_text(name).split()) or "?", NAME_LEN)


# --------------------------------------------------------------------------- words

_WORDS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "title_all": "Papers per topic per week",
        "title_tag": "{tag}: papers per week",
        "axis": "papers",
        "other": "other ({n} topics)",
        "line_all": "📈 Papers per topic per week, {first} – {last} ({weeks} weeks, "
                    "{topics} topics).",
        "line_all_one": "📈 Papers per topic per week, {first} – {last} ({weeks} week, "
                        "{topics} topics).",
        "line_tag": "📈 <b>{tag}</b>: {total_papers} in {weeks} weeks, {first} – {last}.",
        "line_tag_one": "📈 <b>{tag}</b>: {total_papers} in the week {first} – {last}.",
        "fastest": "🚀 Fastest-growing: <b>{tag}</b>, {recent} papers in the last {window} "
                   "weeks, up from {before}.",
        "fastest_one": "🚀 Fastest-growing: <b>{tag}</b>, {recent} papers in the last week, "
                       "up from {before}.",
        "no_growth": "No topic grew noticeably over the last {window} weeks.",
        "no_growth_one": "No topic grew noticeably in the last week.",
        "up": "Last {window} weeks: {recent_papers}, up from {before} in the {window} before.",
        "down": "Last {window} weeks: {recent_papers}, down from {before} in the {window} "
                "before.",
        "same": "Last {window} weeks: {recent_papers}, as many as in the {window} before.",
        "up_one": "Last week: {recent_papers}, up from {before} the week before.",
        "down_one": "Last week: {recent_papers}, down from {before} the week before.",
        "same_one": "Last week: {recent_papers}, as many as the week before.",
        "too_short": "Ask for 2 weeks or more to compare them.",
        "empty": "No papers in these weeks.",
    },
    "zh": {
        "title_all": "各主题每周论文数",
        "title_tag": "{tag}：每周论文数",
        "axis": "论文数",
        "other": "其他（{n} 个主题）",
        "line_all": "📈 各主题每周论文数，{first} – {last}（{weeks} 周，{topics} 个主题）。",
        "line_all_one": "📈 各主题每周论文数，{first} – {last}（{weeks} 周，{topics} 个主题）。",
        "line_tag": "📈 <b>{tag}</b>：{weeks} 周共 {total} 篇论文，{first} – {last}。",
        "line_tag_one": "📈 <b>{tag}</b>：{first} – {last} 这一周共 {total} 篇论文。",
        "fastest": "🚀 增长最快：<b>{tag}</b>，最近 {window} 周 {recent} 篇，此前 {window} 周 "
                   "{before} 篇。",
        "fastest_one": "🚀 增长最快：<b>{tag}</b>，最近一周 {recent} 篇，前一周 {before} 篇。",
        "no_growth": "最近 {window} 周没有主题明显增长。",
        "no_growth_one": "最近一周没有主题明显增长。",
        "up": "最近 {window} 周 {recent} 篇，比此前 {window} 周的 {before} 篇多。",
        "down": "最近 {window} 周 {recent} 篇，比此前 {window} 周的 {before} 篇少。",
        "same": "最近 {window} 周 {recent} 篇，与此前 {window} 周持平。",
        "up_one": "最近一周 {recent} 篇，比前一周的 {before} 篇多。",
        "down_one": "最近一周 {recent} 篇，比前一周的 {before} 篇少。",
        "same_one": "最近一周 {recent} 篇，与前一周持平。",
        "too_short": "至少需要 2 周才能比较。",
        "empty": "这几周没有论文。",
    },
}


_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                   "Nov", "Dec")


def words(lang: str) -> Mapping[str, str]:
    """The chart's and the caption's words in `lang` (English unless Chinese)."""
    return _WORDS[language(lang)]


def chart_title(series: TrendSeries, lang: str) -> str:
    """The title drawn above the chart (plain text)."""
    w = words(lang)
    if series.tag is None:
        return w["title_all"]
    return w["title_tag"].format(tag=topic_label(series.tag))


def other_label(series: TrendSeries, lang: str) -> str:
    return words(lang)["other"].format(n=series.other_topics)


def week_label(start: date, lang: str) -> str:
    """A week on the chart's axis, by its first day: `Mar 04` / `3/4`."""
    if language(lang) == "zh":
        return f"{start.month}/{start.day}"
    return f"{_MONTHS[start.month - 1]} {start.day:02d}"  # not strftime: no locale


def caption(series: TrendSeries, lang: str) -> str:
    """Two lines of Telegram HTML: what the chart shows, then who grew fastest (or, for
    one topic, how its last weeks compare). Under 400 characters whatever the names."""
    w = words(lang)
    one = "_one" if series.weeks == 1 else ""
    dates = {"first": series.first_day.isoformat(), "last": series.end.isoformat(),
             "weeks": series.weeks}
    if series.tag is not None:
        total = series.topics[0].total if series.topics else 0
        first = w["line_tag" + one].format(tag=escape(topic_label(series.tag)), total=total,
                                           total_papers=_papers(total), **dates)
    else:
        first = w["line_all" + one].format(topics=series.topic_count, **dates)
    return f"{first}\n{_second_line(series, w)}"


def _second_line(series: TrendSeries, w: Mapping[str, str]) -> str:
    total = sum(s.total for s in series.topics) + (series.other.total if series.other else 0)
    if series.window == 0:
        return w["too_short"]
    if total == 0:
        return w["empty"]
    one = "_one" if series.window == 1 else ""
    g = series.fastest
    if series.tag is not None:
        if g is None:  # pragma: no cover - a tag's own trend exists whenever window > 0
            return w["empty"]
        kind = "up" if g.increase > 0 else "down" if g.increase < 0 else "same"
        return w[kind + one].format(window=g.window, recent=g.recent, before=g.before,
                                    recent_papers=_papers(g.recent))
    if g is None:
        return w["no_growth" + one].format(window=series.window)
    return w["fastest" + one].format(tag=escape(topic_label(g.topic)), recent=g.recent,
                                     before=g.before, window=g.window)


def _papers(n: int) -> str:
    """English "1 paper" / "3 papers" (the Chinese texts count with 篇 themselves)."""
    return "1 paper" if n == 1 else f"{n} papers"
