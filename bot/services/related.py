"""Related papers: every paper embedded once, at ingest; the nearest found in memory.

`Related.refresh` finds the papers that lack a vector of this model (new ones, ones whose
title or abstract changed, every one after a model change), embeds them a batch at a
time in a worker thread (the bot's embed function runs the model in a child process, so
its 40 MB never enter the bot: bot/services/embedding.py), stores the int8 codes with
the papers (bot/storage/vectors.py) and adds them to the index in memory. The bot calls
`refresh_soon` after each scan of the active instance, once delivery has queued the new
papers (the scan it runs on election catches an archive stored before this feature);
`paperfeed ingest` calls `refresh`.

The index (bot/domain/neighbours.py: 256 bytes a paper, 27 MB at 100 000 papers) is read
from the database on first use, or at the end of the bot's first background refresh,
straight into one array (in a thread, a chunk at a time). An index never changes: an
update makes a new one in a thread and swaps the reference; new papers are appended to
the same array, so a scan's papers cost their own rows, not a second index. What other
processes change (a `paperfeed ingest`, the active instance's scans seen from a standby,
papers that left with their digest) is caught by
a sync: one aggregate over the stored vectors (their count and the sum of their ids)
compared with the index, at most once a minute and at the end of each refresh; only when
they differ are the ids read and the difference applied. A vector replaced by another
process under the same id is the one change a sync does not see (until the next start).

A query (`related`) is a matrix-vector product over the whole index, about 7 ms at
100 000 papers, so it runs in a worker thread too. It gives the POOL nearest in meaning;
their tags (one query on the listings, not 50 papers loaded) let
bot.domain.related.topics_first put the papers of the same topics first, and only the
few shown are loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from bot.domain.neighbours import Codes, IndexBuilder, NeighbourIndex, quantise
from bot.domain.related import (
    POOL,
    Candidate,
    RelatedPaper,
    RelatedPapers,
    shared_tags,
    topics_first,
)
from bot.services.embedding import MODEL_NAME, WEIGHTS_SHA256, embed_papers_apart
from bot.storage.vectors import PaperText, VectorRepo

log = logging.getLogger(__name__)

EmbedPapers = Callable[[Sequence[tuple[str, str]]], npt.NDArray[np.float32]]
"""(title, abstract) pairs into one unit float32 row each; blocking (called in a thread)."""

MODEL_KEY = f"{MODEL_NAME} sha256:{WEIGHTS_SHA256[:16]}"
"""Stored with every vector: another model's vectors count as missing."""
K = 5
BATCH = 1000  # papers embedded per call of the embed function (about 1 s)
LOAD_CHUNK = 2_000  # vectors read per query when the index is built (about 5 ms each)
SYNC_EVERY = 60.0  # seconds between checks for changes made by other processes
_SPARE = 5  # neighbours asked for beyond k, in case some left the archive since the sync

Blobs = Sequence[tuple[int, bytes]]


class Related:
    """The papers nearest in meaning to a paper, and the upkeep of their vectors."""

    def __init__(self, vectors: VectorRepo, embed: EmbedPapers = embed_papers_apart, *,
                 model: str = MODEL_KEY,
                 batch_size: int = BATCH, sync_every: float = SYNC_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._vectors = vectors
        self._embed = embed
        self.model = model
        self.batch_size = batch_size
        self._sync_every = sync_every
        self._clock = clock
        self._index: NeighbourIndex | None = None
        self._synced_at = 0.0
        self._index_lock = asyncio.Lock()  # builds, syncs and swaps of the index
        self._refreshing = asyncio.Lock()  # one refresh at a time
        self._task: asyncio.Task[None] | None = None
        self._again = False

    @property
    def index(self) -> NeighbourIndex | None:
        """The index in memory, None until it is first built."""
        return self._index

    # --- answering ---------------------------------------------------------------------

    async def related(self, arxiv_id: str, k: int = K) -> RelatedPapers | None:
        """The k papers related to this one (any version, a URL works): of the POOL
        nearest in meaning, those of its topics first (topics_first), each with the tags
        the two share; None when the archive has no such paper. Not ``ready`` while the
        paper has no vector yet."""
        paper_id = await self._vectors.paper_id(arxiv_id)
        if paper_id is None:
            return None
        index = await self._current_index()
        if paper_id not in index:  # perhaps stored by another process since the last sync
            async with self._index_lock:
                await self._sync()
                index = self._current()
        if paper_id not in index:
            paper = (await self._vectors.papers([paper_id])).get(paper_id)
            return None if paper is None else RelatedPapers(paper, ready=False)
        found = await asyncio.to_thread(index.related, paper_id, max(POOL, k + _SPARE))
        ranked: list[Candidate] = []

        def choose(tags: Mapping[int, tuple[str, ...]]) -> list[int]:
            # A candidate without tags has left the archive since the index's last sync.
            pool = [Candidate(n.id, n.score, tags[n.id]) for n in found if n.id in tags]
            ranked.extend(topics_first(tags.get(paper_id, ()), pool, k))
            return [paper_id, *(c.id for c in ranked)]

        papers = await self._vectors.tags_then_papers(
            [paper_id, *(n.id for n in found)], choose)
        paper = papers.get(paper_id)
        if paper is None:  # it left the archive a moment ago
            return None
        return RelatedPapers(paper, tuple(
            RelatedPaper(papers[c.id], c.score, shared_tags(paper, papers[c.id]))
            for c in ranked if c.id in papers))

    async def missing(self) -> int:
        """Papers still without a vector of this model: /stats tells the operator, as
        their Related button says "not ready yet"."""
        return await self._vectors.count_missing(self.model)

    # --- upkeep ------------------------------------------------------------------------

    async def refresh(self, progress: Callable[[int], None] | None = None) -> int:
        """Embed every paper that lacks a vector of this model, `batch_size` at a time,
        never on the event loop; store them and bring the index (if built) up to date.
        Returns how many were stored; `progress` is told the running total per batch."""
        async with self._refreshing:
            stored_total = 0
            after = 0
            while True:
                batch = await self._vectors.missing(self.model, after, self.batch_size)
                if not batch:
                    break
                after = batch[-1].id
                blobs = await asyncio.to_thread(self._encode, batch)
                stored = await self._vectors.store(self.model,
                                                   list(zip(batch, blobs, strict=True)))
                stored_total += len(stored)
                if stored:
                    by_id = {text.id: blob for text, blob in zip(batch, blobs, strict=True)}
                    await self._update([(paper_id, by_id[paper_id]) for paper_id in stored])
                if progress is not None:
                    progress(stored_total)
                if len(batch) < self.batch_size:
                    break
            if self._index is not None:
                async with self._index_lock:
                    await self._sync()
            if stored_total:
                log.info("related: embedded %d papers", stored_total)
            return stored_total

    def refresh_soon(self) -> None:
        """Refresh in the background, then have the index ready (the bot: after each
        scan). While one runs, it runs once more when done instead."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._again = False
        self._task = asyncio.get_running_loop().create_task(self._background(),
                                                            name="related-refresh")

    async def wait(self) -> None:
        """Until the background refresh (if any) is done."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop a background refresh (a batch being embedded is left to finish)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _background(self) -> None:
        while True:
            self._again = False
            try:
                await self.refresh()
                await self._current_index()
            except Exception:
                log.exception("related: embedding the papers failed; the next scan tries again")
                return
            if not self._again:
                return

    def _encode(self, batch: Sequence[PaperText]) -> list[bytes]:
        """Embed and quantise (in a worker thread): one stored vector per paper."""
        vectors = np.asarray(self._embed([(t.title, t.abstract) for t in batch]))
        if vectors.ndim != 2 or len(vectors) != len(batch):
            raise ValueError(f"the embed function gave shape {vectors.shape} "
                             f"for {len(batch)} papers")
        return [bytes(row.tobytes()) for row in quantise(vectors)]

    # --- the index ---------------------------------------------------------------------

    def _current(self) -> NeighbourIndex:
        assert self._index is not None
        return self._index

    async def _current_index(self) -> NeighbourIndex:
        """The index, built on first use; synced when the last sync is old."""
        index = self._index
        if index is not None and self._clock() - self._synced_at < self._sync_every:
            return index
        async with self._index_lock:
            if self._index is None:
                await self._build()
            elif self._clock() - self._synced_at >= self._sync_every:
                await self._sync()
            return self._current()

    async def _build(self) -> None:
        """Read every stored vector of this model, a chunk at a time, each chunk copied
        (in a thread) into one array sized by a count taken first: neither 100 000 small
        bytes objects nor the chunks and a joined copy of them exist at once."""
        expected, _ = await self._vectors.signature(self.model)
        builder: IndexBuilder | None = None
        after = 0
        while True:
            chunk = await self._vectors.blobs(self.model, after, LOAD_CHUNK)
            if chunk:
                if builder is None:
                    builder = IndexBuilder(len(chunk[0][1]), expected)
                ids, codes = _arrays(chunk, builder.dim)
                await asyncio.to_thread(builder.add, ids, codes)
            if len(chunk) < LOAD_CHUNK:
                break
            after = chunk[-1][0]
        index = (builder or IndexBuilder(0)).build()
        self._index = index
        self._synced_at = self._clock()
        log.info("related: index of %d papers built (%.1f MB)", len(index),
                 index.nbytes / 2**20)

    async def _sync(self) -> None:
        """Bring the index in line with the database (index lock held, index built)."""
        index = self._current()
        self._synced_at = self._clock()
        count, id_sum = await self._vectors.signature(self.model)
        if (count, id_sum) == (len(index), int(index.ids.sum())):
            return
        stored = np.asarray(await self._vectors.ids(self.model), dtype=np.int64)
        gone = np.setdiff1d(index.ids, stored, assume_unique=True)
        new = np.setdiff1d(stored, index.ids, assume_unique=True)
        rows = await self._vectors.blobs_of(self.model, new.tolist()) if len(new) else []
        self._index = await asyncio.to_thread(_changed, index, rows, gone.tolist())

    async def _update(self, rows: Blobs) -> None:
        """Add or replace these vectors in the index, if it is built."""
        if self._index is None:
            return  # built from the database on first use, these included
        async with self._index_lock:
            self._index = await asyncio.to_thread(_changed, self._current(), rows, ())


def _arrays(rows: Blobs, dim: int) -> tuple[npt.NDArray[np.int64], Codes]:
    """Stored (id, bytes) rows as an id array and an int8 code matrix; rows of another
    length than `dim` (not written by this code) are left out, with a warning."""
    good = [(paper_id, blob) for paper_id, blob in rows if len(blob) == dim]
    if len(good) < len(rows):
        log.warning("related: %d stored vectors are not %d bytes long; left out",
                    len(rows) - len(good), dim)
    ids = np.fromiter((paper_id for paper_id, _ in good), dtype=np.int64, count=len(good))
    codes = np.frombuffer(b"".join(blob for _, blob in good), dtype=np.int8)
    return ids, codes.reshape(len(good), dim)


def _changed(index: NeighbourIndex, rows: Blobs, gone: Sequence[int]) -> NeighbourIndex:
    """A new index: `index` without `gone`, with `rows` added or replaced."""
    if len(gone):
        index = index.without(gone)
    if not rows:
        return index
    ids, codes = _arrays(rows, index.dim if len(index) else len(rows[0][1]))
    return index.with_rows(ids, codes)
