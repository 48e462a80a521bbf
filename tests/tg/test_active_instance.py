"""Two `python -m bot run` processes on one database, as behind a load balancer: both
answer updates, exactly one (the active instance) scans and sends, and when it is killed
(SIGKILL: no shutdown code, its lease stays behind) the other takes over within a
minute and delivers a new digest once to every subscriber.

Why processes: the election is a lease in the database, so only separate processes
with separate connections (and a real kill) show that it holds. Webhook mode, because
two long pollers on one token would steal each other's updates; each process listens
on its own port, as each replica behind the balancer would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.services.leader import ACTIVE_TTL, LEASE_ACTIVE, ActiveInstance
from bot.storage.engine import make_engine, make_sessionmaker, migrate
from bot.storage.outbox import OutboxRepo
from tests.botapi.server import FakeBotApi
from tests.conftest import BACKENDS, PG_URL, wipe_postgres
from tests.fixtures.folder import copy_fixture_folder
from tests.tg.delivery_support import (
    BotProcess,
    SynthPaper,
    add_digest,
    bot_env,
    bot_that_ran_before,
    delivered,
    expected_digest,
)
from tests.tg.test_webhook import HEADER, SECRET, free_port, start_update

DAY = date(2024, 6, 11)
ACTIVE = "this instance is now the active one (scans and sends)"
STANDBY = "another instance is the active one"
TAKEOVER_TIMEOUT = 75.0  # the lease's ttl (45 s) + one election interval (15 s) + slack


@asynccontextmanager
async def webhook_bot(cwd: Path, env: dict[str, str]) -> AsyncIterator[tuple[BotProcess, int]]:
    """A webhook-mode process on a port of its own; yields it and the port."""
    port = free_port()
    # The public URL (a TLS proxy on a port Telegram posts to) forwards to the listener.
    env = dict(env, WEBHOOK_URL="https://127.0.0.1:8443/hook", WEBHOOK_LISTEN="127.0.0.1",
               WEBHOOK_PORT=str(port), WEBHOOK_SECRET=SECRET)
    env.pop("HEALTH_PORT", None)
    running = await BotProcess.start(cwd, env)
    try:
        yield running, port
    finally:
        await running.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_one_instance_is_active_and_another_takes_over_when_it_is_killed(
    botapi: FakeBotApi, tmp_path: Path, backend: str,
) -> None:
    digests = copy_fixture_folder(tmp_path / "digests")
    env = bot_env(botapi, database=tmp_path / "run.db", digests=digests, scan_interval=2)
    if backend == "postgresql":
        await wipe_postgres(PG_URL)
        env["DATABASE_URL"] = PG_URL
    readers = [botapi.add_chat(botapi.private_chat(botapi.user(f"reader{i}"))) for i in range(3)]

    # The bots have run before: the archive holds the fixture folder, three chats follow NeRF.
    engine = make_engine(env["DATABASE_URL"])
    try:
        await migrate(engine)
        sessions = make_sessionmaker(engine)
        await bot_that_ran_before(sessions, digests, [r.id for r in readers], "NeRF")
        outbox = OutboxRepo(sessions)

        async with AsyncExitStack() as stack:
            first = await stack.enter_async_context(webhook_bot(tmp_path, env))
            second = await stack.enter_async_context(webhook_bot(tmp_path, env))
            bots = [first, second]
            for bot, _ in bots:  # each says which it is ("the active one" is in both lines)
                await bot.wait_for_line("the active one", timeout=30)
            active = [(bot, port) for bot, port in bots if ACTIVE in bot.log]
            assert len(active) == 1, [bot.log for bot, _ in bots]
            [(leader, _)] = active
            [standby] = [bot for bot, _ in bots if bot is not leader]
            assert STANDBY in standby.log

            # Both answer commands, whichever the balancer picks.
            for number, (bot, port) in enumerate(bots, 1):
                await bot.wait_for_line("webhook server listening")
                user = botapi.user(f"asker{number}")
                chat = botapi.add_chat(botapi.private_chat(user))
                async with httpx.AsyncClient(timeout=10) as client:
                    answer = await client.post(f"http://127.0.0.1:{port}/hook",
                                               json=start_update(number, chat, user),
                                               headers={HEADER: SECRET})
                assert answer.status_code == 200
                await botapi.wait_for_sent(1, chat_id=chat.id, timeout=20)

            killed_at = time.monotonic()
            await leader.kill()
            lines = len(standby.lines)
            await standby.wait_for_line(ACTIVE, start=lines, timeout=TAKEOVER_TIMEOUT)
            takeover = time.monotonic() - killed_at

            papers = [SynthPaper("2406.60001", "Handover Radiance Fields"),
                      SynthPaper("2406.60002", "Second Handover Paper")]
            add_digest(digests, "NeRF", DAY, papers)
            expected = expected_digest("NeRF", DAY, [p.arxiv_id for p in papers])
            await botapi.wait_for(
                lambda s: all(len(s.sent_to(r.id)) >= len(expected) for r in readers),
                timeout=20)
            await standby.wait_for_line(f"drain: DrainReport(sent={3 * len(expected)},",
                                        start=lines, timeout=15)
            assert await standby.stop() == 0
            assert "released the active lease" in standby.log
            assert "Traceback" not in standby.log + leader.log

        assert (await outbox.counts())["sent"] == 3 * len(expected)
        assert (await outbox.counts())["pending"] == 0
    finally:
        await engine.dispose()

    for reader in readers:
        assert delivered(botapi, reader.id) == expected  # exactly once, in order
    assert takeover < TAKEOVER_TIMEOUT
    print(f"takeover after the kill: {takeover:.1f}s")


class StepClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.at = datetime(2024, 6, 1, 12, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


async def test_the_election_in_process(database_url: str) -> None:
    """The rules the processes above rely on, without waiting for real time to pass."""
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        clock = StepClock()
        outbox = OutboxRepo(make_sessionmaker(engine), clock=clock.now)
        a, b = ActiveInstance(outbox, "A", clock), ActiveInstance(outbox, "B", clock)
        assert await a.elect()  # just became active
        assert not await b.elect()
        assert not b.active
        clock.at += timedelta(seconds=15)
        assert not await a.elect()
        assert a.active
        clock.at += ACTIVE_TTL - timedelta(seconds=1)  # A died after its last renewal
        assert not await b.elect()
        clock.at += timedelta(seconds=2)
        assert not a.active  # without renewals it stops trusting its lease by itself
        assert await b.elect()
        assert b.active
        assert not await a.elect()
        assert not a.active
        await b.resign()  # a clean shutdown: the next election elsewhere wins at once
        assert await outbox.lease_holder(LEASE_ACTIVE) is None
        assert await a.elect()
    finally:
        await engine.dispose()
