"""parse_query and normalize_arxiv_id: pure, total, and precise about what they recognise."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import SearchQuery
from bot.domain.query import find_paper_link, normalize_arxiv_id, parse_query


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2409.12156", ("2409.12156", None)),
        ("2409.12156v2", ("2409.12156", 2)),
        ("2409.1215", ("2409.1215", None)),  # 2007-2014 ids have four digits
        ("arXiv:2409.12156", ("2409.12156", None)),
        ("arxiv: 2409.12156v3", ("2409.12156", 3)),
        ("https://arxiv.org/abs/2409.12156v1", ("2409.12156", 1)),
        ("http://arxiv.org/pdf/2409.12156", ("2409.12156", None)),
        ("https://arxiv.org/pdf/2409.12156v2.pdf", ("2409.12156", 2)),
        ("https://www.arxiv.org/abs/2409.12156/", ("2409.12156", None)),
        ("https://arxiv.org/abs/2409.12156?context=cs", ("2409.12156", None)),
        ("arxiv.org/html/2409.12156v1#S3", ("2409.12156", 1)),
        ("  2409.12156  ", ("2409.12156", None)),
        ("hep-th/9901001", ("hep-th/9901001", None)),
        ("hep-th/9901001v2", ("hep-th/9901001", 2)),
        ("math.GT/0309136", ("math.GT/0309136", None)),
        ("Math.gt/0309136", ("math.GT/0309136", None)),
        ("arXiv:cs/0112017", ("cs/0112017", None)),
        ("https://arxiv.org/abs/hep-th/9901001v1", ("hep-th/9901001", 1)),
    ],
)
def test_normalize_arxiv_id(text: str, expected: tuple[str, int | None]) -> None:
    assert normalize_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "2409", "2413.12156", "2400.12156", "3.14159", "2409.121567", "2409.12156v0",
     "2409.12156x", "foo/9901001", "hep-th/990100", "https://example.org/abs/2409.12156",
     "gaussian", "v2", "arXiv:", "２４０９.１２１５６"],
)
def test_not_arxiv_ids(text: str) -> None:
    assert normalize_arxiv_id(text) is None


def test_plain_words_are_text() -> None:
    assert parse_query("  gaussian   splatting ") == SearchQuery(text="gaussian splatting")


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("tag:NeRF", ("NeRF",)),
        ("TAG:NeRF", ("NeRF",)),
        ('tag:"Talking Head Generation"', ("Talking Head Generation",)),
        ('tag:"Talking Head Generation', ("Talking Head Generation",)),  # unclosed quote
        ("#NeRF", ("NeRF",)),
        ("#元宇宙/虚拟人", ("元宇宙/虚拟人",)),
        ("tag：3DGS", ("3DGS",)),  # full-width colon
        ("tag:#NeRF", ("NeRF",)),
        ("tag:NeRF #3DGS tag:nerf tag:NeRF", ("NeRF", "3DGS", "nerf")),
    ],
)
def test_tags(text: str, tags: tuple[str, ...]) -> None:
    query = parse_query(text)
    assert query.tags == tags
    assert query.text == ""


def test_authors() -> None:
    query = parse_query('author:"Sai  Tanmay" author:Chakkera lips')
    assert query.authors == ("Sai Tanmay", "Chakkera")
    assert query.text == "lips"


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("since:2024-06-01", date(2024, 6, 1), None),
        ("since:2024-06", date(2024, 6, 1), None),
        ("since:2024", date(2024, 1, 1), None),
        ("until:2024-06", None, date(2024, 6, 30)),
        ("until:2024-02", None, date(2024, 2, 29)),
        ("until:2024", None, date(2024, 12, 31)),
        ("until:2024-06-15", None, date(2024, 6, 15)),
        ("since:2024/6/1", date(2024, 6, 1), None),
        ("since:2024-01 since:2024-03", date(2024, 3, 1), None),  # the narrower wins
        ("until:2024-05 until:2024-03", None, date(2024, 3, 31)),
    ],
)
def test_dates(text: str, since: date | None, until: date | None) -> None:
    query = parse_query(text)
    assert (query.since, query.until, query.text) == (since, until, "")


@pytest.mark.parametrize(
    "text",
    ["since:banana", "since:2024-13", "since:2024-02-30", "until:0000", "since:", "tag:",
     'tag:""', "author:", "since:20240601x", "until:2024-00"],
)
def test_bad_filter_values_stay_free_text(text: str) -> None:
    query = parse_query(text)
    assert query.text == text
    assert (query.since, query.until, query.tags, query.authors) == (None, None, (), ())


@pytest.mark.parametrize(
    "text",
    ["2409.12156", "2409.12156v2", "arXiv:2409.12156", "https://arxiv.org/abs/2409.12156v1",
     "http://arxiv.org/pdf/2409.12156", "(2409.12156),", "2409.12156."],
)
def test_arxiv_ids_leave_the_text(text: str) -> None:
    assert parse_query(f"see {text}") == SearchQuery(text="see", arxiv_ids=("2409.12156",))


def test_old_style_id_in_query() -> None:
    assert parse_query("hep-th/9901001v1").arxiv_ids == ("hep-th/9901001",)


def test_quoted_phrases_stay_quoted_in_text() -> None:
    assert parse_query('"neural  radiance" fields').text == '"neural radiance" fields'
    assert parse_query('"unclosed phrase').text == '"unclosed phrase"'
    assert parse_query('"" x').text == "x"


def test_everything_at_once() -> None:
    query = parse_query(
        'tag:"Talking Head Generation" #NeRF since:2024-06 until:2024-09-30 '
        'author:"Sai Tanmay" 2409.12156v2 lip "sync quality" 扩散'
    )
    assert query == SearchQuery(
        text='lip "sync quality" 扩散',
        tags=("Talking Head Generation", "NeRF"),
        authors=("Sai Tanmay",),
        arxiv_ids=("2409.12156",),
        since=date(2024, 6, 1),
        until=date(2024, 9, 30),
    )


def test_empty() -> None:
    assert parse_query("").is_empty
    assert parse_query("   \n\t").is_empty


@given(st.text())
def test_parse_query_never_raises(text: str) -> None:
    query = parse_query(text)
    assert isinstance(query, SearchQuery)
    assert all(isinstance(t, str) and t for t in query.tags + query.authors + query.arxiv_ids)


@given(st.text(alphabet=st.sampled_from('tag:since:until:author:#"arXiv2409.12156v/ -x'),
               max_size=60))
def test_filter_soup_never_raises(text: str) -> None:
    parse_query(text)


@given(st.text())
def test_normalize_never_raises(text: str) -> None:
    result = normalize_arxiv_id(text)
    assert result is None or (result[0] and (result[1] is None or result[1] >= 1))


@given(st.from_regex(r"[0-9]{2}(0[1-9]|1[0-2])\.[0-9]{5}(v[1-9][0-9]?)?", fullmatch=True))
def test_every_modern_id_round_trips(text: str) -> None:
    result = normalize_arxiv_id(f"https://arxiv.org/abs/{text}")
    assert result is not None
    assert result[0] == text.split("v")[0]
    assert parse_query(text).arxiv_ids == (result[0],)


@pytest.mark.parametrize(("text", "found"), [
    ("https://arxiv.org/pdf/2405.06547v1", ("2405.06547", 1)),
    ("read https://www.alphaxiv.org/overview/2405.06547 today", ("2405.06547", None)),
    ("https://huggingface.co/papers/2405.06547", ("2405.06547", None)),
    ("arXiv:2405.06547v2", ("2405.06547", 2)),
    ("2405.06547", ("2405.06547", None)),
    ("https://arxiv.org/abs/hep-th/9901001v2", ("hep-th/9901001", 2)),
    ("gaussian avatars", None),
    ("version 1.2.3 of 2024.1", None),
    ("doi 10.1234/2405.06547", None),
    ("https://example.org/2405.06547.png", None),
])
def test_find_paper_link(text: str, found: tuple[str, int | None] | None) -> None:
    assert find_paper_link(text) == found
