"""`/repost` targets parse from what an operator types; paths and garbage are refused."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.repost import BadRepost, RepostRequest, parse_repost


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["2024-09-24"], RepostRequest(day=date(2024, 9, 24))),
        (["2024-09-24/NeRF"], RepostRequest(day=date(2024, 9, 24), tag="NeRF")),
        (["2024-09-24/Talking", "Head", "Generation"],
         RepostRequest(day=date(2024, 9, 24), tag="Talking Head Generation")),
        (["2024-09-24/元宇宙/虚拟人"], RepostRequest(day=date(2024, 9, 24), tag="元宇宙/虚拟人")),
        (["2024-09-24/元宇宙_虚拟人.md"],
         RepostRequest(day=date(2024, 9, 24), tag="元宇宙_虚拟人")),
        (["NeRF", "2024-09-24"], RepostRequest(day=date(2024, 9, 24), tag="NeRF")),
        (["2024-09-24", "NeRF", "all"], RepostRequest(day=date(2024, 9, 24), tag="NeRF")),
        (["2409.12156v2"], RepostRequest(arxiv_id="2409.12156")),
        (["https://arxiv.org/abs/2409.12156", "-1001234"],
         RepostRequest(arxiv_id="2409.12156", chat_id=-1001234)),
        (["2024-09-24", "@papers_channel"],
         RepostRequest(day=date(2024, 9, 24), channel="@papers_channel")),
    ],
)
def test_targets(args: list[str], expected: RepostRequest) -> None:
    assert parse_repost(args) == expected


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ([], "name what to repost"),
        (["../../etc/passwd"], "file path"),
        (["/etc/passwd"], "file path"),
        (["2024-09-24/../secrets"], "file path"),
        (["2024-13-45"], "not a date"),
        (["banana"], "not a date, a date/topic"),
    ],
)
def test_refusals(args: list[str], reason: str) -> None:
    with pytest.raises(BadRepost, match=reason):
        parse_repost(args)


@given(st.lists(st.text(max_size=40), max_size=5))
def test_anything_parses_or_is_refused_clearly(args: list[str]) -> None:
    try:
        request = parse_repost(args)
    except BadRepost as exc:
        message = str(exc)
        assert message
    else:
        assert request.day or request.arxiv_id
