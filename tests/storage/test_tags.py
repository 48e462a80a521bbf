"""Tags: counts, last dates, and matching what users type to the stored names."""

from __future__ import annotations

from datetime import date

import pytest

from bot.errors import UnknownTag
from bot.storage.repository import ArchiveRepo
from tests.storage.factories import make_digest, make_paper, state_of

TOPICS = ("Talking Head Generation", "元宇宙/虚拟人", "NeRF", "3DGS", "Diffusion Models")


@pytest.fixture
async def tagged(repo: ArchiveRepo) -> ArchiveRepo:
    shared = make_paper("2409.00001")
    digests = [
        make_digest("Talking Head Generation", date(2024, 6, 1),
                    (shared, make_paper("2409.00002"))),
        make_digest("Talking Head Generation", date(2024, 6, 3), (shared,)),
        make_digest("元宇宙/虚拟人", date(2024, 6, 2), (shared,)),
        make_digest("NeRF", date(2024, 5, 1), (make_paper("2405.00001"),)),
        make_digest("3DGS", date(2024, 7, 1), ()),  # an empty digest still names a tag
        make_digest("Diffusion Models", date(2024, 6, 1), (make_paper("2409.00003"),)),
    ]
    for digest in digests:
        await repo.store_digest(digest, state_of(digest))
    return repo


async def test_tags_count_papers_and_last_date(tagged: ArchiveRepo) -> None:
    infos = {t.name: t for t in await tagged.tags()}
    assert infos["Talking Head Generation"].papers == 2  # distinct papers, not appearances
    assert infos["Talking Head Generation"].last_date == date(2024, 6, 3)
    assert infos["元宇宙/虚拟人"].papers == 1
    assert infos["3DGS"].papers == 0
    assert infos["3DGS"].last_date == date(2024, 7, 1)


async def test_tags_sorted_by_casefolded_name(tagged: ArchiveRepo) -> None:
    names = [t.name for t in await tagged.tags()]
    assert names == sorted(TOPICS, key=str.casefold)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Talking Head Generation", "Talking Head Generation"),
        ("talking head generation", "Talking Head Generation"),
        ("TalkingHeadGeneration", "Talking Head Generation"),
        ("talking-head_generation", "Talking Head Generation"),
        ("#nerf", "NeRF"),
        ("NERF", "NeRF"),
        ("元宇宙_虚拟人", "元宇宙/虚拟人"),
        ("元宇宙/虚拟人", "元宇宙/虚拟人"),
        ("３ＤＧＳ", "3DGS"),  # full-width, as a Chinese keyboard may type it
    ],
)
async def test_resolve_tag_variants(tagged: ArchiveRepo, typed: str, expected: str) -> None:
    assert await tagged.resolve_tag(typed) == expected


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [
        ("talking", "Talking Head Generation"),
        ("Talking Heads Generation", "Talking Head Generation"),
        ("nerv", "NeRF"),
        ("diffusion", "Diffusion Models"),
        ("元宇宙", "元宇宙/虚拟人"),
    ],
)
async def test_unknown_tag_suggests_close_names(
    tagged: ArchiveRepo, typed: str, suggested: str
) -> None:
    with pytest.raises(UnknownTag) as info:
        await tagged.resolve_tag(typed)
    assert info.value.tag == typed
    assert suggested in info.value.suggestions
    assert len(info.value.suggestions) <= 5


@pytest.mark.parametrize("typed", ["", "   ", "zzzzzzzz", "\x00", "\ud800"])
async def test_hopeless_tag_raises_with_few_or_no_suggestions(
    tagged: ArchiveRepo, typed: str
) -> None:
    with pytest.raises(UnknownTag) as info:
        await tagged.resolve_tag(typed)
    assert info.value.suggestions == ()


async def test_resolve_tag_on_empty_archive(repo: ArchiveRepo) -> None:
    with pytest.raises(UnknownTag):
        await repo.resolve_tag("NeRF")
