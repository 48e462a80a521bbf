"""The saved list's lines, BibTeX file and links, as plain functions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import bibtexparser
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import SavedPaper
from bot.domain.saved import render_saved_line, saved_bibtex, saved_links
from bot.domain.tgtext import utf16_len, validate_telegram_html

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def entry(arxiv_id: str = "2406.00001", title: str = "Gaussian Things", *,
          authors: tuple[str, ...] = ("Ada Smith",), in_archive: bool = False,
          abs_url: str | None = None) -> SavedPaper:
    return SavedPaper(arxiv_id, title, authors,
                      abs_url if abs_url is not None else f"https://arxiv.org/abs/{arxiv_id}v1",
                      date(2024, 6, 1), NOW, in_archive)


def test_a_paper_gone_from_the_archive_keeps_title_date_and_link() -> None:
    line = render_saved_line(entry(title="A <b> & B"), 6, None, "zh")
    assert line == ('6. <b>A &lt;b&gt; &amp; B</b> · 2024-06-01 · '
                    '<a href="https://arxiv.org/abs/2406.00001v1">arXiv</a> · '
                    '<i>已不在资料库中</i>')
    validate_telegram_html(line)
    # A stored link that is not a sound URL gives way to the id's own.
    assert 'href="https://arxiv.org/abs/2406.00001"' in render_saved_line(
        entry(abs_url="javascript:alert(1)"), 1, None)


def test_bibtex_keys_are_unique_and_every_entry_parses() -> None:
    same = [entry(f"2406.0000{n}", "Gaussian Things") for n in range(1, 4)]
    text = saved_bibtex([*same, entry("hep-th/9901001", "{Odd} & 50% $x$_1 \\o/")])
    library = bibtexparser.loads(text)
    assert [e["ID"] for e in library.entries] == [
        "smith2024gaussian", "smith2024gaussianb", "smith2024gaussianc", "smith1999odd"]
    assert [e["eprint"] for e in library.entries] == [
        "2406.00001", "2406.00002", "2406.00003", "hep-th/9901001"]


def test_links_fill_messages_without_splitting_a_line() -> None:
    entries = [entry(f"2406.{n:05d}", f"Paper number {n} " + "x" * 200) for n in range(60)]
    messages = saved_links(entries)
    assert len(messages) > 1
    assert all(utf16_len(m) <= 4096 for m in messages)
    lines = [line for m in messages for line in m.split("\n")]
    assert lines == [f"Paper number {n} {'x' * 200} — https://arxiv.org/abs/2406.{n:05d}v1"
                     for n in range(60)]
    assert saved_links([]) == []


@given(st.lists(st.text(min_size=0, max_size=2000), max_size=30))
def test_links_always_fit(titles: list[str]) -> None:
    messages = saved_links([entry(f"2406.{n:05d}", t) for n, t in enumerate(titles)])
    assert all(0 < utf16_len(m) <= 4096 for m in messages)
    assert sum(m.count("\n") + 1 for m in messages) == len(titles)
