"""The embedding model loads from the installed wheel with no network, and means something."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bot.domain.models import Paper
from bot.services.embedding import (
    DIM,
    WEIGHTS_SHA256,
    Embedder,
    clean_text,
    embed_papers_apart,
    model_files,
    paper_parts,
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(batch_size=3)  # small batches, so batching is exercised


def test_loads_and_embeds_with_the_network_disabled() -> None:
    """A fresh process with the hub offline, no proxy and every connection refused."""
    script = textwrap.dedent("""
        import socket, sys
        def refuse(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from bot.services.embedding import Embedder
        vectors = Embedder().embed(["Gaussian splatting for avatars"])
        assert vectors.shape == (1, 256), vectors.shape
        loaded = sorted(m for m in sys.modules
                        if m.split(".")[0] in ("huggingface_hub", "requests", "wordllama"))
        print("ok", loaded)
    """)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HOME=os.devnull)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    # Nothing that could download is even imported (nor wordllama, which would call
    # logging.basicConfig on import).
    assert done.stdout.strip() == "ok []"


def test_the_model_is_inside_the_installed_package() -> None:
    weights, tokenizer = model_files()
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == WEIGHTS_SHA256
    assert tokenizer.is_file()


def test_vectors_are_unit_float32_rows(embedder: Embedder) -> None:
    texts = ["Neural radiance fields", "扩散模型", "a", "x" * 10_000, "  "]
    vectors = embedder.embed(texts)
    assert vectors.shape == (5, DIM)
    assert vectors.dtype == np.float32
    norms = np.linalg.norm(vectors, axis=1)
    assert norms[:4] == pytest.approx(1.0, abs=1e-5)
    assert norms[4] == 0  # no tokens: zeros, not NaN
    assert embedder.embed([]).shape == (0, DIM)


def test_deterministic_whatever_the_batch(embedder: Embedder) -> None:
    texts = [f"Paper {i} on diffusion models for talking heads" for i in range(7)]
    once = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    assert np.array_equal(once, embedder.embed(texts))
    assert np.array_equal(once, alone)
    assert np.array_equal(Embedder(batch_size=64).embed(texts), once)


def test_similar_texts_are_nearer_than_unrelated_ones(embedder: Embedder) -> None:
    splat_a, splat_b, dental, llm = embedder.embed([
        "3D Gaussian splatting for real-time novel view synthesis of dynamic scenes",
        "Deformable Gaussian splats render dynamic scenes from new viewpoints in real time",
        "Automatic tooth segmentation and crown restoration in dental CBCT scans",
        "Instruction tuning improves reasoning of large language models on math problems",
    ])
    assert splat_a @ splat_b > splat_a @ dental + 0.1
    assert splat_a @ splat_b > splat_a @ llm + 0.1
    assert dental @ llm < splat_a @ splat_b


def test_refuses_the_event_loop_and_runs_in_a_thread(embedder: Embedder) -> None:
    async def main() -> np.ndarray:
        with pytest.raises(RuntimeError, match="not on the event loop"):
            embedder.embed(["blocked"])
        with pytest.raises(RuntimeError, match="not on the event loop"):
            embed_papers_apart([("blocked", "too")])
        return await asyncio.to_thread(embedder.embed, ["in a worker thread"])

    assert asyncio.run(main()).shape == (1, DIM)


def test_a_paper_is_its_title_and_abstract_the_title_weighing_up(embedder: Embedder) -> None:
    paper = Paper("2401.00001", 1, "Splat  Heads", (), "We propose X.\nCode: "
                  "https://github.com/x/y  and more.", "https://arxiv.org/abs/2401.00001v1",
                  "https://arxiv.org/pdf/2401.00001v1")
    assert paper_parts(paper) == ("Splat  Heads", paper.abstract)
    assert clean_text(paper.abstract) == "We propose X. Code: and more."
    assert len(clean_text("word " * 5000)) == 4000
    title = "Gaussian splatting avatars"
    abstract = " ".join(["We study protein folding with molecular dynamics."] * 20)
    (vector,) = embedder.embed_papers([(title, abstract)])
    t, a, joined = embedder.embed([title, abstract, f"{title} {abstract}"])
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert vector @ t == pytest.approx(vector @ a, abs=1e-5)  # halfway between the two
    assert vector @ t > joined @ t + 0.1  # in one mean the title would drown
    (no_abstract,) = embedder.embed_papers([(title, "")])
    assert np.allclose(no_abstract, t)
    assert embedder.embed_papers([]).shape == (0, DIM)


def test_apart_gives_the_same_vectors_from_another_process(embedder: Embedder) -> None:
    papers = [("Talking head synthesis", "Audio-driven portrait video."),
              ("Dental crowns", "Tooth restoration from scans.")]
    assert np.array_equal(embed_papers_apart(papers), embedder.embed_papers(papers))
    assert embed_papers_apart([]).shape == (0, DIM)


def test_unload_then_load_again_gives_the_same_vectors() -> None:
    embedder = Embedder()
    before = embedder.embed(["Neural radiance fields"])
    embedder.unload()
    assert np.array_equal(embedder.embed(["Neural radiance fields"]), before)
