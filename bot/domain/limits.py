"""Size limits on what a digest may put in the archive: a long analysis is cut, a long
figure list keeps its first figures.

Why at ingest: everything stored is later rendered for readers, on the bot's event loop
or in an inline answer. Bounding it once, where the digest is parsed (off the event
loop), bounds every later step, and the reader is told in the analysis itself that the
rest is in the digest file. The limits are settings (ANALYSIS_MAX_BYTES, FIGURES_MAX).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from bot.domain.models import Digest, Paper, ParseWarning

__all__ = ["CUT_NOTE", "Limits", "apply_limits", "cut_analysis"]

CUT_NOTE: Final = ("\n\n*✂️ This analysis was cut at {size}: the rest is in the digest file. "
                   "/ 解读过长，已截断。*")
"""Appended to a cut analysis; the analysis is markdown, so this renders as italics."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one paper may bring; 0 means no limit."""

    analysis_bytes: int = 64 * 1024
    figures: int = 20


def _size(n: int) -> str:
    return f"{n // 1024} KB" if n >= 1024 and n % 1024 == 0 else f"{n} bytes"


def cut_analysis(text: str, max_bytes: int) -> str | None:
    """The analysis cut to at most ``max_bytes`` of UTF-8 (at a line end when one is near,
    never inside a character) with a note; None when it fits."""
    raw = text.encode("utf-8")
    if max_bytes <= 0 or len(raw) <= max_bytes:
        return None
    head = raw[:max_bytes].decode("utf-8", errors="ignore")
    line_end = head.rfind("\n")
    if line_end >= len(head) * 3 // 4:  # a line end in the last quarter: cut there
        head = head[:line_end]
    return head.rstrip() + CUT_NOTE.format(size=_size(max_bytes))


def _limit_paper(paper: Paper, limits: Limits, path: str,
                 warnings: list[ParseWarning]) -> Paper:
    changes: dict[str, object] = {}
    cut = cut_analysis(paper.analysis, limits.analysis_bytes)
    if cut is not None:
        changes["analysis"] = cut
        warnings.append(ParseWarning(path, paper.line, (
            f"{paper.arxiv_id}: analysis of {len(paper.analysis.encode('utf-8'))} bytes cut "
            f"to {_size(limits.analysis_bytes)} (ANALYSIS_MAX_BYTES)")))
    if 0 < limits.figures < len(paper.figures):
        changes["figures"] = paper.figures[:limits.figures]
        warnings.append(ParseWarning(path, paper.line, (
            f"{paper.arxiv_id}: {len(paper.figures)} figures, kept the first "
            f"{limits.figures} (FIGURES_MAX)")))
    return replace(paper, **changes) if changes else paper  # type: ignore[arg-type]


def apply_limits(digest: Digest, limits: Limits) -> Digest:
    """The digest with every paper within ``limits``; each cut is a warning of the file."""
    warnings: list[ParseWarning] = []
    papers = tuple(_limit_paper(p, limits, digest.path, warnings) for p in digest.papers)
    if not warnings:
        return digest
    return replace(digest, papers=papers, warnings=digest.warnings + tuple(warnings))
