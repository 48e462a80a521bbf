"""Tag choices and keyword filters decide which chat wants which paper."""

from __future__ import annotations

from datetime import date

from bot.domain.matching import matches_keywords, wants
from bot.domain.models import Appearance, ArchivedPaper, Chat, Paper


def paper(title: str = "Gaussian Splatting for Heads", tags: tuple[str, ...] = ("3DGS",)
          ) -> ArchivedPaper:
    p = Paper("2401.00001", 1, title, ("Ada Lovelace",), "An abstract about avatars.",
              "https://arxiv.org/abs/2401.00001v1", "https://arxiv.org/pdf/2401.00001v1",
              summary="一种高斯头像方法。")
    return ArchivedPaper(p, tuple(Appearance(f"2024-01-01/{t}.md", t, date(2024, 1, 1))
                                  for t in tags))


def test_all_topics_gets_everything() -> None:
    assert wants(Chat(1, all_topics=True), paper())


def test_tag_choice_is_case_insensitive_and_exclusive() -> None:
    assert wants(Chat(1, tags=("3dgs",)), paper())
    assert not wants(Chat(1, tags=("NeRF",)), paper())
    assert wants(Chat(1, tags=("NeRF",)), paper(tags=("3DGS", "NeRF")))


def test_unsubscribed_or_inactive_chat_gets_nothing() -> None:
    assert not wants(Chat(1), paper())
    assert not wants(Chat(1, all_topics=True, active=False), paper())


def test_keyword_filters() -> None:
    p = paper()
    assert matches_keywords(p, ("gaussian",), ())
    assert matches_keywords(p, ("高斯",), ())  # Chinese summary counts
    assert not matches_keywords(p, ("diffusion",), ())
    assert not matches_keywords(p, (), ("AVATARS",))
    assert not wants(Chat(1, all_topics=True, exclude=("heads",)), p)
    assert wants(Chat(1, all_topics=True, include=("lovelace", "nerf")), p)
