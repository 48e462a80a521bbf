"""Operators look after the bot: /stats and /rescan; everybody else is refused (and logged)."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bot.domain.models import IngestReport
from bot.domain.tgtext import MAX_MESSAGE_LEN, visible_len
from bot.storage.engine import make_engine
from bot.storage.outbox import NewDelivery
from bot.tg.handlers.admin import Admin
from tests.tg.bot_harness import OPERATOR_ID, BotUnderTest

NEW_DIGEST = """\
---
title: NeRF
date: 2024-06-03 09:00:00
tags:
    - NeRF
---

# 2024-06-03 更新


## Radiance Fields for Paper Cranes

**Authors:Ada Example, Bo Sample**

We fold radiance fields into paper cranes. Entirely made up.

[PDF](http://arxiv.org/abs/2406.00001v1)

**Summary**
把辐射场折成纸鹤。

**Key Takeaways**
1. 纸鹤辐射场。
2. 虚构的要点。


## Sparse Voxels for Origami

**Authors:Chen Placeholder**

Voxels, but folded. Also made up.

[PDF](http://arxiv.org/abs/2406.00002v1)

**Summary**
折纸体素。
"""


def add_digest(bot: BotUnderTest, rel: str, text: str) -> None:
    """A new digest file, written long ago (so the scan does not wait for it to settle)."""
    path = bot.digest_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (1_000_000_000, 1_000_000_000))


async def test_stats_for_the_operator(bot: BotUnderTest) -> None:
    s = bot.server
    reader = s.user("Reader")
    s.send_command(s.private_chat(reader), reader, "/subscribe all")
    await bot.settle()  # (another chat's update could be handled at the same time)
    op = s.user("Operator", user_id=OPERATOR_ID)
    chat = s.private_chat(op)
    s.send_command(chat, op, "/stats")
    await bot.settle()
    text = s.sent_to(chat.id)[-1].plain_text or ""
    assert "Chats: 2 total · 1 subscribed · 0 inactive" in text
    assert "by kind: private 2" in text
    assert "Archive: 24 papers · 8 digests · 5 tags" in text
    assert "digests from 2024-02-01 to 2024-05-20" in text
    assert "1 files are not digests" in text
    assert "Last scan: none since the bot started" in text
    assert "Deliveries: pending 0 · failed 0 · cancelled 0 · sent 0" in text
    assert "24 papers are waiting for their vectors (🔗 Related)" in text
    assert await bot.deps.related.refresh() == 24  # as the bot's background refresh does
    s.send_command(chat, op, "/stats")
    await bot.settle()
    assert "waiting for their vectors" not in (s.sent_to(chat.id)[-1].plain_text or "")


async def test_rescan_finds_a_new_digest_and_stats_remember_it(bot: BotUnderTest) -> None:
    s = bot.server
    op = s.user("Operator", user_id=OPERATOR_ID)
    chat = s.private_chat(op)
    add_digest(bot, "2024-06-03/NeRF.md", NEW_DIGEST)
    add_digest(bot, "2024-06-03/notes.md", "# just some notes\n")
    s.send_command(chat, op, "/rescan")
    await bot.settle()
    [progress] = s.sent_to(chat.id)
    assert "Scanning" in (progress.plain_text or "")
    result = s.edits[-1]
    assert result.message_id == progress.message_id
    text = result.plain_text or ""
    assert "Scan finished" in text
    assert "2 read" in text
    assert "Papers: 2 new · 0 updated" in text
    assert "New: 2406.00001, 2406.00002" in text
    assert "Skipped (1):" in text
    assert "2024-06-03/notes.md: not a digest" in text
    assert await bot.deps.archive.get_paper("2406.00001") is not None
    status = bot.deps.scan_status
    assert status.last_report is not None
    assert status.last_report.papers_new == 2

    s.send_command(chat, op, "/stats")
    await bot.settle()
    stats = s.sent_to(chat.id)[-1].plain_text or ""
    assert "26 papers" in stats
    assert "to 2024-06-03" in stats
    assert "(just now)" in stats
    assert "2 files read · 2 papers new · 0 updated · 1 skipped" in stats


async def test_strangers_are_refused_and_logged(bot: BotUnderTest,
                                                caplog: pytest.LogCaptureFixture) -> None:
    s = bot.server
    mallory = s.user("Mallory")
    chat = s.private_chat(mallory)
    add_digest(bot, "2024-06-03/NeRF.md", NEW_DIGEST)
    with caplog.at_level(logging.WARNING, logger="bot.tg.chats"):
        s.send_command(chat, mallory, "/stats")
        s.send_command(chat, mallory, "/rescan")
        await bot.settle()
    for reply in s.sent_to(chat.id):
        assert "for the bot's operators" in (reply.plain_text or "")
    refusals = [r for r in caplog.records if r.name == "bot.tg.chats"
                and r.levelno == logging.WARNING]
    assert len(refusals) == 2
    assert all(str(mallory.id) in r.getMessage() for r in refusals)
    assert "/rescan" in refusals[1].getMessage()
    assert await bot.deps.archive.get_paper("2406.00001") is None  # nothing was scanned


async def test_rescan_answers_at_once_and_hands_new_papers_on(bot: BotUnderTest) -> None:
    """/rescan says "Scanning…" in its handler; the scan, its report and the hand-over
    of new papers (the scan hooks, as delivery uses them) run in the background."""
    handed: list[IngestReport] = []

    async def on_new(report: IngestReport) -> None:
        handed.append(report)

    bot.deps.scan_status.hooks.append(on_new)
    s = bot.server
    op = s.user("Operator", user_id=OPERATOR_ID)
    chat = s.private_chat(op)
    add_digest(bot, "2024-06-03/NeRF.md", NEW_DIGEST)
    s.send_command(chat, op, "/rescan")
    await bot.settle()
    assert [r.new_papers for r in handed] == [["2406.00001", "2406.00002"]]
    [progress] = s.sent_to(chat.id)
    assert progress.plain_text == "🔄 Scanning the digest folder…"
    assert "Papers: 2 new" in s.message(chat.id, progress.message_id)["text"]


async def test_a_failed_hand_over_is_told_without_secrets(bot: BotUnderTest) -> None:
    """The error an operator reads after /rescan is redacted like the logs: an httpx
    error quotes the request URL, token included."""
    settings = bot.deps.settings
    token = settings.telegram_token.get_secret_value()

    async def broken(report: IngestReport) -> None:
        raise RuntimeError(f"POST {settings.bot_api_url}/bot{token}/sendMessage failed")

    bot.deps.scan_status.hooks.append(broken)
    s = bot.server
    op = s.user("Operator", user_id=OPERATOR_ID)
    chat = s.private_chat(op)
    s.send_command(chat, op, "/rescan")
    await bot.settle()
    [told] = [m.plain_text or "" for m in s.sent_to(chat.id)
              if "handing the new papers on failed" in (m.plain_text or "")]
    assert "/bot<token>/sendMessage failed" in told
    assert token not in told


async def test_stats_show_delivery_counts(bot: BotUnderTest) -> None:
    now = datetime.now(UTC)
    await bot.deps.outbox.enqueue([
        NewDelivery(-1, "card", "new", now, arxiv_id=f"2401.0000{n}") for n in range(1, 5)])
    [first, *_] = await bot.deps.outbox.for_chat(-1)
    await bot.deps.outbox.mark_failed(first.id, "refused")
    admin = Admin(bot.deps, clock=lambda: datetime.now(UTC))
    assert "<b>Deliveries</b>: pending 3 · failed 1" in await admin.render_stats("en")


async def test_stats_survive_a_broken_outbox(bot: BotUnderTest) -> None:
    engine = make_engine(bot.deps.settings.database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE outbox"))
    finally:
        await engine.dispose()
    rendered = await Admin(bot.deps).render_stats("zh")
    assert "<b>推送</b>：—" in rendered


def test_a_long_report_fits_one_message() -> None:
    report = IngestReport(files_seen=500, files_read=500,
                          skipped=[(f"2024-01-{i:02d}/{'x' * 300}.md", "y" * 1000)
                                   for i in range(1, 40)],
                          new_papers=[f"2401.{i:05d}" for i in range(300)])
    html = Admin.render_report(report, "en", 1.0)
    assert visible_len(html) <= MAX_MESSAGE_LEN
    assert "… and 29 more" in html
    assert "… and 290 more" in html
