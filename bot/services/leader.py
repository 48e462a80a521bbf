"""The active instance: of several `paperfeed run` processes on one database, one scans
the folder and sends the outbox; all of them answer updates.

Why: behind a load balancer (webhook mode, PostgreSQL) every process gets commands, but
two scanners would enqueue the same papers twice over and two senders would race for
the outbox. So the processes elect one with a lease in the outbox's lease table
(``"active"``): the holder renews it every ELECTION_INTERVAL seconds for ACTIVE_TTL; when
it dies the lease expires and the next election elsewhere takes it, within
ACTIVE_TTL + ELECTION_INTERVAL (one minute). A clean shutdown releases it, so another
instance takes over at its next election. Delivery's own ``"sender"`` lease stays as
the guard of each drain, should two instances ever believe they are active (a process
paused for longer than the ttl, clocks apart).
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta
from typing import Final

from bot.services.ports import Clock
from bot.storage.outbox import LEASE_SENDER, OutboxRepo

__all__ = [
    "ACTIVE_TTL",
    "ELECTION_INTERVAL",
    "LEASE_ACTIVE",
    "ActiveInstance",
    "reclaim_dead_lease",
]

log = logging.getLogger(__name__)

LEASE_ACTIVE: Final = "active"
"""The lease the active instance holds as long as it runs."""
ELECTION_INTERVAL: Final = 15.0
"""Seconds between elections: the holder renews, the others try to take over."""
ACTIVE_TTL: Final = timedelta(seconds=45)
"""How long a renewal lasts: three elections, so one slow or failed renewal is harmless."""


class ActiveInstance:
    """This process's view of the election; ``owner`` unique per process."""

    def __init__(self, outbox: OutboxRepo, owner: str, clock: Clock, *,
                 ttl: timedelta = ACTIVE_TTL) -> None:
        self._outbox = outbox
        self._owner = owner
        self._clock = clock
        self._ttl = ttl
        self._until: datetime | None = None  # our lease lasts at least until then, by
        # our clock: the database's expiry is counted from after we asked, on its clock
        self._told: bool | None = None  # what the log last said: active or not

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def active(self) -> bool:
        """Whether this instance may scan and send now: it holds an unexpired lease.

        Judged by the expiry of the last successful renewal, not by a flag, so a process
        whose renewals fail (database unreachable) stops by itself when another may
        already have taken over. The database decides the lease on its own clock; this
        process only compares its own clock with itself (the time it asked + ttl, which
        ends no later than the database's expiry), so clocks that disagree between hosts
        cannot make two instances active.
        """
        return self._until is not None and self._clock.now() < self._until

    async def elect(self) -> bool:
        """Take or renew the lease; True when this instance has just become active.

        A database error is logged and counts as "not renewed": the lease we may hold
        runs out at its expiry, as it does for everybody else.
        """
        was = self._told
        asked = self._clock.now()
        try:
            if await self._outbox.acquire_lease(LEASE_ACTIVE, self._owner, self._ttl):
                self._until = asked + self._ttl
        except Exception as exc:
            log.warning("the election of the active instance failed: %s: %s",
                        type(exc).__name__, exc)
        active = self.active
        if active != was:
            self._told = active
            if active:
                log.info("this instance is now the active one (scans and sends)")
            elif was is None:
                log.info("another instance is the active one; this one answers updates "
                         "and takes over if it stops")
            else:
                log.warning("this instance is no longer the active one; it stops scanning "
                            "and sending")
        return active and not was

    async def resign(self) -> None:
        """Release the lease on a clean shutdown, so another instance takes over at once."""
        if self._until is None:
            return
        self._until = None
        try:
            await self._outbox.release_lease(LEASE_ACTIVE, self._owner)
        except Exception as exc:
            log.warning("could not release the active lease (it expires in %s): %s",
                        self._ttl, exc)
            return
        log.info("released the active lease: another instance can take over")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


async def reclaim_dead_lease(outbox: OutboxRepo, name: str = LEASE_SENDER) -> str | None:
    """Release a lease held by a process on this host that is no longer running.

    After a crash or `kill -9` the lease would block the restarted bot (or the instance
    taking over) until it expires; a holder on another host (or a live one here) is left
    alone. Owners are `host:pid:random`. Returns the owner freed.
    """
    holder = await outbox.lease_holder(name)
    if holder is None:
        return None
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit() or _alive(int(pid_text)):
        return None
    await outbox.release_lease(name, holder)
    log.warning("took over the %s lease of %s, which is no longer running", name, holder)
    return holder
