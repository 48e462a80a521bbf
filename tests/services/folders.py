"""Digest folders that change under a running bot: emptied and restored, as an unmounted
volume or a sync tool rewriting the folder would leave them."""

from __future__ import annotations

import shutil
from pathlib import Path


def swap(folder: Path, away: Path) -> None:
    """Move the folder's contents away, leaving it empty (or back again)."""
    away.mkdir(exist_ok=True)
    for child in list(folder.iterdir()):
        shutil.move(child, away / child.name)
