"""Telling which of two processes polling with one token is the newcomer.

Telegram ends the older pending getUpdates when a newer one arrives (409 Conflict), so
two processes see Conflicts in turn. The one that has never had a getUpdates answered
is the one that just started: it stops; the established one keeps serving. The count
comes from python-telegram-bot's own request object, given to the builder as its
`get_updates_request`.
"""

from __future__ import annotations

from typing import Any

from telegram.request import HTTPXRequest


class PollingRequest(HTTPXRequest):
    """The getUpdates transport, counting the polls Telegram answered with 200."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answered = 0

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, payload = await super().do_request(*args, **kwargs)
        if status == 200:
            self.answered += 1
        return status, payload
