"""Jobs on python-telegram-bot's JobQueue (APScheduler): each a few lines calling a service.

Every process answers updates, but only the active instance (bot.services.leader) scans
the folder and drains the outbox: an election job decides, and the scan and drain jobs
of the other processes return at once. The folder watcher (bot.services.watch) runs in
every process too, and scans only in the active one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from telegram.ext import Application, ContextTypes

from bot.bootstrap import Services
from bot.services.delivery import Delivery
from bot.services.leader import ELECTION_INTERVAL, ActiveInstance, reclaim_dead_lease
from bot.services.scan import scan_once
from bot.services.watch import FolderWatcher

DRAIN_INTERVAL = 30.0
"""Seconds between outbox passes: daily deliveries fall due and retries come back."""
ROUNDUP_INTERVAL = 600.0
"""Seconds between looks for chats whose weekly roundup time has come (Mondays)."""


def register_jobs(app: Application[Any, Any, Any, Any, Any, Any], services: Services,
                  delivery: Delivery, active: ActiveInstance) -> FolderWatcher | None:
    """The election (at start, then every ELECTION_INTERVAL); for the active instance the
    folder scan (when it becomes active, then every SCAN_INTERVAL), a scan as soon as a
    digest lands (WATCH_FOLDER: the watcher returned, for the caller to stop after the
    Application) and the outbox drain."""
    job_queue = app.job_queue
    if job_queue is None:
        raise RuntimeError("python-telegram-bot was installed without the job-queue extra")
    scanning = asyncio.Lock()  # the periodic scan and the one on election never overlap

    async def scan_job(context: ContextTypes.DEFAULT_TYPE) -> None:
        if not active.active or scanning.locked():
            return
        async with scanning:
            await scan_once(services.ingestor, services.scan_status)

    async def scan_landed(settle: float) -> None:
        # Waits for a periodic scan in progress (unlike scan_job): the files that just
        # landed may be newer than what that scan saw.
        if active.active:
            async with scanning:
                await scan_once(services.ingestor, services.scan_status,
                                settle_seconds=settle)

    watcher = (FolderWatcher(services.settings.digest_dir, scan_landed)
               if services.settings.watch_folder else None)

    async def start_watching(context: ContextTypes.DEFAULT_TYPE) -> None:
        if watcher is not None:
            watcher.start()

    async def drain_job(context: ContextTypes.DEFAULT_TYPE) -> None:
        if active.active:
            await delivery.drain()

    async def roundup_job(context: ContextTypes.DEFAULT_TYPE) -> None:
        if active.active and await delivery.plan_roundups():
            await delivery.drain()

    async def elect(context: ContextTypes.DEFAULT_TYPE, *, at_start: bool) -> None:
        # The renewals must never wait for a long scan or drain past the lease's ttl, so
        # becoming active starts them as jobs of their own; only the start-up scan runs
        # inline, in the one-shot start-up job, so it follows the election at once.
        if not await active.elect() or not context.application.running:
            return  # (not running: stopping, when a job added now would only be cancelled)
        # Whatever the previous holder left: a sender lease of a dead process on this
        # host (another host's expires by itself), rows due, files not yet scanned.
        await reclaim_dead_lease(services.outbox)
        job_queue.run_once(drain_job, when=0, name="drain-on-election", job_kwargs=options)
        if at_start:
            await scan_job(context)
        else:
            job_queue.run_once(scan_job, when=0, name="scan-on-election", job_kwargs=options)

    async def election_at_start(context: ContextTypes.DEFAULT_TYPE) -> None:
        await elect(context, at_start=True)

    async def election_job(context: ContextTypes.DEFAULT_TYPE) -> None:
        await elect(context, at_start=False)

    # An interval trigger whose first run is "now" counts as missed once the scheduler
    # starts a moment later, so the start-up election is its own one-shot job; the
    # start-up scan follows it (above), so it only runs in the active instance.
    options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
    interval = services.settings.scan_interval
    job_queue.run_once(election_at_start, when=0, name="election-at-start", job_kwargs=options)
    job_queue.run_repeating(election_job, interval=ELECTION_INTERVAL, first=ELECTION_INTERVAL,
                            name="election", job_kwargs=options)
    job_queue.run_repeating(scan_job, interval=interval, first=interval, name="scan",
                            job_kwargs=options)
    job_queue.run_repeating(drain_job, interval=DRAIN_INTERVAL, first=1, name="drain",
                            job_kwargs=options)
    job_queue.run_repeating(roundup_job, interval=ROUNDUP_INTERVAL, first=ROUNDUP_INTERVAL,
                            name="roundup", job_kwargs=options)
    job_queue.run_once(start_watching, when=0, name="watch", job_kwargs=options)
    return watcher
