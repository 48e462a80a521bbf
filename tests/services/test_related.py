"""Related papers as a service: what a refresh embeds (only what lacks a vector, in
batches, never on the event loop), what a query answers (the nearest others, those of
the same topics first, with the tags they share), and how the index in memory follows
the database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import date

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.models import Digest
from bot.domain.related import TOPIC_BONUS
from bot.services.embedding import Embedder
from bot.services.related import Related
from bot.storage.engine import make_sessionmaker
from bot.storage.repository import ArchiveRepo
from bot.storage.vectors import VectorRepo
from tests.storage.factories import make_digest, make_paper, state_of

DAY = date(2024, 6, 1)
VOCABULARY = ("splat", "radiance", "diffusion", "tooth", "avatar")


class FakeEmbedder:
    """Counts its words of VOCABULARY (the title's and the abstract's), plus a little of
    the title's own axis so no two papers tie; records each call's size and thread."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.threads: set[int] = set()
        self.on_loop: list[bool] = []
        self.release: threading.Event | None = None  # set: calls wait for it
        self.started = threading.Event()  # a call has begun
        self.fail: Exception | None = None

    def __call__(self, papers: Sequence[tuple[str, str]]) -> npt.NDArray[np.float32]:
        try:
            asyncio.get_running_loop()
            self.on_loop.append(True)
        except RuntimeError:
            self.on_loop.append(False)
        self.threads.add(threading.get_ident())
        self.batches.append(len(papers))
        self.started.set()
        if self.release is not None:
            self.release.wait(10)
        if self.fail is not None:
            raise self.fail
        out = np.zeros((len(papers), 64), np.float32)
        for row, (title, abstract) in enumerate(papers):
            words = f"{title} {abstract}".lower().split()
            for axis, word in enumerate(VOCABULARY):
                out[row, axis] = sum(w.startswith(word) for w in words)
            out[row, 8 + sum(map(ord, title)) % 56] += 0.05
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


@pytest.fixture
def repos(engine: AsyncEngine) -> tuple[ArchiveRepo, VectorRepo]:
    sessions = make_sessionmaker(engine)
    return ArchiveRepo(sessions), VectorRepo(sessions)


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder()


async def publish(archive: ArchiveRepo, topic: str, *papers: tuple[str, str, str],
                  day: date = DAY) -> Digest:
    """Store a digest of (arXiv id, title, abstract) papers."""
    digest = make_digest(topic, day, tuple(make_paper(i, title=t, abstract=a)
                                           for i, t, a in papers))
    await archive.store_digest(digest, state_of(digest))
    return digest


SPLATS = ("2406.00001", "Splat avatars", "splat splat avatar")
SPLAT_SCENES = ("2406.00002", "Splat scenes", "splat splat radiance")
RADIANCE = ("2406.00003", "Radiance fields", "radiance radiance splat")
DIFFUSION = ("2406.00004", "Diffusion models", "diffusion diffusion")
TEETH = ("2406.00005", "Tooth crowns", "tooth tooth diffusion")


async def small_archive(archive: ArchiveRepo) -> None:
    await publish(archive, "3DGS", SPLATS, SPLAT_SCENES)
    await publish(archive, "NeRF", SPLATS, RADIANCE)
    await publish(archive, "Diffusion Models", DIFFUSION, TEETH)


async def test_refresh_embeds_what_lacks_a_vector_in_batches_off_the_loop(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder) -> None:
    archive, vectors = repos
    await small_archive(archive)
    related = Related(vectors, fake, batch_size=2)
    done: list[int] = []
    assert await related.refresh(done.append) == 5
    assert fake.batches == [2, 2, 1]
    assert done == [2, 4, 5]
    assert fake.on_loop == [False] * 3  # never on the event loop's thread ...
    assert threading.get_ident() not in fake.threads  # ... which is this one
    assert await related.refresh() == 0  # nothing left to embed
    assert fake.batches == [2, 2, 1]
    await publish(archive, "NeRF", ("2406.00006", "More radiance", "radiance"),
                  day=date(2024, 6, 2))
    assert await related.refresh() == 1
    assert fake.batches == [2, 2, 1, 1]


async def test_related_are_the_nearest_others_with_the_tags_they_share(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder) -> None:
    archive, vectors = repos
    await small_archive(archive)
    related = Related(vectors, fake)
    await related.refresh()
    found = await related.related("2406.00001v2")  # any version finds the paper
    assert found is not None
    assert found.ready
    assert found.paper.arxiv_id == "2406.00001"
    ids = [item.paper.arxiv_id for item in found.papers]
    assert ids == ["2406.00002", "2406.00003", "2406.00004", "2406.00005"]  # not itself
    assert [item.shared_tags for item in found.papers] == [("3DGS",), ("NeRF",), (), ()]
    scores = [item.score for item in found.papers]
    assert scores == sorted(scores, reverse=True)
    assert 0.5 < scores[0] <= 1.0
    top = await related.related("2406.00004", k=1)
    assert top is not None
    assert [(i.paper.arxiv_id, i.shared_tags) for i in top.papers] == [
        ("2406.00005", ("Diffusion Models",))]
    assert await related.related("2406.99999") is None


async def test_papers_of_the_same_topics_come_first_unless_far_less_near(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder) -> None:
    """By meaning alone the two 3DGS papers come first; a NeRF paper within TOPIC_BONUS
    of the second overtakes it, not the first (far closer), and keeps its own cosine."""
    archive, vectors = repos
    paper = ("2406.00031", "Radiance fields", "radiance radiance radiance splat")
    closest = ("2406.00032", "Radiance field splats", "radiance radiance radiance splat")
    closer = ("2406.00033", "Radiance splats", "radiance radiance splat splat")
    same_topic = ("2406.00034", "Radiance avatars", "radiance radiance radiance avatar avatar")
    far = ("2406.00035", "Diffusion", "diffusion diffusion radiance")
    await publish(archive, "NeRF", paper, same_topic)
    await publish(archive, "3DGS", closest, closer)
    await publish(archive, "Diffusion Models", far)
    related = Related(vectors, fake)
    await related.refresh()
    found = await related.related(paper[0])
    assert found is not None
    assert related.index is not None
    paper_id = await vectors.paper_id(paper[0])
    assert paper_id is not None
    by_meaning = related.index.related(paper_id, 4)
    papers = await vectors.papers([n.id for n in by_meaning])
    assert [papers[n.id].arxiv_id for n in by_meaning] == [
        closest[0], closer[0], same_topic[0], far[0]]
    assert [(i.paper.arxiv_id, i.shared_tags) for i in found.papers] == [
        (closest[0], ()), (same_topic[0], ("NeRF",)), (closer[0], ()), (far[0], ())]
    cosine = {papers[n.id].arxiv_id: n.score for n in by_meaning}
    assert [i.score for i in found.papers] == [cosine[i.paper.arxiv_id] for i in found.papers]
    lifted = (1 + TOPIC_BONUS) * cosine[same_topic[0]]
    assert cosine[closer[0]] < lifted < cosine[closest[0]]


async def test_not_ready_until_embedded_and_alone_is_empty(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder) -> None:
    archive, vectors = repos
    await publish(archive, "3DGS", SPLATS)
    related = Related(vectors, fake)
    found = await related.related(SPLATS[0])
    assert found is not None
    assert not found.ready
    assert found.papers == ()
    await related.refresh()
    alone = await related.related(SPLATS[0])
    assert alone is not None
    assert alone.ready
    assert alone.papers == ()


async def test_the_index_follows_refreshes_and_papers_that_leave(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder) -> None:
    archive, vectors = repos
    await small_archive(archive)
    related = Related(vectors, fake, sync_every=3600)
    await related.refresh()
    assert related.index is None  # built on first use, not by a refresh
    await related.related(SPLATS[0])
    assert related.index is not None
    assert len(related.index) == 5
    await publish(archive, "3DGS", ("2406.00007", "Splat avatars again", "splat avatar"),
                  day=date(2024, 6, 3))
    await related.refresh()  # adds it to the built index
    found = await related.related(SPLATS[0], k=1)
    assert found is not None
    assert [i.paper.arxiv_id for i in found.papers] == ["2406.00007"]
    # Its digest goes: the paper leaves the archive, its vector with it; even before a
    # sync the answer leaves it out, and the next refresh drops it from the index.
    await archive.delete_file(make_digest("3DGS", date(2024, 6, 3)).path)
    found = await related.related(SPLATS[0], k=1)
    assert found is not None
    assert [i.paper.arxiv_id for i in found.papers] == ["2406.00002"]
    await related.refresh()
    assert len(related.index) == 5


async def test_a_candidate_that_left_since_the_sync_gives_way_to_the_next(
        engine: AsyncEngine, fake: FakeEmbedder) -> None:
    """Its digest is deleted after the index was built, and no sync has run since: the
    index still finds it, the archive no longer has it, and the next one in the ranking
    takes its place."""
    sessions = make_sessionmaker(engine)
    archive = ArchiveRepo(sessions)
    await small_archive(archive)
    related = Related(VectorRepo(sessions), fake, sync_every=10**9)
    await related.refresh()
    before = await related.related(SPLATS[0], k=2)  # builds the index
    assert before is not None
    assert [i.paper.arxiv_id for i in before.papers] == [SPLAT_SCENES[0], RADIANCE[0]]
    index = related.index
    await archive.delete_file(make_digest("NeRF", DAY).path)  # RADIANCE leaves
    found = await related.related(SPLATS[0], k=2)
    assert related.index is index  # not synced: the index still holds RADIANCE
    assert found is not None
    assert [i.paper.arxiv_id for i in found.papers] == [SPLAT_SCENES[0], DIFFUSION[0]]
    assert found.paper.tags == ("3DGS",)  # read after the NeRF digest went


async def test_the_index_is_read_a_chunk_at_a_time(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    archive, vectors = repos
    await small_archive(archive)
    whole = Related(vectors, fake)
    await whole.refresh()
    expected = await whole.related(SPLATS[0])
    monkeypatch.setattr("bot.services.related.LOAD_CHUNK", 2)
    chunked = Related(vectors, fake)
    assert await chunked.related(SPLATS[0]) == expected
    assert chunked.index is not None
    assert len(chunked.index) == 5


async def test_vectors_stored_by_another_process_are_picked_up(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder) -> None:
    """A `paperfeed ingest` next to the bot stores vectors: the bot's index catches up at
    its next sync (once a minute), or at once for a paper it had no vector for."""
    archive, vectors = repos
    await small_archive(archive)
    now = [0.0]
    bot = Related(vectors, fake, clock=lambda: now[0])
    await bot.refresh()
    await bot.related(SPLATS[0])
    other = Related(vectors, fake)
    newer = ("2406.00008", "Splat heads", "splat avatar avatar")
    await publish(archive, "3DGS", newer, day=date(2024, 6, 4))
    await other.refresh()
    found = await bot.related(newer[0])  # not in the index yet: synced on the spot
    assert found is not None
    assert found.ready
    assert found.papers[0].paper.arxiv_id == SPLATS[0]
    await archive.delete_file(make_digest("3DGS", date(2024, 6, 4)).path)
    assert bot.index is not None
    assert len(bot.index) == 6
    now[0] += 61  # a minute later the next answer syncs first
    await bot.related(SPLATS[0])
    assert len(bot.index) == 5


async def test_a_model_change_embeds_every_paper_again(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder) -> None:
    archive, vectors = repos
    await small_archive(archive)
    await Related(vectors, fake, model="model-1").refresh()
    assert fake.batches == [5]
    second = Related(vectors, fake, model="model-2")
    found = await second.related(SPLATS[0])
    assert found is not None
    assert not found.ready
    assert await second.refresh() == 5
    found = await second.related(SPLATS[0])
    assert found is not None
    assert len(found.papers) == 4
    assert await vectors.count_missing("model-1") == 5  # replaced, not kept twice


async def test_refresh_soon_runs_in_the_background_once_more_if_asked_meanwhile(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder) -> None:
    archive, vectors = repos
    await publish(archive, "3DGS", SPLATS, SPLAT_SCENES)
    fake.release = threading.Event()
    related = Related(vectors, fake)
    related.refresh_soon()
    assert await asyncio.to_thread(fake.started.wait, 10)  # its first batch is in the model
    await publish(archive, "NeRF", RADIANCE)  # a scan stores another paper meanwhile
    related.refresh_soon()
    related.refresh_soon()  # asked twice: still one more run
    fake.release.set()
    await related.wait()
    assert fake.batches == [2, 1]
    assert related.index is not None
    assert len(related.index) == 3


async def test_a_failing_refresh_is_logged_and_close_stops_one(
        repos: tuple[ArchiveRepo, VectorRepo], fake: FakeEmbedder,
        caplog: pytest.LogCaptureFixture) -> None:
    archive, vectors = repos
    await publish(archive, "3DGS", SPLATS)
    fake.fail = RuntimeError("the model's child process died")
    related = Related(vectors, fake)
    related.refresh_soon()
    await related.wait()
    assert "embedding the papers failed" in caplog.text
    assert await vectors.count_missing(related.model) == 1
    fake.fail = None
    fake.release = threading.Event()
    fake.started.clear()
    related.refresh_soon()
    assert await asyncio.to_thread(fake.started.wait, 10)
    await related.close()  # cancels the refresh; the batch in the thread ends on its own
    fake.release.set()
    await related.close()  # closing again (or with nothing running) is harmless


async def test_the_real_model_finds_papers_about_the_same_thing(
        repos: tuple[ArchiveRepo, VectorRepo]) -> None:
    archive, vectors = repos
    await publish(
        archive, "3DGS",
        ("2406.00011", "Deformable 3D Gaussian splatting for dynamic scenes",
         "We render dynamic scenes in real time with deformable Gaussian splats."),
        ("2406.00012", "Gaussian splatting avatars from monocular video",
         "Animatable human avatars represented by 3D Gaussians, rendered in real time."),
        ("2406.00013", "Fast radiance field rendering with sparse Gaussian primitives",
         "Novel view synthesis with anisotropic 3D Gaussians that render at 100 fps."))
    await publish(
        archive, "Medical",
        ("2406.00021", "Tooth segmentation in dental CBCT scans",
         "A network that segments teeth and restores crowns in cone-beam CT."),
        ("2406.00022", "Large language models for clinical notes",
         "Instruction-tuned language models summarise hospital discharge letters."))
    related = Related(vectors, Embedder().embed_papers)
    assert await related.refresh() == 5
    found = await related.related("2406.00011", k=2)
    assert found is not None
    assert {i.paper.arxiv_id for i in found.papers} == {"2406.00012", "2406.00013"}
    assert all(i.shared_tags == ("3DGS",) for i in found.papers)
