"""Benchmarks 3 and 4, fan-out and memory: `paperfeed run` delivering a new digest to many
private chats through the loopback Bot API server that enforces Telegram's limits.

Setup, per run: a copy of the ingested archive, N private chats subscribed (half to
everything, half to the digest's topic; a tenth with compact cards), and the generated
folder (every file hard-linked, nothing copied: the bot's scan walks and checks every
file, as it does in use; it would not follow a symlinked day folder) plus one new
digest. The bot is a real subprocess, `python -m bot run` (or `python -m bench.botproc
run` when its limiter rate is raised), pointed at the fake server with BOT_API_URL, as
tests/tg/test_run_process.py does. At start it scans, finds the new digest, queues a
header and one card per paper for every chat and drains the outbox. The server
(tests/botapi/server.py, in this process) validates every message like Telegram and
applies FloodControl: the overall limit of the run, one message a second per private
chat; it answers 429 beyond them.

Measured:
* rate: messages the server accepted in the first `window` seconds after the first one,
  as a fraction of the overall limit (or over the whole run when it is shorter);
* 429s received, by window (global / private);
* lost: deliveries the outbox gave up on (failed, cancelled), rows it marked sent that
  the server never accepted, and rows never queued; rows still pending when a run is
  stopped at its deadline are reported apart (the next drain sends them);
* duplicates: a (chat, paper) or (chat, header) accepted twice;
* the bot's peak RSS (VmHWM of /proc/<pid>/status, sampled until it exits), its CPU,
  its CPU per message from its first send on (start-up, scan and queueing left out: the
  rate the bot could reach on a core of its own) and the server's CPU per request (what
  bounds the rate the fake can sustain).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import re
import shutil
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.common import (
    Row,
    Workspace,
    bot_env,
    copy_db,
    proc_cpu_seconds,
    proc_status,
    remove_db,
    sqlite_url,
)
from bench.gen import write_new_digest
from bench.ingest import ensure_archive
from bench.related import ensure_vectors
from bot.storage.engine import make_engine
from bot.storage.tables import ChatRow, SubscriptionRow
from bot.tg.ratelimit import SEND_LIMIT, SEND_WINDOW
from tests.botapi.faults import FaultKind, FloodControl, RateWindow
from tests.botapi.server import FakeBotApi, SentMessage

TARGET_SHARE = 0.95
TOPIC = "NeRF"
NEW_DAY = date(2025, 1, 15)
CHAT_BASE = 700_000_000
_ABS = re.compile(r"arxiv\.org/abs/(\d{4}\.\d{4,5})")

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class FanoutSpec:
    label: str
    chats: int
    papers: int
    limit: int  # the server's overall limit, messages a second
    send_limit: int | None  # the bot's limiter: messages per window; None: SEND_LIMIT
    send_window: float | None  # the bot's limiter window, seconds; None: SEND_WINDOW
    window: float | None  # seconds measured from the first send; None: the whole run
    deadline: float  # stop waiting for the deliveries after this many seconds
    faults: bool = False  # FAULT_KINDS at FAULT_RATE on every send (see run_faults)


@dataclass(slots=True)
class FanoutResult:
    spec: FanoutSpec
    expected: int = 0
    accepted: int = 0
    duplicates: int = 0
    completed: bool = False
    first_send_after: float = 0.0  # seconds from the bot's start to its first delivery
    window: float = 0.0
    in_window: int = 0
    span: float = 0.0  # first to last delivery
    flood: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    queued: int = 0
    sent_missing: int = 0  # outbox says sent, the server never accepted it
    unrecorded: int = 0  # the server accepted it, the outbox does not say sent
    vmhwm_kb: int = 0
    bot_cpu: float = 0.0
    # The bot's CPU and the server's count of its messages when the first one arrived:
    # what it spent sending, without start-up, scan and queueing.
    bot_cpu_at_first: float | None = None
    sent_at_first: int = 0
    server_cpu: float = 0.0
    requests: int = 0
    exit_code: int | None = None
    killed: bool = False  # did not exit within 30 s of SIGTERM
    stop_seconds: float = 0.0  # SIGTERM to exit
    stopped_at: float = 0.0  # SIGTERM, seconds after the bot started
    log_tail: list[str] = field(default_factory=list)
    index_line: str = ""  # the bot's "related: index of N papers built" line, if it built one
    lag_p95: float = 0.0  # event-loop lag of the server while it ran (ms)
    lag_max: float = 0.0
    flood_at: list[float] = field(default_factory=list)  # 429 times, s after the first send

    @property
    def rate(self) -> float:
        return self.in_window / self.window if self.window else 0.0

    @property
    def share(self) -> float:
        return self.rate / self.spec.limit

    @property
    def sustained(self) -> float:
        return (self.accepted - 1) / self.span if self.span > 0 else 0.0

    @property
    def lost(self) -> int:
        never_queued = max(0, self.expected - self.queued)
        return self.states["failed"] + self.states["cancelled"] + self.sent_missing + never_queued

    @property
    def pending(self) -> int:
        return self.states["pending"]

    @property
    def bot_ms_per_message(self) -> float:
        """The bot's CPU per message while it was sending (start-up excluded)."""
        if self.bot_cpu_at_first is None or self.accepted <= self.sent_at_first:
            return 0.0
        return 1000 * (self.bot_cpu - self.bot_cpu_at_first) / (
            self.accepted - self.sent_at_first)

    @property
    def server_ms_per_request(self) -> float:
        return 1000 * self.server_cpu / self.requests if self.requests else 0.0


def _per_second(ms: float) -> str:
    return f"{1000 / ms:,.0f}" if ms else "?"


def _limiter(spec: FanoutSpec) -> str:
    limit, window = spec.send_limit or SEND_LIMIT, spec.send_window or SEND_WINDOW
    return f"{limit} per {window:g} s = {limit / window:,.1f}/s"


def _key(message: SentMessage) -> str:
    text = message.plain_text or ""
    if text.startswith("📚"):
        return "header"
    found = set(_ABS.findall((message.text or "") + str(message.reply_markup or "")))
    return next(iter(found)) if len(found) == 1 else f"other:{text[:40]}"


async def _add_chats(db: Path, chats: int, seed: int = 3) -> list[int]:
    rng = random.Random(seed)
    ids = [CHAT_BASE + i for i in range(chats)]
    rows: list[dict[str, Any]] = []
    subs: list[dict[str, Any]] = []
    for i, chat_id in enumerate(ids):
        everything = i % 2 == 0
        rows.append({
            "chat_id": chat_id, "kind": "private", "title": f"user {i}", "active": True,
            "all_topics": everything, "thread_id": None, "mode": "instant",
            "daily_time": None, "timezone": None, "include": [], "exclude": [],
            "style": "compact" if rng.random() < 0.1 else "full",
            "lang": "zh" if rng.random() < 0.3 else "en", "disabled_reason": None,
        })
        if not everything:
            subs.append({"chat_id": chat_id, "tag": TOPIC})
    engine = make_engine(sqlite_url(db))
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(ChatRow), rows)
            if subs:
                await conn.execute(insert(SubscriptionRow), subs)
    finally:
        await engine.dispose()
    return ids


def _folder(ws: Workspace, name: str, papers: int) -> tuple[Path, list[str]]:
    """The generated day folders, every file hard-linked (the same inode: the same size
    and modification time the archive recorded, so the scan finds them unchanged), plus
    one new digest of `papers` papers."""
    folder = ws.path(name)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for day in ws.digests.iterdir():
        if day.is_dir():
            (folder / day.name).mkdir()
            for file in day.iterdir():
                try:
                    os.link(file, folder / day.name / file.name)
                except OSError:  # another file system, or no hard links there
                    shutil.copy2(file, folder / day.name / file.name)
    ids = write_new_digest(folder, TOPIC, NEW_DAY, papers)
    return folder, ids


class _Bot:
    """The bot subprocess; stderr is read all the time so a full pipe never stalls it."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.killed = False
        self.pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    async def stop(self, timeout: float = 30.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM, then SIGKILL if it has not exited within `timeout` (`killed`)."""
        self.killed = False
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                code = await self.proc.wait()
        except TimeoutError:
            self.killed = True
            self.proc.kill()
            code = await self.proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pump, 5)
        return code


async def _lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(0.05)
        samples.append((loop.time() - start - 0.05) * 1000)


async def run_fanout(ws: Workspace, spec: FanoutSpec, archive: Path,
                     log: Log = print) -> FanoutResult:
    result = FanoutResult(spec)
    db = ws.path(f"fanout-{spec.label}.db")
    copy_db(archive, db)
    chat_ids = await _add_chats(db, spec.chats)
    folder, paper_ids = _folder(ws, f"fanout-{spec.label}-digests", spec.papers)
    result.expected = spec.chats * (1 + len(paper_ids))
    wanted = set(chat_ids)

    flood = FloodControl(overall=RateWindow(spec.limit, 1.0))
    server = FakeBotApi(flood_control=flood)
    await server.start()
    for chat_id in chat_ids:
        server.add_chat(server.private_chat(server.user(f"U{chat_id}", user_id=chat_id)))

    if spec.faults:
        server.enable_random_faults(FAULT_RATE, seed=20261203, kinds=FAULT_KINDS)
    env = bot_env(server.base_url.removesuffix("/bot"), server.token, folder, db)
    module = "bot"
    if spec.send_limit is not None or spec.send_window is not None:
        module = "bench.botproc"
        env["BENCH_SEND_LIMIT"] = str(spec.send_limit or SEND_LIMIT)
        env["BENCH_SEND_WINDOW"] = str(spec.send_window or SEND_WINDOW)
    run_dir = ws.path(f"fanout-{spec.label}-cwd")
    run_dir.mkdir(exist_ok=True)
    log(f"fanout {spec.label}: {spec.chats:,} chats × {1 + len(paper_ids)} messages at "
        f"{spec.limit}/s (bot limiter {_limiter(spec)})")

    # The fake server shares this process with everything the benchmarks built so far: a
    # full collection over that heap would stall it and bunch the requests it admits
    # (429s that the bot did not cause). Frozen objects are not scanned.
    gc.collect()
    gc.freeze()
    lag: list[float] = []
    stop_probe = asyncio.Event()
    probe = asyncio.create_task(_lag_probe(lag, stop_probe))
    cpu0 = time.process_time()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "run", cwd=run_dir, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    bot = _Bot(proc)
    pid = proc.pid
    delivered: set[tuple[int, str]] = set()
    seen = 0
    last_report = started
    try:
        while True:
            await asyncio.sleep(0.2)
            status = proc_status(pid)
            if status:
                result.vmhwm_kb = max(result.vmhwm_kb, status.get("VmHWM", 0))
                result.bot_cpu = proc_cpu_seconds(pid) or result.bot_cpu
            sent = server.sent
            for message in sent[seen:]:
                if message.chat_id in wanted:
                    delivered.add((message.chat_id, _key(message)))
            seen = len(sent)
            if result.bot_cpu_at_first is None and seen:
                result.bot_cpu_at_first, result.sent_at_first = result.bot_cpu, seen
            now = time.monotonic()
            if len(delivered) >= result.expected:
                result.completed = True
                break
            if proc.returncode is not None:
                log(f"fanout {spec.label}: the bot exited early ({proc.returncode})")
                break
            if now - started > spec.deadline:
                break
            if now - last_report >= 15:
                last_report = now
                log(f"  {now - started:5.0f} s: {len(delivered):,}/{result.expected:,} "
                    f"delivered, {server.flood_429s} 429s")
        await asyncio.sleep(2.0)  # the bot marks its last rows sent
        status = proc_status(pid)
        if status:
            result.vmhwm_kb = max(result.vmhwm_kb, status.get("VmHWM", 0))
            result.bot_cpu = proc_cpu_seconds(pid) or result.bot_cpu
    finally:
        result.stopped_at = time.monotonic() - started
        result.exit_code = await bot.stop()
        result.killed = bot.killed
        result.stop_seconds = time.monotonic() - started - result.stopped_at
        result.server_cpu = time.process_time() - cpu0
        stop_probe.set()
        await probe
        await server.stop()
        gc.unfreeze()

    sends = [m for m in server.sent if m.chat_id in wanted]
    result.accepted = len(sends)
    result.requests = len(server.requests)
    keys = Counter((m.chat_id, _key(m)) for m in sends)
    result.duplicates = sum(n - 1 for n in keys.values() if n > 1)
    if sends:
        t0 = sends[0].at
        result.first_send_after = t0 - started
        result.span = sends[-1].at - t0
        if spec.window is not None and result.span >= spec.window:
            result.window = spec.window
            result.in_window = sum(1 for m in sends if m.at < t0 + spec.window)
        else:
            result.window = result.span
            result.in_window = max(0, len(sends) - 1)
    result.flood = Counter(r.window for r in flood.rejections)
    result.lag_p95 = sorted(lag)[int(len(lag) * 0.95)] if lag else 0.0
    result.lag_max = max(lag, default=0.0)
    if sends:
        result.flood_at = [r.at - sends[0].at for r in flood.rejections]

    accepted_ids = {(m.chat_id, m.message_id) for m in sends}
    with sqlite3.connect(db) as conn:
        result.states = Counter(dict(conn.execute(
            "SELECT state, count(*) FROM outbox GROUP BY state").fetchall()))
        result.queued = sum(result.states.values())
        recorded = set(conn.execute(
            "SELECT chat_id, message_id FROM outbox WHERE state = 'sent'").fetchall())
    result.sent_missing = len(recorded - accepted_ids)
    result.unrecorded = len(accepted_ids - recorded)
    result.log_tail = [line for line in bot.lines
                       if " WARNING " in line or " ERROR " in line or "CRITICAL" in line][-5:]
    result.index_line = next((line for line in bot.lines if "related: index of" in line), "")
    if not ws.extras.get("keep"):
        remove_db(db)
        shutil.rmtree(folder, ignore_errors=True)
    return result


def _rows(result: FanoutResult, name: str, *, informational: bool = False) -> list[Row]:
    """The table rows of one run; a what-if run's rows have no target of their own."""
    if informational:
        rows = _rows(result, name)[:3]
        for row in rows:
            row.note = f"(target {row.target}) {row.note}"
            row.target, row.met = "", None
        return rows
    spec = result.spec
    measured_over = (f"first {result.window:.0f} s" if spec.window and
                     result.window >= spec.window else f"whole run, {result.span:.0f} s")
    flood = ", ".join(f"{k} {v}" for k, v in sorted(result.flood.items())) or "none"
    done = ("all delivered" if result.completed else
            f"SIGTERM at the {spec.deadline:.0f} s deadline, {result.pending:,} still pending")
    done += (f"; SIGTERM to exit {result.stop_seconds:.1f} s, "
             + ("then SIGKILL" if result.killed else f"exit code {result.exit_code}"))
    rows = [
        Row(name, "achieved rate / limit", f"≥ {TARGET_SHARE:.0%}",
            f"{result.share:.1%} ({result.rate:,.1f}/s of {spec.limit}/s)",
            result.share >= TARGET_SHARE,
            f"{measured_over}; sustained {result.sustained:,.1f}/s over "
            f"{result.accepted:,} messages; bot limiter {_limiter(spec)}; "
            f"first message {result.first_send_after:.1f} s after start"),
        Row(name, "429s received", "0", f"{sum(result.flood.values())}",
            sum(result.flood.values()) == 0,
            flood + ("; at " + ", ".join(f"{t:.1f}" for t in result.flood_at[:12])
                     + " s after the first send" if result.flood_at else "")),
        Row(name, "deliveries lost", "0", f"{result.lost}", result.lost == 0,
            f"{result.accepted:,}/{result.expected:,} accepted, {done}; outbox "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(result.states.items()))
            + f"; {result.duplicates} duplicates; {result.sent_missing} marked sent but "
              f"not accepted; {result.unrecorded} accepted but not marked sent (in flight at "
              "the stop: the next drain would send them again)"),
        Row(name, "CPU: bot / fake server", "", f"{result.bot_cpu:.0f} s / "
            f"{result.server_cpu:.0f} s", None,
            f"bot {result.bot_ms_per_message:.2f} ms CPU per message while sending → "
            f"≈{_per_second(result.bot_ms_per_message)} msg/s on one core; server "
            f"{result.server_ms_per_request:.2f} ms CPU per request → "
            f"≈{_per_second(result.server_ms_per_request)} req/s on one core; its loop lag "
            f"p95 {result.lag_p95:.0f} ms, max {result.lag_max:.0f} ms"),
    ]
    if result.log_tail:
        rows.append(Row(name, "bot warnings (last)", "", "", None, " | ".join(
            line[-160:] for line in result.log_tail)))
    return rows


FAULT_RATE = 0.06
FAULT_KINDS: tuple[FaultKind, ...] = ("http_502",) * 3 + ("drop",) * 2 + ("drop_after",)
"""3% of sends answered 502 by a proxy, 2% of connections dropped before the request was
processed, 1% dropped after it was (the message went, its answer was lost)."""
FAULT_LATE_TARGET = 10.0
"""Seconds the last card may arrive after the broadcast's own pace (messages / 30)."""


def run_faults(ws: Workspace, log: Log = print) -> list[Row]:
    """The 30/s broadcast again through a flaky network: how late the last card came
    compared with the pace of a clean run, and whether anything was lost."""
    broadcast = specs(ws)[0]
    chats = max(100, broadcast.chats // 4)
    spec = FanoutSpec("faults", chats=chats, papers=1, limit=30, send_limit=None,
                      send_window=None, window=None, deadline=chats * 2 / 30 * 3 + 60,
                      faults=True)
    result = asyncio.run(run_fanout(ws, spec, ensure_archive(ws), log))
    pace = (result.expected - 1) / spec.limit
    late = result.span - pace
    name = f"faults {chats:,} chats @30/s"
    rows = _rows(result, name)
    rows[0] = Row(name, "last card after the broadcast's pace", f"≤ {FAULT_LATE_TARGET:.0f} s",
                  f"{late:.1f} s", result.completed and late <= FAULT_LATE_TARGET,
                  f"{result.accepted:,} messages in {result.span:.1f} s, pace alone "
                  f"{pace:.1f} s; faults: {FAULT_RATE:.0%} of sends (502 3%, dropped before "
                  "2%, answer lost 1%)")
    return rows


KNOB_WINDOW = 0.97
"""The what-if run: the limiter 3% faster than Telegram allows (30 per 0.97 s), to show
that the fake server catches a bot that paces above the limit (it answers 429s)."""


def specs(ws: Workspace) -> tuple[FanoutSpec, FanoutSpec]:
    scale = ws.scale
    broadcast = FanoutSpec("broadcast", chats=scale.broadcast_chats, papers=1, limit=30,
                           send_limit=None, send_window=None, window=scale.broadcast_window,
                           deadline=max(scale.broadcast_window * 3, 60.0))
    paid = FanoutSpec("paid", chats=scale.fanout_chats, papers=scale.fanout_papers, limit=1000,
                      send_limit=1000, send_window=None, window=None,
                      deadline=scale.fanout_deadline)
    return broadcast, paid


def knob_spec(ws: Workspace) -> FanoutSpec:
    """The broadcast again with the limiter window at KNOB_WINDOW, only for its first
    window: the same pacing a little above the limit must draw 429s."""
    broadcast = specs(ws)[0]
    return FanoutSpec("knob", chats=broadcast.chats, papers=1, limit=30, send_limit=None,
                      send_window=KNOB_WINDOW,
                      window=broadcast.window, deadline=(broadcast.window or 60.0) + 10.0)


def run_paid(ws: Workspace, log: Log = print) -> FanoutResult:
    """The paid-broadcast fan-out, once per run (memory reads its peak RSS), with every
    feature on: the archive holds its related-paper vectors, so the bot loads their index
    at start, as a bot that has run for a while does."""
    found = ws.extras.get("fanout-paid")
    if isinstance(found, FanoutResult):
        return found
    archive = ensure_vectors(ws, log)
    result = asyncio.run(run_fanout(ws, specs(ws)[1], archive, log))
    ws.extras["fanout-paid"] = result
    return result


def run(ws: Workspace, log: Log = print) -> list[Row]:
    broadcast, paid = specs(ws)
    archive = ensure_archive(ws)
    result = asyncio.run(run_fanout(ws, broadcast, archive, log))
    ws.extras["fanout-broadcast"] = result
    rows = _rows(result, f"fan-out {broadcast.chats:,} chats @{broadcast.limit}/s")
    knob = knob_spec(ws)
    result = asyncio.run(run_fanout(ws, knob, archive, log))
    ws.extras["fanout-knob"] = result
    rows += _rows(result, f"what-if: SEND_WINDOW={KNOB_WINDOW:g}", informational=True)
    rows += _rows(run_paid(ws, log), f"fan-out {paid.chats:,}×{paid.papers + 1} @{paid.limit}/s")
    return rows
