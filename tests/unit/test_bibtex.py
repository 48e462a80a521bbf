"""BibTeX entries parse with a real BibTeX parser, with TeX's special characters escaped."""

from __future__ import annotations

import bibtexparser
from bibtexparser.bparser import BibTexParser
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.bibtex import bibtex_entry, bibtex_key, tex_escape, unique_entry
from bot.domain.models import Paper


def paper(arxiv_id: str = "2409.12156", title: str = "Gaussian Avatars: A Study",
          authors: tuple[str, ...] = ("Ada Lovelace", "Alan Turing")) -> Paper:
    return Paper(arxiv_id=arxiv_id, version=1, title=title, authors=authors, abstract="",
                 abs_url=f"https://arxiv.org/abs/{arxiv_id}v1",
                 pdf_url=f"https://arxiv.org/pdf/{arxiv_id}v1")


def parse(text: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = bibtexparser.loads(
        text, parser=BibTexParser(common_strings=True)).entries
    return entries


def test_an_entry_has_what_a_citation_needs() -> None:
    [entry] = parse(bibtex_entry(paper()))
    assert entry["ENTRYTYPE"] == "misc"
    assert entry["ID"] == "lovelace2024gaussian"
    assert entry["title"] == "{Gaussian Avatars: A Study}"
    assert entry["author"] == "Ada Lovelace and Alan Turing"
    assert (entry["year"], entry["eprint"], entry["archiveprefix"]) == (
        "2024", "2409.12156", "arXiv")
    assert entry["url"] == "https://arxiv.org/abs/2409.12156"


def test_tex_specials_are_escaped() -> None:
    hostile = paper(title="50% of {braces} & $math$ #1 with_under ~tilde^ back\\slash",
                    authors=("Jean-Pierre Sérre", "O'Brien {Jr}"))
    text = bibtex_entry(hostile)
    [entry] = parse(text)
    assert (r"50\% of \textbraceleft{}braces\textbraceright{} \& \$math\$ \#1 with\_under"
            in entry["title"])
    assert r"\textasciitilde{}tilde\textasciicircum{} back\textbackslash{}slash" in entry[
        "title"]
    assert entry["author"] == r"Jean-Pierre Sérre and O'Brien \textbraceleft{}Jr\textbraceright{}"
    assert entry["ID"] == "serre2024braces"  # ASCII only; "50", "of" are not title words


def test_years_and_keys_of_old_ids_and_non_latin_names() -> None:
    assert bibtex_key(paper("hep-th/9901001")) == "lovelace1999gaussian"
    chinese = paper(title="扩散模型", authors=("张三",))
    assert bibtex_key(chinese) == "arxiv240912156"
    [entry] = parse(bibtex_entry(chinese))
    assert entry["title"] == "{扩散模型}"


def test_keys_in_one_file_are_unique() -> None:
    keys: set[str] = set()
    text = "\n".join(unique_entry(paper(f"2409.1215{n}"), keys) for n in range(4))
    assert [e["ID"] for e in parse(text)] == [
        "lovelace2024gaussian", "lovelace2024gaussianb", "lovelace2024gaussianc",
        "lovelace2024gaussiand"]


@settings(max_examples=200, deadline=None)
@given(title=st.text(min_size=1, max_size=80), names=st.lists(
    st.text(min_size=1, max_size=30), min_size=1, max_size=4))
def test_any_title_and_names_parse(title: str, names: list[str]) -> None:
    if not title.strip():
        return
    [entry] = parse(bibtex_entry(paper(title=title, authors=tuple(names))))
    assert entry["eprint"] == "2409.12156"
    assert tex_escape(title) in entry["title"]


def test_a_collaboration_paper_ends_with_and_others() -> None:
    many = paper(authors=tuple(f"Author Number{n}" for n in range(500)))
    [entry] = parse(bibtex_entry(many, max_authors=30))
    names = entry["author"].split(" and ")
    assert len(names) == 31
    assert names[-1] == "others"
    assert len(parse(bibtex_entry(many))[0]["author"].split(" and ")) == 500
