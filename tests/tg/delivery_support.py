"""Helpers for the delivery end-to-end tests: synthetic digest files, what a chat received,
and `python -m bot run` as a subprocess whose log is read continuously.

Why a module: test_delivery_e2e.py (in-process) and test_kill_restart.py (subprocesses)
write the same kind of digest file and read deliveries back the same way: a header
line (topic, date, N papers) followed by one card per paper.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.ingest import Ingestor
from bot.storage.chats import ChatRepo
from bot.storage.repository import ArchiveRepo
from tests.botapi.faults import FloodControl
from tests.botapi.server import FakeBotApi, SentMessage

OLD_MTIME = 1_000_000_000  # 2001: long settled, so a scan reads the file at once


# --------------------------------------------------------------------------- digest files


@dataclass(frozen=True, slots=True)
class SynthPaper:
    """One made-up paper section of a digest file."""

    arxiv_id: str
    title: str
    version: int = 1
    abstract: str = "Entirely made up for a test."
    summary: str = "测试用的虚构论文。"


def digest_markdown(topic: str, day: date, papers: Sequence[SynthPaper]) -> str:
    """A digest file in the real format: front matter, the day's heading, paper sections."""
    sections = []
    for paper in papers:
        sections.append(
            f"## {paper.title}\n\n"
            f"**Authors:Ada Example, Bo Sample**\n\n"
            f"{paper.abstract}\n\n"
            f"[PDF](http://arxiv.org/abs/{paper.arxiv_id}v{paper.version}) \n\n"
            f"**Summary**\n{paper.summary}\n\n"
            f"**Key Takeaways**\n- 虚构的要点。\n\n"
            f"**[ChatPaperFree](https://huggingface.co/spaces/Kedreamix/ChatPaperFree)**\n\n"
            f"{paper.title} 的分析。\n"
        )
    return (
        f"---\ntitle: {topic}\ndate: {day.isoformat()} 09:00:00\nauthor: test\n"
        f"categories: Paper\ntags:\n    - {topic}\n---\n\n"
        ">⚠️ 以下总结由大语言模型自动生成，可能有误，仅供参考\n\n"
        f"# {day.isoformat()} 更新\n\n" + "\n".join(sections)
    )


def add_digest(folder: Path, topic: str, day: date, papers: Sequence[SynthPaper]) -> Path:
    """Write `<day>/<topic>.md` with an old mtime (settled: the next scan reads it)."""
    path = folder / day.isoformat() / f"{topic}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest_markdown(topic, day, papers), encoding="utf-8")
    os.utime(path, (OLD_MTIME, OLD_MTIME))
    return path


async def bot_that_ran_before(sessions: async_sessionmaker[AsyncSession], digests: Path,
                              readers: Sequence[int], tag: str) -> None:
    """The database of a bot that has run before: the folder ingested and its papers
    announced (as the bot's scans leave them), the readers' private chats following tag."""
    archive = ArchiveRepo(sessions)
    await Ingestor(archive, digests).scan()
    await archive.mark_announced([a.id for a in await archive.unannounced()])
    chats = ChatRepo(sessions)
    for chat_id in readers:
        await chats.ensure(chat_id, "private", title=f"reader {chat_id}")
        await chats.subscribe(chat_id, [tag])


def assert_paced(flood: FloodControl, *, accepted: int) -> None:
    """The bot kept to Telegram's limits, as far as a real-time test can tell.

    The fake counts requests when they arrive; on a loaded machine a stalled event loop
    (the bot's or the fake's) delivers a few paced sends at once, and the fake answers
    429, as Telegram might. The bot then waits `retry_after` and sends again, which the
    callers check by counting what arrived. An unpaced bot earns 429s by the hundred;
    a paced one at most a handful. The exact pacing is tested on a manual clock.
    """
    assert flood.rejected <= max(3, accepted // 50), flood.rejections[:5]


# --------------------------------------------------------------------------- what arrived

_ABS = re.compile(r"arxiv\.org/abs/(\d{4}\.\d{4,5})")


def header(topic: str, day: str, papers: int) -> str:
    """How `summary()` shows a digest's header line."""
    return f"header {topic} {day} {papers}"


def card(arxiv_id: str) -> str:
    """How `summary()` shows a paper card."""
    return f"card {arxiv_id}"


def summary(message: SentMessage) -> str:
    """A delivered message as `header <topic> <date> <n>` or `card <arXiv id>`."""
    text = message.plain_text or ""
    if text.startswith("📚 "):
        topic, day, count = text.removeprefix("📚 ").split(" · ")
        return header(topic, day, int(count.split()[0]))
    found = _ABS.findall((message.text or "") + json.dumps(message.reply_markup or {}))
    if len(set(found)) == 1:
        return card(found[0])
    return f"other {text[:40]!r}"


def delivered(server: FakeBotApi, chat_id: int) -> list[str]:
    """Every message the bot got accepted in this chat, summarised, in order."""
    return [summary(m) for m in server.sent_to(chat_id)]


def expected_digest(topic: str, day: date, ids: Iterable[str]) -> list[str]:
    """One header, then one card per paper in digest order."""
    wanted = list(ids)
    return [header(topic, day.isoformat(), len(wanted))] + [card(i) for i in wanted]


# --------------------------------------------------------------------------- bot process


def bot_env(server: FakeBotApi, *, database: Path, digests: Path,
            scan_interval: float = 3600, watch: bool = True) -> dict[str, str]:
    """`python -m bot run` pointed at the fake Bot API, a database file and a folder;
    ``watch=False``: as on a folder without filesystem notifications."""
    env = {k: v for k, v in os.environ.items() if k != "ADMIN_IDS"}
    env.update(
        TELEGRAM_TOKEN=server.token,
        BOT_API_URL=server.base_url.removesuffix("/bot"),
        DIGEST_DIR=str(digests),
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        SCAN_INTERVAL=str(scan_interval),
        WATCH_FOLDER=str(watch).lower(),
        LOG_LEVEL="INFO",
    )
    return env


class BotProcess:
    """A running `python -m bot run`; stderr is read all the time (a full pipe would stall
    the bot) and its lines can be awaited."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._pump = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, cwd: Path, env: dict[str, str]) -> Self:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=cwd, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while True:
            raw = await self.proc.stderr.readline()
            async with self._changed:
                if raw:
                    self.lines.append(raw.decode("utf-8", "replace"))
                self._changed.notify_all()
            if not raw:
                return

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def wait_for_line(self, needle: str, *, start: int = 0,
                            timeout: float = 20.0) -> str:  # noqa: ASYNC109
        """The first line from index ``start`` on that contains ``needle``."""

        def found() -> str | None:
            return next((line for line in self.lines[start:] if needle in line), None)

        try:
            async with asyncio.timeout(timeout), self._changed:
                while (line := found()) is None:
                    if self._pump.done():
                        raise AssertionError(f"process ended before {needle!r}:\n{self.log}")
                    await self._changed.wait()
                return line
        except TimeoutError:
            raise AssertionError(f"no {needle!r} within {timeout}s in:\n{self.log}") from None

    async def stop(self, timeout: float = 20.0) -> int:  # noqa: ASYNC109
        """SIGTERM, then the exit code (the bot shuts down cleanly on it)."""
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            async with asyncio.timeout(timeout):
                code = await self.proc.wait()
                await self._pump
        except TimeoutError:
            tail = "".join(self.lines[-30:])
            raise AssertionError(f"still running {timeout}s after SIGTERM:\n{tail}") from None
        return code

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a crash or the OOM killer."""
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        await self._pump

    async def close(self) -> None:
        """Whatever happened: the process is gone and the reader finished."""
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
