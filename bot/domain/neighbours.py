"""The papers nearest in meaning to one paper: exact cosine search over vectors in memory.

Every paper has one L2-normalised vector (``bot/services/embedding.py`` makes them at
ingest). Here they are stored and searched:

* **Storage** is one byte per dimension: :func:`encode` scales a vector so that its
  largest component is ±127 and rounds it to int8 (256 bytes for the 256-d model, which
  the database keeps with the paper); :func:`decode` gives the unit float32 vector back.
  Neighbours found with int8 vectors are the float32 ones (measured on the real digests:
  the same recall, topic overlap within 0.002), and 100 000 papers take 25.6 MB instead
  of 102 MB. Not float16: numpy converts float16 to float32 about eight times slower
  than int8, which cost 50 ms a query at 100 000 papers (int8: 6 ms).
* **Search** is exact, not approximate: one matrix-vector product over all papers, a
  chunk of int8 rows at a time converted to float32 in a small buffer (it stays in the
  CPU cache, and BLAS does the product), then a partition for the best k. Equal scores
  are ordered by id, so the answer never depends on the order rows were added in.

A :class:`NeighbourIndex` never changes once built: adding or removing papers makes a
new one (:meth:`NeighbourIndex.with_rows`, :meth:`NeighbourIndex.without`), so a
reader in one thread and a writer in another need no lock; swap the reference.

* **Memory**: an index is a view of the first n rows of arrays with room to spare. New
  papers have ids above every stored one (row ids only grow), so adding them is an
  append: the new index writes past n in the same arrays and views n + m rows, while
  whoever holds the old index still sees its n rows, which nobody writes again. Only the
  newest index of a set of arrays may append (the next one from the same old index gets
  arrays of its own); replacing or removing papers builds new arrays. So a digest's new
  papers cost their own rows, not a second copy of 25 MB, and :class:`IndexBuilder`
  fills one array straight from the database's chunks. Room never written is address
  space only: the kernel gives pages when they are first written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
"""A float32 vector (1-D) or matrix of row vectors (2-D)."""
Codes = npt.NDArray[np.int8]
"""Vectors as stored: int8, one row per paper."""

_SCALE = 127.0
_CHUNK = 1024  # rows converted at a time: 1024 x 256 float32 = 1 MB, within the L2 cache
_ROOM_SHARE = 4  # arrays get a quarter more rows than asked: months of daily digests
_ROOM_MIN = 64


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One paper near another: its id and the cosine similarity of their vectors."""

    id: int
    score: float


def quantise(vectors: npt.ArrayLike) -> Codes:
    """Row vectors (any scale) as int8 codes: each row scaled so its largest component is
    ±127. Only each row's direction is kept; a zero row stays zero."""
    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if matrix.ndim != 2:
        raise ValueError(f"expected a vector or a matrix of row vectors, got {matrix.ndim}-D")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("vectors must be finite")
    peak = np.abs(matrix).max(axis=1, keepdims=True) if matrix.shape[1] else \
        np.zeros((matrix.shape[0], 1), np.float32)
    scale = np.zeros_like(peak)
    np.divide(_SCALE, peak, out=scale, where=peak > 0)
    codes: Codes = np.rint(matrix * scale).astype(np.int8)
    return codes


def encode(vector: npt.ArrayLike) -> bytes:
    """One vector as the bytes to store with its paper (one byte per dimension)."""
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected one vector, got shape {array.shape}")
    return bytes(quantise(array)[0].tobytes())


def decode(data: bytes) -> Vector:
    """Stored bytes back into a unit float32 vector (zeros if the stored vector was zero)."""
    return _unit(np.frombuffer(data, dtype=np.int8).astype(np.float32))


def _unit(matrix: Vector) -> Vector:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    unit: Vector = np.zeros_like(matrix)
    np.divide(matrix, norms, out=unit, where=norms > 0)
    return unit


def _inverse_norms(codes: Codes, out: Vector) -> None:
    """1 / the norm of each row (0 for a zero row) into `out`, a block at a time."""
    for start in range(0, codes.shape[0], _CHUNK):
        block = codes[start:start + _CHUNK].astype(np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        part = out[start:start + len(block)]
        part[...] = 0.0
        np.divide(1.0, norms, out=part, where=norms > 0)


def _room(rows: int) -> int:
    return rows + max(rows // _ROOM_SHARE, _ROOM_MIN)


class _Rows:
    """The arrays that successive indexes share: `capacity` rows, the first `used` of
    them taken. A taken row is never written again, so any index may read its rows
    without a lock; `claim` hands out the rows past `used` to one index only."""

    __slots__ = ("_lock", "codes", "ids", "inv", "used")

    def __init__(self, capacity: int, dim: int) -> None:
        self.ids = np.empty(capacity, np.int64)
        self.codes: Codes = np.empty((capacity, dim), np.int8)
        self.inv: Vector = np.empty(capacity, np.float32)
        self.used = 0
        self._lock = threading.Lock()

    def claim(self, start: int, count: int) -> bool:
        """Take rows [start, start + count) if they fit and nobody took any from `start`
        on: only the index that ends at `used` may append (two writers on one index,
        in two threads, must not both write the same rows)."""
        with self._lock:
            if self.used != start or start + count > len(self.ids):
                return False
            self.used = start + count
            return True

    def copy(self, n: int, capacity: int) -> _Rows:
        """New arrays that start with the first n rows of these."""
        rows = _Rows(capacity, self.codes.shape[1])
        rows.ids[:n] = self.ids[:n]
        rows.codes[:n] = self.codes[:n]
        rows.inv[:n] = self.inv[:n]
        rows.used = n
        return rows

    def fill(self, start: int, ids: npt.NDArray[np.int64], codes: Codes,
             order: npt.NDArray[np.intp] | None = None) -> None:
        """Write rows from `start` on: `ids` (in their final order) and `codes[order]`
        (`codes` when no order), gathered a block at a time (a 25 MB source is never
        copied whole), with their norms."""
        end = start + len(ids)
        self.ids[start:end] = ids
        if order is None:
            self.codes[start:end] = codes
        else:
            for at in range(0, len(order), _CHUNK):
                part = order[at:at + _CHUNK]
                self.codes[start + at:start + at + len(part)] = codes[part]
        _inverse_norms(self.codes[start:end], self.inv[start:end])


class NeighbourIndex:
    """Stored vectors of many papers, searched exactly for the nearest ones. Immutable."""

    __slots__ = ("_codes", "_ids", "_inv", "_rows")

    _rows: _Rows
    _ids: npt.NDArray[np.int64]
    _codes: Codes
    _inv: Vector

    def __init__(self, ids: Sequence[int] | npt.NDArray[Any], codes: npt.ArrayLike) -> None:
        """`codes[i]` (int8, see :func:`quantise`) is the vector of paper `ids[i]`; ids are
        unique. Every row must have the same length. The rows are copied."""
        id_array, code_array = _checked(ids, codes)
        # Rows sorted by id: a lookup is a binary search (a dict of 100 000 ids would
        # cost 10 MB), ties in score fall to the smaller id by row order, and new
        # papers (larger ids) are appended.
        order = np.argsort(id_array, kind="stable")
        sorted_ids = id_array[order]
        if len(sorted_ids) > 1 and not np.all(sorted_ids[1:] != sorted_ids[:-1]):
            raise ValueError("ids must be unique")
        rows = _Rows(_room(len(sorted_ids)), code_array.shape[1])
        in_order = bool(np.all(order == np.arange(len(order))))
        rows.fill(0, sorted_ids, code_array, None if in_order else order)
        rows.used = len(sorted_ids)
        self._view(rows, len(sorted_ids))

    def _view(self, rows: _Rows, n: int) -> None:
        self._rows = rows
        self._ids = rows.ids[:n]
        self._codes = rows.codes[:n]
        self._inv = rows.inv[:n]

    @classmethod
    def _of(cls, rows: _Rows, n: int) -> NeighbourIndex:
        """The index of the first n rows of these arrays (already sorted and unique)."""
        index = cls.__new__(cls)
        index._view(rows, n)
        return index

    def _row(self, paper_id: int) -> int | None:
        row = int(np.searchsorted(self._ids, paper_id))
        return row if row < len(self._ids) and self._ids[row] == paper_id else None

    @classmethod
    def from_vectors(cls, ids: Sequence[int], vectors: npt.ArrayLike) -> NeighbourIndex:
        """An index of float vectors (quantised here)."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.size == 0:
            matrix = matrix.reshape(len(ids), matrix.shape[-1] if matrix.ndim == 2 else 0)
        return cls(ids, quantise(matrix))

    @classmethod
    def from_blobs(cls, rows: Iterable[tuple[int, bytes]], dim: int | None = None
                   ) -> NeighbourIndex:
        """An index of (id, stored bytes) pairs, as read from the database. Blobs of another
        length than the first (or than `dim`) are an error: a model change needs every
        paper embedded again."""
        ids: list[int] = []
        chunks: list[bytes] = []
        for paper_id, blob in rows:
            if dim is None:
                dim = len(blob)
            if len(blob) != dim:
                raise ValueError(f"paper {paper_id}: a {len(blob)}-byte vector, expected {dim}")
            ids.append(paper_id)
            chunks.append(blob)
        codes = np.frombuffer(b"".join(chunks), dtype=np.int8).reshape(len(ids), dim or 0)
        return cls(ids, codes)

    @property
    def dim(self) -> int:
        return int(self._codes.shape[1])

    @property
    def ids(self) -> npt.NDArray[np.int64]:
        """The ids, ascending (a read-only view)."""
        view = self._ids.view()
        view.flags.writeable = False
        return view

    @property
    def nbytes(self) -> int:
        """Memory held by the vectors, ids and norms."""
        return int(self._codes.nbytes + self._ids.nbytes + self._inv.nbytes)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, paper_id: object) -> bool:
        return isinstance(paper_id, int | np.integer) and self._row(int(paper_id)) is not None

    def vector(self, paper_id: int) -> Vector | None:
        """The unit float32 vector stored for a paper, or None if it has none."""
        row = self._row(paper_id)
        if row is None:
            return None
        return _unit(self._codes[row].astype(np.float32))

    def scores(self, vector: npt.ArrayLike) -> Vector:
        """Cosine similarity of a vector (any length; its direction counts) with every row."""
        raw = np.asarray(vector, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(raw)):
            raise ValueError("the vector must be finite")
        query = _unit(raw)
        if query.shape[0] != self.dim:
            raise ValueError(f"a {query.shape[0]}-d vector for a {self.dim}-d index")
        out = np.empty(len(self._ids), np.float32)
        buffer = np.empty((min(_CHUNK, len(self._ids)), self.dim), np.float32)
        for start in range(0, len(self._ids), _CHUNK):
            block = self._codes[start:start + _CHUNK]
            rows = buffer[:len(block)]
            rows[...] = block
            np.dot(rows, query, out=out[start:start + len(block)])
        out *= self._inv
        return out

    def nearest(self, vector: npt.ArrayLike, k: int = 5, *, exclude: Iterable[int] = ()
                ) -> list[Neighbour]:
        """The k rows most similar to `vector`, best first, equal scores by id; papers in
        `exclude` are never returned. Fewer than k when the index holds fewer."""
        if k <= 0 or len(self._ids) == 0:
            return []
        scores = self.scores(vector)
        excluded = {row for row in map(self._row, exclude) if row is not None}
        k = min(k, len(scores) - len(excluded))
        if k <= 0:
            return []
        scores[list(excluded)] = -np.inf
        if k < len(scores):
            # Everything scoring at least the k-th best (finite: k rows are not excluded):
            # ties at the boundary all stay in, so the id order below decides between
            # them, not the partition's whim.
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            candidates = np.flatnonzero(scores >= kth)
        else:
            candidates = np.arange(len(scores))
        order = np.lexsort((candidates, -scores[candidates]))[:k]  # rows are in id order
        best = candidates[order]
        return [Neighbour(int(self._ids[row]), float(scores[row])) for row in best]

    def related(self, paper_id: int, k: int = 5) -> list[Neighbour]:
        """The k papers nearest to a paper of the index, itself excluded; [] when the
        paper has no vector here."""
        row = self._row(paper_id)
        if row is None:
            return []
        return self.nearest(self._codes[row].astype(np.float32), k, exclude=(paper_id,))

    def with_rows(self, ids: Sequence[int] | npt.NDArray[Any], codes: npt.ArrayLike
                  ) -> NeighbourIndex:
        """A new index with these papers added, or replaced where the id is already here.
        Papers whose ids all come after this index's last are appended in place when
        this is the newest index of its arrays (see the module docstring)."""
        new_ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        new_codes = np.asarray(codes)
        if new_codes.size == 0 and new_codes.ndim < 2:
            new_codes = new_codes.reshape(len(new_ids), self.dim)
        if len(self._ids) and new_codes.ndim == 2 and new_codes.shape[1] != self.dim:
            raise ValueError(f"{new_codes.shape[1]}-d vectors for a {self.dim}-d index")
        if not len(self._ids):
            return NeighbourIndex(new_ids, new_codes)
        new_ids, new_codes = _checked(new_ids, new_codes)
        if not len(new_ids):
            return self
        order = np.argsort(new_ids, kind="stable")
        new_ids = new_ids[order]
        if len(new_ids) > 1 and not np.all(new_ids[1:] != new_ids[:-1]):
            raise ValueError("ids must be unique")
        n, m = len(self._ids), len(new_ids)
        if new_ids[0] > self._ids[-1]:  # all new and after the last: an append
            rows = self._rows
            if not rows.claim(n, m):
                rows = rows.copy(n, _room(n + m))
                rows.used = n + m
            rows.fill(n, new_ids, new_codes, order)
            return NeighbourIndex._of(rows, n + m)
        # Some replaced or in between: new arrays, merged in id order.
        kept = np.flatnonzero(~np.isin(self._ids, new_ids))
        merged = np.concatenate([self._ids[kept], new_ids])
        by_id = np.argsort(merged, kind="stable")
        rows = _Rows(_room(len(merged)), self.dim)
        rows.ids[:len(merged)] = merged[by_id]
        for at in range(0, len(by_id), _CHUNK):
            part = by_id[at:at + _CHUNK]
            block = rows.codes[at:at + len(part)]
            old = part < len(kept)
            block[old] = self._codes[kept[part[old]]]
            block[~old] = new_codes[order[part[~old] - len(kept)]]
        _inverse_norms(rows.codes[:len(merged)], rows.inv[:len(merged)])
        rows.used = len(merged)
        return NeighbourIndex._of(rows, len(merged))

    def without(self, ids: Iterable[int]) -> NeighbourIndex:
        """A new index without these papers (ids not here are ignored)."""
        kept = np.flatnonzero(~np.isin(self._ids, np.fromiter(ids, dtype=np.int64)))
        if len(kept) == len(self._ids):
            return self
        rows = _Rows(_room(len(kept)), self.dim)
        rows.ids[:len(kept)] = self._ids[kept]
        rows.inv[:len(kept)] = self._inv[kept]
        for at in range(0, len(kept), _CHUNK):
            part = kept[at:at + _CHUNK]
            rows.codes[at:at + len(part)] = self._codes[part]
        rows.used = len(kept)
        return NeighbourIndex._of(rows, len(kept))


class IndexBuilder:
    """An index filled a chunk at a time, as the database gives the vectors (by id): the
    chunks go straight into one array sized for the expected count, so the chunks and
    a joined copy never exist together. Not for use from two threads at once."""

    def __init__(self, dim: int, expected: int = 0) -> None:
        self.dim = dim
        self._rows = _Rows(_room(expected), dim)
        self._n = 0
        self._ordered = True  # every id so far above the one before
        self._built = False

    def __len__(self) -> int:
        return self._n

    def add(self, ids: Sequence[int] | npt.NDArray[Any], codes: npt.ArrayLike) -> None:
        """Append these rows; more than expected makes the array larger (one copy)."""
        if self._built:
            raise RuntimeError("the index was built already")
        id_array, code_array = _checked(ids, codes, self.dim)
        m = len(id_array)
        if not m:
            return
        if self._n + m > len(self._rows.ids):
            self._rows = self._rows.copy(self._n, _room(self._n + m))
        previous = self._rows.ids[self._n - 1] if self._n else None
        if (previous is not None and id_array[0] <= previous) or (
                m > 1 and not np.all(id_array[1:] > id_array[:-1])):
            self._ordered = False
        self._rows.fill(self._n, id_array, code_array)
        self._n += m

    def build(self) -> NeighbourIndex:
        """The index of every row added (sorted here if they did not come by id)."""
        self._built = True
        n = self._n
        if not self._ordered:
            return NeighbourIndex(self._rows.ids[:n], self._rows.codes[:n])
        self._rows.used = n
        return NeighbourIndex._of(self._rows, n)


def _checked(ids: Sequence[int] | npt.NDArray[Any], codes: npt.ArrayLike,
             dim: int | None = None) -> tuple[npt.NDArray[np.int64], Codes]:
    """Ids as int64 and codes as a 2-D int8 array with a row per id (`dim` wide)."""
    id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
    code_array = np.asarray(codes)
    if code_array.size == 0 and code_array.ndim < 2:
        code_array = code_array.reshape(len(id_array), dim or 0)
    if code_array.dtype != np.int8 or code_array.ndim != 2:
        raise ValueError("codes must be a 2-D int8 array (see quantise)")
    if len(id_array) != code_array.shape[0]:
        raise ValueError(f"{len(id_array)} ids for {code_array.shape[0]} vectors")
    if dim is not None and code_array.shape[1] != dim:
        raise ValueError(f"{code_array.shape[1]}-d vectors for a {dim}-d index")
    return id_array, code_array
