"""Work a handler hands off so that it can answer at once (a scan, a repost, the rest of
a long reply).

Tasks go through python-telegram-bot's ``Application.create_task``, so a failure
reaches the error handler with its update (the user is told, the operators notified)
and shutdown waits for them. Each is named ``bg:<what>``, which is how tests (and a
debugger) find the work still running.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from telegram import Update
from telegram.ext import ContextTypes

PREFIX = "bg:"


def in_background(context: ContextTypes.DEFAULT_TYPE, work: Coroutine[Any, Any, Any],
                  what: str, update: Update | None = None) -> None:
    """Start ``work`` without waiting for it."""
    context.application.create_task(work, update=update, name=f"{PREFIX}{what}")
