"""Saved papers: the ☆ Save button on every card, and /saved, each person's own list.

Saving is per person (the Telegram user who pressed), never per chat. A card in a group
or a channel is everyone's, so pressing its ☆ saves for the presser alone, says so in a
toast and leaves the card as it is; in a private chat the button turns into ⭐ Saved.
There, the press means what the button shows (☆ saves, ⭐ unsaves), so a double tap
does not undo itself; on a shared card, whose button always shows ☆, it toggles.

Every press is one short transaction (bot.storage.saved) and at most two requests to
Telegram; a long list of links is sent in the background.
"""

from __future__ import annotations

import io
import logging
import math

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
    User,
)
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.domain.deeplinks import start_link
from bot.domain.models import Lang
from bot.domain.rendering import CB_SAVE, parse_callback, save_label, shows_saved
from bot.domain.saved import abs_link, render_saved_line, saved_bibtex, saved_links
from bot.domain.tgtext import truncate
from bot.tg.background import in_background
from bot.tg.chats import ANSWER_LEN, current_chat, refuse_button
from bot.tg.deps import Deps
from bot.tg.edits import edit_in_place, edit_keyboard_in_place
from bot.tg.handlers.browse import NO_PREVIEW, PAGE_SIZE, papers_count
from bot.tg.handlers.browse import TEXTS as BROWSE_TEXTS
from bot.tg.keyboards import (
    CB_SAVED_PAGE,
    SAVED_BIBTEX,
    SAVED_LINKS,
    arxiv_key,
    button,
    button_text,
    paper_data,
    parse_saved_page,
    relabelled,
    rows_of,
    saved_page_data,
)
from bot.tg.texts import lang_of, tr

log = logging.getLogger(__name__)

START_PAYLOAD = "saved"
"""``/start saved`` (the button under /saved in a group) opens the list in private."""
BIBTEX_FILE = "saved-papers.bib"

TEXTS = {
    "en": {
        "saved": "⭐ Saved. /saved lists your saved papers.",
        "unsaved": "Removed from your saved papers.",
        "saved_shared": "⭐ Saved to your private list: send /saved in a chat with me.",
        "unsaved_shared": "Removed from your private list of saved papers.",
        "gone": "This paper is no longer in the archive, so it cannot be saved.",
        "header": "⭐ Your saved papers: {papers}, newest first",
        "empty": ("You have not saved any papers yet. Press ☆ Save under a card to keep it "
                  "here; /latest and /search find papers."),
        "private": ("⭐ Saved papers are private: each person's list is in their own chat "
                    "with me. Press ☆ Save under any card to add to yours."),
        "open": "⭐ My saved papers",
        "bibtex": "📄 BibTeX file",
        "links": "🔗 Links",
        "caption": "{papers}, newest first",
    },
    "zh": {
        "saved": "⭐ 已收藏。/saved 查看你的收藏。",
        "unsaved": "已取消收藏。",
        "saved_shared": "⭐ 已收藏到你的私人列表：在与我的私聊中发送 /saved 查看。",
        "unsaved_shared": "已从你的私人收藏中移除。",
        "gone": "这篇论文已不在资料库中，无法收藏。",
        "header": "⭐ 你的收藏：{papers}，按收藏时间倒序",
        "empty": ("你还没有收藏论文。点击卡片下方的 ☆ 收藏 即可保存到这里；"
                  "用 /latest 或 /search 查找论文。"),
        "private": ("⭐ 收藏是私人的：每个人的列表都在与我的私聊中。"
                    "点击任意卡片下方的 ☆ 收藏 即可加入你的列表。"),
        "open": "⭐ 我的收藏",
        "bibtex": "📄 BibTeX 文件",
        "links": "🔗 链接列表",
        "caption": "{papers}，按收藏时间倒序",
    },
}


class Saved:
    """The save button, /saved with its pages, and the list's two exports."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # --- the button on a card ----------------------------------------------------------

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Every ``sv:`` button: a card's save button, or the /saved list's own."""
        query = update.callback_query
        assert query is not None
        data = query.data or ""
        if data.startswith(CB_SAVED_PAGE) or data in (SAVED_BIBTEX, SAVED_LINKS):
            await self._list_button(update, context, data)
            return
        parsed = parse_callback(data)
        if parsed is None or parsed[0] != CB_SAVE or arxiv_key(parsed[1]) is None:
            await refuse_button(update, "not a save button")
            return
        arxiv_id, user = parsed[1], query.from_user
        where = update.effective_chat
        message = query.message if isinstance(query.message, Message) else None
        if where is not None and where.type == ChatType.PRIVATE:
            lang = (await current_chat(update, self.deps)).lang
            shown = shows_saved(button_text(message.reply_markup, data) or "") \
                if message is not None else None
            if shown is None:
                state = await self.deps.saved.toggle(user.id, arxiv_id)
            else:  # the press means what the button shows
                state = await self.deps.saved.set_saved(user.id, arxiv_id, not shown)
            if state is None:
                await query.answer(tr(TEXTS, lang, "gone"), show_alert=True)
                return
            await query.answer(tr(TEXTS, lang, "saved" if state else "unsaved"))
            keyboard = relabelled(message.reply_markup if message else None, data,
                                  save_label(state, lang))
            if keyboard is not None:
                await edit_keyboard_in_place(query, keyboard)
            return
        # A group's or a channel's card is everyone's: saved for the presser, card untouched.
        lang = await self._person_lang(user)
        state = await self.deps.saved.toggle(user.id, arxiv_id)
        if state is None:
            await query.answer(tr(TEXTS, lang, "gone"), show_alert=True)
            return
        await query.answer(truncate(tr(TEXTS, lang, "saved_shared" if state
                                       else "unsaved_shared"), ANSWER_LEN))

    async def _person_lang(self, user: User) -> Lang:
        """The language the person chose in their private chat with the bot, else their
        app's: a toast in a group speaks to one person."""
        known = await self.deps.chats.get(user.id)
        return known.lang if known is not None else lang_of(user.language_code)

    # --- /saved --------------------------------------------------------------------------

    async def saved(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/saved: the person's list in a private chat; elsewhere, a button to it."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        user = update.effective_user
        if chat.kind != ChatType.PRIVATE or user is None:
            link = start_link(context.bot.username, START_PAYLOAD)
            await message.reply_text(tr(TEXTS, chat.lang, "private"),
                                     reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(
                                         tr(TEXTS, chat.lang, "open"), url=link)]]))
            return
        await self.show(message, user.id, chat.lang)

    async def show(self, message: Message, user_id: int, lang: Lang) -> None:
        """The first page of the list, as a reply (also for ``/start saved``)."""
        body, keyboard = await self._page(user_id, 1, lang)
        await message.reply_html(body, reply_markup=keyboard, link_preview_options=NO_PREVIEW)

    async def _page(self, user_id: int, page: int, lang: Lang
                    ) -> tuple[str, InlineKeyboardMarkup | None]:
        """Header, numbered lines and page counter; a button per paper (its card, or its
        arXiv page once it left the archive), ◀ ▶, and the two exports."""
        page = max(1, page)
        entries, total = await self.deps.saved.page(user_id, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if not entries and total:  # the list shrank since the buttons were drawn
            page = pages
            entries, total = await self.deps.saved.page(user_id, PAGE_SIZE,
                                                         (page - 1) * PAGE_SIZE)
        if not entries:
            return tr(TEXTS, lang, "empty"), None
        archived = {p.arxiv_id: p for p in await self.deps.archive.get_papers(
            [e.arxiv_id for e in entries if e.in_archive])}
        first = (page - 1) * PAGE_SIZE + 1
        lines = [render_saved_line(e, first + i, archived.get(e.arxiv_id), lang)
                 for i, e in enumerate(entries)]
        body = (tr(TEXTS, lang, "header", papers=papers_count(lang, total)) + "\n\n"
                + "\n".join(lines))
        if pages > 1:
            body += "\n\n" + tr(BROWSE_TEXTS, lang, "page", page=page, pages=pages)
        picks: list[InlineKeyboardButton] = []
        for i, entry in enumerate(entries):
            label = str(first + i)
            data = paper_data(entry.arxiv_id)
            if entry.arxiv_id in archived and data is not None:
                picks.append(button(label, data))
            else:
                picks.append(InlineKeyboardButton(label, url=abs_link(entry)))
        rows = rows_of(picks)
        nav: list[InlineKeyboardButton] = []
        if page > 1:
            nav.append(button("◀", saved_page_data(page - 1)))
        if page < pages:
            nav.append(button("▶", saved_page_data(page + 1)))
        if nav:
            rows.append(nav)
        rows.append([button(tr(TEXTS, lang, "bibtex"), SAVED_BIBTEX),
                     button(tr(TEXTS, lang, "links"), SAVED_LINKS)])
        return body, InlineKeyboardMarkup(rows)

    # --- the list's buttons: pages and exports -----------------------------------------

    async def _list_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE,
                           data: str) -> None:
        """◀ ▶ edit the list in place; the exports are sent below it. The list is the
        presser's own, so these work only in a private chat."""
        query = update.callback_query
        assert query is not None
        where = update.effective_chat
        if where is None or where.type != ChatType.PRIVATE:
            await refuse_button(update, "a /saved button outside a private chat")
            return
        chat = await current_chat(update, self.deps)
        user_id = query.from_user.id
        if data.startswith(CB_SAVED_PAGE):
            page = parse_saved_page(data)
            if page is None:
                await refuse_button(update, "not a /saved page")
                return
            body, keyboard = await self._page(user_id, page, chat.lang)
            await query.answer()
            await edit_in_place(query, body, keyboard, NO_PREVIEW)
            return
        entries = await self.deps.saved.all(user_id)
        if not entries:
            await query.answer(tr(TEXTS, chat.lang, "empty"), show_alert=True)
            return
        await query.answer()
        if data == SAVED_BIBTEX:
            document = InputFile(io.BytesIO(saved_bibtex(entries).encode("utf-8")),
                                 filename=BIBTEX_FILE)
            await context.bot.send_document(
                chat.chat_id, document,
                caption=tr(TEXTS, chat.lang, "caption",
                           papers=papers_count(chat.lang, len(entries))))
        else:
            in_background(context, _send_links(context.bot, chat.chat_id,
                                               saved_links(entries)), "saved links", update)


async def _send_links(bot: Bot, chat_id: int, parts: list[str]) -> None:
    """The list of links, as many plain messages as it takes, without previews."""
    for part in parts:
        await bot.send_message(chat_id, part, link_preview_options=NO_PREVIEW)
