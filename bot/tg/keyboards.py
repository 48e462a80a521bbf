"""Inline keyboards and callback data; every callback string stays within 64 bytes.

Callback data scheme (prefix : payload):
    an:<arxiv id>        the analysis of a paper          (rendering.CB_ANALYSIS)
    fg:<arxiv id>        the figures of a paper           (rendering.CB_FIGURES)
    pp:<arxiv id>        the card of a paper
    pg:<query id>:<n>    page n of a saved search
    sb:<tag key>         toggle one tag                   sb:* everything, sb:- nothing
    st:<setting>:<value> change a setting
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain.rendering import Button

MAX_CALLBACK_BYTES = 64


def checked(data: str) -> str:
    """Refuse (loudly, in tests) callback data Telegram would reject."""
    size = len(data.encode("utf-8"))
    if not 1 <= size <= MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data of {size} bytes: {data[:80]!r}")
    return data


def tag_key(tag: str) -> str:
    """A short stable key for a tag: tag names can be long and non-ASCII."""
    return hashlib.sha1(tag.casefold().encode("utf-8")).hexdigest()[:10]


def markup(rows: Iterable[Iterable[Button]]) -> InlineKeyboardMarkup | None:
    """Rendering's plain buttons as a Telegram keyboard (None when there are none)."""
    keyboard = [
        [
            InlineKeyboardButton(b.text, url=b.url) if b.url
            else InlineKeyboardButton(b.text, callback_data=checked(b.callback or "-"))
            for b in row
        ]
        for row in rows
    ]
    keyboard = [row for row in keyboard if row]
    return InlineKeyboardMarkup(keyboard) if keyboard else None


def button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=checked(data))


def tag_toggles(tags: Sequence[str], followed: set[str], everything: bool,
                all_label: str, none_label: str) -> InlineKeyboardMarkup:
    """One button per tag with ✅ on the followed ones, two per row, then all/none."""
    rows: list[list[InlineKeyboardButton]] = []
    row: list[InlineKeyboardButton] = []
    for tag in tags:
        mark = "✅ " if everything or tag in followed else ""
        row.append(button(f"{mark}{tag}", f"sb:{tag_key(tag)}"))
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    rows.append([button(("✅ " if everything else "") + all_label, "sb:*"),
                 button(none_label, "sb:-")])
    return InlineKeyboardMarkup(rows)
