"""`python -m bot run` as real processes: a new digest file is delivered within one scan
interval, and a bot killed mid-broadcast (SIGKILL) finishes it after a restart, losing
nothing and repeating at most the messages that were in flight.

Why processes: only a real kill shows what the outbox promises — rows are written before
anything is sent and marked after Telegram answered, so a crash can repeat what was in
flight (at most one message per worker) but never drop a paper.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import pytest

from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.outbox import LEASE_SENDER, OutboxRepo
from tests.botapi.server import FakeBotApi
from tests.fixtures.folder import copy_fixture_folder
from tests.tg.delivery_support import (
    BotProcess,
    SynthPaper,
    add_digest,
    assert_paced,
    bot_env,
    bot_that_ran_before,
    delivered,
    digest_markdown,
    expected_digest,
    summary,
)

DAY = date(2024, 6, 10)
WORKERS = 16  # Delivery's default: at most this many sends are in flight at once
STOP_WITHIN = 10.0  # seconds from SIGTERM to exit; Docker's default grace period


@asynccontextmanager
async def bot_process(cwd: Path, env: dict[str, str]) -> AsyncIterator[BotProcess]:
    running = await BotProcess.start(cwd, env)
    try:
        yield running
    finally:
        await running.close()


class Tally:
    """Headers and cards per chat as the fake accepted them, counted incrementally (the
    predicate of server.wait_for runs on every server event)."""

    def __init__(self, server: FakeBotApi) -> None:
        self.server = server
        self.seen = 0
        self.cards = 0
        self.per_chat: dict[int, Counter[str]] = {}

    def update(self) -> None:
        for message in self.server.sent[self.seen:]:
            kind = "header" if (message.plain_text or "").startswith("📚 ") else "card"
            self.per_chat.setdefault(message.chat_id, Counter())[kind] += 1
            self.cards += kind == "card"
        self.seen = len(self.server.sent)

    def at_least_cards(self, count: int) -> Callable[[FakeBotApi], bool]:
        def check(_: FakeBotApi) -> bool:
            self.update()
            return self.cards >= count
        return check

    def complete(self, chat_ids: list[int]) -> Callable[[FakeBotApi], bool]:
        def check(_: FakeBotApi) -> bool:
            self.update()
            return all(self.per_chat.get(c, Counter())["header"] >= 1
                       and self.per_chat.get(c, Counter())["card"] >= 1 for c in chat_ids)
        return check


@pytest.mark.parametrize("ending", ["SIGKILL", "SIGTERM"])
async def test_a_bot_stopped_mid_broadcast_finishes_it_after_a_restart(
    botapi: FakeBotApi, tmp_path: Path, ending: str,
) -> None:
    """SIGKILL: nothing runs, the restart takes the dead process's lease over. SIGTERM:
    the bot stops promptly (not after the broadcast: systemd and Docker kill it 10 to 90 s
    later), hands the lease back, and the restart goes on where it stopped."""
    flood = botapi.enable_flood_control()
    digests = copy_fixture_folder(tmp_path / "digests")
    database = tmp_path / "run.db"
    users = [botapi.add_chat(botapi.private_chat(botapi.user(f"reader{i}"))) for i in range(500)]
    chat_ids = [u.id for u in users]

    # The bot has run before: the archive holds the fixture folder, 500 chats follow NeRF.
    engine = make_engine(f"sqlite+aiosqlite:///{database}")
    try:
        await migrate(engine)
        sessions = make_sessionmaker(engine)
        await bot_that_ran_before(sessions, digests, chat_ids, "NeRF")
        outbox = OutboxRepo(sessions)

        # While it was down, a new digest arrived: the start-up scan finds it.
        paper = SynthPaper("2406.40001", "Crash-Proof Radiance Fields")
        add_digest(digests, "NeRF", DAY, [paper])
        env = bot_env(botapi, database=database, digests=digests)
        tally = Tally(botapi)
        async with bot_process(tmp_path, env) as first:
            await first.wait_for_line("queued 1000 new deliveries for 500 chats", timeout=30)
            await botapi.wait_for(tally.at_least_cards(150), timeout=40)
            if ending == "SIGKILL":
                await first.kill()
            else:
                # A broadcast of 1000 messages at 28/s has more than 25 s to go.
                assert await first.stop(timeout=STOP_WITHIN) == 0
        assert "drain: DrainReport(" not in first.log or ending == "SIGTERM"

        rows_sent_at_stop = (await outbox.counts())["sent"]
        await botapi.wait_for(lambda s: all(c.finished for c in s.requests), timeout=10)
        accepted_at_stop = len(botapi.sent)
        in_flight = accepted_at_stop - rows_sent_at_stop  # accepted, not yet marked sent
        assert 0 <= in_flight <= WORKERS
        assert 150 <= rows_sent_at_stop < 1000
        holder = await outbox.lease_holder(LEASE_SENDER)
        if ending == "SIGKILL":
            # The dead process still holds the sender lease; the restarted one sees that
            # its holder is a process of this host that no longer runs, and takes it over.
            assert holder is not None
            assert holder.split(":")[1] == str(first.proc.pid)
        else:
            assert holder is None  # handed back on the way out

        async with bot_process(tmp_path, env) as second:
            if ending == "SIGKILL":
                await second.wait_for_line("took over the sender lease", timeout=30)
            await botapi.wait_for(tally.complete(chat_ids), timeout=90)
            await second.wait_for_line("drain: DrainReport(", timeout=20)
            assert await second.stop() == 0

        assert await outbox.counts() == {"pending": 0, "sent": 1000, "failed": 0,
                                         "cancelled": 0}
    finally:
        await engine.dispose()

    expected = expected_digest("NeRF", DAY, [paper.arxiv_id])
    duplicates = len(botapi.sent) - 1000
    assert in_flight <= duplicates <= WORKERS, (in_flight, duplicates)
    for chat_id in chat_ids:
        got = delivered(botapi, chat_id)
        assert set(got) == set(expected), (chat_id, got)
        assert max(Counter(got).values()) <= 2, (chat_id, got)
        assert got.index(expected[1]) > got.index(expected[0])  # the header came first
    assert sum(len(delivered(botapi, c)) - 2 for c in chat_ids) == duplicates
    assert {summary(m) for m in botapi.sent} == set(expected)  # nothing else was sent
    assert_paced(flood, accepted=len(botapi.sent))


async def test_a_new_digest_file_is_delivered_within_one_scan_interval(
    botapi: FakeBotApi, tmp_path: Path,
) -> None:
    """Where filesystem notifications say nothing (a network mount), the periodic scan
    still delivers a digest that lands."""
    digests = copy_fixture_folder(tmp_path / "digests")
    env = bot_env(botapi, database=tmp_path / "run.db", digests=digests, scan_interval=2,
                  watch=False)
    async with bot_process(tmp_path, env) as bot:
        await bot.wait_for_line("papers new", timeout=30)  # the fixture folder, at start
        await botapi.wait_until_polling(timeout=20)
        reader, other = botapi.user("Reader"), botapi.user("Other")
        reader_chat, other_chat = botapi.private_chat(reader), botapi.private_chat(other)
        botapi.send_command(reader_chat, reader, "/subscribe NeRF")
        botapi.send_command(other_chat, other, "/subscribe 3DGS")
        await botapi.wait_for_sent(1, chat_id=reader_chat.id, timeout=20)
        await botapi.wait_for_sent(1, chat_id=other_chat.id, timeout=20)
        replies = len(botapi.sent)

        papers = [SynthPaper("2406.50001", "Scan Interval Fields"),
                  SynthPaper("2406.50002", "Second Scan Paper")]
        lines = len(bot.lines)
        copied = time.monotonic()
        add_digest(digests, "NeRF", DAY, papers)
        expected = expected_digest("NeRF", DAY, [p.arxiv_id for p in papers])
        await botapi.wait_for(lambda s: len(s.sent_to(reader_chat.id)) >= 1 + len(expected),
                              timeout=15)
        first_at = botapi.sent[replies].at  # the header, on the fake's monotonic clock
        await bot.wait_for_line("drain: DrainReport(sent=3,", start=lines, timeout=15)
        assert await bot.stop() == 0

    assert delivered(botapi, reader_chat.id)[1:] == expected
    assert len(botapi.sent_to(other_chat.id)) == 1  # only the reply to /subscribe
    assert first_at - copied < 2 + 3  # one interval, plus the scan and the first send


async def test_a_digest_copied_into_a_watched_folder_is_delivered_without_a_scan(
    botapi: FakeBotApi, tmp_path: Path,
) -> None:
    """The periodic scan is an hour away: only the filesystem notification can bring the
    digest in. It is written in two parts with a pause, as a slow copy would, and read
    once, whole."""
    digests = copy_fixture_folder(tmp_path / "digests")
    env = bot_env(botapi, database=tmp_path / "run.db", digests=digests, scan_interval=3600)
    async with bot_process(tmp_path, env) as bot:
        await bot.wait_for_line("papers new", timeout=30)
        await botapi.wait_until_polling(timeout=20)
        reader = botapi.user("Watcher")
        reader_chat = botapi.private_chat(reader)
        botapi.send_command(reader_chat, reader, "/subscribe NeRF")
        await botapi.wait_for_sent(1, chat_id=reader_chat.id, timeout=20)

        papers = [SynthPaper("2406.60001", "Watched Folder Fields"),
                  SynthPaper("2406.60002", "Second Watched Paper")]
        text = digest_markdown("NeRF", DAY, papers)
        half = text.index("## Second Watched Paper")
        target = digests / DAY.isoformat() / "NeRF.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = len(bot.lines)
        with target.open("w", encoding="utf-8") as out:  # a slow writer: half, a pause, rest
            out.write(text[:half])
            out.flush()
            await asyncio.sleep(0.3)  # the writer's pause, shorter than the quiet time
            out.write(text[half:])
        expected = expected_digest("NeRF", DAY, [p.arxiv_id for p in papers])
        await botapi.wait_for(lambda s: len(s.sent_to(reader_chat.id)) >= 1 + len(expected),
                              timeout=20)
        await bot.wait_for_line("drain: DrainReport(sent=3,", timeout=15)
        assert await bot.stop() == 0
    assert delivered(botapi, reader_chat.id)[1:] == expected
    scans = [line for line in bot.lines[lines:] if "scan: " in line]
    assert len(scans) == 1, scans  # the file was read once, whole
    assert "1 files read, 2 papers new, 0 updated" in scans[0]
