"""Benchmark "landing": from the last write of a digest file to the first card in a
subscriber's chat, what a reader feels when the summariser publishes.

`python -m bot run` (the product, with WATCH_FOLDER on and the periodic scan an hour
away, so only the folder watcher can find the files) runs against the loopback Bot API
server with Telegram's limits (FloodControl), on the small fixture folder, with one
private chat subscribed to everything. Then `files` digests land one after another,
each written the way a slow copy writes (half, a short pause, the rest) into a new day's
folder; the next lands once the previous one's header and cards have all arrived.

Measured on this process's monotonic clock (the server's): from the end of the last
write to the server's acceptance of the first card (the message after the digest's
header) and of the header itself; p50, p95 and max over the files. The settle rule is
included: the watcher reads a file once it has been unchanged for a second.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from bench.common import Row, Workspace, bot_env, percentile
from bench.fanout import Log, _Bot
from tests.botapi.faults import FloodControl
from tests.botapi.server import FakeBotApi
from tests.fixtures.folder import copy_fixture_folder
from tests.tg.delivery_support import SynthPaper, digest_markdown

FILES = 20
PAPERS = 2  # per digest: a header and two cards
TARGET_P95 = 3.0  # seconds, last write to the first card
WRITER_PAUSE = 0.2  # seconds between the two halves of a file, as a slow copy
FIRST_DAY = date(2031, 1, 1)  # after every fixture day


@dataclass(slots=True)
class LandingResult:
    first_card: list[float] = field(default_factory=list)
    header: list[float] = field(default_factory=list)
    missing: int = 0


async def _until(check: Callable[[], bool], timeout: float) -> bool:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def _has(server: FakeBotApi, chat_id: int, count: int) -> bool:
    return len(server.sent_to(chat_id)) >= count


async def run_landing(ws: Workspace, log: Log = print) -> LandingResult:
    result = LandingResult()
    root = ws.path("landing")
    shutil.rmtree(root, ignore_errors=True)
    folder = copy_fixture_folder(root / "digests")
    db = root / "landing.db"
    server = FakeBotApi(flood_control=FloodControl())
    await server.start()
    user = server.user("Reader", user_id=700_000_001)
    chat = server.add_chat(server.private_chat(user))
    env = bot_env(server.base_url.removesuffix("/bot"), server.token, folder, db,
                  WATCH_FOLDER="true")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=root, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    bot = _Bot(proc)
    try:
        if not await _until(lambda: server.is_polling, 60):
            raise RuntimeError("the bot did not start polling: " + " | ".join(bot.lines[-5:]))
        # Subscribed once the start-up scan has stored the fixture folder: its papers
        # are then old news, and only the landing digests reach the reader.
        if not await _until(lambda: any("papers new" in line for line in bot.lines), 60):
            raise RuntimeError("no start-up scan: " + " | ".join(bot.lines[-5:]))
        server.send_command(chat, user, "/subscribe all")
        await server.wait_for(lambda s: len(s.sent_to(chat.id)) >= 1, timeout=30)
        log(f"landing: {FILES} digests of {PAPERS} papers, one after another, into a "
            "watched folder (the periodic scan an hour away)")
        for number in range(FILES):
            day = FIRST_DAY + timedelta(days=number)
            papers = [SynthPaper(f"3101.{number:02d}{k:03d}", f"Landing {number} paper {k}")
                      for k in range(PAPERS)]
            text = digest_markdown("Landing", day, papers)
            seen = len(server.sent_to(chat.id))
            target = folder / day.isoformat() / "Landing.md"
            target.parent.mkdir(parents=True, exist_ok=True)
            half = len(text) // 2
            with target.open("w", encoding="utf-8") as out:
                out.write(text[:half])
                out.flush()
                await asyncio.sleep(WRITER_PAUSE)
                out.write(text[half:])
            written = server.clock()
            arrived = await _until(functools.partial(_has, server, chat.id, seen + 1 + PAPERS),
                                   30)
            if not arrived:
                result.missing += 1
                continue
            got = server.sent_to(chat.id)[seen:]
            header = next(m for m in got if (m.plain_text or "").startswith("📚 Landing"))
            card = next(m for m in got if (m.plain_text or "").startswith(f"Landing {number} "))
            result.header.append(header.at - written)
            result.first_card.append(card.at - written)
        await bot.stop()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.stop()
    return result


def rows(result: LandingResult) -> list[Row]:
    cards = result.first_card
    p95 = percentile(cards, 95)
    note = (f"{len(cards)} files; header p50 {percentile(result.header, 50):.2f} s; "
            f"includes the watcher's 1 s settle; {result.missing} never arrived")
    return [
        Row("landing", "last write → first card p50", "", f"{percentile(cards, 50):.2f} s",
            None),
        Row("landing", "last write → first card p95", f"≤ {TARGET_P95:.0f} s",
            f"{p95:.2f} s", bool(cards) and p95 <= TARGET_P95 and not result.missing, note),
        Row("landing", "last write → first card max", "", f"{max(cards, default=0):.2f} s",
            None),
    ]


def run(ws: Workspace, log: Log = print) -> list[Row]:
    return rows(asyncio.run(run_landing(ws, log)))
