"""The nearest papers of one paper: exact, itself excluded, ties by id, stored as bytes."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.neighbours import (
    IndexBuilder,
    Neighbour,
    NeighbourIndex,
    decode,
    encode,
    quantise,
)


def unit_rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force(ids: list[int], codes: np.ndarray, query: np.ndarray, k: int,
                exclude: set[int]) -> list[int]:
    """Every score computed one by one in float64, sorted by (-score, id)."""
    q = query.astype(np.float64) / np.linalg.norm(query)
    scored = []
    for paper_id, row in zip(ids, codes.astype(np.float64), strict=True):
        if paper_id in exclude:
            continue
        norm = np.linalg.norm(row)
        scored.append((-(row @ q / norm if norm else 0.0), paper_id))
    return [paper_id for _, paper_id in sorted(scored)[:k]]


def test_exact_against_brute_force() -> None:
    vectors = unit_rows(300, seed=1)
    ids = [int(i) for i in np.random.default_rng(2).permutation(10_000)[:300]]
    index = NeighbourIndex.from_vectors(ids, vectors)
    codes = quantise(vectors)
    for row in range(0, 300, 7):
        expected = brute_force(ids, codes, codes[row].astype(np.float32), 5, {ids[row]})
        assert [n.id for n in index.related(ids[row], 5)] == expected


def test_close_to_float32_neighbours() -> None:
    """Storing int8 barely changes who is nearest."""
    vectors = unit_rows(500, dim=64, seed=3)
    index = NeighbourIndex.from_vectors(list(range(500)), vectors)
    same = 0
    for row in range(100):
        scores = vectors @ vectors[row]
        scores[row] = -np.inf
        truth = set(np.argsort(-scores)[:5].tolist())
        same += len(truth & {n.id for n in index.related(row, 5)})
    assert same >= 0.95 * 500


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), dim=st.integers(1, 8), k=st.integers(0, 50),
       seed=st.integers(0, 2**32 - 1))
def test_nearest_is_brute_force_whatever_the_sizes(n: int, dim: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Few distinct values: many exact ties, zero rows, repeated rows.
    vectors = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
    ids = [int(i) for i in rng.permutation(1000)[:n]]
    index = NeighbourIndex.from_vectors(ids, vectors)
    query = rng.integers(-2, 3, size=dim).astype(np.float32)
    if not query.any():
        query[0] = 1
    exclude = set(ids[:2])
    got = index.nearest(query, k, exclude=exclude)
    # The scores are the float64 cosines of the stored vectors, to float32 precision...
    codes = quantise(vectors).astype(np.float64) if n else np.zeros((0, dim))
    norms = np.linalg.norm(codes, axis=1)
    cosines = np.divide(codes @ query, norms * np.linalg.norm(query), out=np.zeros(n),
                        where=norms > 0)
    scores = index.scores(query)
    by_id = dict(zip(index.ids.tolist(), scores.tolist(), strict=True))
    assert [by_id[i] for i in ids] == pytest.approx(cosines.tolist(), abs=1e-5)
    # ...and the answer is the best k of them, equal scores by id, none excluded.
    expected = sorted((-score, paper_id) for paper_id, score in by_id.items()
                      if paper_id not in exclude)[:k]
    assert [(g.id, g.score) for g in got] == [(i, -s) for s, i in expected]


def test_excludes_itself_even_among_duplicates() -> None:
    vectors = np.repeat(unit_rows(1), 4, axis=0)
    index = NeighbourIndex.from_vectors([10, 11, 12, 13], vectors)
    assert [n.id for n in index.related(12, 5)] == [10, 11, 13]
    assert all(n.score == pytest.approx(1.0) for n in index.related(12, 5))


def test_ties_go_to_the_smaller_id_whatever_the_insertion_order() -> None:
    a, b = unit_rows(2, seed=4)
    vectors = np.stack([a, b, b, b, b])
    first = NeighbourIndex.from_vectors([1, 50, 7, 30, 2], vectors)
    second = NeighbourIndex.from_vectors([30, 2, 1, 7, 50], vectors[[3, 4, 0, 2, 1]])
    for index in (first, second):
        assert [n.id for n in index.nearest(b, 3)] == [2, 7, 30]
        assert [n.id for n in index.related(7, 2)] == [2, 30]


def test_k_larger_than_the_index_returns_everything_else_in_order() -> None:
    vectors = unit_rows(4, seed=5)
    index = NeighbourIndex.from_vectors([1, 2, 3, 4], vectors)
    related = index.related(1, 10)
    assert sorted(n.id for n in related) == [2, 3, 4]
    assert [n.score for n in related] == sorted((n.score for n in related), reverse=True)
    assert index.related(1, 0) == []


def test_empty_index_and_unknown_papers() -> None:
    empty = NeighbourIndex.from_vectors([], np.zeros((0, 8), np.float32))
    assert len(empty) == 0
    assert empty.nearest(unit_rows(1, 8)[0], 5) == []
    assert empty.related(1) == []
    index = NeighbourIndex.from_vectors([1], unit_rows(1))
    assert index.related(1) == []  # alone: nobody else
    assert index.related(99) == []
    assert index.vector(99) is None
    assert 1 in index
    assert 99 not in index


def test_scores_are_cosines() -> None:
    vectors = unit_rows(3, seed=6)
    index = NeighbourIndex.from_vectors([1, 2, 3], vectors)
    expected = vectors @ vectors[0]
    assert index.scores(vectors[0] * 3) == pytest.approx(expected, abs=0.02)
    (best,) = index.nearest(vectors[0], 1)
    assert best == Neighbour(1, pytest.approx(1.0, abs=1e-3))  # int8 rounding


def test_bytes_round_trip() -> None:
    vector = unit_rows(1, dim=256, seed=7)[0]
    data = encode(vector)
    assert isinstance(data, bytes)
    assert len(data) == 256
    back = decode(data)
    assert back.dtype == np.float32
    assert np.linalg.norm(back) == pytest.approx(1.0, abs=1e-6)
    assert float(back @ vector) > 0.999
    assert encode(vector * 10) == data  # only the direction is stored
    assert not decode(encode(np.zeros(256, np.float32))).any()
    with pytest.raises(ValueError, match="finite"):
        encode(np.full(4, np.nan, np.float32))
    with pytest.raises(ValueError, match="one vector"):
        encode(np.zeros((2, 4), np.float32))


def test_from_blobs_is_what_the_database_gives_back() -> None:
    vectors = unit_rows(20, seed=8)
    rows = [(i + 100, encode(v)) for i, v in enumerate(vectors)]
    from_blobs = NeighbourIndex.from_blobs(rows)
    from_vectors = NeighbourIndex.from_vectors([i for i, _ in rows], vectors)
    assert from_blobs.dim == 16
    assert from_blobs.related(105) == from_vectors.related(105)
    assert len(NeighbourIndex.from_blobs([], dim=16)) == 0
    with pytest.raises(ValueError, match="paper 7: a 3-byte vector, expected 16"):
        NeighbourIndex.from_blobs([*rows, (7, b"abc")])


def test_with_rows_and_without_make_new_indexes() -> None:
    vectors = unit_rows(6, seed=9)
    index = NeighbourIndex.from_vectors([1, 2, 3], vectors[:3])
    grown = index.with_rows([4, 2], quantise(vectors[[3, 4]]))
    assert list(grown.ids) == [1, 2, 3, 4]
    assert float(grown.vector(2) @ vectors[4]) > 0.999  # replaced
    assert float(index.vector(2) @ vectors[1]) > 0.999  # the old index is unchanged
    shrunk = grown.without([1, 99])
    assert list(shrunk.ids) == [2, 3, 4]
    assert all(n.id != 1 for n in shrunk.related(2))
    empty = NeighbourIndex.from_vectors([], np.zeros((0, 16), np.float32))
    assert list(empty.with_rows([5], quantise(vectors[:1])).ids) == [5]
    with pytest.raises(ValueError, match="8-d vectors for a 16-d index"):
        index.with_rows([9], quantise(unit_rows(1, dim=8)))


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        NeighbourIndex.from_vectors([1, 1], unit_rows(2))
    with pytest.raises(ValueError, match="int8"):
        NeighbourIndex([1], unit_rows(1))
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        NeighbourIndex([1, 2], quantise(unit_rows(1)))
    with pytest.raises(ValueError, match="8-d vector for a 16-d index"):
        NeighbourIndex.from_vectors([1], unit_rows(1)).nearest(np.ones(8, np.float32))
    with pytest.raises(ValueError, match="finite"):
        NeighbourIndex.from_vectors([1], unit_rows(1)).nearest(np.full(16, np.nan, np.float32))


def test_memory_is_one_byte_a_dimension() -> None:
    index = NeighbourIndex.from_vectors(list(range(1000)), unit_rows(1000, dim=256))
    assert index.nbytes == 1000 * (256 + 8 + 4)


def same_index(got: NeighbourIndex, want: NeighbourIndex) -> None:
    """The same papers, vectors and answers."""
    assert got.ids.tolist() == want.ids.tolist()
    assert got.dim == want.dim
    for paper_id in want.ids.tolist()[::7]:
        assert got.related(paper_id, 5) == want.related(paper_id, 5)
    if len(want):
        query = np.arange(want.dim, dtype=np.float32) - want.dim / 2
        assert got.scores(query).tolist() == want.scores(query).tolist()


def test_appended_papers_answer_as_an_index_built_at_once() -> None:
    vectors = unit_rows(700, seed=10)
    codes = quantise(vectors)
    index = NeighbourIndex.from_vectors(list(range(100)), vectors[:100])
    # Past its spare room and beyond: batches of new (larger) ids, each out of order.
    for start in range(100, 700, 60):
        batch = list(range(start, min(start + 60, 700)))[::-1]
        index = index.with_rows(batch, codes[batch])
    same_index(index, NeighbourIndex(list(range(700)), codes))


def test_an_append_leaves_the_old_index_as_it_was() -> None:
    vectors = unit_rows(30, seed=11)
    codes = quantise(vectors)
    old = NeighbourIndex(list(range(20)), codes[:20])
    before = {i: old.related(i, 5) for i in range(20)}
    query = vectors[25]
    scores = old.scores(query).tolist()
    first = old.with_rows([20, 21, 22], codes[20:23])
    # From the same old index again: it must not write over the rows `first` took.
    second = old.with_rows([20, 21], codes[[28, 29]])
    assert len(old) == 20
    assert old.ids.tolist() == list(range(20))
    assert {i: old.related(i, 5) for i in range(20)} == before
    assert old.scores(query).tolist() == scores
    same_index(first, NeighbourIndex(list(range(23)), codes[:23]))
    same_index(second, NeighbourIndex(list(range(22)), codes[[*range(20), 28, 29]]))
    assert float(first.vector(20) @ vectors[20]) > 0.999
    assert float(second.vector(20) @ vectors[28]) > 0.999


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 60), max_size=12)),
                      max_size=12),
       seed=st.integers(0, 2**32 - 1))
def test_any_adds_and_removals_answer_as_a_fresh_index(
        steps: list[tuple[bool, list[int]]], seed: int) -> None:
    """Appends, replacements, papers in between and removals, from any earlier index:
    every index made on the way answers as one built from its papers at once."""
    rng = np.random.default_rng(seed)
    index = NeighbourIndex.from_vectors([], np.zeros((0, 8), np.float32))
    held: list[tuple[NeighbourIndex, dict[int, np.ndarray]]] = [(index, {})]
    for add, ids in steps:
        base, papers = held[int(rng.integers(len(held)))]  # an old index, too
        unique = list(dict.fromkeys(ids))
        if add:
            codes = rng.integers(-127, 128, size=(len(unique), 8)).astype(np.int8)
            index = base.with_rows(unique, codes)
            papers = {**papers, **dict(zip(unique, codes, strict=True))}
        else:
            index = base.without(unique)
            papers = {i: c for i, c in papers.items() if i not in unique}
        held.append((index, papers))
    for index, papers in held:
        fresh = NeighbourIndex(list(papers), np.array(list(papers.values()), np.int8)
                               .reshape(len(papers), 8))
        same_index(index, fresh)


def test_adding_new_papers_does_not_copy_the_index() -> None:
    """What an append allocates is the new rows, not another index (at 100 000 papers a
    copy is 25 MB, briefly two indexes in memory)."""
    n, dim = 20_000, 256
    codes = np.random.default_rng(12).integers(-127, 128, (n, dim)).astype(np.int8)
    index = NeighbourIndex(np.arange(n), codes)
    new = quantise(unit_rows(10, dim=dim, seed=13))
    tracemalloc.start()
    try:
        grown = index.with_rows(list(range(n, n + 10)), new)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(grown) == n + 10
    assert peak < n * dim / 10


def test_a_builder_fills_one_array_from_chunks() -> None:
    vectors = unit_rows(250, seed=14)
    codes = quantise(vectors)
    ids = list(range(1000, 1250))
    builder = IndexBuilder(16, expected=100)  # more come than expected: it grows
    for start in range(0, 250, 40):
        builder.add(ids[start:start + 40], codes[start:start + 40])
    builder.add([], np.zeros((0, 16), np.int8))
    assert len(builder) == 250
    same_index(builder.build(), NeighbourIndex(ids, codes))
    with pytest.raises(RuntimeError, match="built"):
        builder.add([5000], codes[:1])
    shuffled = IndexBuilder(16, expected=250)  # chunks out of id order: sorted at the end
    shuffled.add(ids[100:], codes[100:])
    shuffled.add(ids[:100], codes[:100])
    same_index(shuffled.build(), NeighbourIndex(ids, codes))
    assert len(IndexBuilder(16).build()) == 0
    with pytest.raises(ValueError, match="8-d vectors for a 16-d index"):
        IndexBuilder(16).add([1], quantise(unit_rows(1, dim=8)))
    twice = IndexBuilder(16)
    twice.add([1, 2], codes[:2])
    twice.add([2], codes[2:3])
    with pytest.raises(ValueError, match="unique"):
        twice.build()
