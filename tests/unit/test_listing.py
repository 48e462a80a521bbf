"""The list message of the digest mode: numbered lines, a button each, within Telegram's
limits whatever the papers hold."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.listing import PER_MESSAGE, ListEntry, render_listing
from bot.domain.models import Appearance, ArchivedPaper, Paper
from bot.domain.rendering import MAX_CALLBACK_BYTES
from bot.domain.tgtext import MAX_MESSAGE_LEN, validate_telegram_html, visible_len

DAY = date(2024, 7, 1)


def entry(n: int, title: str = "", summary: str = "", digest_summary: str | None = None
          ) -> ListEntry:
    arxiv_id = f"2407.{n:05d}"
    paper = Paper(arxiv_id=arxiv_id, version=1, title=title or f"Paper {n}", authors=("A",),
                  abstract="x", abs_url=f"https://arxiv.org/abs/{arxiv_id}v1",
                  pdf_url=f"https://arxiv.org/pdf/{arxiv_id}v1", summary=summary)
    appearance = Appearance("2024-07-01/T.md", "T", DAY, summary=digest_summary or "")
    return ListEntry(ArchivedPaper(paper, (appearance,)), appearance)


def test_lines_number_the_papers_and_buttons_open_their_cards() -> None:
    [(shown, card)] = render_listing("NeRF", DAY, [entry(1, summary="own"),
                                                   entry(2, digest_summary="这一篇的总结")])
    assert shown == range(2)
    assert card.html.startswith("📚 <b>NeRF</b> · 2024-07-01 · 2 new papers\n\n")
    assert "1. <b>Paper 1</b>\nown" in card.html
    assert "2. <b>Paper 2</b>\n这一篇的总结" in card.html  # the digest's own summary first
    assert [(b.text, b.callback) for (b,) in card.buttons] == [
        ("1. Paper 1", "pp:2407.00001"), ("2. Paper 2", "pp:2407.00002")]


def test_many_papers_take_several_messages_numbered_on() -> None:
    parts = render_listing("NeRF", DAY, [entry(n) for n in range(1, 24)], lang="zh")
    assert [list(shown) for shown, _ in parts] == [
        list(range(0, 10)), list(range(10, 20)), list(range(20, 23))]
    assert parts[1][1].html.startswith("📚 <b>NeRF</b> · 2024-07-01 · 23 篇新论文 (2/3)")
    assert "11. <b>Paper 11</b>" in parts[1][1].html
    assert parts[2][1].buttons[0][0].text == "21. Paper 21"


def test_papers_of_no_digest_are_counted_under_a_plain_header() -> None:
    [(_, card)] = render_listing(None, None, [entry(1)], reason="repost")
    assert card.html.startswith("📚 1 paper\n\n")


def test_nothing_to_list_is_no_message() -> None:
    assert render_listing("NeRF", DAY, []) == []


hostile = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=3000)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(hostile, hostile), min_size=1, max_size=25), hostile)
def test_every_message_is_valid_and_fits_whatever_the_papers_hold(
    fields: list[tuple[str, str]], topic: str,
) -> None:
    entries = [entry(n, title, summary) for n, (title, summary) in enumerate(fields, 1)]
    parts = render_listing(topic, DAY, entries)
    assert [i for shown, _ in parts for i in shown] == list(range(len(entries)))
    for shown, card in parts:
        validate_telegram_html(card.html)
        assert visible_len(card.html) <= MAX_MESSAGE_LEN
        assert 1 <= len(shown) <= PER_MESSAGE
        assert len(card.buttons) == len(shown)
        for (button,) in card.buttons:
            assert button.callback is not None
            assert len(button.callback.encode()) <= MAX_CALLBACK_BYTES
            assert button.text.strip()
