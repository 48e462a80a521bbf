"""Ingest: scan the digest folder, parse what changed, store it, report what is new.

Change detection is by path, size, mtime and content hash, never by date: files arrive
days late and in batches. An unchanged folder costs one stat per file and one query.
A file modified within the last `settle_seconds` may still be being written, so it
waits for the next scan.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.domain.models import Digest, IngestReport, ParseWarning
from bot.domain.parsing import parse_digest
from bot.errors import DigestError, NotADigest
from bot.storage.records import FileState
from bot.storage.repository import ArchiveRepo

DEFAULT_SETTLE_SECONDS = 5.0
BATCH_SIZE = 64  # digest files stored per transaction

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class FoundFile:
    """A markdown file in the digest folder, as one stat saw it."""

    path: str  # relative to the folder, POSIX separators
    size: int
    mtime_ns: int


def find_markdown(root: Path) -> list[FoundFile]:
    """Every `*.md` below root (hidden folders skipped), sorted so dates come in order."""
    found: list[FoundFile] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                elif entry.name.endswith(".md") and entry.is_file(follow_symlinks=True):
                    st = entry.stat(follow_symlinks=True)
                    rel = Path(entry.path).relative_to(root).as_posix()
                    found.append(FoundFile(rel, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: f.path)
    return found


@dataclass(frozen=True, slots=True)
class _Parsed:
    """The outcome of reading one file, computed off the event loop."""

    state: FileState
    digest: Digest | None  # None when skipped or unchanged
    reason: str | None  # why it was skipped
    warnings: tuple[ParseWarning, ...] = ()
    same_bytes: bool = False  # touched, but the content hash is the stored one


def _read_and_parse(
    root: Path, found: FoundFile, blog_base_url: str | None, known_hash: str | None
) -> _Parsed:
    raw = (root / found.path).read_bytes()
    content_hash = hashlib.sha256(raw).hexdigest()
    if content_hash == known_hash:
        return _Parsed(FileState(found.path, content_hash, found.size, found.mtime_ns),
                       None, None, same_bytes=True)
    warnings: list[ParseWarning] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        warnings.append(ParseWarning(found.path, 0, f"not valid UTF-8 ({exc.reason}); "
                                                    "undecodable bytes replaced"))
    try:
        digest = parse_digest(text, found.path, blog_base_url=blog_base_url)
    except NotADigest as exc:
        state = FileState(found.path, content_hash, found.size, found.mtime_ns, str(exc))
        return _Parsed(state, None, f"not a digest: {exc}", tuple(warnings))
    except DigestError as exc:
        state = FileState(found.path, content_hash, found.size, found.mtime_ns, str(exc))
        return _Parsed(state, None, f"not usable: {exc}", tuple(warnings))
    state = FileState(found.path, content_hash, found.size, found.mtime_ns, None)
    return _Parsed(state, digest, None, tuple(warnings) + digest.warnings)


class Ingestor:
    """Brings the archive in line with the digest folder."""

    def __init__(
        self,
        repo: ArchiveRepo,
        digest_dir: Path,
        *,
        blog_base_url: str | None = None,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        clock: Callable[[], float] = time.time,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.repo = repo
        self.digest_dir = digest_dir
        self.blog_base_url = blog_base_url
        self.settle_seconds = settle_seconds
        self.clock = clock
        self.batch_size = batch_size
        self._lock = asyncio.Lock()

    async def scan(self, progress: Progress | None = None) -> IngestReport:
        """One pass over the folder; scans never overlap."""
        async with self._lock:
            return await self._scan(progress)

    async def _scan(self, progress: Progress | None) -> IngestReport:
        report = IngestReport()
        root = self.digest_dir
        if not root.is_dir():
            report.skipped.append((str(root), "digest folder does not exist"))
            return report
        files = await asyncio.to_thread(find_markdown, root)
        known = await self.repo.file_states()
        report.files_seen = len(files)
        now_ns = int(self.clock() * 1e9)
        settle_ns = int(self.settle_seconds * 1e9)
        seen: set[str] = set()
        batch: list[tuple[Digest, FileState]] = []
        for done, found in enumerate(files, 1):
            seen.add(found.path)
            old = known.get(found.path)
            if old is not None and (old.size, old.mtime_ns) == (found.size, found.mtime_ns):
                report.files_unchanged += 1
            elif now_ns - found.mtime_ns < settle_ns:
                report.files_waiting += 1
            else:
                parsed = await self._read(found, old, report)
                if parsed is not None:
                    batch.append(parsed)
                if len(batch) >= self.batch_size:
                    await self._store(batch, report)
                    batch = []
            if progress is not None:
                progress(done, len(files))
        await self._store(batch, report)
        for path in sorted(set(known) - seen):
            await self.repo.delete_file(path)
            report.files_deleted += 1
        return report

    async def _read(
        self, found: FoundFile, old: FileState | None, report: IngestReport
    ) -> tuple[Digest, FileState] | None:
        """Read and parse one file; what is a digest comes back to be stored in a batch."""
        try:
            parsed = await asyncio.to_thread(
                _read_and_parse, self.digest_dir, found, self.blog_base_url,
                old.content_hash if old else None,
            )
        except OSError as exc:  # vanished or unreadable between stat and read
            report.skipped.append((found.path, f"cannot read: {exc.strerror or exc}"))
            return None
        if parsed.same_bytes:
            await self.repo.touch_file(found.path, found.size, found.mtime_ns)
            report.files_unchanged += 1
            return None
        report.files_read += 1
        report.warnings.extend(parsed.warnings)
        if parsed.digest is None:
            await self.repo.record_skip(parsed.state)
            report.skipped.append((found.path, parsed.reason or "skipped"))
            return None
        return parsed.digest, parsed.state

    async def _store(self, batch: list[tuple[Digest, FileState]], report: IngestReport) -> None:
        """Store digests in one transaction: per-file transactions cost 10x at scale."""
        if not batch:
            return
        for result in await self.repo.store_digests(batch):
            report.papers_new += len(result.new_ids)
            report.papers_updated += len(result.updated_ids)
            report.papers_unchanged += len(result.unchanged_ids)
            report.new_papers.extend(result.new_ids)
            report.new_appearances.extend((pid, result.path) for pid in result.new_appearances)
