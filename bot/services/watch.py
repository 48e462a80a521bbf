"""Filesystem notifications on the digest folder: a digest that lands is read within
seconds, not at the next SCAN_INTERVAL.

watchfiles (inotify on Linux) reports that files changed, not that a writer closed them,
and a file still being written keeps changing. So after a batch of changes the watcher
waits until every changed digest has been quiet for ``quiet`` seconds (its size and
mtime unchanged), and only then scans, with ``quiet`` as that scan's settle time: a
half-written file is never read, and the one-by-one writes of a sync tool are one scan.

The periodic scan stays. It is the fallback where notifications say nothing (a network
mount does not report files written by other hosts; an exhausted inotify watch limit)
and the safety net for anything missed; the watcher failing to start is one warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Final

from watchfiles import Change, awatch

__all__ = ["QUIET_SECONDS", "FolderWatcher", "digest_change"]

log = logging.getLogger(__name__)

QUIET_SECONDS: Final = 1.0
"""How long a changed file must stay unchanged before it is read."""
STEP_MS: Final = 100  # watchfiles yields a batch after this long without a new change


def digest_change(change: Change, path: str) -> bool:
    """The changes that matter: digest files, and anything removed (a whole day's
    folder goes as one event)."""
    return path.endswith(".md") or change == Change.deleted


def _newest_change(paths: Iterable[Path]) -> float:
    """The latest mtime among the files that still exist (0 when none does)."""
    newest = 0.0
    for path in paths:
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:  # gone again, or unreadable: the scan will say so
            continue
    return newest


class FolderWatcher:
    """Watches ``folder`` until stopped, calling ``on_settled(quiet)`` after changes."""

    def __init__(self, folder: Path, on_settled: Callable[[float], Awaitable[None]], *,
                 quiet: float = QUIET_SECONDS, force_polling: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self._on_settled = on_settled
        self.quiet = quiet
        self._force_polling = force_polling
        self._clock = clock
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin watching in a task of its own (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="watch-digest-folder")

    async def stop(self) -> None:
        """Stop watching and wait for a scan in progress to end."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        if not self.folder.is_dir():
            log.warning("not watching %s: it is not a folder; the periodic scan looks for "
                        "it", self.folder)
            return
        try:
            async for changes in awatch(self.folder, watch_filter=digest_change,
                                        stop_event=self._stop, step=STEP_MS,
                                        force_polling=self._force_polling,
                                        ignore_permission_denied=True):
                await self._settle(Path(path) for kind, path in changes
                                   if kind != Change.deleted)
                if self._stop.is_set():
                    return
                try:
                    await self._on_settled(self.quiet)
                except Exception:
                    log.exception("the scan after a change in %s failed; the periodic scan "
                                  "tries again", self.folder)
        except Exception as exc:  # no notifications here: inotify limits, odd filesystems
            log.warning("filesystem notifications for %s stopped (%s: %s); new digests are "
                        "found by the periodic scan", self.folder, type(exc).__name__, exc)
        else:
            log.debug("stopped watching %s", self.folder)

    async def _settle(self, changed: Iterable[Path]) -> None:
        """Wait until the changed files have not changed for ``quiet`` seconds."""
        paths = list(changed)
        while not self._stop.is_set():
            wait = _newest_change(paths) + self.quiet - self._clock()
            if wait <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=wait)
