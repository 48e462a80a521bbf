"""The "🔗 Related" button of every card (``rl:<arxiv id>``): one message listing the 5
papers nearest in meaning, those of the paper's topics first, each with the topics it
shares with the paper and a button that opens its card (``pp:<arxiv id>``, answered by
browse.py)."""

from __future__ import annotations

from telegram import LinkPreviewOptions, Update
from telegram.constants import ChatType, ParseMode
from telegram.ext import ContextTypes

from bot.domain.related import render_related
from bot.domain.rendering import CB_RELATED, parse_callback
from bot.domain.tgtext import truncate
from bot.tg.chats import ANSWER_LEN, current_chat, refuse_button, thread_of
from bot.tg.deps import Deps
from bot.tg.handlers.browse import TEXTS as BROWSE_TEXTS
from bot.tg.keyboards import arxiv_key, result_keyboard
from bot.tg.texts import COMMON, lang_of, tr

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

TEXTS = {
    "en": {
        "not_ready": "🔗 This paper's related papers are still being worked out: try "
                     "again in a minute.",
        "none": "🔗 The archive holds no other paper yet.",
    },
    "zh": {
        "not_ready": "🔗 这篇论文的相关论文还在计算中，请过一分钟再试。",
        "none": "🔗 资料库中还没有其他论文。",
    },
}


class RelatedButton:
    """The press of 🔗 Related: answered in the chat of the card, or privately for a
    channel's card, like the buttons that open a paper (browse.open_paper)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """rl:<id>: the papers nearest to that paper, as one message with a button each."""
        query = update.callback_query
        assert query is not None
        action, arxiv_id = parse_callback(query.data or "") or ("", "")
        if action != CB_RELATED or arxiv_key(arxiv_id) is None:
            await refuse_button(update, "not a related button")
            return
        presser_lang = lang_of(query.from_user.language_code)
        if update.effective_chat is None:  # a button on a message shared inline
            await query.answer(truncate(tr(BROWSE_TEXTS, presser_lang, "not_here",
                                           id=arxiv_id), ANSWER_LEN), show_alert=True)
            return
        chat = await current_chat(update, self.deps)
        thread = thread_of(update)
        privately = chat.kind == ChatType.CHANNEL  # a channel is not its readers' to post in
        if privately:
            reader = await self.deps.chats.get(query.from_user.id)
            if reader is None or not reader.active:
                await query.answer(truncate(tr(BROWSE_TEXTS, presser_lang, "start_me_first",
                                               bot=context.bot.username), ANSWER_LEN),
                                   show_alert=True)
                return
            chat, thread = reader, None
        found = await self.deps.related.related(arxiv_id)
        if found is None:
            await query.answer(truncate(tr(COMMON, chat.lang, "not_found", what=arxiv_id),
                                        ANSWER_LEN), show_alert=True)
            return
        if not found.ready or not found.papers:
            await query.answer(tr(TEXTS, chat.lang, "none" if found.ready else "not_ready"),
                               show_alert=True)
            return
        await query.answer(tr(BROWSE_TEXTS, chat.lang, "sent_privately") if privately
                           else None)
        picks = [(str(i), item.paper.arxiv_id) for i, item in enumerate(found.papers, 1)]
        await context.bot.send_message(
            chat.chat_id, render_related(found, chat.lang), parse_mode=ParseMode.HTML,
            reply_markup=result_keyboard(picks, None, 1, 1), message_thread_id=thread,
            link_preview_options=NO_PREVIEW)
