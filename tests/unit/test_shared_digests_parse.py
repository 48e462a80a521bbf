"""The parser over the real developer sample in ``../shared/digests`` (skipped when absent).

The sample README counts 581 paper sections and 529 distinct arXiv ids. 581 is the number
of sections as written, over the 46 ``<date>/<topic>.md`` files: two files hold two
joined runs (10 sections for 5 papers, 28 for 14), so de-duplicating inside each file
gives 562 papers. `parse_sections` gives the raw sections, `parse_digest` the papers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from bot.domain.models import Digest, Paper
from bot.domain.parsing import parse_digest, parse_sections
from bot.errors import NotADigest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "digests"
BASE_URL = "https://blog.example.org"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"no developer sample at {SHARED}"),
]

DATE_DIR = re.compile(r"\d{4}-\d{2}-\d{2}")
NEW_STYLE_ID = re.compile(r"\d{4}\.\d{4,5}")
LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")


@dataclass(frozen=True)
class Parsed:
    digest: Digest  # parsed without a blog base URL
    resolved: Digest  # parsed with one
    sections: tuple[Paper, ...]


@pytest.fixture(scope="module")
def sample() -> dict[str, Parsed]:
    out: dict[str, Parsed] = {}
    for file in sorted(SHARED.glob("*/*.md")):
        if not DATE_DIR.fullmatch(file.parent.name):
            continue
        rel = file.relative_to(SHARED).as_posix()
        text = file.read_text(encoding="utf-8")
        out[rel] = Parsed(
            digest=parse_digest(text, rel),
            resolved=parse_digest(text, rel, blog_base_url=BASE_URL),
            sections=parse_sections(text, rel)[0],
        )
    return out


def all_papers(sample: dict[str, Parsed]) -> list[Paper]:
    return [p for parsed in sample.values() for p in parsed.digest.papers]


def test_every_dated_file_parses(sample: dict[str, Parsed]) -> None:
    assert len(sample) == 46
    assert {p.digest.topic for p in sample.values()} == {
        "3D reconstruction",
        "3DGS",
        "Diffusion Models",
        "GAN",
        "LLM",
        "NeRF",
        "Talking Head Generation",
        "元宇宙/虚拟人",
        "医学图像",
        "牙齿修复",
    }


def test_the_awesome_list_is_not_a_digest() -> None:
    rel = "Awesome-Talking-Head-Synthesis.md"
    with pytest.raises(NotADigest, match="not a daily digest"):
        parse_digest((SHARED / rel).read_text(encoding="utf-8"), rel)


def test_section_and_id_counts_match_the_readme(sample: dict[str, Parsed]) -> None:
    assert sum(len(p.sections) for p in sample.values()) == 581
    assert len({paper.arxiv_id for paper in all_papers(sample)}) == 529
    assert len(all_papers(sample)) == 562
    two_runs = {
        rel: (len(p.sections), len(p.digest.papers))
        for rel, p in sample.items()
        if len(p.sections) != len(p.digest.papers)
    }
    assert two_runs == {
        "2024-04-06/元宇宙_虚拟人.md": (10, 5),
        "2024-10-27/Diffusion Models.md": (28, 14),
    }


def test_seeds_are_copies_of_talking_head_digests(sample: dict[str, Parsed]) -> None:
    seeds = sorted((SHARED / "seeds").glob("*.txt"))
    assert len(seeds) == 5
    known = {p.digest.papers for rel, p in sample.items() if "Talking Head" in rel}
    for seed in seeds:
        text = seed.read_text(encoding="utf-8")
        matches = [rel for rel, p in sample.items() if parse_digest(text, rel) == p.digest]
        assert len(matches) == 1, seed.name
        assert sample[matches[0]].digest.papers in known


def test_spot_values_from_the_readme(sample: dict[str, Parsed]) -> None:
    assert sample["2024-05-06/3DGS.md"].digest.papers == ()
    assert sample["2024-05-06/3DGS.md"].digest.cover is None
    assert sample["2024-10-12/NeRF.md"].digest.date == date(2024, 10, 12)  # front matter: 10-19
    assert sample["2024-01-24/3DGS.md"].digest.date == date(2024, 1, 24)  # heading: 01-27
    assert sample["2024-10-12/元宇宙_虚拟人.md"].digest.topic == "元宇宙/虚拟人"
    assert sum(p.digest.cover is None for p in sample.values()) == 4


def test_every_paper_is_complete(sample: dict[str, Parsed]) -> None:
    for rel, parsed in sample.items():
        for paper in parsed.resolved.papers:
            where = f"{rel}:{paper.line}"
            assert paper.title, where
            assert paper.title == " ".join(paper.title.split()), where
            assert NEW_STYLE_ID.fullmatch(paper.arxiv_id), where
            assert 1 <= paper.version <= 5, where
            assert paper.abs_url == f"https://arxiv.org/abs/{paper.arxiv_id}v{paper.version}"
            assert paper.pdf_url == f"https://arxiv.org/pdf/{paper.arxiv_id}v{paper.version}"
            assert paper.authors, where
            assert all(a and a == a.strip() for a in paper.authors), where
            assert paper.abstract, where
            assert paper.analysis, where
            assert "\n>⚠️" not in paper.analysis, where
            assert 1 <= len(paper.figures) <= 11, where
            assert all(f.startswith(("http://", "https://")) for f in paper.figures), where
            assert not paper.summary.startswith("**"), where
            for item in paper.takeaways:
                assert item, where
                assert not LIST_MARKER.match(item), where


def test_summaries_and_takeaways(sample: dict[str, Parsed]) -> None:
    papers = all_papers(sample)
    with_summary = sum(bool(p.summary) for p in papers)
    assert with_summary / len(papers) >= 0.99
    sections = [
        (rel, p.line) for rel, parsed in sample.items() for p in parsed.sections if not p.takeaways
    ]
    assert sections == [("2024-08-23/Talking Head Generation.md", 1427)]


def test_links_come_from_comments(sample: dict[str, Parsed]) -> None:
    papers = all_papers(sample)
    with_comment = [p for p in papers if p.comment]
    assert 0.5 <= len(with_comment) / len(papers) <= 0.65  # 55% over the whole corpus
    for paper in papers:
        assert ("http" in paper.comment) == bool(paper.links), paper.arxiv_id
        assert "\\url{" not in paper.comment
        for link in paper.links:
            assert link in paper.comment
            assert not link.endswith((".", ",", ";", ")"))


def test_warnings_only_for_relative_images_without_base_url(sample: dict[str, Parsed]) -> None:
    warned = {w.path for parsed in sample.values() for w in parsed.digest.warnings}
    assert warned == {"2024-10-30/3DGS.md"}
    assert all(
        "image path(s) dropped" in w.message for w in sample["2024-10-30/3DGS.md"].digest.warnings
    )
    assert all(parsed.resolved.warnings == () for parsed in sample.values())
