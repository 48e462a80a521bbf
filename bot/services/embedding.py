"""Papers into vectors for "Related": a static word-embedding model, offline, on the CPU.

The model is WordLlama ``l2_supercat`` at 256 dimensions (``wordllama`` on PyPI, MIT): a
table of one vector per token of Llama 2's tokenizer; a text's vector is the mean of its
tokens' rows, L2-normalised. Its weights (16 MB, float16) and tokenizer ship inside the
wheel, so nothing is downloaded, ever; it needs numpy, ``tokenizers`` and ``safetensors``,
no PyTorch and no GPU. Why this model and not tf-idf or a small transformer: the
measurements are in docs/benchmarks.md ("Related papers").

A paper's vector is the title's and the abstract's vectors added, then normalised: the
title weighs as much as the whole abstract. In one mean the title is a twentieth of the
tokens; weighing it up made the neighbours share a topic more often (0.636 → 0.654 on
the real digests) and a title find its paper among 10 000 every time (0.983 → 1.000).

The files are read straight from the installed ``wordllama`` package, without importing
it: its ``WordLlama.load`` looks for the tokenizer in a folder the wheel does not have
and then downloads it from the Hugging Face hub, and importing the package calls
``logging.basicConfig`` (a side effect on the whole program's logging).

How callers must use it: embedding is CPU work, about 0.6 ms a paper, so it never runs
on the event loop, and refuses to. In the long-running bot, ``await asyncio.to_thread(
embed_papers_apart, [paper_parts(p) for p in papers])`` embeds in a short-lived process
(about 0.3 s to start), so the model's 40 MB are never resident in the bot; a command
that ends soon anyway (``paperfeed ingest``) can keep one :class:`Embedder`, which loads
the model on first use (0.1–0.3 s) and may be called from several threads at once.
Either way, batches of a few thousand papers. Store the vectors with
``bot.domain.neighbours.encode`` and search them with ``NeighbourIndex``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import multiprocessing
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bot.domain.models import Paper
from bot.services.processes import die_with_parent

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_PACKAGE = "wordllama"
WEIGHTS = "weights/l2_supercat_256.safetensors"
WEIGHTS_SHA256 = "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5"
"""Of the weights in wordllama 0.2.2.post0 to 0.4.0.post1: other weights, other vectors."""
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
DIM = 256
MODEL_NAME = "wordllama-l2_supercat-256/title+abstract"
"""Stored with the vectors by whoever stores them: a different name means embed again."""

MAX_CHARS = 4000  # an arXiv abstract is at most 1 920 characters; bounds a broken digest
_URL = re.compile(r"https?://\S+")
_SPACE = re.compile(r"\s+")


def paper_parts(paper: Paper) -> tuple[str, str]:
    """What a paper is embedded by: its title and its abstract."""
    return paper.title, paper.abstract


def clean_text(text: str) -> str:
    """Text as the model gets it: no URLs (tokens of noise), single spaces, bounded."""
    return _SPACE.sub(" ", _URL.sub(" ", text)).strip()[:MAX_CHARS]


class ModelMissing(RuntimeError):
    """The model's files are not installed (``pip install wordllama``)."""


@dataclass(frozen=True, slots=True)
class _Model:
    table: npt.NDArray[np.float16]  # one row per token id
    tokenizer: Tokenizer


def model_files() -> tuple[Path, Path]:
    """The weights and tokenizer files inside the installed package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)  # finds the folder, runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"the {MODEL_PACKAGE} package is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    weights, tokenizer = root / WEIGHTS, root / TOKENIZER
    for path in (weights, tokenizer):
        if not path.is_file():
            raise ModelMissing(f"{path} is missing from the {MODEL_PACKAGE} package")
    return weights, tokenizer


def _load() -> _Model:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    weights, tokenizer_file = model_files()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ModelMissing(f"{weights} is not the model the vectors were made with "
                           f"(sha256 {digest}); install wordllama==0.2.2.post0")
    table = load_file(str(weights))["embedding.weight"]
    if table.ndim != 2 or table.shape[1] != DIM:
        raise ModelMissing(f"{weights}: unexpected shape {table.shape}")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))  # a local file: no network
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return _Model(table.astype(np.float16, copy=False), tokenizer)


class Embedder:
    """Texts into unit vectors, the model loaded once on first use."""

    def __init__(self, batch_size: int = 256) -> None:
        self.batch_size = batch_size
        self._model: _Model | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return DIM

    def load(self) -> None:
        """Load the model now rather than on the first :meth:`embed` (not on the loop)."""
        self._get()

    def unload(self) -> None:
        """Forget the model; the next call loads it again. The process rarely gets its
        memory back (the tokenizer's many small allocations stay with the allocator):
        to keep the model out of a long-running process, use :func:`embed_papers_apart`."""
        with self._lock:
            self._model = None

    def _get(self) -> _Model:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load()
                model = self._model
        return model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One L2-normalised float32 row per text (a text without tokens gives zeros), in
        batches; the same text always gives the same vector. Raises RuntimeError when
        called on a thread that runs an event loop."""
        _refuse_event_loop()
        model = self._get()
        out = np.zeros((len(texts), DIM), np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = [clean_text(t) for t in texts[start:start + self.batch_size]]
            out[start:start + len(batch)] = _embed_batch(model, batch)
        return out

    def embed_papers(self, papers: Sequence[tuple[str, str]]) -> npt.NDArray[np.float32]:
        """One L2-normalised row per (title, abstract): the normalised sum of the two
        texts' vectors (see the module's docstring). Same rules as :meth:`embed`."""
        titles = self.embed([title for title, _ in papers])
        abstracts = self.embed([abstract for _, abstract in papers])
        return _normalised(titles + abstracts)


def embed_papers_apart(papers: Sequence[tuple[str, str]]) -> npt.NDArray[np.float32]:
    """:meth:`Embedder.embed_papers` in a fresh process that ends when it is done, so the
    model's memory (about 40 MB, which a long-running process does not get back) never
    enters this one; starting it costs about a second. Blocking, like ``embed``: call it
    in a worker thread. The process is spawned, so a program that calls this must guard
    its main module with ``if __name__ == "__main__":``."""
    _refuse_event_loop()
    if not papers:
        return np.zeros((0, DIM), np.float32)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        vectors: npt.NDArray[np.float32] = pool.submit(_embed_in_child, list(papers)).result()
    return vectors


def _embed_in_child(papers: list[tuple[str, str]]) -> npt.NDArray[np.float32]:
    return Embedder().embed_papers(papers)


def _embed_batch(model: _Model, texts: list[str]) -> npt.NDArray[np.float32]:
    # Row by row: gathering the whole batch's tokens at once needs a temporary of
    # tokens x 256 floats (90 MB for 256 abstracts) and was twice as slow.
    sums = np.zeros((len(texts), DIM), np.float32)
    last = len(model.table) - 1
    for row, encoding in enumerate(model.tokenizer.encode_batch(texts, add_special_tokens=False)):
        if encoding.ids:
            ids = np.clip(np.asarray(encoding.ids, dtype=np.int64), 0, last)
            sums[row] = model.table[ids].sum(axis=0, dtype=np.float32)
    return _normalised(sums)


def _normalised(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = np.zeros_like(rows)
    np.divide(rows, norms, out=unit, where=norms > 0)
    return unit


def _refuse_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("Embedder.embed is CPU work: call it in a worker thread "
                       "(await asyncio.to_thread(embedder.embed, texts)), not on the event loop")
