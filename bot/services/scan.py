"""A scan of the digest folder as the running bot does it: remembered, logged, handed on."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.domain.models import IngestReport
from bot.services.ingest import Ingestor

log = logging.getLogger(__name__)

ReportHook = Callable[[IngestReport], Awaitable[None]]


@dataclass
class ScanStatus:
    """The last scan, for /stats and the health check."""

    last_at: datetime | None = None
    last_report: IngestReport | None = None
    last_error: str | None = None
    hooks: list[ReportHook] = field(default_factory=list)
    redact: Callable[[str], str] = field(default=lambda text: text)  # what is shown
    # (/stats, /healthz) holds no secret an exception may carry (a database password)


async def scan_once(ingestor: Ingestor, status: ScanStatus, *, hand_on: bool = True,
                    settle_seconds: float | None = None) -> IngestReport:
    """Scan the folder, remember the outcome, hand new papers to the hooks (delivery);
    with ``hand_on=False`` the caller calls :func:`hand_on_report` itself when it is ready.
    ``settle_seconds``: see Ingestor.scan."""
    try:
        report = await ingestor.scan(settle_seconds=settle_seconds)
    except Exception as exc:
        status.last_error = status.redact(f"{type(exc).__name__}: {exc}")
        raise
    status.last_at = datetime.now(UTC)
    status.last_report = report
    status.last_error = None
    if report.papers_new or report.new_appearances or report.skipped or report.files_deleted:
        log.info(
            "scan: %d files read, %d papers new, %d updated, %d skipped, %d deleted",
            report.files_read, report.papers_new, report.papers_updated, len(report.skipped),
            report.files_deleted,
        )
    for path, reason in report.skipped:
        log.warning("skipped %s: %s", path, reason)
    if hand_on:
        await hand_on_report(status, report)
    return report


async def hand_on_report(status: ScanStatus, report: IngestReport) -> None:
    """Run the hooks (delivery: queue and send the new papers)."""
    for hook in status.hooks:
        await hook(report)
