"""A TrendSeries drawn as a PNG with matplotlib, for a phone screen.

Called from a worker thread (bot.services.trends), so it uses matplotlib's
object-oriented API only: a `Figure` of its own on an explicit Agg canvas, fonts passed
to each text, never pyplot and never rcParams, whose global state is not thread safe.
matplotlib is imported on the first chart, not when the bot starts.

Fonts. matplotlib's own DejaVu Sans has no Chinese, Japanese or Korean glyphs, and
topic names such as 元宇宙/虚拟人 need them. No CJK font ships with a pip package of a
reasonable size (the one made for matplotlib weighs 85 MB), so the chart uses DejaVu
Sans for Latin text and falls back, glyph by glyph, to the first CJK font installed on
the system from CJK_FAMILIES (Debian: `fonts-noto-cjk` or `fonts-wqy-microhei`, which
the Docker image and CI install). Without one, the chart is still drawn: the missing
characters show as boxes, and one warning says what to install.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Final

from bot.domain.trends import (
    TrendSeries,
    chart_title,
    other_label,
    topic_label,
    week_label,
    words,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.font_manager import FontProperties

log = logging.getLogger(__name__)

WIDTH_IN: Final = 12.0
HEIGHT_IN: Final = 7.0
DPI: Final = 100  # 1200 × 700 pixels: sharp on a phone, far under Telegram's limits
MAX_TICKS: Final = 10  # week labels along a single topic's bars; more weeks label every
MAX_TICKS_LEGEND: Final = 7  # 2nd, 3rd, … (fewer beside a legend, which takes the room)
MARKS_UP_TO: Final = 26  # bars carry their counts, lines mark each week, up to this many
LATIN_FAMILY: Final = "DejaVu Sans"  # ships with matplotlib
CJK_FAMILIES: Final = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
    "Source Han Sans CN", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Droid Sans Fallback",
    "AR PL UMing CN", "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "SimHei",
    "Arial Unicode MS",
)
"""CJK fonts looked for, best first (Linux, then Windows and macOS names)."""
OTHER_COLOR: Final = "#8c8c8c"
COLORS: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf", "#bcbd22")  # matplotlib's tab10, grey left out


@cache
def font_families() -> tuple[str, ...]:
    """The families every text is set in: DejaVu Sans, then the installed CJK fonts
    (matplotlib takes each glyph from the first family that has it)."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    installed = {entry.name for entry in manager.ttflist}
    if not installed.intersection(CJK_FAMILIES):
        # matplotlib caches its list of fonts on first use, so a font installed since is
        # not in it: look through the system's fonts again (once per process).
        known = {entry.fname for entry in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                with contextlib.suppress(OSError, RuntimeError, ValueError):
                    manager.addfont(path)
        installed = {entry.name for entry in manager.ttflist}
    found = tuple(name for name in CJK_FAMILIES if name in installed)
    if found:
        log.info("trend charts: CJK text in %s", found[0])
    else:
        log.warning("trend charts: no CJK font installed, so Chinese topic names show as "
                    "boxes; install one (Debian: fonts-noto-cjk or fonts-wqy-microhei)")
        # That one line says it, not a warning per missing glyph of every chart.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from",
                                category=UserWarning)
    return (LATIN_FAMILY, *found)


def render_png(series: TrendSeries, lang: str, families: Sequence[str] | None = None
               ) -> bytes:
    """The chart as PNG bytes: one line per topic (the fastest-growing one thicker and
    marked ▲, "other" grey and dashed), or bars for a single topic; weeks along the
    bottom, the legend on the right with each topic's papers over the period."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import MaxNLocator

    family = list(families if families is not None else font_families())

    def font(size: float, weight: str = "normal") -> FontProperties:
        return FontProperties(family=family, size=size, weight=weight)

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas, explicitly: no GUI backend is ever chosen
    ax = figure.add_subplot()
    x = list(range(series.weeks))
    if series.tag is not None:
        _bars(ax, series, x, font(14))
    else:
        _lines(ax, series, x, lang, font(14))
    # Not bold: most CJK fonts have no bold face (matplotlib would warn, and use regular).
    ax.set_title(chart_title(series, lang), fontproperties=font(24), loc="left", pad=14)
    ax.set_xlabel(f"{series.first_day.isoformat()} – {series.end.isoformat()}",
                  fontproperties=font(15), labelpad=10)
    ax.set_ylabel(words(lang)["axis"], fontproperties=font(16))
    most = MAX_TICKS if series.tag is not None else MAX_TICKS_LEGEND
    step = max(1, math.ceil(series.weeks / most))
    ticks = x[::-1][::step][::-1]  # always label the newest week
    ax.set_xticks(ticks, [week_label(series.starts[n], lang) for n in ticks])
    for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        label.set_fontproperties(font(14))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.set_xlim(-0.6, series.weeks - 0.4)
    ax.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white",
                   metadata={"Software": None})
    return buffer.getvalue()


def _lines(ax: Axes, series: TrendSeries, x: list[int], lang: str, font: FontProperties
           ) -> None:
    fastest = series.fastest.topic if series.fastest is not None else None
    marker = "o" if series.weeks <= MARKS_UP_TO else None
    for n, topic in enumerate(series.topics):
        grows = topic.name == fastest
        label = f"{topic_label(topic.name)} ({topic.total})" + (" ▲" if grows else "")
        ax.plot(x, topic.counts, label=label, color=COLORS[n % len(COLORS)],
                linewidth=4.0 if grows else 2.2, marker=marker, markersize=6 if grows else 4,
                zorder=3 if grows else 2)
    if series.other is not None:
        ax.plot(x, series.other.counts, color=OTHER_COLOR, linestyle="--", linewidth=2.0,
                label=f"{other_label(series, lang)} ({series.other.total})", zorder=1)
    if series.topics or series.other is not None:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), prop=font, frameon=False,
                  handlelength=2.2)


def _bars(ax: Axes, series: TrendSeries, x: list[int], font: FontProperties) -> None:
    counts = series.topics[0].counts if series.topics else (0,) * series.weeks
    bars = ax.bar(x, counts, color=COLORS[0], width=0.75)
    if series.weeks <= MARKS_UP_TO:
        shown = [str(count) if count else "" for count in counts]
        for label in ax.bar_label(bars, labels=shown, padding=3):
            label.set_fontproperties(font)
