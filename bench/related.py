"""Benchmark 7, related papers: how good the "Related" neighbours are, how fast, how big.

The product's code is measured (`bot/services/embedding.py` makes the vectors,
`bot/domain/neighbours.py` stores them as int8 and finds the POOL nearest,
`bot/domain/related.py` puts those of the paper's topics first and keeps 5), side by
side with a tf-idf baseline (scikit-learn, fitted on the archive itself, cosine over
sparse rows) ranked the same way, and with random neighbours:

* (a) topic overlap: the share of a paper's 5 neighbours that share a topic with it,
  with the product's ranking (topics first: the topics are an input of the ranking as
  well as what is counted) and by meaning alone, for both methods; with a sweep of the
  bonus and the pool, and the figure per topic, in the log. On the real digests
  (../shared/digests; skipped when absent) only: in the generated folder titles and
  abstracts are recombined from random papers and topics are drawn at random, so no
  method can beat random there and the figure would mean nothing.
* (b) self-retrieval: the paper's title as the query, every paper's title + abstract as
  the documents, the share of papers found in the first 10, over the whole archive.
  Meaningful on both; harder on generated papers, whose abstract has nothing to do with
  the title (only the title's own words in the document can find it).
* (c) latency of one related query, p95 over `queries` papers drawn at random, at the
  generated archive's size (100 000 in full): in memory (the POOL nearest of a paper,
  itself excluded, ranked topics first; and the 5 nearest alone, as before), and as a
  press costs it (`Related.related` on the archive with every vector stored: the paper's
  id, the search, the candidates' tags, the 5 papers shown).
* (d) embedding cost at ingest: seconds per 1 000 papers (wall clock, one process).
  For tf-idf, fitting the whole archive, which it needs again as the vocabulary grows.
* (e) memory added: resident memory of a fresh process that has imported what the bot
  imports (measured in a child, so the parse of the folder does not blur it): importing
  numpy, then the index of the whole archive (what answering needs), then the model
  loaded and used once (what embedding in the bot's own process would add).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import REPO, Row, Workspace, percentile
from bench.gen import SHARED_DIGESTS
from bench.ingest import ensure_folder
from bot.domain.neighbours import NeighbourIndex, quantise
from bot.domain.parsing import parse_digest
from bot.domain.related import POOL, TOPIC_BONUS, Candidate, topics_first
from bot.services.embedding import MODEL_NAME, Embedder, clean_text

TARGET_TOPIC = 0.8  # and above tf-idf
TARGET_RECALL = 0.95
TARGET_P95_MS = 30.0
TARGET_EMBED_S = 2.0  # per 1 000 papers
TARGET_MEMORY_MB = 60.0
K = 5
RECALL_AT = 10
RECALL_QUERIES = 1000  # self-retrieval queries in a large archive (all papers when fewer)
WARMUP = 20

BONUS_SWEEP = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
POOL_SWEEP = (10, 20, 30, 50, 100)

_DATE_DIR = re.compile(r"\d{4}-\d{2}-\d{2}")
Log = Callable[[str], None]


@dataclass(slots=True)
class Corpus:
    """Distinct papers of a folder: ids are row numbers."""

    titles: list[str] = field(default_factory=list)
    abstracts: list[str] = field(default_factory=list)
    topics: list[frozenset[str]] = field(default_factory=list)
    parse_seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.titles)

    @property
    def docs(self) -> list[str]:
        """Title + abstract, one text each (what tf-idf indexes)."""
        return [f"{t} {a}" for t, a in zip(self.titles, self.abstracts, strict=True)]

    def extend(self, other: Corpus) -> None:
        self.titles += other.titles
        self.abstracts += other.abstracts
        self.topics += other.topics


def load_corpus(folder: Path) -> Corpus:
    """Every `<date>/<topic>.md` of a folder, parsed by the product's parser; one entry per
    arXiv id, with every topic it was listed under."""
    started = time.perf_counter()
    rows: dict[str, tuple[str, str, set[str]]] = {}
    for path in sorted(folder.glob("*/*.md")):
        if not _DATE_DIR.fullmatch(path.parent.name):
            continue
        rel = path.relative_to(folder).as_posix()
        digest = parse_digest(path.read_text(encoding="utf-8"), rel)
        for paper in digest.papers:
            entry = rows.setdefault(paper.arxiv_id, (paper.title, paper.abstract, set()))
            entry[2].add(digest.topic)
    corpus = Corpus()
    for title, abstract, topics in rows.values():
        corpus.titles.append(clean_text(title))
        corpus.abstracts.append(clean_text(abstract))
        corpus.topics.append(frozenset(topics))
    corpus.parse_seconds = time.perf_counter() - started
    return corpus


# -- the methods ------------------------------------------------------------------------


class Method:
    """A way to find related papers, measured the same way for each."""

    name = ""
    embed_seconds = 0.0
    memory_bytes = 0

    def build(self, corpus: Corpus) -> None:
        raise NotImplementedError

    def nearest(self, row: int, k: int) -> list[tuple[int, float]]:
        """The k nearest (row, cosine) to a row, itself excluded, best first, ties by row."""
        raise NotImplementedError

    def related(self, row: int, k: int) -> list[int]:
        """By meaning alone."""
        return [other for other, _ in self.nearest(row, k)]

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        raise NotImplementedError


class Embedding(Method):
    """The product: WordLlama vectors of title and abstract, stored int8, exact search."""

    name = "wordllama"

    def __init__(self) -> None:
        self.embedder = Embedder()
        self.embedder.embed(["warm-up"])  # loading once is not the cost per paper
        self.codes = np.zeros((0, self.embedder.dim), np.int8)
        self.index = NeighbourIndex([], self.codes)

    def build(self, corpus: Corpus) -> None:
        pairs = list(zip(corpus.titles, corpus.abstracts, strict=True))
        started = time.perf_counter()
        vectors = self.embedder.embed_papers(pairs)
        self.embed_seconds = time.perf_counter() - started
        self.codes = quantise(vectors)
        self.index = NeighbourIndex(range(len(pairs)), self.codes)
        self.memory_bytes = self.index.nbytes

    def nearest(self, row: int, k: int) -> list[tuple[int, float]]:
        return [(n.id, n.score) for n in self.index.related(row, k)]

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        vectors = self.embedder.embed(queries)
        return [[n.id for n in self.index.nearest(v, k)] for v in vectors]


class Tfidf(Method):
    """The baseline: tf-idf over the archive (sublinear tf, English stop words)."""

    name = "tf-idf"

    def build(self, corpus: Corpus) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = corpus.docs
        started = time.perf_counter()
        self.vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english",
                                          dtype=np.float32)
        self.matrix = self.vectorizer.fit_transform(docs).tocsr()
        self.embed_seconds = time.perf_counter() - started
        self.memory_bytes = int(self.matrix.data.nbytes + self.matrix.indices.nbytes
                                + self.matrix.indptr.nbytes)

    def _best(self, scores: np.ndarray, k: int, exclude: int | None
              ) -> list[tuple[int, float]]:
        if exclude is not None:
            scores[exclude] = -np.inf
        k = min(k, len(scores) - (exclude is not None))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        return [(int(i), float(scores[i])) for i in top[np.lexsort((top, -scores[top]))]][:k]

    def nearest(self, row: int, k: int) -> list[tuple[int, float]]:
        scores = (self.matrix @ self.matrix[row].T).toarray().ravel()
        return self._best(scores, k, row)

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        q = self.vectorizer.transform(queries)
        out = []
        for start in range(0, q.shape[0], 256):
            block = (q[start:start + 256] @ self.matrix.T).toarray()
            out += [[i for i, _ in self._best(scores, k, None)] for scores in block]
        return out


def _tfidf_available() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


# -- the measures -----------------------------------------------------------------------


def topics_first_rows(corpus: Corpus, row: int, near: Sequence[tuple[int, float]], k: int,
                      pool: int = POOL, bonus: float = TOPIC_BONUS) -> list[int]:
    """The product's ranking (bot/domain/related.py) of a row's `pool` nearest."""
    candidates = [Candidate(other, score, tuple(sorted(corpus.topics[other])))
                  for other, score in near[:pool]]
    return [c.id for c in topics_first(corpus.topics[row], candidates, k, bonus)]


def _shares(corpus: Corpus, picked: Sequence[Sequence[int]]) -> np.ndarray:
    """Per paper, the share of its K picked neighbours sharing a topic with it."""
    return np.array([sum(bool(corpus.topics[row] & corpus.topics[j]) for j in near) / K
                     for row, near in enumerate(picked)])


@dataclass(slots=True)
class Overlap:
    """(a) of one method: by meaning alone, topics first (the product's POOL and bonus),
    and the sweeps and per-topic figures behind the choice of those two."""

    meaning: float
    topics_first: float
    kept: float  # of the K nearest by meaning, how many the ranking keeps, on average
    by_bonus: dict[float, float]  # at POOL
    by_pool: dict[int, float]  # at TOPIC_BONUS
    by_topic: dict[str, tuple[float, float, int]]  # topic: (meaning, topics first, papers)


def topic_overlap(method: Method, corpus: Corpus) -> Overlap:
    """(a): mean over papers of the share of their K neighbours sharing a topic."""
    widest = max(POOL, *POOL_SWEEP)
    near = [method.nearest(row, widest) for row in range(len(corpus))]
    meaning = _shares(corpus, [[i for i, _ in n[:K]] for n in near])

    def ranked(pool: int, bonus: float) -> np.ndarray:
        return _shares(corpus, [topics_first_rows(corpus, row, n, K, pool, bonus)
                                for row, n in enumerate(near)])

    chosen = [topics_first_rows(corpus, row, n, K) for row, n in enumerate(near)]
    first = _shares(corpus, chosen)
    kept = np.mean([len({i for i, _ in n[:K]} & set(c)) for n, c in zip(near, chosen,
                                                                       strict=True)])
    by_topic = {}
    for topic in sorted(set().union(*corpus.topics)):
        rows = [r for r, topics in enumerate(corpus.topics) if topic in topics]
        by_topic[topic] = (float(meaning[rows].mean()), float(first[rows].mean()), len(rows))
    return Overlap(
        float(meaning.mean()), float(first.mean()), float(kept),
        {b: float(ranked(POOL, b).mean()) for b in BONUS_SWEEP},
        {p: float(ranked(p, TOPIC_BONUS).mean()) for p in POOL_SWEEP},
        by_topic)


def random_topic_overlap(corpus: Corpus) -> float:
    """(a) for neighbours drawn at random: the expected share, computed exactly."""
    n = len(corpus)
    counts: dict[frozenset[str], int] = {}
    for topics in corpus.topics:
        counts[topics] = counts.get(topics, 0) + 1
    total = 0.0
    for topics, count in counts.items():
        sharing = sum(c for other, c in counts.items() if topics & other) - 1
        total += count * sharing / (n - 1)
    return total / n


def self_recall(method: Method, corpus: Corpus, rows: Sequence[int]) -> float:
    """(b): share of the given papers whose title finds them in the first RECALL_AT."""
    found = method.search([corpus.titles[r] for r in rows], RECALL_AT)
    return sum(r in hits for r, hits in zip(rows, found, strict=True)) / len(rows)


def related_latency(query: Callable[[int], object], rows: Sequence[int]) -> list[float]:
    """(c): milliseconds of each related query."""
    for row in rows[:WARMUP]:
        query(row)
    times = []
    for row in rows:
        started = time.perf_counter()
        query(row)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _topics_first_query(method: Method, corpus: Corpus) -> Callable[[int], object]:
    """The product's query in memory: the POOL nearest, ranked topics first."""
    return lambda row: topics_first_rows(corpus, row, method.nearest(row, POOL), K)


def press_latency(ws: Workspace, queries: int, log: Log) -> list[float]:
    """(c) as a press costs it: `Related.related` (the product's service) over the
    generated archive with every vector stored, `queries` papers drawn at random."""
    import asyncio  # only this measure needs the event loop

    from sqlalchemy import select

    from bench.common import sqlite_url
    from bot.services.related import Related
    from bot.storage.engine import make_engine, make_sessionmaker
    from bot.storage.tables import PaperRow
    from bot.storage.vectors import VectorRepo

    db = ensure_vectors(ws, log)

    async def measure() -> list[float]:
        engine = make_engine(sqlite_url(db))
        try:
            sessions = make_sessionmaker(engine)
            async with sessions() as session:
                ids = list((await session.scalars(select(PaperRow.arxiv_id))).all())
            rng = random.Random(13)
            sample = rng.sample(ids, min(len(ids), queries))
            related = Related(VectorRepo(sessions), _no_embedding)
            for arxiv_id in sample[:WARMUP]:  # the first builds the index
                await related.related(arxiv_id)
            times = []
            for arxiv_id in sample:
                started = time.perf_counter()
                found = await related.related(arxiv_id)
                times.append((time.perf_counter() - started) * 1000)
                if found is None or len(found.papers) != K:
                    raise RuntimeError(f"related({arxiv_id!r}) gave {found!r}")
            return times
        finally:
            await engine.dispose()

    return asyncio.run(measure())


def _no_embedding(papers: Sequence[tuple[str, str]]) -> np.ndarray:
    raise AssertionError("every paper has its vector already")


def _per_1000(method: Method, n: int) -> float:
    return method.embed_seconds / n * 1000 if n else 0.0


# -- the runs ---------------------------------------------------------------------------


def _methods(log: Log) -> list[Method]:
    started = time.perf_counter()
    methods: list[Method] = [Embedding()]
    log(f"related: {MODEL_NAME} loaded in {time.perf_counter() - started:.2f} s")
    if _tfidf_available():
        methods.append(Tfidf())
    else:
        log("related: scikit-learn not installed: no tf-idf baseline (pip install -e '.[dev]')")
    return methods


def _vs(values: dict[str, str]) -> str:
    return " · ".join(f"{name} {value}" for name, value in values.items())


def real_corpus(log: Log) -> Corpus | None:
    if not SHARED_DIGESTS.is_dir():
        log(f"related: no real digests at {SHARED_DIGESTS}; topic overlap not measured")
        return None
    corpus = load_corpus(SHARED_DIGESTS)
    log(f"related: {len(corpus)} papers of the real digests")
    return corpus


def _log_overlap(name: str, o: Overlap, log: Log) -> None:
    log(f"related: (a) {name}: meaning alone {o.meaning:.3f}, topics first {o.topics_first:.3f} "
        f"(keeps {o.kept:.2f} of the {K} nearest)")
    log(f"related: (a) {name} by bonus at pool {POOL}: "
        + _vs({f"{b:g}": f"{v:.3f}" for b, v in o.by_bonus.items()}))
    log(f"related: (a) {name} by pool at bonus {TOPIC_BONUS:g}: "
        + _vs({str(p): f"{v:.3f}" for p, v in o.by_pool.items()}))
    log(f"related: (a) {name} per topic, meaning alone → topics first: "
        + _vs({f"{t} ({count})": f"{m:.2f} → {f:.2f}"
               for t, (m, f, count) in o.by_topic.items()}))


def run_real(corpus: Corpus, log: Log) -> list[Row]:
    n = len(corpus)
    methods = _methods(log)
    overlaps: dict[str, Overlap] = {}
    recall: dict[str, float] = {}
    for method in methods:
        method.build(corpus)
        overlaps[method.name] = topic_overlap(method, corpus)
        _log_overlap(method.name, overlaps[method.name], log)
        recall[method.name] = self_recall(method, corpus, range(n))
    ours, rivals = methods[0], methods[1:]
    assert isinstance(ours, Embedding)
    pairs = list(zip(corpus.titles, corpus.abstracts, strict=True))
    for _ in range(2):  # a small job: the best of three, as other processes share the CPU
        started = time.perf_counter()
        ours.embedder.embed_papers(pairs)
        ours.embed_seconds = min(ours.embed_seconds, time.perf_counter() - started)
    name = f"related real {n}"
    a = overlaps[ours.name].topics_first
    baseline = max((overlaps[m.name].topics_first for m in rivals), default=0.0)
    chance = f"{random_topic_overlap(corpus):.3f}"
    others = {f"{m.name} topics first": f"{overlaps[m.name].topics_first:.3f}" for m in rivals}
    meaning = {m.name: f"{overlaps[m.name].meaning:.3f}" for m in rivals}
    recall_others = {m.name: f"{recall[m.name]:.3f}" for m in rivals}
    recall_others["random"] = f"{min(1.0, RECALL_AT / n):.3f}"
    return [
        Row(name, f"(a) share of the {K} related sharing a topic, topics first",
            f"≥ {TARGET_TOPIC} and > tf-idf", f"{a:.3f}",
            a >= TARGET_TOPIC and a > baseline,
            _vs({**others, "random": chance})
            + f"; the topics are an input (bonus {TOPIC_BONUS:g}, pool {POOL})"),
        Row(name, "(a) same, by meaning alone", "", f"{overlaps[ours.name].meaning:.3f}",
            None, _vs({**meaning, "random": chance})),
        Row(name, f"(b) title finds its paper, recall@{RECALL_AT}", f"≥ {TARGET_RECALL}",
            f"{recall[ours.name]:.3f}", recall[ours.name] >= TARGET_RECALL,
            _vs(recall_others)),
        Row(name, "embedding all of them", "", f"{ours.embed_seconds:.2f} s", None,
            f"best of 3; {_per_1000(ours, n):.2f} s per 1 000; "
            + _vs({m.name: f"{m.embed_seconds:.2f} s" for m in rivals})),
    ]


def run_generated(ws: Workspace, real: Corpus | None, log: Log) -> list[Row]:
    """The generated archive, with the real papers (if any) added: their titles are the
    self-retrieval queries that mean something at this size."""
    ensure_folder(ws)
    corpus = load_corpus(ws.digests)
    generated = len(corpus)
    log(f"related: {generated:,} generated papers parsed in {corpus.parse_seconds:.0f} s")
    if real is not None:
        corpus.extend(real)
    n = len(corpus)
    rng = random.Random(11)
    sample = rng.sample(range(n), min(n, ws.scale.queries))
    generated_rows = rng.sample(range(generated), min(generated, RECALL_QUERIES))
    real_rows = range(generated, n)
    methods = _methods(log)
    latency: dict[str, list[float]] = {}
    alone: dict[str, list[float]] = {}
    recall_real: dict[str, float] = {}
    recall_generated: dict[str, float] = {}
    for method in methods:
        method.build(corpus)
        log(f"related: {method.name} built over {n:,} papers in {method.embed_seconds:.1f} s")
        latency[method.name] = related_latency(_topics_first_query(method, corpus), sample)
        alone[method.name] = related_latency(lambda row, m=method: m.related(row, K), sample)
        recall_generated[method.name] = self_recall(method, corpus, generated_rows)
        if real_rows:
            recall_real[method.name] = self_recall(method, corpus, real_rows)
    ours, rivals = methods[0], methods[1:]
    assert isinstance(ours, Embedding)
    name = f"related {n // 1000}k"
    p50, p95 = (percentile(latency[ours.name], p) for p in (50, 95))
    press = press_latency(ws, len(sample), log)
    press_p50, press_p95 = (percentile(press, p) for p in (50, 95))
    memory = measure_memory(ours.codes, ws.path("related-probe"))
    query_side = memory["numpy"] + memory["index"]
    rows = []
    if real_rows:
        r = recall_real[ours.name]
        rows.append(Row(
            name, f"(b) title finds its paper, recall@{RECALL_AT}", f"≥ {TARGET_RECALL}",
            f"{r:.3f}", r >= TARGET_RECALL,
            f"the {len(real_rows)} real titles against all {n:,} papers; "
            + _vs({**{m.name: f"{recall_real[m.name]:.3f}" for m in rivals},
                   "random": f"{RECALL_AT / n:.5f}"})))
    r = recall_generated[ours.name]
    rows += [
        Row(name, "(b) same, generated titles (abstract unrelated)", "", f"{r:.3f}", None,
            f"{len(generated_rows):,} generated titles against all {n:,} papers; "
            + _vs({m.name: f"{recall_generated[m.name]:.3f}" for m in rivals})),
        Row(name, "(c) related press (service, SQLite)", f"p95 ≤ {TARGET_P95_MS:.0f} ms",
            f"{press_p95:.1f} ms", press_p95 <= TARGET_P95_MS,
            f"p50 {press_p50:.1f} ms, {len(press):,} papers of the {generated:,} generated: "
            f"paper id, nearest {POOL}, their tags, topics first, {K} papers loaded"),
        Row(name, "(c) related query in memory", f"p95 ≤ {TARGET_P95_MS:.0f} ms",
            f"{p95:.1f} ms", p95 <= TARGET_P95_MS,
            f"p50 {p50:.1f} ms, {len(sample):,} papers, nearest {POOL} ranked topics first; "
            f"{K} nearest alone p50 {percentile(alone[ours.name], 50):.1f} / p95 "
            f"{percentile(alone[ours.name], 95):.1f} ms; "
            + _vs({m.name: f"p50 {percentile(latency[m.name], 50):.1f} / p95 "
                           f"{percentile(latency[m.name], 95):.1f} ms" for m in rivals})),
        Row(name, "(d) embedding cost at ingest", f"≤ {TARGET_EMBED_S:.0f} s / 1 000",
            f"{_per_1000(ours, n):.2f} s", _per_1000(ours, n) <= TARGET_EMBED_S,
            f"{n:,} papers in {ours.embed_seconds:.1f} s; "
            + _vs({m.name: f"{_per_1000(m, n):.2f} s (refit of all)" for m in rivals})),
        Row(name, "(e) memory added, embedding apart", f"≤ {TARGET_MEMORY_MB:.0f} MB",
            f"{query_side:.0f} MB", query_side <= TARGET_MEMORY_MB,
            f"numpy {memory['numpy']:.0f} MB + index {memory['index']:.0f} MB "
            f"({ours.index.nbytes / 1e6:.1f} MB of vectors); the model in a short-lived "
            "process at ingest (embed_papers_apart); "
            + _vs({m.name: f"{m.memory_bytes / 1e6:.0f} MB of sparse rows" for m in rivals})),
        Row(name, "(e) same, model loaded in the bot", f"≤ {TARGET_MEMORY_MB:.0f} MB",
            f"{memory['total']:.0f} MB", memory["total"] <= TARGET_MEMORY_MB,
            f"+ model {memory['model']:.0f} MB (16 MB of weights, the tokenizer, buffers)"),
    ]
    return rows


def run(ws: Workspace, log: Log = print) -> list[Row]:
    real = real_corpus(log)
    rows = run_real(real, log) if real is not None else []
    return rows + run_generated(ws, real, log)


# -- memory, in a child process ---------------------------------------------------------


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


_PROBE = """
import json, sys
from pathlib import Path

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

import sqlalchemy.ext.asyncio, telegram.ext  # what the bot has loaded anyway
import bot.storage.repository
assert "numpy" not in sys.modules
base = rss()
import numpy as np
from bot.domain.neighbours import NeighbourIndex
with_numpy = rss()
blob, n, dim = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
index = NeighbourIndex(np.arange(n), np.fromfile(blob, dtype=np.int8).reshape(n, dim))
index.related(0)
with_index = rss()
from bot.services.embedding import Embedder
Embedder().embed(["A warm-up text about Gaussian splatting and diffusion models."] * 300)
with_model = rss()
print(json.dumps({"numpy": with_numpy - base, "index": with_index - with_numpy,
                  "model": with_model - with_index, "total": with_model - base}))
"""


def measure_memory(codes: np.ndarray, folder: Path) -> dict[str, float]:
    """RSS added by numpy, the index and the model, in a fresh process that has already
    imported what the bot imports anyway."""
    folder.mkdir(parents=True, exist_ok=True)
    blob = folder / "codes.bin"
    codes.tofile(blob)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(blob), str(codes.shape[0]), str(codes.shape[1])],
            capture_output=True, text=True, env=env, cwd=REPO, check=True, timeout=600)
    finally:
        blob.unlink(missing_ok=True)
    values: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return values


def ensure_vectors(ws: Workspace, log: Log = print) -> Path:
    """A copy of the generated archive with every paper's related-paper vector stored,
    as a bot that has run for a while holds it (made once per --workdir; the model runs
    here, in the benchmark's process, never in the measured bot)."""
    import asyncio  # only this helper needs the event loop

    from bench.common import copy_db, sqlite_url
    from bench.ingest import ensure_archive
    from bot.services.related import Related
    from bot.storage.engine import make_engine, make_sessionmaker, migrate
    from bot.storage.vectors import VectorRepo

    archive = ensure_archive(ws)
    db = ws.path("archive-vectors.db")
    marker = ws.path("archive-vectors.marker")
    wanted = f"{archive.stat().st_size}:{archive.stat().st_mtime_ns}:{MODEL_NAME}"
    if db.exists() and marker.exists() and marker.read_text() == wanted:
        return db
    copy_db(archive, db)
    embedder = Embedder()

    async def embed_all() -> int:
        engine = make_engine(sqlite_url(db))
        try:
            await migrate(engine)
            related = Related(VectorRepo(make_sessionmaker(engine)), embedder.embed_papers)
            return await related.refresh()
        finally:
            await engine.dispose()

    started = time.perf_counter()
    stored = asyncio.run(embed_all())
    log(f"related: stored {stored:,} vectors in the archive copy in "
        f"{time.perf_counter() - started:.0f} s")
    marker.write_text(wanted)
    return db
