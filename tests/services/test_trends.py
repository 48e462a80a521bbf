"""bot.services.trends on a real archive (SQLite, and PostgreSQL when configured): charts
drawn once per archive change, in a thread, readable PNGs, and the roundup's counts."""

from __future__ import annotations

import asyncio
import os
import threading
import warnings
from datetime import date, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.trends import TrendSeries, build_series
from bot.errors import UnknownTag
from bot.services.chart import CJK_FAMILIES, DPI, HEIGHT_IN, WIDTH_IN, font_families, render_png
from bot.services.trends import Trends
from bot.storage.engine import make_sessionmaker
from bot.storage.repository import ArchiveRepo
from tests.botapi.validation import validate_photo
from tests.storage.factories import make_digest, make_paper, state_of

END = date(2024, 6, 30)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class CountingRenderer:
    """Stands in for matplotlib where only the number of drawings matters; remembers
    the thread each ran in."""

    def __init__(self) -> None:
        self.calls: list[tuple[TrendSeries, str]] = []
        self.threads: set[int] = set()

    def __call__(self, series: TrendSeries, lang: str) -> bytes:
        self.calls.append((series, lang))
        self.threads.add(threading.get_ident())
        return PNG_SIGNATURE + f"{len(self.calls)}".encode()


@pytest.fixture
def archive(engine: AsyncEngine) -> ArchiveRepo:
    return ArchiveRepo(make_sessionmaker(engine))


async def store(archive: ArchiveRepo, topic: str, day: date, *ids: str) -> None:
    digest = make_digest(topic, day, tuple(make_paper(i) for i in ids))
    await archive.store_digest(digest, state_of(digest))


async def fill(archive: ArchiveRepo) -> None:
    await store(archive, "NeRF", END, "2406.00001", "2406.00002", "2406.00003")
    await store(archive, "NeRF", END - timedelta(days=30), "2405.00001")
    await store(archive, "元宇宙/虚拟人", END - timedelta(days=3), "2406.00001")


async def test_a_chart_is_drawn_once_until_the_archive_changes(archive: ArchiveRepo) -> None:
    await fill(archive)
    render = CountingRenderer()
    trends = Trends(archive, render=render)
    first = await trends.chart()
    assert first is not None
    assert first.series.end == END
    assert [t.name for t in first.series.topics] == ["NeRF", "元宇宙/虚拟人"]
    assert first.caption.startswith("📈 Papers per topic per week, 2024-04-08 – 2024-06-30")
    again = await trends.chart(None, 12, "en")
    assert again is first
    assert trends.renders == 1
    assert render.threads
    assert threading.get_ident() not in render.threads  # drawn off the event loop
    zh = await trends.chart(lang="zh")
    assert zh is not None
    assert zh.caption.startswith("📈 各主题每周论文数")
    assert trends.renders == 2
    await store(archive, "3DGS", END, "2406.00009")  # a scan stores a digest
    changed = await trends.chart()
    assert changed is not None
    assert changed is not first
    assert "3DGS" in [t.name for t in changed.series.topics]
    assert trends.renders == 3


async def test_one_tag_any_spelling_and_the_unknown_ones(archive: ArchiveRepo) -> None:
    await fill(archive)
    trends = Trends(archive, render=CountingRenderer())
    chart = await trends.chart("元宇宙_虚拟人", 26, "zh")
    assert chart is not None
    assert chart.series.tag == "元宇宙/虚拟人"
    assert [t.total for t in chart.series.topics] == [1]
    assert chart.series.weeks == 26
    assert await trends.chart("元宇宙/虚拟人", 26, "zh") is chart
    with pytest.raises(UnknownTag) as caught:
        await trends.chart("NeRFF")
    assert "NeRF" in caught.value.suggestions
    for weeks in (0, 105):
        with pytest.raises(ValueError, match="weeks"):
            await trends.chart(None, weeks)


async def test_concurrent_requests_draw_one_chart(archive: ArchiveRepo) -> None:
    await fill(archive)
    trends = Trends(archive, render=CountingRenderer())
    charts = await asyncio.gather(*(trends.chart() for _ in range(5)))
    assert trends.renders == 1
    assert all(chart is charts[0] for chart in charts)


async def test_an_empty_archive_has_no_chart(archive: ArchiveRepo) -> None:
    trends = Trends(archive, render=CountingRenderer())
    assert await trends.chart() is None
    assert await trends.week_counts(["NeRF"]) == {"NeRF": 0}


async def test_the_roundup_gets_a_weeks_counts_and_a_chart_of_its_topics(
        archive: ArchiveRepo) -> None:
    await fill(archive)
    trends = Trends(archive, render=CountingRenderer())
    assert await trends.week_counts(["NeRF", "元宇宙/虚拟人", "GAN"]) == {
        "NeRF": 3, "元宇宙/虚拟人": 1, "GAN": 0}
    assert await trends.week_counts(["NeRF"], END - timedelta(days=28)) == {"NeRF": 1}
    assert await trends.week_counts([]) == {}
    mine = await trends.chart(topics=["元宇宙/虚拟人", "GAN"])
    assert mine is not None
    assert [t.name for t in mine.series.topics] == ["元宇宙/虚拟人"]
    with pytest.raises(ValueError, match="not both"):
        await trends.chart("NeRF", topics=["NeRF"])


def test_the_png_is_a_phone_sized_image() -> None:
    rows = [(f"Topic {n}", END - timedelta(days=6 + 7 * w), n + w) for n in range(12)
            for w in range(12)]
    for series in (build_series(rows, END, 12), build_series(rows, END, 104, tag="Topic 3")):
        png = render_png(series, "en")
        assert png.startswith(PNG_SIGNATURE)
        assert validate_photo(png) == (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))


def test_chinese_names_render_with_a_cjk_font() -> None:
    """CI installs one (.ci/run); elsewhere the test needs one to be installed."""
    if font_families()[1:] == ():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI has none of {CJK_FAMILIES}: .ci/run installs fonts-wqy-microhei")
        pytest.skip("no CJK font installed")
    series = build_series([("元宇宙/虚拟人", END - timedelta(days=6), 4)], END, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render_png(series, "zh")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert png.startswith(PNG_SIGNATURE)


def test_missing_glyphs_never_stop_a_chart() -> None:
    series = build_series([("元宇宙/虚拟人 🎭", END - timedelta(days=6), 4)], END, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib warns once per missing glyph
        png = render_png(series, "zh", families=("DejaVu Sans",))
    assert validate_photo(png) == (1200, 700)
