"""Jobs on python-telegram-bot's JobQueue (APScheduler): each a few lines calling a service."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, ContextTypes

from bot.services.scan import scan_once
from bot.tg.deps import Deps

DRAIN_INTERVAL = 30.0
"""Seconds between outbox passes: daily deliveries fall due and retries come back."""


def register_jobs(app: Application[Any, Any, Any, Any, Any, Any], deps: Deps) -> None:
    """The folder scan (at start, then every SCAN_INTERVAL) and the outbox drain."""
    job_queue = app.job_queue
    if job_queue is None:
        raise RuntimeError("python-telegram-bot was installed without the job-queue extra")

    async def scan_job(context: ContextTypes.DEFAULT_TYPE) -> None:
        await scan_once(deps.ingestor, deps.scan_status)

    async def drain_job(context: ContextTypes.DEFAULT_TYPE) -> None:
        await deps.delivery.drain()

    # An interval trigger whose first run is "now" counts as missed once the scheduler
    # starts a moment later, so the start-up scan is its own one-shot job.
    options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
    interval = deps.settings.scan_interval
    job_queue.run_once(scan_job, when=0, name="scan-at-start", job_kwargs=options)
    job_queue.run_repeating(scan_job, interval=interval, first=interval, name="scan",
                            job_kwargs=options)
    job_queue.run_repeating(drain_job, interval=DRAIN_INTERVAL, first=1, name="drain",
                            job_kwargs=options)
