"""Jobs on python-telegram-bot's JobQueue (APScheduler): each a few lines calling a service."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, ContextTypes

from bot.services.ingest import Ingestor
from bot.services.scan import ScanStatus, scan_once


def register_jobs(app: Application[Any, Any, Any, Any, Any, Any], ingestor: Ingestor,
                  status: ScanStatus, interval: float) -> None:
    """The folder scan: once right after start, then every `interval` seconds."""
    job_queue = app.job_queue
    if job_queue is None:
        raise RuntimeError("python-telegram-bot was installed without the job-queue extra")

    async def scan_job(context: ContextTypes.DEFAULT_TYPE) -> None:
        await scan_once(ingestor, status)

    # An interval trigger whose first run is "now" counts as missed once the scheduler
    # starts a moment later, so the start-up scan is its own one-shot job.
    options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
    job_queue.run_once(scan_job, when=0, name="scan-at-start", job_kwargs=options)
    job_queue.run_repeating(scan_job, interval=interval, first=interval, name="scan",
                            job_kwargs=options)
