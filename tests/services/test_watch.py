"""The folder watcher: a digest landing starts a scan once it is quiet; it stops cleanly;
a folder it cannot watch is a warning, and the periodic scan carries on."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from watchfiles import Change

from bot.services.watch import FolderWatcher, digest_change


def test_only_digests_and_removals_matter() -> None:
    assert digest_change(Change.added, "/d/2024-07-01/NeRF.md")
    assert digest_change(Change.modified, "/d/2024-07-01/元宇宙.md")
    assert digest_change(Change.deleted, "/d/2024-07-01")
    assert not digest_change(Change.added, "/d/2024-07-01/.NeRF.md.tmp")
    assert not digest_change(Change.modified, "/d/notes.txt")


async def test_a_landed_digest_is_scanned_once_it_is_quiet(tmp_path: Path) -> None:
    calls: asyncio.Queue[float] = asyncio.Queue()

    async def scan(settle: float) -> None:
        await calls.put(settle)

    watcher = FolderWatcher(tmp_path, scan, quiet=0.2)
    watcher.start()
    try:
        day = tmp_path / "2024-07-01"
        day.mkdir()
        settle = None
        for attempt in range(50):  # until watchfiles' thread has set its watches up
            (day / "NeRF.md").write_text(f"---\ntitle: NeRF {attempt}\n---\n",
                                         encoding="utf-8")
            try:
                settle = await asyncio.wait_for(calls.get(), timeout=1)
                break
            except TimeoutError:
                continue
        assert settle == 0.2  # the scan may read what has been quiet this long
    finally:
        await asyncio.wait_for(watcher.stop(), timeout=10)


async def test_stopping_while_waiting_for_a_quiet_file_ends_at_once(tmp_path: Path) -> None:
    async def scan(settle: float) -> None:
        raise AssertionError("no scan after stop")

    watcher = FolderWatcher(tmp_path, scan, quiet=3600)  # the file never settles
    watcher.start()
    await asyncio.sleep(0.2)
    (tmp_path / "NeRF.md").write_text("x", encoding="utf-8")
    await asyncio.sleep(0.3)  # the watcher has seen it and waits for it to settle
    await asyncio.wait_for(watcher.stop(), timeout=10)


async def test_a_folder_that_cannot_be_watched_is_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    async def scan(settle: float) -> None:
        raise AssertionError("nothing to scan")

    caplog.set_level(logging.WARNING, "bot.services.watch")
    await asyncio.wait_for(FolderWatcher(tmp_path / "missing", scan).run(), timeout=10)
    assert [r.getMessage() for r in caplog.records] == [
        f"not watching {tmp_path / 'missing'}: it is not a folder; the periodic scan looks "
        "for it"]
