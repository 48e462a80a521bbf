"""Worker processes that do not outlive the bot.

A spawned ProcessPoolExecutor worker whose parent is killed outright (SIGKILL, the OOM
killer) does not notice: it waits on its task queue for ever, keeping the model's memory
and the parent's stderr (a supervisor reading the log never sees it end). On Linux the
kernel can end it with its parent (PR_SET_PDEATHSIG); elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Final

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG: Final = 1


def die_with_parent(parent: int) -> None:
    """A pool initializer, called in the worker with the parent's pid: on Linux the
    worker is killed when the parent dies; if the parent is already gone, it exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(1)
