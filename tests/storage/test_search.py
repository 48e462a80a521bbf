"""Search against a real index: stemming, ranking, authors, ids, Chinese, filters, paging,
hostile input; and the listing helpers (latest digests, export) built on the same rows."""

from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.models import SearchQuery
from bot.domain.query import parse_query
from bot.storage import repository
from bot.storage.repository import ArchiveRepo
from tests.storage.factories import make_digest, make_paper, state_of

GS = make_paper(
    "2406.00001", title="3D Gaussian Splatting for Real-Time Rendering",
    authors=("Bernhard Kerbl", "Georgios Kopanas"),
    abstract="Radiance field methods have recently revolutionized novel-view synthesis.",
    summary="提出了基于三维高斯的实时渲染方法。", takeaways=("高斯溅射实现了实时渲染",),
)
SURVEY = make_paper(
    "2406.00002", title="A Survey of Neural Radiance Fields",
    authors=("Ann Author",),
    abstract="We compare NeRF with point-based Gaussians as in Kerbl et al.",
    summary="神经辐射场综述。", takeaways=("总结了NeRF的进展",),
)
TALK = make_paper(
    "2406.00003", title="Diffusion Models for Talking Faces",
    authors=("Sai Tanmay Reddy Chakkera", "Jane Doe"),
    abstract="A talking head generator.",
    summary="利用扩散模型生成说话人脸。", takeaways=("实现了精确的唇形同步", "支持多种情绪"),
)
LIPS = make_paper(
    "2406.00004", title="Audio-driven Lip Sync",
    authors=("Sai Tanmay", "Bob Builder"),
    abstract="Lips follow the audio.",
    summary="音频驱动的唇形生成。", takeaways=("嘴唇动作自然",),
)
OLD = make_paper("hep-th/9901001", title="Strings in the old days", authors=("Ed Witten",))

DIGESTS = (
    make_digest("3DGS", date(2024, 6, 1), (GS,)),
    make_digest("NeRF", date(2024, 6, 2), (SURVEY, GS)),
    make_digest("Talking Head Generation", date(2024, 7, 1), (TALK,)),
    make_digest("Talking Head Generation", date(2024, 5, 1), (LIPS, OLD)),
)


@pytest.fixture
async def corpus(repo: ArchiveRepo) -> ArchiveRepo:
    for digest in DIGESTS:
        await repo.store_digest(digest, state_of(digest))
    return repo


async def ids(repo: ArchiveRepo, text: str, limit: int = 10, offset: int = 0) -> list[str]:
    hits, _ = await repo.search(parse_query(text), limit=limit, offset=offset)
    return [hit.paper.arxiv_id for hit in hits]


# --- words ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Gaussians", "gaussian", "GAUSSIAN"])
async def test_english_word_forms_match(corpus: ArchiveRepo, text: str) -> None:
    assert await ids(corpus, text) == ["2406.00001", "2406.00002"]


async def test_stemming_rendered_finds_rendering(corpus: ArchiveRepo) -> None:
    assert await ids(corpus, "rendered") == ["2406.00001"]


async def test_title_match_outranks_abstract_match(corpus: ArchiveRepo) -> None:
    hits, total = await corpus.search(parse_query("gaussian"))
    assert total == 2
    assert hits[0].paper.arxiv_id == "2406.00001"  # in its title
    assert hits[0].rank > hits[1].rank > 0


async def test_author_match_outranks_abstract_mention(corpus: ArchiveRepo) -> None:
    assert await ids(corpus, "Kerbl") == ["2406.00001", "2406.00002"]


async def test_all_words_must_match(corpus: ArchiveRepo) -> None:
    assert await ids(corpus, "gaussian survey") == ["2406.00002"]
    assert await ids(corpus, "gaussian banana") == []


async def test_quoted_phrase_and_hyphenated_word(corpus: ArchiveRepo) -> None:
    assert await ids(corpus, '"real time rendering"') == ["2406.00001"]
    assert await ids(corpus, "real-time") == ["2406.00001"]
    assert await ids(corpus, '"rendering real time"') == []


async def test_tag_names_are_searchable_words(corpus: ArchiveRepo) -> None:
    found = await ids(corpus, "talking head")
    assert sorted(found) == ["2406.00003", "2406.00004", "hep-th/9901001"]


# --- authors ----------------------------------------------------------------------------


async def test_author_filter(corpus: ArchiveRepo) -> None:
    assert await ids(corpus, "author:Chakkera") == ["2406.00003"]
    assert sorted(await ids(corpus, 'author:"Sai Tanmay"')) == ["2406.00003", "2406.00004"]
    assert await ids(corpus, 'author:"Tanmay Sai"') == []
    assert await ids(corpus, 'author:"Sai Tanmay" lips') == ["2406.00004"]
    assert await ids(corpus, "author:Kerbl") == ["2406.00001"]  # not the abstract mention


# --- arXiv ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["2406.00003", "2406.00003v2", "arXiv:2406.00003", "https://arxiv.org/abs/2406.00003v1",
     "http://arxiv.org/pdf/2406.00003", "(2406.00003)"],
)
async def test_arxiv_id_forms(corpus: ArchiveRepo, text: str) -> None:
    hits, total = await corpus.search(parse_query(text))
    assert [h.paper.arxiv_id for h in hits] == ["2406.00003"]
    assert total == 1
    assert math.isinf(hits[0].rank)


async def test_old_style_id(corpus: ArchiveRepo) -> None:
    assert await ids(corpus, "hep-th/9901001v1") == ["hep-th/9901001"]


async def test_exact_ids_come_before_text_matches(corpus: ArchiveRepo) -> None:
    hits, total = await corpus.search(parse_query("gaussian 2406.00002"))
    assert [h.paper.arxiv_id for h in hits] == ["2406.00002", "2406.00001"]
    assert total == 2  # the exact hit is not counted twice


async def test_unknown_id_finds_nothing(corpus: ArchiveRepo) -> None:
    assert await corpus.search(parse_query("2101.00001")) == ([], 0)


# --- Chinese ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("扩散", ["2406.00003"]),
        ("唇形", ["2406.00003", "2406.00004"]),
        ("高斯", ["2406.00001"]),
        ("高斯溅射", ["2406.00001"]),
        ("扩散模型", ["2406.00003"]),
        ("模型扩散", []),  # a phrase: order matters
        ("渲", ["2406.00001"]),  # one character: any word containing it
        ("唇", ["2406.00003", "2406.00004"]),  # also at the end of a run (嘴唇)
        ("综述", ["2406.00002"]),
        ("NeRF的进展", ["2406.00002"]),
    ],
)
async def test_chinese_terms(corpus: ArchiveRepo, text: str, expected: list[str]) -> None:
    assert sorted(await ids(corpus, text)) == expected


# --- filters, listings, paging ----------------------------------------------------------


async def test_tag_filter(corpus: ArchiveRepo) -> None:
    assert await ids(corpus, "tag:NeRF gaussian") == ["2406.00001", "2406.00002"]
    assert await ids(corpus, "tag:3DGS gaussian") == ["2406.00001"]
    assert await ids(corpus, "#nerf survey") == ["2406.00002"]  # tags match like resolve_tag
    assert await ids(corpus, "tag:Unknown gaussian") == []


async def test_filters_alone_list_newest_first(corpus: ArchiveRepo) -> None:
    assert await ids(corpus, 'tag:"talking head generation"') == ["2406.00003", "2406.00004",
                                                                  "hep-th/9901001"]
    assert await ids(corpus, "since:2024-06-02") == ["2406.00003", "2406.00002", "2406.00001"]
    assert await ids(corpus, "until:2024-05") == ["2406.00004", "hep-th/9901001"]


async def test_date_filters_with_text(corpus: ArchiveRepo) -> None:
    assert await ids(corpus, "since:2024-06-02 until:2024-06-30 gaussian") == [
        "2406.00001", "2406.00002"]  # GS is listed again on 06-02 (NeRF)
    assert await ids(corpus, "tag:3DGS since:2024-06-02 gaussian") == []
    assert await ids(corpus, "since:2024-07 lips") == []


async def test_no_usable_input_gives_nothing(corpus: ArchiveRepo) -> None:
    for text in ("", "   ", "!!!", '""', "* - ( )"):
        assert await corpus.search(parse_query(text)) == ([], 0)


async def test_pagination_and_total(repo: ArchiveRepo) -> None:
    papers = tuple(
        make_paper(f"2407.{i:05d}", title=f"Splatting study {i}", abstract="splatting " * i)
        for i in range(1, 26)
    )
    digest = make_digest("3DGS", date(2024, 7, 1), papers)
    await repo.store_digest(digest, state_of(digest))
    everything = await ids(repo, "splatting", limit=100)
    assert len(everything) == 25
    pages = [await repo.search(parse_query("splatting"), limit=10, offset=o) for o in (0, 10, 20)]
    assert [total for _, total in pages] == [25, 25, 25]
    assert [h.paper.arxiv_id for hits, _ in pages for h in hits] == everything
    assert await repo.search(parse_query("splatting"), limit=10, offset=30) == ([], 25)
    listing = [await repo.search(parse_query("tag:3DGS"), limit=10, offset=o) for o in (0, 20)]
    assert [total for _, total in listing] == [25, 25]
    assert [len(hits) for hits, _ in listing] == [10, 5]
    assert [h.paper.arxiv_id for h in listing[0][0]] == [p.arxiv_id for p in papers[:10]]


async def test_pagination_across_exact_and_text_hits(corpus: ArchiveRepo) -> None:
    query = parse_query("2406.00002 2406.00003 gaussian")
    full = [h.paper.arxiv_id for h in (await corpus.search(query, limit=10))[0]]
    assert full == ["2406.00002", "2406.00003", "2406.00001"]
    for offset in range(4):
        for limit in range(1, 4):
            hits, total = await corpus.search(query, limit=limit, offset=offset)
            assert total == 3
            assert [h.paper.arxiv_id for h in hits] == full[offset : offset + limit]


async def test_papers_by_tag(corpus: ArchiveRepo) -> None:
    papers, total = await corpus.papers_by_tag("talking head generation", limit=2)
    assert total == 3
    assert [p.arxiv_id for p in papers] == ["2406.00003", "2406.00004"]


# --- hostile input ----------------------------------------------------------------------

HOSTILE = [
    '"', '""', '"""', "'", "*", "gauss*", "NEAR(gaussian survey)", "gaussian NEAR survey",
    "-gaussian", "gaussian OR survey", "NOT gaussian", "AND", "title:gaussian",
    "{title}: x", "^gaussian", "'; DROP TABLE papers; --", "1 OR 1=1",
    "\") OR 1=1 --", "x" * 10_000, "高斯" * 5_000, "🦄🔥", "gaussian\x00survey", "\x00",
    "\ud800", "gauss\udfffian", "tag:\ud800", 'author:"\x00"', "since:9999-99-99",
    "arXiv:\ud800", "https://arxiv.org/abs/", "(((((", "a" * 40 + " b" * 400,
    "\u200b\u200d", "Ǆ", "é" * 3, "ｇａｕｓｓｉａｎ",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_queries_return_normally(corpus: ArchiveRepo, text: str) -> None:
    hits, total = await corpus.search(parse_query(text))
    assert total >= len(hits)
    raw = SearchQuery(text=text, tags=(text,), authors=(text,), arxiv_ids=(text,))
    hits, total = await corpus.search(raw)
    assert total >= len(hits)


async def test_survey_still_searchable_after_injection_attempt(corpus: ArchiveRepo) -> None:
    await corpus.search(parse_query("'; DROP TABLE papers; --"))
    assert await ids(corpus, "survey") == ["2406.00002"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())
async def test_any_text_never_raises(corpus: ArchiveRepo, text: str) -> None:
    hits, total = await corpus.search(parse_query(text), limit=3)
    assert 0 <= len(hits) <= 3
    assert total >= len(hits)
    raw = SearchQuery(text=text, tags=(text,), authors=(text,), arxiv_ids=(text,))
    hits, total = await corpus.search(raw, limit=3)
    assert total >= len(hits)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(['"', "*", "NEAR", "OR", "-", "(", ")", ":", "^",
                                       "gaussian", "高斯", "\x00", "tag:", "author:"]),
                      max_size=12))
async def test_operator_soup_never_raises(corpus: ArchiveRepo, words: list[str]) -> None:
    for joiner in (" ", ""):
        hits, total = await corpus.search(parse_query(joiner.join(words)))
        assert total >= len(hits)


# --- listings ---------------------------------------------------------------------------


async def test_latest_digests(corpus: ArchiveRepo) -> None:
    assert await corpus.latest_digest_date() == date(2024, 7, 1)
    assert await corpus.latest_digest_date("nerf") == date(2024, 6, 2)
    latest = await corpus.papers_of_latest_digests("NeRF")
    assert [(d.topic, [p.arxiv_id for p in d.papers]) for d in latest] == [
        ("NeRF", ["2406.00002", "2406.00001"])]  # digest order, not id order
    assert await corpus.latest_digest_date("Nope") is None
    assert await corpus.papers_of_latest_digests("Nope") == []


async def test_papers_on_a_day_grouped_by_digest(corpus: ArchiveRepo) -> None:
    extra = make_digest("3DGS", date(2024, 6, 2), (GS,))
    await corpus.store_digest(extra, state_of(extra))
    day = await corpus.papers_on(date(2024, 6, 2))
    assert [(d.topic, [p.arxiv_id for p in d.papers]) for d in day] == [
        ("3DGS", ["2406.00001"]), ("NeRF", ["2406.00002", "2406.00001"])]
    assert day[1].papers[1].tags == ("3DGS", "NeRF")
    assert await corpus.papers_on(date(2020, 1, 1)) == []


async def test_digest_papers(corpus: ArchiveRepo) -> None:
    found = await corpus.digest_papers(DIGESTS[3].path)
    assert found is not None
    assert (found.topic, found.date) == ("Talking Head Generation", date(2024, 5, 1))
    assert [p.arxiv_id for p in found.papers] == ["2406.00004", "hep-th/9901001"]
    assert await corpus.digest_papers("missing.md") is None
    empty = make_digest("LLM", date(2024, 8, 1), ())
    await corpus.store_digest(empty, state_of(empty))
    assert await corpus.digest_papers(empty.path) == repository.DigestPapers(
        empty.path, "LLM", date(2024, 8, 1))


async def test_export_streams_in_batches(corpus: ArchiveRepo,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository, "EXPORT_BATCH", 2)
    exported = [p.arxiv_id async for p in corpus.export()]
    assert exported == ["2406.00001", "2406.00002", "2406.00003", "2406.00004",
                        "hep-th/9901001"]
    talking = [p async for p in corpus.export("Talking Head Generation")]
    assert [p.arxiv_id for p in talking] == ["2406.00003", "2406.00004", "hep-th/9901001"]
    assert [p async for p in corpus.export("Nope")] == []
    full = next(p for p in talking if p.arxiv_id == "2406.00003")
    assert full.paper == TALK
    assert full.tags == ("Talking Head Generation",)


async def test_stats(corpus: ArchiveRepo) -> None:
    stats = await corpus.stats()
    assert (stats.papers, stats.appearances, stats.digests, stats.tags) == (5, 6, 4, 3)
    assert (stats.first_date, stats.last_date) == (date(2024, 5, 1), date(2024, 7, 1))

