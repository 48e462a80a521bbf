"""A synthetic digest folder in the real format, built at run time from a real sample.

The sample is ../shared/digests when it exists (the real posts; never copied into the
repository), else the repository's own made-up fixtures. Every paper section written
here is a recombination of that sample:

* the title joins the first half of one real title to the second half of another;
* authors are drawn from every real author name, as many as some real paper has;
* the abstract is real abstract sentences, as many as some real abstract has;
* the arXiv id is new (`YYMM.NNNNN` of the digest's month), v1 to v3, and 55% carry a
  real arXiv comment after the PDF link, like the real files;
* everything after the PDF line (summary and takeaways headings in their real
  spellings, the ChatPaperFree line, the LLM analysis, the screenshots) is the raw text
  of a real section.

So sizes (median section ~4 KB, mostly analysis), formatting variants and the share of
documents containing a given word or Chinese term follow the sample, while titles,
abstracts and author lists are not repeated verbatim. About 3% of papers are listed
again in another topic on the same day (with another section body), as happens in the
real corpus. The output is deterministic for a seed.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

from bot.domain.parsing import parse_sections

REPO = Path(__file__).resolve().parents[1]
SHARED_DIGESTS = REPO.parent / "shared" / "digests"
FIXTURE_DIGESTS = REPO / "tests" / "fixtures" / "digests"
OLD_MTIME = 1_000_000_000  # 2001: long settled, so a scan reads files at once

TOPICS: tuple[str, ...] = (
    "Diffusion Models", "3DGS", "NeRF", "Talking Head Generation", "元宇宙/虚拟人",
    "医学图像", "牙齿修复", "3D reconstruction", "GAN", "LLM",
)
"""The ten topics of the real corpus."""

_RUN_HEADING = re.compile(r"^#[ \t]+\d{4}-\d{1,2}-\d{1,2}\b", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_DISCLAIMER = (
    ">⚠️ 以下所有内容总结都来自于 Google的大语言模型[Gemini-Pro](https://ai.google.dev/)"
    "的能力，如有错误，仅供参考，谨慎使用\n"
    ">🔴 请注意：千万不要用于严肃的学术场景，只能用于论文阅读前的初筛！\n"
    ">💗 如果您觉得我们的项目对您有帮助 [ChatPaperFree](https://github.com/Kedreamix/ChatPaperFree)"
    " ，还请您给我们一些鼓励！⭐️ [HuggingFace免费体验](https://huggingface.co/spaces/Kedreamix/"
    "ChatPaperFree)\n"
)


def sample_dir() -> Path:
    """The real sample when present, else the repository's fixtures."""
    return SHARED_DIGESTS if SHARED_DIGESTS.is_dir() else FIXTURE_DIGESTS


@dataclass(slots=True)
class Sample:
    """Pieces of real paper sections to recombine."""

    titles: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    author_counts: list[int] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    sentence_counts: list[int] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)  # raw text after the PDF line
    summaries: list[str] = field(default_factory=list)
    takeaways: list[str] = field(default_factory=list)
    papers: int = 0
    source: str = ""


def load_sample(root: Path | None = None) -> Sample:
    """Parse the sample folder into recombinable pieces (raw section text included)."""
    root = root or sample_dir()
    sample = Sample(source=str(root))
    authors: dict[str, None] = {}
    for path in sorted(root.rglob("*.md")):
        rel = path.relative_to(root).as_posix()
        if "/" not in rel:  # a non-digest post at the root
            continue
        text = path.read_text(encoding="utf-8")
        papers, _ = parse_sections(text, rel)
        lines = text.split("\n")
        starts = [p.line - 1 for p in papers] + [len(lines)]
        for paper, start, end in zip(papers, starts, starts[1:], strict=False):
            section = lines[start:end]
            pdf = next((i for i, line in enumerate(section) if line.startswith("[PDF](")), None)
            if pdf is None:
                continue
            body = "\n".join(section[pdf + 1 :]).rstrip("\n") + "\n"
            if _RUN_HEADING.search(body) or ">⚠️" in body:
                continue  # the tail of a run: a second run follows in this file
            sample.papers += 1
            sample.bodies.append(body)
            sample.titles.append(paper.title)
            authors.update(dict.fromkeys(a for a in paper.authors if a))
            sample.author_counts.append(max(1, len(paper.authors)))
            sentences = [s.strip() for s in _SENTENCE_END.split(paper.abstract) if s.strip()]
            sample.sentences.extend(sentences)
            sample.sentence_counts.append(max(1, len(sentences)))
            if paper.comment:
                sample.comments.append(paper.comment)
            if paper.summary:
                sample.summaries.append(paper.summary)
            sample.takeaways.extend(paper.takeaways)
    sample.authors = list(authors)
    if not sample.bodies:
        raise RuntimeError(f"no usable paper sections in {root}")
    return sample


@dataclass(frozen=True, slots=True)
class GenSpec:
    """What to generate: `papers` distinct papers over `days` days and the ten topics."""

    papers: int
    days: int
    start: date = date(2022, 1, 1)
    topics: tuple[str, ...] = TOPICS
    crosslist: float = 0.03  # share of papers listed again in another topic that day
    seed: int = 20241208


@dataclass(frozen=True, slots=True)
class GenResult:
    """What was written."""

    folder: str
    files: int
    sections: int  # paper sections written (cross-listings included)
    papers: int  # distinct arXiv ids
    bytes: int
    median_section_chars: int
    seconds: float
    sample: str
    sample_papers: int


@dataclass(slots=True)
class _Head:
    """Everything of a section up to and including its PDF line."""

    arxiv_id: str
    text: str


class _Writer:
    def __init__(self, sample: Sample, rng: random.Random) -> None:
        self.s = sample
        self.rng = rng
        self.seq: dict[str, int] = {}

    def _title(self) -> str:
        rng, titles = self.rng, self.s.titles
        a, b = rng.choice(titles).split(" "), rng.choice(titles).split(" ")
        if len(a) < 2 or len(b) < 2:
            return " ".join(a + b)
        return " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])

    def head(self, day: date) -> _Head:
        rng, s = self.rng, self.s
        month = f"{day.year % 100:02d}{day.month:02d}"
        number = self.seq.get(month, rng.randrange(100, 900)) + 1
        self.seq[month] = number
        arxiv_id = f"{month}.{number:05d}"
        authors = rng.sample(s.authors, min(len(s.authors), rng.choice(s.author_counts)))
        abstract = " ".join(rng.choice(s.sentences) for _ in range(rng.choice(s.sentence_counts)))
        version = rng.choice((1, 1, 1, 1, 2, 3))
        comment = rng.choice(s.comments) if s.comments and rng.random() < 0.55 else ""
        text = (
            f"## {self._title()}\n\n"
            f"**Authors:{', '.join(authors)}**\n\n"
            f"{abstract} \n\n"
            f"[PDF](http://arxiv.org/abs/{arxiv_id}v{version}) {comment}\n"
        )
        return _Head(arxiv_id, text)

    def section(self, head: _Head) -> str:
        return head.text + self.rng.choice(self.s.bodies) + "\n\n"


def digest_text(topic: str, day: date, sections: list[str], first_title: str) -> str:
    """A whole digest file: front matter as the real posts have it, disclaimer, run heading."""
    return (
        "\n---\n"
        f"title: {topic}\n"
        f"date: {day.isoformat()} 10:27:21\n"
        "author: Kedreamix\n"
        "cover: https://pic1.zhimg.com/v2-c86a22bdef32992a511e9779a2176513.jpg\n"
        "categories: Paper\n"
        "tags:\n"
        f"    - {topic}\n"
        f"description: {topic} 方向最新论文已更新，请持续关注 Update in {day.isoformat()}  "
        f"{first_title}\n"
        f"keywords: {topic}\n"
        "toc:\ntoc_number: false\ntoc_style_simple: true\ncopyright:\ncopyright_author:\n"
        "copyright_author_href:\ncopyright_url:\ncopyright_info:\nmathjax: true\nkatex:\n"
        "aplayer:\nhighlight_shrink:\naside:\n"
        "---\n\n"
        f"{_DISCLAIMER}\n"
        f"# {day.isoformat()} 更新\n\n\n" + "".join(sections)
    )


def file_name(topic: str) -> str:
    """A topic's file name: `/` becomes `_` (元宇宙/虚拟人 -> 元宇宙_虚拟人.md)."""
    return topic.replace("/", "_") + ".md"


def generate(folder: Path, spec: GenSpec, sample: Sample | None = None) -> GenResult:
    """Write `<YYYY-MM-DD>/<topic>.md` files holding `spec.papers` papers (plus cross-listings)."""
    started = time.perf_counter()
    sample = sample or load_sample()
    rng = random.Random(spec.seed)
    writer = _Writer(sample, rng)
    ntopics = len(spec.topics)
    nfiles = spec.days * ntopics
    counts = [0] * nfiles
    for _ in range(spec.papers):  # multinomial: mean papers/file, a few empty files
        counts[rng.randrange(nfiles)] += 1
    folder.mkdir(parents=True, exist_ok=True)
    files = sections_written = total_bytes = 0
    sizes: list[int] = []
    for d in range(spec.days):
        day = spec.start + timedelta(days=d)
        heads = [[writer.head(day) for _ in range(counts[d * ntopics + t])]
                 for t in range(ntopics)]
        extra: list[list[_Head]] = [[] for _ in range(ntopics)]
        for t in range(ntopics):
            for head in heads[t]:
                if rng.random() < spec.crosslist and ntopics > 1:
                    other = (t + rng.randrange(1, ntopics)) % ntopics
                    extra[other].append(head)
        day_dir = folder / day.isoformat()
        day_dir.mkdir(exist_ok=True)
        for t, topic in enumerate(spec.topics):
            listed = heads[t] + extra[t]
            rng.shuffle(listed)
            texts = [writer.section(h) for h in listed]
            sizes.extend(len(x) for x in texts)
            first = listed[0].text.split("\n", 1)[0][3:].replace(":", " ") if listed else ""
            data = digest_text(topic, day, texts, first).encode("utf-8")
            path = day_dir / file_name(topic)
            path.write_bytes(data)
            os.utime(path, (OLD_MTIME, OLD_MTIME))
            files += 1
            sections_written += len(listed)
            total_bytes += len(data)
    sizes.sort()
    return GenResult(
        folder=str(folder), files=files, sections=sections_written, papers=spec.papers,
        bytes=total_bytes, median_section_chars=sizes[len(sizes) // 2] if sizes else 0,
        seconds=time.perf_counter() - started, sample=sample.source,
        sample_papers=sample.papers,
    )


def ensure_generated(folder: Path, spec: GenSpec) -> GenResult:
    """Generate once per spec: a folder left by an earlier run with the same spec is reused."""
    marker = folder.parent / f"{folder.name}.json"
    wanted = {k: str(v) for k, v in asdict(spec).items()}
    if marker.exists() and folder.is_dir():
        saved = json.loads(marker.read_text())
        if saved.get("spec") == wanted:
            return GenResult(**{**saved["result"], "folder": str(folder)})
    if folder.exists():
        shutil.rmtree(folder)
    result = generate(folder, spec)
    marker.write_text(json.dumps({"spec": wanted, "result": asdict(result)}, ensure_ascii=False))
    return result


def write_new_digest(folder: Path, topic: str, day: date, papers: int,
                     sample: Sample | None = None, seed: int = 1) -> list[str]:
    """One more digest, `<day>/<topic>.md` with `papers` papers whose ids no generated
    folder uses (`YYMM.9NNNN`); returns those ids in file order."""
    rng = random.Random(seed)
    writer = _Writer(sample or load_sample(), rng)
    writer.seq[f"{day.year % 100:02d}{day.month:02d}"] = 90_000
    heads = [writer.head(day) for _ in range(papers)]
    texts = [writer.section(h) for h in heads]
    first = heads[0].text.split("\n", 1)[0][3:].replace(":", " ") if heads else ""
    path = folder / day.isoformat() / file_name(topic)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest_text(topic, day, texts, first), encoding="utf-8")
    os.utime(path, (OLD_MTIME, OLD_MTIME))
    return [h.arxiv_id for h in heads]
