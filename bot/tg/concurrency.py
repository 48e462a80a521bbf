"""Updates of different chats are handled at the same time; one chat's, in order.

python-telegram-bot handles one update at a time unless the Application gets an update
processor. Its SimpleUpdateProcessor runs everything in parallel, which would let a
user's second command overtake the first and two presses on one menu race each other.
:class:`ChatOrderedProcessor` keys each update by where it happens (see
:func:`update_key`): updates with the same key run one after another in the order
Telegram sent them, different keys run in parallel, at most ``max_running`` handlers
at once. A slow handler (a slow database, a long reply) holds up only its own chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Hashable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import BaseUpdateProcessor

from bot.tg.keyboards import CHANNEL_PERSONAL_BUTTONS, PERSONAL_BUTTONS

MAX_RUNNING = 64
"""Handlers running at once: enough that handlers waiting for a message slot (30 a
second) do not hold up inline and button answers, few enough that a burst cannot open
hundreds of database sessions."""
MAX_ADMITTED = 4096
"""Updates admitted at once, most of them waiting for their chat's turn or a running
slot (a waiting update is one small task). Past this python-telegram-bot holds them."""


def update_key(update: object) -> Hashable | None:
    """What an update must stay in order with: its chat; for updates outside any chat
    (inline queries, presses on messages sent inline), the user's private chat with the
    bot, whose id is the user's. None: nothing.

    Button presses are keyed by their chat, like messages: every press in a chat edits
    or answers that chat's few messages (menus, result pages), and a private chat's
    presses and commands must not overtake each other. A user's inline queries go in
    order with their private chat, so what they send is counted (bot.tg.throttle) in
    the order they sent it. So are presses of a personal button (☆ Save) in a group or
    channel: they change only the presser's own state, and a hundred people saving one
    channel card must not wait for each other; and a channel post's paper buttons,
    which are answered in the presser's private chat.
    """
    if not isinstance(update, Update):
        return None
    chat = update.effective_chat
    query = update.callback_query
    if query is not None and chat is not None and chat.type != ChatType.PRIVATE:
        data = query.data or ""
        if data.startswith(PERSONAL_BUTTONS) or (
                chat.type == ChatType.CHANNEL and data.startswith(CHANNEL_PERSONAL_BUTTONS)):
            return query.from_user.id
    if chat is not None:
        return chat.id
    user = update.effective_user
    return user.id if user is not None else None


def _close_unstarted(coroutine: Awaitable[Any]) -> None:
    """Close a handler that never ran, so Python does not warn it was never awaited."""
    if inspect.iscoroutine(coroutine) and \
            inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
        coroutine.close()


@dataclass(slots=True)
class _Turn:
    """The queue of one key: a FIFO lock and how many updates use it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Parallel across chats, sequential within one; bounded (see the module docstring).

    Order within a key holds because python-telegram-bot starts one task per update in
    the order updates arrive, each task reaches ``do_process_update`` without waiting
    (up to ``max_admitted`` at once), and asyncio's lock wakes its waiters first come,
    first served. The running limit is taken only after the chat's turn, so updates
    queued behind a slow handler of one chat never occupy slots other chats need.
    """

    def __init__(self, max_running: int = MAX_RUNNING, max_admitted: int = MAX_ADMITTED
                 ) -> None:
        if max_running < 1 or max_admitted < max_running:
            raise ValueError("need 1 <= max_running <= max_admitted")
        super().__init__(max_admitted)
        self.max_running = max_running
        self._running = asyncio.BoundedSemaphore(max_running)
        self._turns: dict[Hashable, _Turn] = {}

    @property
    def keys_waiting(self) -> int:
        """Chats (and users) with an update being handled or waiting: for tests."""
        return len(self._turns)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = update_key(update)
        turn: _Turn | None = None
        if key is not None:
            turn = self._turns.get(key)
            if turn is None:
                turn = self._turns[key] = _Turn()
            turn.users += 1
        try:
            async with turn.lock if turn else contextlib.nullcontext(), self._running:
                await coroutine
        except asyncio.CancelledError:
            _close_unstarted(coroutine)  # a shutdown while it waited for its turn
            raise
        finally:
            if turn is not None:
                turn.users -= 1
                if turn.users == 0:
                    del self._turns[key]

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Nothing to free: python-telegram-bot awaits the running updates itself."""
