"""Inline keyboards and callback data; every callback string stays within 64 bytes.

Callback data scheme (prefix : payload):
    an:<arxiv id>        the analysis of a paper          (rendering.CB_ANALYSIS)
    fg:<arxiv id>        the figures of a paper           (rendering.CB_FIGURES)
    bx:<arxiv id>        its BibTeX entry                 (rendering.CB_BIBTEX)
    sv:<arxiv id>        save or unsave it, for whoever pressed (rendering.CB_SAVE)
    sv:p:<n>             page n of /saved (the presser's own list)
    sv:f:bib|links       the saved list as a .bib file, or as links
    rl:<arxiv id>        the 5 papers nearest in meaning  (rendering.CB_RELATED)
    pp:<arxiv id>        the card of a paper
    pg:<query id>:<n>    page n of a saved search
    sb:<tag key>         toggle one tag                   sb:* everything, sb:- nothing
    sb:p:<n>             page n of the toggle keyboard (only with more than TOGGLE_PAGE tags)
    st:<setting>:<value> change a setting
    rp:ok|no:<token>     an operator's answer to a repost question

Callback data comes back from the user's client, so it is parsed as hostile: numbers
are ASCII digits of bounded length (``str.isdigit`` accepts "²", which ``int`` refuses),
ids are matched against their exact shape, and anything else is "expired" for the
handler to answer, never an exception.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Final

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain.rendering import CB_CARD, MAX_CALLBACK_BYTES, Button

_NUMBER: Final = re.compile(r"[0-9]{1,9}")  # ASCII digits only, below 10**9
_ARXIV_KEY: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-/]{0,47}")
_TOKEN: Final = re.compile(r"[0-9a-f]{8,32}")


def strict_int(text: str) -> int | None:
    """A non-negative number written in 1-9 ASCII digits, else None."""
    return int(text) if _NUMBER.fullmatch(text) else None


def arxiv_key(text: str) -> str | None:
    """An arXiv id as carried in a button (``2409.12156``, ``hep-th/9901001``), else None."""
    return text if _ARXIV_KEY.fullmatch(text) else None


def confirm_answer(data: str) -> tuple[bool, str] | None:
    """(yes?, token) from ``rp:ok:<token>`` / ``rp:no:<token>``; None when malformed."""
    prefix, answer, token = [*data.split(":", 2), "", ""][:3]
    if prefix != "rp" or answer not in ("ok", "no") or not _TOKEN.fullmatch(token):
        return None
    return answer == "ok", token


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


TOGGLE_PAGE = 40
"""Tags per page of the toggle keyboard: Telegram refuses a keyboard of more than 100
buttons ("reply markup is too long"), so a long tag list is paged."""
CB_TOGGLE_PAGE = "sb:p:"


def toggle_pages(tags: Sequence[str]) -> int:
    return max(1, -(-len(tags) // TOGGLE_PAGE))


def toggle_page_of(tags: Sequence[str], tag: str) -> int:
    """The page of the toggle keyboard that shows ``tag`` (0 if it is not there)."""
    return tags.index(tag) // TOGGLE_PAGE if tag in tags else 0


def parse_toggle_page(data: str) -> int | None:
    """n from ``sb:p:<n>``; None for any other callback data."""
    return strict_int(data.removeprefix(CB_TOGGLE_PAGE)) if data.startswith(
        CB_TOGGLE_PAGE) else None


def tag_toggles(tags: Sequence[str], followed: set[str], everything: bool,
                all_label: str, none_label: str, page: int = 0) -> InlineKeyboardMarkup:
    """One button per tag with ✅ on the followed ones, two per row, then all/none.

    At most :data:`TOGGLE_PAGE` tags at a time; with more, ◀ ▶ (``sb:p:<n>``) turn pages.
    """
    pages = toggle_pages(tags)
    page = min(max(page, 0), pages - 1)
    rows: list[list[InlineKeyboardButton]] = []
    row: list[InlineKeyboardButton] = []
    for tag in tags[page * TOGGLE_PAGE:(page + 1) * TOGGLE_PAGE]:
        mark = "✅ " if everything or tag in followed else ""
        row.append(button(f"{mark}{tag}", f"sb:{tag_key(tag)}"))
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    if pages > 1:
        nav = [button(f"{page + 1}/{pages}", f"{CB_TOGGLE_PAGE}{page}")]
        if page > 0:
            nav.insert(0, button("◀", f"{CB_TOGGLE_PAGE}{page - 1}"))
        if page < pages - 1:
            nav.append(button("▶", f"{CB_TOGGLE_PAGE}{page + 1}"))
        rows.append(nav)
    rows.append([button(("✅ " if everything else "") + all_label, "sb:*"),
                 button(none_label, "sb:-")])
    return InlineKeyboardMarkup(rows)


def shown_toggle_page(markup: InlineKeyboardMarkup | None, tags: Sequence[str]) -> int:
    """The page a toggle keyboard on a message shows: that of its first tag button."""
    keys = {f"sb:{tag_key(tag)}": tag for tag in tags}
    for row in markup.inline_keyboard if markup else ():
        for b in row:
            if isinstance(b.callback_data, str) and b.callback_data in keys:
                return toggle_page_of(tags, keys[b.callback_data])
    return 0


# --- browsing: result lists, paging, inline results ----------------------------------------

CB_PAPER = CB_CARD
CB_PAGE = "pg"
MAX_ROW = 8  # Telegram shows at most 8 buttons side by side


def rows_of(buttons: Sequence[InlineKeyboardButton], width: int = MAX_ROW
            ) -> list[list[InlineKeyboardButton]]:
    """Buttons in rows of at most `width`, so a long list never breaks Telegram's limit."""
    width = max(1, min(width, MAX_ROW))
    return [list(buttons[i:i + width]) for i in range(0, len(buttons), width)]


def paper_data(arxiv_id: str) -> str | None:
    """`pp:<arxiv id>`, or None for an id too long for callback data (the button is left out)."""
    data = f"{CB_PAPER}:{arxiv_id}"
    return data if arxiv_id and len(data.encode("utf-8")) <= MAX_CALLBACK_BYTES else None


def page_data(query_id: int, page: int) -> str:
    return checked(f"{CB_PAGE}:{query_id}:{page}")


def parse_page_data(data: str) -> tuple[int, int] | None:
    """(query id, page) from `pg:<query id>:<page>`; None when malformed."""
    prefix, _, rest = data.partition(":")
    query_id, _, page = rest.partition(":")
    numbers = (strict_int(query_id), strict_int(page))
    if prefix != CB_PAGE or numbers[0] is None or numbers[1] is None:
        return None
    return numbers[0], numbers[1]


def result_keyboard(picks: Sequence[tuple[str, str]], query_id: int | None, page: int,
                    pages: int) -> InlineKeyboardMarkup | None:
    """One button per listed paper (label, arXiv id) that sends its card, then ◀ ▶.

    The arrows appear only where there is a page to go to, and only with a saved query.
    """
    keyboard = rows_of([button(label, data) for label, arxiv_id in picks
                        if (data := paper_data(arxiv_id)) is not None])
    nav: list[InlineKeyboardButton] = []
    if query_id is not None and page > 1:
        nav.append(button("◀", page_data(query_id, page - 1)))
    if query_id is not None and page < pages:
        nav.append(button("▶", page_data(query_id, page + 1)))
    if nav:
        keyboard.append(nav)
    return InlineKeyboardMarkup(keyboard) if keyboard else None


def url_markup(rows: Iterable[Iterable[Button]]) -> InlineKeyboardMarkup | None:
    """Only the URL buttons of a card: a shared inline message is read by people who may
    never have talked to the bot, so buttons that need it are left out."""
    return markup([b for b in row if b.url] for row in rows)


def choice(label: str, data: str, selected: bool) -> InlineKeyboardButton:
    """A button of a one-of-many choice; ✅ marks the current value."""
    return button(f"✅ {label}" if selected else label, data)


# --- saved papers: /saved and the save button ---------------------------------------------

PERSONAL_BUTTONS: Final = ("sv:",)
"""Callback prefixes whose press concerns the presser alone, never the chat it is in
(bot.tg.concurrency orders them with the presser's private chat)."""
CHANNEL_PERSONAL_BUTTONS: Final = ("pp:", "an:", "fg:", "bx:", "rl:")
"""Prefixes that are personal too on a channel post: the answer goes to the presser's
private chat (bot.tg.handlers.browse), never into the channel."""
CB_SAVED_PAGE = "sv:p:"
SAVED_BIBTEX = "sv:f:bib"
SAVED_LINKS = "sv:f:links"


def saved_page_data(page: int) -> str:
    return checked(f"{CB_SAVED_PAGE}{page}")


def parse_saved_page(data: str) -> int | None:
    """n from ``sv:p:<n>``; None for any other callback data."""
    return strict_int(data.removeprefix(CB_SAVED_PAGE)) if data.startswith(
        CB_SAVED_PAGE) else None


def relabelled(keyboard: InlineKeyboardMarkup | None, data: str, text: str
               ) -> InlineKeyboardMarkup | None:
    """``keyboard`` with the button of callback ``data`` showing ``text``, every other
    button as it was; None when it has no such button."""
    rows = [list(row) for row in keyboard.inline_keyboard] if keyboard else []
    found = False
    for row in rows:
        for i, b in enumerate(row):
            if b.callback_data == data:
                row[i] = InlineKeyboardButton(text, callback_data=data)
                found = True
    return InlineKeyboardMarkup(rows) if found else None


def button_text(keyboard: InlineKeyboardMarkup | None, data: str) -> str | None:
    """The text of the button of callback ``data`` on ``keyboard``, if it has one."""
    for row in keyboard.inline_keyboard if keyboard else ():
        for b in row:
            if b.callback_data == data:
                return b.text
    return None
