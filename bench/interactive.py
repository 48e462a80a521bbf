"""Benchmark 5, interactive: how long users wait for the bot's first answer when many
write at once, with the bot idle and while a broadcast drains.

The bot is a real subprocess, `python -m bot run` with the product's limiter, pointed at
the loopback Bot API server (tests/botapi/server.py, in this process) that enforces
Telegram's limits (FloodControl: 30 messages a second overall, one a second into a
private chat; it answers 429 past them). Setup reuses the fan-out benchmark's
(bench/fanout.py): a copy of the ingested archive, `chats` private chats subscribed to
the new digest's topic or to everything, and the generated folder (hard-linked) with one
new digest of `papers` papers, held back until the broadcast phase.

1. Setup: every benchmark user (a private chat of its own, subscribed to nothing, a
   third with Chinese Telegram) sends /start and a /search of a common word, whose
   result message (with `pp:` and `pg:` buttons) their button presses use later. All
   replies must be in, the bot idle and every chat's last message over a second old
   (Telegram's per-chat limit) before the first wave.
2. Idle waves of 30, 100 (and 300 in the full mode) users at once: each user sends one
   update (the per-user throttle allows 20 in 10 s), the kinds dealt round-robin, so
   each sixth of the users sends one of /search <word>, /paper <archived arXiv id>,
   /latest, /tag <topic> [word], a button press (`pp:` on their result message, or
   every other time `pg:` to turn its page when it has one) and an inline query. All
   updates of a wave are injected in one go (the bot fetches them with its next
   getUpdates, up to 100 at a time); the waves are separated by a settle as above.
3. Busy wave: an operator's /rescan makes the bot scan, find the held-back digest and
   queue a header and one card per paper for every subscriber (about 2 000 messages in
   the full mode); once `busy_after` of them were accepted, 30 users send a wave as
   above. The bot is stopped (SIGTERM) once the broadcast was accepted in full.

Measured, all on the server's clock (time.monotonic in this process):

* first answer: from the injection of an update to the server's receipt of the bot's
  first answer to it: for a command, the first message the server accepted into that
  chat; for a button press, answerCallbackQuery for that query id (or a message or
  edit in that chat, whichever came first); for an inline query, answerInlineQuery for
  that query id. p50, p95 and max per wave and per kind; updates without an answer
  within the wave's deadline are counted as unanswered. The note gives the floor that
  Telegram's 30 messages a second put under these figures: of the updates answered
  with a message, the k-th (from 0) cannot be accepted before k // 30 seconds (k / 30
  when evenly spaced, as the bot's pacer sends), and the bot's CPU during the wave.
  With 4 of the 6 kinds answered by a message, 100 users at once need 67 messages: the
  floor alone is p95 2 s, so the 1 s target cannot be met at that size by any bot.
* the broadcast's rate outside the busy wave: broadcast messages the server accepted
  from the first one to the busy wave's injection, and from the wave's last first
  answer to the last broadcast message, per second, as a share of 30; the rate during
  the wave is given for comparison;
* 429s: everything the server refused with 429 over the whole run, by window;
* lost: broadcast messages (chat, header or paper) never accepted when the bot was
  stopped after the broadcast finished (failed and cancelled outbox rows are among them;
  the outbox's states are in the note), and updates left unanswered.
"""

from __future__ import annotations

import asyncio
import gc
import random
import re
import shutil
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    Row,
    Workspace,
    bot_env,
    copy_db,
    percentile,
    proc_cpu_seconds,
    remove_db,
)
from bench.fanout import NEW_DAY, Log, _add_chats, _Bot, _folder, _key, _lag_probe
from bench.ingest import ensure_archive
from bench.search import _STOP
from tests.botapi.faults import FloodControl
from tests.botapi.server import ApiCall, FakeBotApi, FakeChat, FakeUser

KINDS: tuple[str, ...] = ("search", "paper", "latest", "tag", "button", "inline")
MESSAGE_KINDS = frozenset({"search", "paper", "latest", "tag"})  # answered by a message
LIMIT = 30  # Telegram's overall limit, messages a second (the server enforces it)
TARGET_P95 = 1.0  # seconds, at 100 users idle and at 30 users mid-broadcast
TARGET_MAX = 3.0  # seconds, at 100 users idle
TARGET_USERS = 100
TARGET_SHARE = 0.90  # of LIMIT, the broadcast outside the waves
USER_BASE = 800_000_000  # the benchmark users' ids (and private chats)
OPERATOR_ID = 900_000_001
SETTLE = 1.5  # seconds every user chat stays quiet before a wave
SEED = 5
_WORD = re.compile(r"(?<![\w-])[A-Za-z]+(?:-[A-Za-z]+)*(?![\w-])")  # not "D-Adapter" of 3D-…
_SLOW_DOWN = ("🐢",)  # bot.tg.throttle's answer: the benchmark would have sent too much
ACTIVE = "is now the active one"  # bot.services.leader's log line once it scans and sends


@dataclass(frozen=True, slots=True)
class InteractiveSpec:
    idle_waves: tuple[int, ...]  # users at once, one wave each, no broadcast running
    busy_wave: int  # users at once while the broadcast drains
    chats: int  # broadcast subscribers
    papers: int  # papers in the new digest: each subscriber gets a header and the cards
    busy_after: int  # broadcast messages accepted before the busy wave starts
    deadline: float  # seconds for the broadcast to finish after /rescan

    @property
    def users(self) -> int:
        return max((*self.idle_waves, self.busy_wave))

    @property
    def broadcast(self) -> int:
        return self.chats * (1 + self.papers)


def spec_for(ws: Workspace) -> InteractiveSpec:
    """The issue's sizes: 30/100/300 users and 500 chats × 4 = 2 000 messages; --quick:
    30/100 users and 200 × 4 = 800 messages."""
    if ws.scale.name == "quick":
        return InteractiveSpec(idle_waves=(30, 100), busy_wave=30, chats=200, papers=3,
                               busy_after=150, deadline=180.0)
    return InteractiveSpec(idle_waves=(30, 100, 300), busy_wave=30, chats=500, papers=3,
                           busy_after=300, deadline=300.0)


@dataclass(slots=True)
class Material:
    """What users type, drawn from the archive itself."""

    common: list[str]  # frequent title words: the setup searches (several result pages)
    words: list[str]  # title words of all frequencies: searches, inline queries
    ids: list[str]  # archived arXiv ids
    tags: list[str]


@dataclass(slots=True)
class Probe:
    """One update of a wave and when its first answer arrived."""

    kind: str
    text: str  # the command, callback data or inline query
    chat_id: int
    at: float  # server clock at the injection
    query_id: str | None = None  # callback or inline query id
    answered: float | None = None  # server clock of the first answer
    how: str = ""  # the method of the first answer
    answer: str = ""  # its text (messages only), for the throttle check
    fallback: bool = False  # a button user without a result message: searched instead

    @property
    def latency(self) -> float | None:
        return None if self.answered is None else self.answered - self.at


@dataclass(slots=True)
class Wave:
    label: str
    users: int
    busy: bool
    probes: list[Probe] = field(default_factory=list)
    started: float = 0.0  # server clock at the first injection
    ended: float = 0.0  # the last first answer (the deadline when some never came)
    last_reply: float = 0.0  # the last message or edit into the wave's chats (follow-ups)
    broadcast_before: int = 0  # broadcast messages accepted before the wave
    bot_cpu: float = 0.0  # the bot's CPU seconds from the injection to the last first answer

    @property
    def latencies(self) -> list[float]:
        return [p.latency for p in self.probes if p.latency is not None]

    @property
    def unanswered(self) -> list[Probe]:
        return [p for p in self.probes if p.answered is None]

    def floor(self, *, even: bool) -> list[float]:
        """The least latencies Telegram's limit allows this mix: the k-th message answer
        (from 0) not before k // LIMIT seconds (bursts of LIMIT), or k / LIMIT when the
        messages are evenly spaced, as the bot's pacer sends them; inline and callback
        answers are not limited."""
        paced = sum(1 for p in self.probes if p.kind in MESSAGE_KINDS)
        unpaced = len(self.probes) - paced
        return [0.0] * unpaced + [k / LIMIT if even else float(k // LIMIT)
                                  for k in range(paced)]


@dataclass(slots=True)
class InteractiveResult:
    spec: InteractiveSpec
    waves: list[Wave] = field(default_factory=list)
    setup_seconds: float = 0.0
    start_seconds: float = 0.0  # bot start to polling
    broadcast_times: list[float] = field(default_factory=list)  # accepted, server clock
    delivered: int = 0  # distinct (chat, header/paper) accepted
    duplicates: int = 0
    completed: bool = False
    rescan_at: float = 0.0
    states: Counter[str] = field(default_factory=Counter)
    flood: Counter[str] = field(default_factory=Counter)
    flood_at: list[str] = field(default_factory=list)  # where each 429 fell
    api_errors: Counter[str] = field(default_factory=Counter)  # non-429 refusals
    bot_cpu: float = 0.0
    server_cpu: float = 0.0
    lag_p95: float = 0.0
    lag_max: float = 0.0
    exit_code: int | None = None
    killed: bool = False
    stop_seconds: float = 0.0
    fallbacks: int = 0  # button users without a result message (they searched instead)
    log_tail: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return max(0, self.spec.broadcast - self.delivered)

    @property
    def busy(self) -> Wave | None:
        return next((w for w in self.waves if w.busy), None)


# ----------------------------------------------------------------------------- material


def material(db: Path, rng: random.Random) -> Material:
    with sqlite3.connect(db) as conn:
        titles = [t for (t,) in conn.execute(
            "SELECT title FROM papers ORDER BY id LIMIT 20000")]
        ids = [i for (i,) in conn.execute(
            "SELECT arxiv_id FROM papers ORDER BY random() LIMIT 2000")]
        tags = sorted(t for (t,) in conn.execute("SELECT DISTINCT topic FROM appearances"))
    counts: Counter[str] = Counter()
    for title in titles:
        counts.update({w.lower() for w in _WORD.findall(title) if len(w) >= 5} - _STOP)
    ranked = [w for w, n in counts.most_common() if n >= 3]
    if not ranked or not ids or not tags:
        raise RuntimeError("the archive has no papers to ask for")
    common = ranked[:20]
    # Words of every frequency: a few very common, most rarer (as people search).
    words = ranked[:400:2] + rng.sample(ranked, min(200, len(ranked)))
    return Material(common=common, words=words, ids=ids, tags=tags)


# ----------------------------------------------------------------------------- waiting


async def _until(check: Callable[[], bool], timeout: float,  # noqa: ASYNC109
                 every: float = 0.05) -> bool:
    """Poll ``check`` until it holds (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)
    return True


def _quiet(server: FakeBotApi, seconds: float) -> bool:
    """The bot is idle (no update waiting, polling, nothing in flight) and accepted no
    message for ``seconds``: every chat's and the overall window are empty."""
    if not server.is_idle:
        return False
    return not server.sent or server.clock() - server.sent[-1].at >= seconds


class _Watch:
    """Finds the first answers of a wave's updates in what the server recorded since
    the wave began (messages, edits, callback and inline answers)."""

    def __init__(self, server: FakeBotApi) -> None:
        self.server = server
        self.sent_seen = len(server.sent)
        self.edits_seen = len(server.edits)
        self.requests_seen = len(server.requests)
        self.open_calls: list[ApiCall] = []
        self.by_chat: dict[int, list[Probe]] = defaultdict(list)
        self.by_query: dict[str, Probe] = {}

    def add(self, probe: Probe) -> None:
        if probe.kind != "inline":
            self.by_chat[probe.chat_id].append(probe)
        if probe.query_id is not None:
            self.by_query[probe.query_id] = probe

    @staticmethod
    def _hit(probe: Probe, at: float, how: str, text: str = "") -> None:
        if at >= probe.at and (probe.answered is None or at < probe.answered):
            probe.answered, probe.how, probe.answer = at, how, text

    def update(self) -> None:
        server = self.server
        sent = server.sent
        for message in sent[self.sent_seen:]:
            for probe in self.by_chat.get(message.chat_id, ()):
                self._hit(probe, message.at, message.method, message.plain_text or "")
        self.sent_seen = len(sent)
        edits = server.edits
        for edit in edits[self.edits_seen:]:
            if edit.chat_id is not None:
                for probe in self.by_chat.get(edit.chat_id, ()):
                    self._hit(probe, edit.at, edit.method)
        self.edits_seen = len(edits)
        requests = server.requests
        self.open_calls.extend(call for call in requests[self.requests_seen:]
                               if call.method in ("answerCallbackQuery", "answerInlineQuery"))
        self.requests_seen = len(requests)
        still_open: list[ApiCall] = []
        for call in self.open_calls:
            if not call.finished:
                still_open.append(call)
                continue
            if not call.ok:
                continue
            query_id = call.params.get("callback_query_id") or call.params.get(
                "inline_query_id")
            asked = self.by_query.get(str(query_id))
            if asked is not None:
                shown = server.callback_answers.get(str(query_id))
                self._hit(asked, call.started_at, call.method,
                          (shown.text or "") if shown is not None else "")
        self.open_calls = still_open


# ----------------------------------------------------------------------------- the waves


@dataclass(slots=True)
class _Users:
    users: list[FakeUser]
    chats: list[FakeChat]
    results: dict[int, int] = field(default_factory=dict)  # chat -> /search result message


def _button(server: FakeBotApi, chat: FakeChat, message_id: int, turn: bool,
            rng: random.Random) -> str | None:
    """Callback data of a button the message shows now: ▶/◀ (pg:) when ``turn`` and
    there is one, else a paper's number (pp:)."""
    markup = server.message(chat.id, message_id).get("reply_markup") or {}
    data = [str(b["callback_data"]) for row in markup.get("inline_keyboard", [])
            for b in row if "callback_data" in b]
    pages = [d for d in data if d.startswith("pg:")]
    papers = [d for d in data if d.startswith("pp:")]
    if turn and pages:
        return rng.choice(pages)
    return rng.choice(papers) if papers else None


def _inject(server: FakeBotApi, kind: str, user: FakeUser, chat: FakeChat, users: _Users,
            stuff: Material, rng: random.Random, turn: bool) -> Probe:
    if kind == "button":
        message_id = users.results.get(chat.id)
        data = None if message_id is None else _button(server, chat, message_id, turn, rng)
        if message_id is not None and data is not None:
            now = server.clock()
            query_id = server.press_button(chat, user, message_id, data)
            return Probe(kind, data, chat.id, now, query_id)
        probe = _inject(server, "search", user, chat, users, stuff, rng, turn)
        probe.fallback = True  # no result message to press on
        return probe
    if kind == "inline":
        text = rng.choice(stuff.words)
        now = server.clock()
        return Probe(kind, text, chat.id, now, server.inline_query(user, text))
    if kind == "search":
        text = f"/search {rng.choice(stuff.words)}"
    elif kind == "paper":
        text = f"/paper {rng.choice(stuff.ids)}"
    elif kind == "latest":
        text = "/latest"
    else:
        tag = rng.choice(stuff.tags)
        text = f"/tag {tag} {rng.choice(stuff.words)}" if rng.random() < 0.5 else f"/tag {tag}"
    now = server.clock()
    server.send_command(chat, user, text)
    return Probe(kind, text, chat.id, now)


async def run_wave(server: FakeBotApi, users: _Users, size: int, stuff: Material,
                   salt: int, bot_pid: int, *, busy: bool, broadcast_before: int = 0
                   ) -> Wave:
    """``size`` users send one update each at the same moment; wait for every answer."""
    label = f"{size} users" + (" mid-broadcast" if busy else "")
    wave = Wave(label, size, busy, broadcast_before=broadcast_before)
    rng = random.Random(SEED * 1000 + salt)
    watch = _Watch(server)
    cpu = proc_cpu_seconds(bot_pid)
    wave.started = server.clock()
    for i in range(size):
        kind = KINDS[(i + salt) % len(KINDS)]
        probe = _inject(server, kind, users.users[i], users.chats[i], users, stuff, rng,
                        turn=(i // len(KINDS) + salt) % 2 == 1)
        watch.add(probe)
        wave.probes.append(probe)

    def done() -> bool:
        watch.update()
        return all(p.answered is not None for p in wave.probes)

    timeout = 30.0 + size / 10
    if not await _until(done, timeout):
        wave.ended = wave.started + timeout
    else:
        wave.ended = max(p.answered or 0.0 for p in wave.probes)
    wave.bot_cpu = proc_cpu_seconds(bot_pid) - cpu
    return wave


async def setup_users(server: FakeBotApi, count: int, stuff: Material, log: Log) -> _Users:
    """/start, then a /search of a common word, for every user; their result messages are
    what their button presses use later."""
    users, chats = [], []
    for i in range(count):
        user = server.user(f"W{i}", user_id=USER_BASE + i,
                           language_code="zh-hans" if i % 3 == 2 else "en")
        users.append(user)
        chats.append(server.private_chat(user))
    for i, (user, chat) in enumerate(zip(users, chats, strict=True)):
        server.send_command(chat, user, "/start")
        server.send_command(chat, user, f"/search {stuff.common[i % len(stuff.common)]}")
    ids = {chat.id for chat in chats}

    def replied() -> bool:
        counts = Counter(m.chat_id for m in server.sent if m.chat_id in ids)
        return all(counts[chat_id] >= 2 for chat_id in ids)

    if not await _until(replied, 60.0 + count / 5, every=0.2):
        log(f"interactive: not every setup reply came ({len(ids)} users)")
    found = _Users(users, chats)
    for message in server.sent:
        if message.chat_id in ids and any(d.startswith("pp:") for d in message.callback_data):
            found.results[message.chat_id] = message.message_id
    return found


async def settle(server: FakeBotApi, log: Log) -> None:
    if not await _until(lambda: _quiet(server, SETTLE), 60.0):
        log("interactive: the bot did not settle within 60 s; going on")


# ----------------------------------------------------------------------------- the run


async def run_interactive(ws: Workspace, spec: InteractiveSpec, archive: Path,
                          log: Log = print) -> InteractiveResult:
    result = InteractiveResult(spec)
    db = ws.path("interactive.db")
    copy_db(archive, db)
    stuff = material(db, random.Random(SEED))
    subscribers = await _add_chats(db, spec.chats)
    folder, paper_ids = _folder(ws, "interactive-digests", spec.papers)
    if len(paper_ids) != spec.papers:
        raise RuntimeError(f"the new digest has {len(paper_ids)} papers, not {spec.papers}")
    new_day = folder / NEW_DAY.isoformat()
    if (ws.digests / NEW_DAY.isoformat()).exists():
        raise RuntimeError(f"{NEW_DAY} is a day of the generated folder; pick another")
    held = ws.path("interactive-held")
    shutil.rmtree(held, ignore_errors=True)
    new_day.rename(held)  # back for the broadcast phase, when the operator sends /rescan
    wanted = set(subscribers)

    server = FakeBotApi(flood_control=FloodControl())  # Telegram's limits
    await server.start()
    for chat_id in subscribers:
        server.add_chat(server.private_chat(server.user(f"U{chat_id}", user_id=chat_id)))
    operator = server.user("Operator", user_id=OPERATOR_ID)
    operator_chat = server.add_chat(server.private_chat(operator))

    env = bot_env(server.base_url.removesuffix("/bot"), server.token, folder, db,
                  ADMIN_IDS=str(OPERATOR_ID))
    run_dir = ws.path("interactive-cwd")
    run_dir.mkdir(exist_ok=True)
    log(f"interactive: waves of {', '.join(map(str, spec.idle_waves))} users idle and "
        f"{spec.busy_wave} during a broadcast of {spec.chats:,} chats × {1 + spec.papers} "
        f"messages, at Telegram's limits")

    gc.collect()
    gc.freeze()  # see bench.fanout: a full collection would stall the server
    lag: list[float] = []
    stop_probe = asyncio.Event()
    probe = asyncio.create_task(_lag_probe(lag, stop_probe))
    cpu0 = time.process_time()
    started = time.monotonic()
    # bench.botproc is `python -m bot` that also honours BENCH_PROFILE=<file> (a cProfile).
    module = "bench.botproc" if env.get("BENCH_PROFILE") else "bot"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "run", cwd=run_dir, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    bot = _Bot(proc)
    try:
        if not await _until(lambda: server.is_polling or proc.returncode is not None, 60.0):
            raise RuntimeError("the bot did not start polling within 60 s")
        if proc.returncode is not None:
            raise RuntimeError(f"the bot exited at start ({proc.returncode}): "
                               + " | ".join(bot.lines[-5:]))
        result.start_seconds = time.monotonic() - started
        # It scans (nothing new) once elected; the setup below outlasts that scan.
        if not await _until(lambda: any(ACTIVE in line for line in bot.lines), 30.0):
            log("interactive: the bot did not say it is the active instance within 30 s")
        await settle(server, log)

        began = time.monotonic()
        users = await setup_users(server, spec.users, stuff, log)
        await settle(server, log)
        result.setup_seconds = time.monotonic() - began
        log(f"interactive: {spec.users} users set up in {result.setup_seconds:.0f} s; "
            f"{len(users.results)} have a result message to press on")

        salt = 0
        for size in spec.idle_waves:
            wave = await run_wave(server, users, size, stuff, salt, proc.pid, busy=False)
            result.waves.append(wave)
            log(f"  wave {wave.label}: p95 {percentile(wave.latencies, 95):.2f} s, max "
                f"{max(wave.latencies, default=0.0):.2f} s, {len(wave.unanswered)} unanswered")
            salt += 1
            await settle(server, log)

        # The broadcast: the new digest is back, the operator asks for a scan.
        held.rename(new_day)
        result.rescan_at = server.clock()
        server.send_command(operator_chat, operator, "/rescan")
        seen = 0
        delivered: set[tuple[int, str]] = set()

        def track() -> int:
            nonlocal seen
            sent = server.sent
            for message in sent[seen:]:
                if message.chat_id in wanted:
                    delivered.add((message.chat_id, _key(message)))
            seen = len(sent)
            return len(delivered)

        if not await _until(lambda: track() >= spec.busy_after or proc.returncode is not None,
                            60.0 + spec.busy_after / 10):
            log(f"interactive: only {track()} broadcast messages after "
                f"{60 + spec.busy_after / 10:.0f} s; the busy wave goes anyway")
        wave = await run_wave(server, users, spec.busy_wave, stuff, salt, proc.pid, busy=True,
                              broadcast_before=track())
        result.waves.append(wave)
        log(f"  wave {wave.label}: p95 {percentile(wave.latencies, 95):.2f} s, max "
            f"{max(wave.latencies, default=0.0):.2f} s, {len(wave.unanswered)} unanswered")

        last_report = time.monotonic()

        def finished() -> bool:
            nonlocal last_report
            if time.monotonic() - last_report >= 15:
                last_report = time.monotonic()
                log(f"  broadcast: {len(delivered):,}/{spec.broadcast:,} accepted, "
                    f"{server.flood_429s} 429s")
            return track() >= spec.broadcast or proc.returncode is not None

        remaining = spec.deadline - (server.clock() - result.rescan_at)
        result.completed = await _until(finished, max(remaining, 5.0), every=0.2)
        result.completed = result.completed and track() >= spec.broadcast
        await asyncio.sleep(2.0)  # the bot marks its last rows sent
        result.bot_cpu = proc_cpu_seconds(proc.pid) or result.bot_cpu
    finally:
        stopping = time.monotonic()
        result.exit_code = await bot.stop()
        result.killed = bot.killed
        result.stop_seconds = time.monotonic() - stopping
        result.server_cpu = time.process_time() - cpu0
        stop_probe.set()
        await probe
        await server.stop()
        gc.unfreeze()
        if held.exists() and not new_day.exists():
            held.rename(new_day)

    for wave in result.waves:  # cards after a pp: press come after its first answer
        chats = {p.chat_id for p in wave.probes}
        replies = [m.at for m in server.sent if m.chat_id in chats and m.at >= wave.started]
        replies += [e.at for e in server.edits if e.chat_id in chats and e.at >= wave.started]
        wave.last_reply = max([wave.ended, *replies])
    sends = [m for m in server.sent if m.chat_id in wanted]
    result.broadcast_times = [m.at for m in sends]
    keys = Counter((m.chat_id, _key(m)) for m in sends)
    result.delivered = len(keys)
    result.duplicates = sum(n - 1 for n in keys.values() if n > 1)
    result.fallbacks = sum(1 for w in result.waves for p in w.probes if p.fallback)
    flood = server.flood
    if flood is not None:
        result.flood = Counter(r.window for r in flood.rejections)
        result.flood_at = [_where(result, r.at, r.chat_id in wanted) for r in flood.rejections]
    result.api_errors = Counter(f"{c.method} {c.status}: {(c.description or '')[:60]}"
                                for c in server.errors() if c.status != 429)
    result.lag_p95 = percentile(lag, 95)
    result.lag_max = max(lag, default=0.0)
    with sqlite3.connect(db) as conn:
        result.states = Counter(dict(conn.execute(
            "SELECT state, count(*) FROM outbox GROUP BY state").fetchall()))
    result.log_tail = [line for line in bot.lines
                       if " WARNING " in line or " ERROR " in line or "CRITICAL" in line][-5:]
    if not ws.extras.get("keep"):
        remove_db(db)
        shutil.rmtree(folder, ignore_errors=True)
    return result


def _where(result: InteractiveResult, at: float, broadcast: bool) -> str:
    """Where a 429 fell: in which wave, or in the broadcast outside them."""
    for wave in result.waves:
        if wave.started <= at <= wave.ended + 1.0:
            return f"{'broadcast' if broadcast else 'reply'} in the {wave.label} wave"
    return "broadcast" if broadcast else "reply outside the waves"


# ----------------------------------------------------------------------------- figures


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def broadcast_rates(result: InteractiveResult) -> tuple[float, float, float, float]:
    """(rate outside the busy wave, seconds measured, rate during it, overall rate)."""
    times = result.broadcast_times
    if len(times) < 2:
        return 0.0, 0.0, 0.0, 0.0
    first, last = times[0], times[-1]
    overall = (len(times) - 1) / (last - first) if last > first else 0.0
    busy = result.busy
    if busy is None or not first < busy.started < last:
        return overall, last - first, 0.0, overall
    end = max(busy.ended, busy.last_reply)
    before = sum(1 for t in times if first <= t < busy.started)
    after = sum(1 for t in times if end <= t < last)
    span = (busy.started - first) + max(0.0, last - end)
    during = sum(1 for t in times if busy.started <= t < end)
    wave_span = end - busy.started
    return ((before + after) / span if span > 0 else 0.0, span,
            during / wave_span if wave_span > 0 else 0.0, overall)


def _wave_span(wave: Wave | None) -> float:
    return 0.0 if wave is None else max(wave.ended, wave.last_reply) - wave.started


def _by_kind(wave: Wave) -> str:
    parts = []
    for kind in KINDS:
        values = [p.latency for p in wave.probes if p.kind == kind and p.latency is not None]
        if not values:
            continue
        parts.append(f"{kind} {percentile(values, 50):.2f}/{percentile(values, 95):.2f}/"
                     f"{max(values):.2f} (n={len(values)})")
    return "p50/p95/max s: " + " · ".join(parts)


def _wave_rows(wave: Wave) -> list[Row]:
    name = f"interactive: {wave.label}"
    values = wave.latencies
    p50, p95, top = percentile(values, 50), percentile(values, 95), max(values, default=0.0)
    burst, even = wave.floor(even=False), wave.floor(even=True)
    unanswered = wave.unanswered
    how = Counter(p.how for p in wave.probes if p.how)
    throttled = sum(1 for p in wave.probes if p.answer.startswith(_SLOW_DOWN))
    note = (f"p50 {_seconds(p50)}; {len(values)}/{len(wave.probes)} answered"
            + (f", unanswered: {', '.join(p.text[:30] for p in unanswered[:5])}"
               if unanswered else "")
            + f"; floor at {LIMIT} msg/s for this mix (p95/max): "
              f"{percentile(burst, 95):.2f}/{max(burst, default=0.0):.2f} s in bursts of "
              f"{LIMIT}, {percentile(even, 95):.2f}/{max(even, default=0.0):.2f} s evenly "
              "spaced; first answers "
            + ", ".join(f"{k} {n}" for k, n in how.most_common())
            + (f"; {throttled} 'slow down' answers" if throttled else "")
            + f"; the bot's CPU meanwhile {wave.bot_cpu:.2f} s in "
              f"{wave.ended - wave.started:.2f} s"
            + (f"; {wave.broadcast_before:,} broadcast messages accepted before it"
               if wave.busy else ""))
    p95_target = wave.busy or wave.users == TARGET_USERS
    max_target = not wave.busy and wave.users == TARGET_USERS
    ok = not unanswered
    return [
        Row(name, "p95 update → first answer", f"≤ {TARGET_P95:g} s" if p95_target else "",
            _seconds(p95), (p95 <= TARGET_P95 and ok) if p95_target else None, note),
        Row(name, "max update → first answer", f"≤ {TARGET_MAX:g} s" if max_target else "",
            _seconds(top) if ok else f"{_seconds(top)}, {len(unanswered)} unanswered",
            (top <= TARGET_MAX and ok) if max_target else None, ""),
        Row(name, "by kind", "", "", None, _by_kind(wave)),
    ]


def rows(result: InteractiveResult) -> list[Row]:
    spec = result.spec
    out: list[Row] = []
    for wave in result.waves:
        out += _wave_rows(wave)
    name = f"interactive: broadcast {spec.chats:,}×{1 + spec.papers}"
    outside, span, during, overall = broadcast_rates(result)
    share = outside / LIMIT
    busy = result.busy
    times = result.broadcast_times
    out.append(Row(
        name, "broadcast rate outside the wave / limit", f"≥ {TARGET_SHARE:.0%}",
        f"{share:.1%} ({outside:,.1f}/s of {LIMIT}/s)", share >= TARGET_SHARE,
        f"over {span:.0f} s before and after the {busy.label if busy else '?'} wave; "
        f"{during:,.1f}/s during it (its {_wave_span(busy):.1f} s to the last reply); "
        f"{overall:,.1f}/s over all {len(times):,} messages; first one "
        + (f"{times[0] - result.rescan_at:.1f} s after /rescan" if times else "never")))
    floods = sum(result.flood.values())
    where = Counter(result.flood_at)
    out.append(Row(
        "interactive: whole run", "429s received", "0", str(floods), floods == 0,
        (", ".join(f"{k} {v}" for k, v in sorted(result.flood.items())) or "none")
        + ("; " + ", ".join(f"{k}: {v}" for k, v in where.most_common()) if where else "")))
    done = ("all accepted" if result.completed else
            f"not finished {spec.deadline:.0f} s after /rescan")
    out.append(Row(
        name, "broadcast messages lost", "0", str(result.lost), result.lost == 0,
        f"{result.delivered:,}/{spec.broadcast:,} accepted, {done}; outbox "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(result.states.items()))
        + f"; {result.duplicates} duplicates; SIGTERM to exit {result.stop_seconds:.1f} s, "
        + ("then SIGKILL" if result.killed else f"exit code {result.exit_code}")))
    unanswered = sum(len(w.unanswered) for w in result.waves)
    total = sum(len(w.probes) for w in result.waves)
    out.append(Row(
        "interactive: whole run", "updates left unanswered", "0", str(unanswered),
        unanswered == 0,
        f"of {total} updates in {len(result.waves)} waves"
        + (f"; {result.fallbacks} button users had no result message and searched"
           if result.fallbacks else "")
        + ("; Bot API refusals other than 429: " + ", ".join(
            f"{k} ×{v}" for k, v in result.api_errors.most_common(4))
           if result.api_errors else "")))
    out.append(Row(
        "interactive: whole run", "CPU: bot / fake server", "",
        f"{result.bot_cpu:.0f} s / {result.server_cpu:.0f} s", None,
        f"bot polling {result.start_seconds:.1f} s after start; setup of "
        f"{spec.users} users {result.setup_seconds:.0f} s; the server's loop lag "
        f"p95 {result.lag_p95:.0f} ms, max {result.lag_max:.0f} ms (it delays what it "
        "records as much)"))
    if result.log_tail:
        out.append(Row("interactive: whole run", "bot warnings (last)", "", "", None,
                       " | ".join(line[-160:] for line in result.log_tail)))
    return out


def run(ws: Workspace, log: Log = print) -> list[Row]:
    spec = spec_for(ws)
    archive = ensure_archive(ws)
    result = asyncio.run(run_interactive(ws, spec, archive, log))
    ws.extras["interactive"] = result
    return rows(result)

