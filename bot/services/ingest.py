"""Ingest: scan the digest folder, parse what changed, store it, report what is new.

Change detection is by path, size, mtime and content hash, never by date: files arrive
days late and in batches. An unchanged folder costs one stat per file and one query.
A file modified within the last `settle_seconds` may still be being written, so it
waits for the next scan.

A large scan (a first ingest) is a pipeline: while one batch of parsed digests is being
written, the next files are read and parsed in a separate process. Not in a thread:
Python's parsing would hold the GIL that SQLite's thread takes back after every row it
writes, and the two would simply take turns. Batches are large (BATCH_BYTES of
markdown, a few thousand papers) because every commit makes the full-text index write,
and later merge, a segment: 64-file batches cost twice the index work. One batch
still commits within a second or two, well inside any other writer's busy timeout.
A small scan (a daily one) reads its files in a thread, as starting a process would
cost more than it saves. The process is spawned (forking a process with threads and
open connections is unsafe), so, as multiprocessing requires, a program that embeds
paperfeed and starts a large scan must guard its main module with
`if __name__ == "__main__":` (paperfeed's own commands do). Spawning also imports that
main module in the new process: 1.4 s for paperfeed's command line, 1.9 s for the
benchmarks, before it parses anything. So the scan reads the first chunks in a thread
until the process is up (its first task, `_parser_ready`, has returned), then sends it
the rest: a 270-file scan took 1.33 s waiting for it, 0.96 s reading meanwhile.

Files are read CHUNK_FILES at a time in both ways, and a file that is not a digest is
stored (with why) in the batch it falls in, not in a transaction of its own.

While a scan reads and stores files, the garbage collector (of both processes) starts a
collection only every GC_THRESHOLD new objects instead of every 700: see
`_fewer_collections`.

If that process dies (the OOM killer, a crash: the pool is broken), the scan goes on
without it: the chunks it had not returned, and the ones not yet sent, are read in a
thread as a small scan reads its files, after one logged warning. Reading and parsing
have no side effects, so reading a lost chunk again is safe, and the report is the one
a normal scan gives.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.domain.limits import Limits, apply_limits
from bot.domain.models import Digest, IngestReport, ParseWarning
from bot.domain.parsing import decode_digest, parse_digest
from bot.errors import DigestError, NotADigest
from bot.storage.records import FileState
from bot.storage.repository import ArchiveRepo

DEFAULT_SETTLE_SECONDS = 5.0
DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024  # no real digest comes near; DIGEST_MAX_BYTES
DEFAULT_LIMITS = Limits()  # the default limits (settings.analysis_max_bytes, figures_max)
BATCH_SIZE = 1000  # digest files stored per transaction, at most
BATCH_BYTES = 16 * 1024 * 1024  # ... or fewer files holding about this much markdown
PROCESS_ABOVE = 200  # files to read: more are parsed in a separate process
CHUNK_FILES = 32  # files per task sent to that process
CHUNKS_AHEAD = 8  # tasks in flight: bounds the parsed text held in memory
GC_THRESHOLD = 50_000  # the collector's first threshold while a scan runs (default 700)

Progress = Callable[[int, int], None]
ExecutorFactory = Callable[[], Executor]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FoundFile:
    """A markdown file in the digest folder, as one stat saw it."""

    path: str  # relative to the folder, POSIX separators
    size: int
    mtime_ns: int


@dataclass
class Listing:
    """What one walk of the digest folder found, and what it could not look at.

    ``unlisted``: folders (and files) that could not be read this time; the archive's
    files below them are not "gone", their papers stay until a scan can look again.
    """

    files: list[FoundFile] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    unlisted: list[str] = field(default_factory=list)  # relative paths

    def hides(self, path: str) -> bool:
        """Whether ``path`` lies where this walk could not look."""
        return any(path == u or path.startswith(u + "/") for u in self.unlisted)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def find_markdown(root: Path, *, scandir: Callable[[Path], Any] = os.scandir) -> Listing:
    """Every `*.md` below root (hidden entries skipped), sorted so dates come in order.

    Symbolic links are followed only where they lead inside root (a link to a folder of
    digests elsewhere in root works; one to /etc does not), and a folder is listed once,
    under its real path, however many links lead to it, so a link loop ends. A folder
    that cannot be listed or a file that vanishes between listing and stat is a problem
    of the listing, not of the scan.
    ``scandir``: how a folder is listed (tests make one fail as permissions would).
    """
    listing = Listing()
    real_root = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    stack: list[Path] = [root]
    linked: list[Path] = []  # folders reached by a link: after every real one, so that
    # a folder with a link to it is listed under its real path
    while stack or linked:
        folder = stack.pop() if stack else linked.pop(0)
        rel_folder = folder.relative_to(root).as_posix()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen:
                listing.problems.append((rel_folder, "a link to a folder listed already "
                                                     "(or a link loop): not listed twice"))
                continue
            seen.add((st.st_dev, st.st_ino))
            with scandir(folder) as scanned:
                entries = list(scanned)
        except OSError as exc:
            listing.problems.append((rel_folder, f"cannot list: {exc.strerror or exc}"))
            listing.unlisted.append(rel_folder)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = Path(entry.path).relative_to(root).as_posix()
            try:
                if entry.is_symlink() and not _inside(os.path.realpath(entry.path), real_root):
                    listing.problems.append((rel, "a symbolic link out of the digest folder: "
                                                  "not followed"))
                    continue
                if entry.is_dir(follow_symlinks=True):
                    (linked if entry.is_symlink() else stack).append(Path(entry.path))
                elif entry.name.endswith(".md") and entry.is_file(follow_symlinks=True):
                    st = entry.stat(follow_symlinks=True)
                    listing.files.append(FoundFile(rel, st.st_size, st.st_mtime_ns))
            except OSError as exc:  # vanished since the listing, a dangling link, ...
                listing.problems.append((rel, f"cannot read: {exc.strerror or exc}"))
                listing.unlisted.append(rel)
    listing.files.sort(key=lambda f: f.path)
    return listing


@dataclass(frozen=True, slots=True)
class _Parsed:
    """The outcome of reading one file, computed off the event loop."""

    state: FileState
    digest: Digest | None  # None when skipped or unchanged
    reason: str | None  # why it was skipped
    warnings: tuple[ParseWarning, ...] = ()
    same_bytes: bool = False  # touched, but the content hash is the stored one


def _read_and_parse(
    root: Path, found: FoundFile, blog_base_url: str | None, known_hash: str | None,
    limits: Limits = DEFAULT_LIMITS,
) -> _Parsed:
    raw = (root / found.path).read_bytes()
    content_hash = hashlib.sha256(raw).hexdigest()
    if content_hash == known_hash:
        return _Parsed(FileState(found.path, content_hash, found.size, found.mtime_ns),
                       None, None, same_bytes=True)
    text, warnings = decode_digest(raw, found.path)
    try:
        digest = parse_digest(text, found.path, blog_base_url=blog_base_url)
    except NotADigest as exc:
        state = FileState(found.path, content_hash, found.size, found.mtime_ns, str(exc))
        return _Parsed(state, None, f"not a digest: {exc.reason}", tuple(warnings))
    except DigestError as exc:
        state = FileState(found.path, content_hash, found.size, found.mtime_ns, str(exc))
        return _Parsed(state, None, f"not usable: {exc}", tuple(warnings))
    digest = apply_limits(digest, limits)
    state = FileState(found.path, content_hash, found.size, found.mtime_ns, None)
    return _Parsed(state, digest, None, tuple(warnings) + digest.warnings)


_Read = _Parsed | OSError  # OSError: vanished or unreadable between stat and read


def _read_chunk(
    root: Path, files: list[tuple[FoundFile, str | None]], blog_base_url: str | None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[_Read]:
    """Read and parse a chunk of files: in the parser process of a large scan (module
    docstring), or in a thread."""
    out: list[_Read] = []
    for found, known_hash in files:
        try:
            out.append(_read_and_parse(root, found, blog_base_url, known_hash, limits))
        except OSError as exc:
            out.append(exc)
    return out


@contextmanager
def _fewer_collections(threshold: int = GC_THRESHOLD) -> Iterator[None]:
    """Let the cyclic garbage collector run less often inside the block, then as before.

    Why: a scan holds batches of parsed papers and their rows (hundreds of thousands of
    objects in a large one, nearly none in reference cycles: they are freed by reference
    counting), and with the default threshold of 700 new objects the collector kept
    walking them: in a 100 000-paper ingest it took 8 s of the main process's 45 s of
    CPU, a third of it in full collections; in a 48-file scan 7-20 ms of 200. Collection
    stays on, only rarer: whatever else runs meanwhile (the bot) loses nothing but the
    timing of its collections.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _parser_ready() -> bool:
    """The first task of the parser process: it is up once this returns."""
    return True


def _parser_process_start() -> None:
    """The parser process runs with fewer collections for its whole (one scan) life."""
    first, *rest = gc.get_threshold()
    gc.set_threshold(max(GC_THRESHOLD, first), *rest)


def spawn_parser_process() -> Executor:
    """The executor a large scan parses in: one spawned process (module docstring)."""
    # spawn: forking this process (its threads, its open connections) is not safe,
    # and a spawned worker leaves nothing behind once the scan is over.
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_parser_process_start)


def _warn_parser_died(exc: BaseException) -> None:
    log.warning("the parser process died (%s); the scan continues without it, "
                "reading the files in this process", exc)


@dataclass(frozen=True, slots=True)
class DeleteGuard:
    """When a scan may remove the papers of files that are gone from the folder.

    A folder that is suddenly empty, or that lost more than ``share`` of the files the
    archive knows (and more than ``minimum`` of them), is far more likely an unmounted
    volume or a sync tool at work than a decision; so nothing is removed, and the next
    scan looks again. A few files deleted the ordinary way go as before.
    """

    share: float = 0.5
    minimum: int = 5

    def holds(self, gone: int, known: int) -> bool:
        if gone == known:  # the folder holds none of them: empty, or not the same folder
            return True
        return gone > self.minimum and gone > self.share * known


class Ingestor:
    """Brings the archive in line with the digest folder.

    `parser_executor` makes the executor of a large scan (one per scan, shut down after
    it); tests pass one whose process dies. ``read_while_starting``: read the first files
    in this process until that one is up (tests turn it off to give it every file).
    """

    def __init__(
        self,
        repo: ArchiveRepo,
        digest_dir: Path,
        *,
        blog_base_url: str | None = None,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        clock: Callable[[], float] = time.time,
        batch_size: int = BATCH_SIZE,
        batch_bytes: int = BATCH_BYTES,
        process_above: int = PROCESS_ABOVE,
        parser_executor: ExecutorFactory = spawn_parser_process,
        guard: DeleteGuard | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        limits: Limits = DEFAULT_LIMITS,
        lister: Callable[[Path], Listing] = find_markdown,
        read_while_starting: bool = True,
    ) -> None:
        self.repo = repo
        self.digest_dir = digest_dir
        self.blog_base_url = blog_base_url
        self.settle_seconds = settle_seconds
        self.clock = clock
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.process_above = process_above
        self.parser_executor = parser_executor
        self.guard = guard or DeleteGuard()
        self.max_file_bytes = max_file_bytes
        self.limits = limits
        self.lister = lister
        self.read_while_starting = read_while_starting
        self._lock = asyncio.Lock()
        self._told: set[tuple[str, str]] = set()  # folder problems already logged

    async def scan(self, progress: Progress | None = None, *, prune: bool = False,
                   settle_seconds: float | None = None) -> IngestReport:
        """One pass over the folder; scans never overlap. ``prune``: remove files gone
        from the folder even when the delete guard would hold them back.
        ``settle_seconds``: this scan's settle time, for a caller that knows more (the
        folder watcher waited for the files it was told about to go quiet)."""
        async with self._lock:
            return await self._scan(progress, prune,
                                    self.settle_seconds if settle_seconds is None
                                    else settle_seconds)

    async def _scan(self, progress: Progress | None, prune: bool, settle: float
                    ) -> IngestReport:
        report = IngestReport()
        root = self.digest_dir
        if not root.is_dir():
            report.skipped.append((str(root), "digest folder does not exist"))
            return report
        listing, known = await asyncio.gather(  # the walk and the query, side by side
            asyncio.to_thread(self.lister, root), self.repo.file_states())
        self._report_problems(listing, report)
        files = listing.files
        report.files_seen = len(files)
        now_ns = int(self.clock() * 1e9)
        settle_ns = int(settle * 1e9)
        todo: list[tuple[FoundFile, FileState | None]] = []
        done = 0
        for found in files:
            old = known.get(found.path)
            if old is not None and (old.size, old.mtime_ns) == (found.size, found.mtime_ns):
                report.files_unchanged += 1
            elif now_ns - found.mtime_ns < settle_ns:
                report.files_waiting += 1
            elif 0 < self.max_file_bytes < found.size:
                await self._skip_oversized(found, report)
            else:
                todo.append((found, old))
                continue
            done += 1
            if progress is not None:
                progress(done, len(files))
        writer = _Writer(self.repo, report)
        batch: list[tuple[Digest | None, FileState]] = []
        batch_bytes = 0
        with _fewer_collections():
            try:
                async with aclosing(self._read_all(todo)) as reads:
                    async for found, read in reads:
                        parsed = await self._handle(found, read, writer, report)
                        if parsed is not None:
                            batch.append(parsed)
                            batch_bytes += found.size
                        if len(batch) >= self.batch_size or batch_bytes >= self.batch_bytes:
                            await writer.submit(batch)
                            batch, batch_bytes = [], 0
                        done += 1
                        if progress is not None:
                            progress(done, len(files))
                await writer.submit(batch)
            finally:
                await writer.drain()
        seen = {found.path for found in files}
        gone = sorted(p for p in set(known) - seen if not listing.hides(p))
        if gone and not prune and self.guard.holds(len(gone), len(known)):
            report.deletions_held = len(gone)
            log.warning(
                "%d of the %d digest files the archive knows are gone from %s; removing "
                "none of their papers (an unmounted or half-synced folder would otherwise "
                "empty the archive). If they were deleted on purpose: paperfeed ingest "
                "--prune", len(gone), len(known), root)
            return report
        for path in gone:
            await self.repo.delete_file(path)
            report.files_deleted += 1
        return report

    def _report_problems(self, listing: Listing, report: IngestReport) -> None:
        """Each problem of the folder is in the report of every scan, and logged once."""
        for path, reason in listing.problems:
            report.skipped.append((path or ".", reason))
            if (path, reason) not in self._told:
                self._told.add((path, reason))
                log.warning("digest folder: %s: %s", path or ".", reason)

    async def _skip_oversized(self, found: FoundFile, report: IngestReport) -> None:
        """A file too large to be a digest is recorded as skipped without being read."""
        reason = (f"{found.size} bytes, over the limit of {self.max_file_bytes} "
                  "(DIGEST_MAX_BYTES): not read")
        log.warning("skipping %s: %s", found.path, reason)
        await self.repo.record_skip(FileState(found.path, "", found.size, found.mtime_ns,
                                              reason))
        report.skipped.append((found.path, reason))

    async def _read_all(
        self, todo: list[tuple[FoundFile, FileState | None]]
    ) -> AsyncGenerator[tuple[FoundFile, _Read], None]:
        """Every file of `todo` read and parsed, in order."""
        hashes = [(found, old.content_hash if old else None) for found, old in todo]
        chunks = [hashes[i : i + CHUNK_FILES] for i in range(0, len(hashes), CHUNK_FILES)]
        if len(todo) <= self.process_above:
            # A chunk of files per thread hop, not a file: a hop and a turn of the event
            # loop per file cost a fifth of a 48-file scan.
            for chunk in chunks:
                reads = await asyncio.to_thread(
                    _read_chunk, self.digest_dir, chunk, self.blog_base_url, self.limits)
                for (found, _), read in zip(chunk, reads, strict=True):
                    yield found, read
            return
        loop = asyncio.get_running_loop()
        pool = self.parser_executor()
        broken = False
        started: asyncio.Future[Any] | None = None  # done once the process is up
        try:
            started = loop.run_in_executor(pool, _parser_ready)
        except BrokenExecutor as exc:  # it died at once
            _warn_parser_died(exc)
            broken = True
        pending: deque[asyncio.Future[list[_Read]]] = deque()  # chunks first, first + 1, …
        first = 0
        try:
            for index in range(len(chunks)):
                if not broken and started is not None and (
                        started.done() or not self.read_while_starting):
                    if started.done() and not started.cancelled() and (
                            error := started.exception()):
                        _warn_parser_died(error)  # it died while starting
                        broken = True
                    if not pending:
                        first = index  # the process takes over from here
                    while (not broken and len(pending) < CHUNKS_AHEAD
                           and first + len(pending) < len(chunks)):
                        chunk = chunks[first + len(pending)]
                        try:
                            pending.append(loop.run_in_executor(
                                pool, _read_chunk, self.digest_dir, chunk, self.blog_base_url,
                                self.limits))
                        except BrokenExecutor as exc:  # it died before this submit
                            _warn_parser_died(exc)
                            broken = True
                results: list[_Read] | None = None
                if pending:  # pending[0] is this chunk
                    try:
                        results = await pending.popleft()
                    except BrokenExecutor as exc:  # it died before returning this chunk
                        if not broken:
                            _warn_parser_died(exc)
                        broken = True
                    first += 1
                if results is None:  # read here, as a small scan does: while the process
                    # starts (a second or two of imports), or after it died
                    results = await asyncio.to_thread(
                        _read_chunk, self.digest_dir, chunks[index], self.blog_base_url,
                        self.limits)
                for (found, _), read in zip(chunks[index], results, strict=True):
                    yield found, read
        finally:
            if started is not None:
                started.cancel()  # a scan read before the process came up: nothing waits
            pool.shutdown(wait=False, cancel_futures=True)  # never block the event loop

    async def _handle(
        self, found: FoundFile, parsed: _Read, writer: _Writer, report: IngestReport
    ) -> tuple[Digest | None, FileState] | None:
        """Account for one file read; what is to be stored comes back to go in a batch: a
        digest, or None for a file that is not one (remembered with its reason, so that
        an unchanged one is not read again)."""
        if isinstance(parsed, OSError):  # vanished or unreadable between stat and read
            report.skipped.append((found.path, f"cannot read: {parsed.strerror or parsed}"))
            return None
        if parsed.same_bytes:
            await writer.drain()  # writes stay in file order, one transaction at a time
            await self.repo.touch_file(found.path, found.size, found.mtime_ns)
            report.files_unchanged += 1
            return None
        report.files_read += 1
        report.warnings.extend(parsed.warnings)
        if parsed.digest is None:
            report.skipped.append((found.path, parsed.reason or "skipped"))
        return parsed.digest, parsed.state



class _Writer:
    """Stores batches of digests in order, one transaction at a time, in the background:
    the scan reads and parses the next files meanwhile."""

    def __init__(self, repo: ArchiveRepo, report: IngestReport) -> None:
        self._repo = repo
        self._report = report
        self._pending: asyncio.Task[None] | None = None

    async def submit(self, batch: list[tuple[Digest | None, FileState]]) -> None:
        """Start storing this batch once the previous one is stored."""
        await self.drain()
        if batch:
            self._pending = asyncio.create_task(self._store(batch))

    async def drain(self) -> None:
        """Wait for the batch being stored (and raise what storing it raised)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def _store(self, batch: list[tuple[Digest | None, FileState]]) -> None:
        report = self._report
        for result in await self._repo.store_digests(batch):
            report.papers_new += len(result.new_ids)
            report.papers_updated += len(result.updated_ids)
            report.papers_unchanged += len(result.unchanged_ids)
            report.new_papers.extend(result.new_ids)
            report.new_appearances.extend((pid, result.path) for pid in result.new_appearances)
