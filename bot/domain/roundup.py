"""The weekly roundup's text: the week's papers per followed topic, then the trend
chart's caption. Pure; it goes out as the caption of the chart, so it is cut to fit
Telegram's 1024 units for a caption."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Final

from bot.domain.chat_settings import language
from bot.domain.tgtext import MAX_CAPTION_LEN, clean_text, escape, truncate, visible_len

__all__ = ["TOPICS_SHOWN", "render_roundup"]

TOPICS_SHOWN: Final = 12  # topics named with their count; the rest are summed
NAME_LEN: Final = 40

_WORDS = {
    "en": {"title": "📈 <b>Your week</b> · {start} – {end}",
           "line": "{name}: <b>{n}</b>", "others": "{k} more topics: <b>{n}</b>",
           "none": "No new papers in your topics this week."},
    "zh": {"title": "📈 <b>本周回顾</b> · {start} – {end}",
           "line": "{name}：<b>{n}</b>", "others": "其余 {k} 个主题：<b>{n}</b>",
           "none": "本周你订阅的主题没有新论文。"},
}


def render_roundup(week: date, counts: Mapping[str, int], chart_caption: str = "", *,
                   lang: str = "en") -> str:
    """The roundup of the week that ended the day before ``week`` (a Monday): a title
    with its dates, one line per topic (most papers first, then by name), and the
    chart's caption (already HTML). Always within MAX_CAPTION_LEN."""
    words = _WORDS[language(lang)]
    start, end = week - timedelta(days=7), week - timedelta(days=1)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].casefold()))
    shown, rest = ranked[:TOPICS_SHOWN], ranked[TOPICS_SHOWN:]
    lines = [words["title"].format(start=start.isoformat(), end=end.isoformat())]
    if not any(n for _, n in ranked):
        lines.append(words["none"])
    else:
        for name, n in shown:
            label = escape(truncate(" ".join(clean_text(name).split()) or "?", NAME_LEN))
            lines.append(words["line"].format(name=label, n=n))
        if rest:
            lines.append(words["others"].format(k=len(rest), n=sum(n for _, n in rest)))
    text = "\n".join(lines)
    if chart_caption:
        with_chart = f"{text}\n\n{chart_caption}"
        if visible_len(with_chart) <= MAX_CAPTION_LEN:
            return with_chart
    return text if visible_len(text) <= MAX_CAPTION_LEN else "\n".join(lines[:TOPICS_SHOWN // 2])
