"""Reading the archive in a chat: /latest, /search, /tag, /paper, result paging and the
buttons that open a paper (its card, analysis or figures)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Message, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.domain.bibtex import bibtex_entry
from bot.domain.models import ArchivedPaper, Chat, SearchHit, SearchQuery
from bot.domain.query import find_paper_link, parse_query
from bot.domain.rendering import (
    CB_ANALYSIS,
    CB_BIBTEX,
    CB_FIGURES,
    Card,
    parse_callback,
    render_figures,
    render_result_line,
)
from bot.domain.tgtext import clean_text, escape, truncate
from bot.errors import UnknownTag
from bot.tg.background import in_background
from bot.tg.cards import analysis_parts, card_for, send_analysis, send_card, send_figures
from bot.tg.chats import ANSWER_LEN, addressed_text, current_chat, refuse_button, thread_of
from bot.tg.deps import Deps
from bot.tg.edits import edit_in_place
from bot.tg.keyboards import CB_PAPER, arxiv_key, parse_page_data, result_keyboard
from bot.tg.tags import unknown_tag_text
from bot.tg.texts import COMMON, lang_of, tr

log = logging.getLogger(__name__)

PAPER_ACTIONS = frozenset({CB_PAPER, CB_ANALYSIS, CB_FIGURES, CB_BIBTEX})
"""The buttons that open one paper: its card, its analysis, its figures."""

PAGE_SIZE = 5  # results per page of /search and /tag
COUNT_UP_TO = 1000
"""A search by words or authors counts its matches this far, then says "1000+ papers"
(see counted_up_to)."""
LATEST = "latest:"  # marks a saved query as /latest's list (see latest_query_text)
LATEST_TAGS_SHOWN = 3  # topics named in /latest's header; the rest are counted
ECHO_LEN = 60  # a query repeated in a header is cut to this many UTF-16 units
MAX_TAG_WORDS = 8  # /tag tries tag names of at most this many leading words
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

TEXTS = {
    "en": {
        "papers_one": "1 paper",
        "papers_many": "{n} papers",
        "latest_all": "📰 Latest papers: {papers}, newest first",
        "latest_tags": "📰 Latest in {tags}: {papers}, newest first",
        "more_tags": " and {n} more",
        "latest_empty_tag": "No papers under <b>{tag}</b> yet.",
        "latest_empty_since": " Its last digest, on {date}, listed none.",
        "latest_nothing_since": " The last digest, on {date}, listed none.",
        "search_usage": (
            "🔎 <b>Searching the archive</b>\n"
            "/search gaussian splatting — papers with all these words\n"
            "/search \"neural radiance\" — an exact phrase\n"
            "/search tag:NeRF relighting — only one topic (tag:\"Talking Head Generation\" "
            "for names with spaces, or #NeRF)\n"
            "/search since:2024-06-01 until:2024-06-30 — by digest date (2024-06 or 2024 "
            "work too)\n"
            "/search author:Chakkera — by author\n"
            "/search 2409.12156 — by arXiv id or URL\n"
            "/search 扩散模型 — Chinese terms work too\n\n"
            "Filters combine: /search tag:3DGS since:2024-05 avatar"
        ),
        "search_header_one": "🔎 1 paper matches “{query}”",
        "search_header": "🔎 {total} papers match “{query}”",
        "tag_header": "🏷 <b>{tag}</b>: {papers}, newest first",
        "tag_query_header": "🏷 <b>{tag}</b>: {papers} matching “{query}”",
        "page": "Page {page} of {pages}",
        "no_results": ("No papers match “{query}”. Try fewer or other words, a topic from "
                       "/tags, or send /search alone for the syntax."),
        "tag_no_results": "No papers under <b>{tag}</b> match “{query}”.",
        "tag_empty": "No papers under <b>{tag}</b> yet.",
        "tag_usage": ("Send /tag NAME [words], e.g. /tag NeRF or /tag Talking Head Generation "
                      "lip sync. /tags lists every topic."),
        "paper_usage": ("Send /paper with an arXiv id or link, e.g. /paper 2409.12156 or "
                        "/paper https://arxiv.org/abs/2409.12156v2"),
        "no_analysis": "This paper has no analysis.",
        "no_figures": "This paper has no figures.",
        "not_here": "Open this paper in a chat with me: send /paper {id}",
        "start_me_first": "A channel's buttons answer you privately: open a chat with "
                          "@{bot}, press Start, then tap again.",
        "sent_privately": "Sent to you in our private chat.",
        "not_in_archive": ("{id} is not in the archive (yet): no digest has listed it. "
                           '<a href="{url}">arXiv:{id}</a>'),
        "hint": "Type words to search the archive, paste an arXiv link to open its "
                "paper, or send /help for more.",
    },
    "zh": {
        "papers_one": "1 篇论文",
        "papers_many": "{n} 篇论文",
        "latest_all": "📰 最新论文：{papers}，按时间倒序",
        "latest_tags": "📰 {tags} 的最新论文：{papers}，按时间倒序",
        "more_tags": " 等 {n} 个主题",
        "latest_empty_tag": "<b>{tag}</b> 下暂无论文。",
        "latest_empty_since": "最近一期日报（{date}）没有论文。",
        "latest_nothing_since": "最近一期日报（{date}）没有论文。",
        "search_usage": (
            "🔎 <b>搜索资料库</b>\n"
            "/search gaussian splatting — 同时包含这些词的论文\n"
            "/search \"neural radiance\" — 精确短语\n"
            "/search tag:NeRF relighting — 只搜一个主题（带空格的名称写作 "
            "tag:\"Talking Head Generation\"，或 #NeRF）\n"
            "/search since:2024-06-01 until:2024-06-30 — 按日报日期（也可写 2024-06 或 2024）\n"
            "/search author:Chakkera — 按作者\n"
            "/search 2409.12156 — 按 arXiv 编号或链接\n"
            "/search 扩散模型 — 支持中文关键词\n\n"
            "条件可以组合：/search tag:3DGS since:2024-05 avatar"
        ),
        "search_header_one": "🔎 找到 1 篇与“{query}”相关的论文",
        "search_header": "🔎 找到 {total} 篇与“{query}”相关的论文",
        "tag_header": "🏷 <b>{tag}</b>：{papers}，按时间倒序",
        "tag_query_header": "🏷 <b>{tag}</b>：{papers}与“{query}”相关",
        "page": "第 {page}/{pages} 页",
        "no_results": "没有与“{query}”相关的论文。请换个或减少关键词、用 /tags 中的主题，"
                      "或单独发送 /search 查看语法。",
        "tag_no_results": "<b>{tag}</b> 下没有与“{query}”相关的论文。",
        "tag_empty": "<b>{tag}</b> 下暂无论文。",
        "tag_usage": "发送 /tag 主题 [关键词]，例如 /tag NeRF 或 /tag Talking Head Generation "
                     "lip sync。/tags 列出全部主题。",
        "paper_usage": "发送 /paper 加 arXiv 编号或链接，例如 /paper 2409.12156 或 "
                       "/paper https://arxiv.org/abs/2409.12156v2",
        "no_analysis": "这篇论文没有解读。",
        "no_figures": "这篇论文没有截图。",
        "not_here": "请在与我的聊天中查看：发送 /paper {id}",
        "start_me_first": "频道中的按钮会私下回复您：请先打开与 @{bot} 的聊天并点击“开始”，"
                          "然后再点一次。",
        "sent_privately": "已在私聊中发给您。",
        "not_in_archive": "资料库中（还）没有 {id}：尚无日报收录。"
                          '<a href="{url}">arXiv:{id}</a>',
        "hint": "直接输入关键词即可搜索资料库，粘贴 arXiv 链接可打开论文，/help 查看更多。",
    },
}

EVERYTHING = SearchQuery(since=date.min)  # a date filter alone lists all, newest first
_TAG_QUERY = re.compile(r'tag:"([^"]*)"\s*(.*)', re.DOTALL)


def counted_up_to(query: SearchQuery) -> int | None:
    """How far the archive counts a query's matches (None: exactly). Counting all 71 000
    matches of a term as common as 模型, or all papers of a common surname, reads them a
    second time, as long as ranking them (bot.storage.search); a tag or a date is counted
    off an index, so /tag and /latest keep their exact totals."""
    return COUNT_UP_TO if query.text or query.authors else None


def papers_count(lang: str, n: int, more: bool = False) -> str:
    """"1 paper" / "3 papers" / "1000+ papers" (Chinese has no plural)."""
    if more:
        return tr(TEXTS, lang, "papers_many", n=f"{n}+")
    return tr(TEXTS, lang, "papers_one" if n == 1 else "papers_many", n=n)


def echo(text: str) -> str:
    """User text repeated back in HTML: one line, cut short, escaped."""
    return escape(truncate(" ".join(clean_text(text).split()), ECHO_LEN))


def argument_text(message: Message) -> str:
    """Everything after the command word, spacing and quotes kept (context.args drops
    the difference between `"a b"` and `a b`)."""
    parts = (message.text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def tag_query_text(tag: str, words: str = "") -> str:
    """The saved form of `/tag NAME words`; quotes in a name are dropped (tags are matched
    ignoring punctuation anyway)."""
    return f'tag:"{tag.replace(chr(34), "")}" {words}'.strip()


def latest_query_text(tags: Sequence[str]) -> str:
    """The saved form of a /latest list: the marker and one tag filter per topic (a paper
    in any of them is listed)."""
    return (LATEST + " ".join(tag_query_text(tag) for tag in tags)).strip()


def latest_header(tags: Sequence[str], lang: str, papers: str) -> str:
    if not tags:
        return tr(TEXTS, lang, "latest_all", papers=papers)
    names = ", ".join(f"<b>{escape(t)}</b>" for t in tags[:LATEST_TAGS_SHOWN])
    if len(tags) > LATEST_TAGS_SHOWN:
        names += tr(TEXTS, lang, "more_tags", n=len(tags) - LATEST_TAGS_SHOWN)
    return tr(TEXTS, lang, "latest_tags", tags=names, papers=papers)


@dataclass(frozen=True, slots=True)
class ResultPage:
    """One page of a saved or new search, ready to render."""

    text: str  # the query as typed (or as /tag saved it)
    hits: list[SearchHit]
    total: int
    page: int  # 1-based, clamped to the pages that exist
    more: bool = False  # total is a lower bound: at least that many match

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PAGE_SIZE))

    def shown(self, n: int) -> str:
        """A count as shown: "1000+" when the total is only a lower bound."""
        return f"{n}+" if self.more else str(n)


class Browse:
    """Commands and buttons that read the archive; nothing here changes a subscription."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # --- /latest ------------------------------------------------------------------------

    async def latest(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/latest [tag]: the newest papers as one paged list, like /search; of the chat's
        topics when it follows some, of one topic when named, else of every topic."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        name = argument_text(message)
        tags: tuple[str, ...] = ()
        if name:
            try:
                tags = (await self.deps.archive.resolve_tag(name),)
            except UnknownTag as exc:
                await message.reply_text(await unknown_tag_text(self.deps.archive, chat.lang,
                                                                exc))
                return
        elif not chat.all_topics:
            tags = chat.tags
        text = latest_query_text(tags)
        result = await self._page(text, 1)
        if result.total == 0:
            await message.reply_html(await self._nothing_latest(chat, tags))
            return
        await self._first_page(message, chat, text, result)

    async def _nothing_latest(self, chat: Chat, tags: Sequence[str]) -> str:
        """Why /latest has nothing, and when the last (empty) digest arrived if one did."""
        infos = await self.deps.archive.tags()
        dates = [t.last_date for t in infos if t.last_date and (not tags or t.name in tags)]
        last = max(dates, default=None)
        if not tags:
            text = tr(COMMON, chat.lang, "no_papers")
            key = "latest_nothing_since"
        else:
            text = tr(TEXTS, chat.lang, "latest_empty_tag",
                      tag=", ".join(escape(t) for t in tags))
            key = "latest_empty_since"
        if last is not None:
            text += tr(TEXTS, chat.lang, key, date=last.isoformat())
        return text

    # --- /search, /tag and their pages ---------------------------------------------------

    async def search(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/search QUERY: a numbered page of results; /search alone explains the syntax."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        text = argument_text(message)
        if not text:
            await message.reply_html(tr(TEXTS, chat.lang, "search_usage"),
                                     link_preview_options=NO_PREVIEW)
            return
        await self._search(message, chat, text)

    async def _search(self, message: Message, chat: Chat, text: str) -> None:
        """/search TEXT, or TEXT typed without a command: the first page of results."""
        for name in parse_query(text).tags:  # a misspelt tag would just match nothing
            try:
                await self.deps.archive.resolve_tag(name)
            except UnknownTag as exc:
                await message.reply_text(await unknown_tag_text(self.deps.archive, chat.lang,
                                                                exc))
                return
        await self._first_page(message, chat, text)

    async def free_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Text without a command. In a private chat: a pasted arXiv, alphaXiv or Hugging
        Face papers link (or id) opens that paper; anything else is a search. In a group
        only what is addressed to the bot (a mention, a reply to it) is answered."""
        message = update.effective_message
        where = update.effective_chat
        if message is None or where is None or not message.text:
            return
        text = message.text
        if where.type != ChatType.PRIVATE:
            addressed = addressed_text(message, context.bot.id, context.bot.username)
            if addressed is None:
                return
            text = addressed
        chat = await current_chat(update, self.deps)
        link = find_paper_link(text)
        if link is not None:
            found = await self.deps.archive.get_paper(link[0])
            if found is None:
                url = f"https://arxiv.org/abs/{link[0]}"
                await message.reply_html(tr(TEXTS, chat.lang, "not_in_archive",
                                            id=escape(link[0]), url=escape(url, quote=True)),
                                         link_preview_options=NO_PREVIEW)
                return
            await send_card(context.bot, chat.chat_id,
                            await self._card(found, chat, update), thread_of(update))
            return
        text = " ".join(text.split())
        if not text:
            await message.reply_text(tr(TEXTS, chat.lang, "hint"))
            return
        await self._search(message, chat, text)

    async def tag(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/tag NAME [QUERY]: one topic's papers, newest first (or matching QUERY)."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        words = argument_text(message).split()
        if not words:
            await message.reply_text(tr(TEXTS, chat.lang, "tag_usage"))
            return
        found = await self._leading_tag(words)
        if isinstance(found, UnknownTag):
            await message.reply_text(await unknown_tag_text(self.deps.archive, chat.lang,
                                                            found))
            return
        tag, rest = found
        await self._first_page(message, chat, tag_query_text(tag, " ".join(rest)))

    async def _leading_tag(self, words: list[str]) -> tuple[str, list[str]] | UnknownTag:
        """The longest run of leading words that names a tag, and the words after it.

        Tag names have spaces ("/tag Talking Head Generation lip sync"), so the longest
        prefix wins. When none resolves, the error of the longest prefix with suggestions
        (else of the first word) explains it.
        """
        errors: list[UnknownTag] = []
        for size in range(min(len(words), MAX_TAG_WORDS), 0, -1):
            try:
                return (await self.deps.archive.resolve_tag(" ".join(words[:size])),
                        words[size:])
            except UnknownTag as exc:
                errors.append(exc)
        return next((e for e in errors if e.suggestions), errors[-1])

    async def _first_page(self, message: Message, chat: Chat, text: str,
                          result: ResultPage | None = None) -> None:
        """Search, and save the query only when there is a second page to turn to."""
        result = result or await self._page(text, 1)
        query_id = None
        if result.pages > 1:
            query_id = await self.deps.chats.save_query(chat.chat_id, text)
        body, keyboard = self._render(result, chat.lang, query_id)
        await message.reply_html(body, reply_markup=keyboard, link_preview_options=NO_PREVIEW)

    async def _page(self, text: str, page: int) -> ResultPage:
        query = parse_query(text.removeprefix(LATEST))
        if query.is_empty:  # /latest of everything: every paper, newest first
            query = EVERYTHING
        page = max(1, page)
        up_to = counted_up_to(query)
        hits, total = await self.deps.archive.search(query, PAGE_SIZE, (page - 1) * PAGE_SIZE,
                                                     count_up_to=up_to)
        last = max(1, math.ceil(total / PAGE_SIZE))
        if not hits and page > last:  # the archive shrank since the buttons were drawn
            page = last
            hits, total = await self.deps.archive.search(query, PAGE_SIZE,
                                                         (page - 1) * PAGE_SIZE, count_up_to=up_to)
        # A total at the bound is a lower bound; a later page moves the bound just past
        # itself, so ▶ stays while more matches remain.
        bound = max(up_to or 0, page * PAGE_SIZE + 1)
        return ResultPage(text, hits, total, page, more=up_to is not None and total >= bound)

    def _render(self, result: ResultPage, lang: str, query_id: int | None
                ) -> tuple[str, InlineKeyboardMarkup | None]:
        """Header, numbered lines, page counter; number buttons and ◀ ▶ below."""
        latest = result.text.startswith(LATEST)
        tagged = None if latest else _TAG_QUERY.fullmatch(result.text)
        tag, words = (tagged.group(1), tagged.group(2).strip()) if tagged else ("", "")
        if result.total == 0 and latest:
            return tr(COMMON, lang, "no_papers"), None
        if result.total == 0:
            if not tagged:
                return tr(TEXTS, lang, "no_results", query=echo(result.text)), None
            if not words:
                return tr(TEXTS, lang, "tag_empty", tag=escape(tag)), None
            return tr(TEXTS, lang, "tag_no_results", tag=escape(tag), query=echo(words)), None
        papers = papers_count(lang, result.total, result.more)
        if latest:
            header = latest_header(parse_query(result.text.removeprefix(LATEST)).tags, lang,
                                   papers)
        elif tagged and words:
            header = tr(TEXTS, lang, "tag_query_header", tag=escape(tag), papers=papers,
                        query=echo(words))
        elif tagged:
            header = tr(TEXTS, lang, "tag_header", tag=escape(tag), papers=papers)
        else:
            header = tr(TEXTS, lang, "search_header_one" if result.total == 1
                        else "search_header", total=result.shown(result.total),
                        query=echo(result.text))
        first = (result.page - 1) * PAGE_SIZE + 1
        lines = [render_result_line(hit.paper, first + i) for i, hit in enumerate(result.hits)]
        body = header + "\n\n" + "\n".join(lines)
        if result.pages > 1:
            body += "\n\n" + tr(TEXTS, lang, "page", page=result.page,
                                pages=result.shown(result.pages))
        picks = [(str(first + i), hit.paper.arxiv_id) for i, hit in enumerate(result.hits)]
        return body, result_keyboard(picks, query_id, result.page, result.pages)

    async def turn_page(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """◀ ▶ (pg:<query id>:<page>): the same message, edited to show that page."""
        query = update.callback_query
        assert query is not None
        chat = await current_chat(update, self.deps)
        parsed = parse_page_data(query.data or "")
        if parsed is None:
            await refuse_button(update, "not a page button")
            return
        text = await self.deps.chats.saved_query(parsed[0], chat.chat_id)
        if text is None:
            await query.answer(tr(COMMON, chat.lang, "expired"), show_alert=True)
            return
        query_id, page = parsed
        result = await self._page(text, page)
        body, keyboard = self._render(result, chat.lang, query_id)
        await query.answer()
        await edit_in_place(query, body, keyboard, NO_PREVIEW)  # a double tap: no edit

    # --- /paper and the buttons that open one paper ---------------------------------------

    async def paper(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/paper ID-or-URL: that paper's card in this chat's style."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        wanted = argument_text(message)
        if not wanted:
            await message.reply_text(tr(TEXTS, chat.lang, "paper_usage"))
            return
        found = await self.deps.archive.get_paper(wanted.split()[0])
        if found is None:
            await message.reply_html(tr(COMMON, chat.lang, "not_found", what=echo(wanted)))
            return
        await send_card(context.bot, chat.chat_id, await self._card(found, chat, update),
                        thread_of(update))

    async def _card(self, found: ArchivedPaper, chat: Chat, update: Update) -> Card:
        """The card a person opened: in their private chat its ☆ shows whether they saved
        it; anywhere else the card is everyone's, so it shows the default."""
        user = update.effective_user
        saved = (chat.kind == ChatType.PRIVATE and user is not None
                 and await self.deps.saved.is_saved(user.id, found.arxiv_id))
        return card_for(found, chat, self.deps.settings.blog_base_url, saved=saved)

    async def open_paper(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """pp:<id> sends the card, an:<id> the analysis, fg:<id> the figures, into the chat
        (and forum topic) of the message whose button was pressed. A channel is not its
        readers' to post into: a press there is answered in the presser's private chat
        with the bot (or with a request to start one)."""
        query = update.callback_query
        assert query is not None
        parsed = parse_callback(query.data or "")
        if parsed is None or arxiv_key(parsed[1]) is None or parsed[0] not in PAPER_ACTIONS:
            await refuse_button(update, "not a paper button")
            return
        if update.effective_chat is None:  # a button on a message shared inline
            lang = lang_of(query.from_user.language_code)
            await query.answer(truncate(tr(TEXTS, lang, "not_here",
                                           id=parsed[1] if parsed else "?"), ANSWER_LEN),
                               show_alert=True)
            return
        chat = await current_chat(update, self.deps)
        thread = thread_of(update)
        privately = chat.kind == ChatType.CHANNEL
        if privately:
            reader = await self.deps.chats.get(query.from_user.id)
            if reader is None or not reader.active:
                lang = lang_of(query.from_user.language_code)
                await query.answer(truncate(tr(TEXTS, lang, "start_me_first",
                                               bot=context.bot.username), ANSWER_LEN),
                                   show_alert=True)
                return
            chat, thread = reader, None
        found = await self.deps.archive.get_paper(parsed[1])
        if found is None:
            await query.answer(truncate(tr(COMMON, chat.lang, "not_found", what=parsed[1]),
                                        ANSWER_LEN),
                               show_alert=True)
            return
        action = parsed[0]
        parts = await analysis_parts(found) if action == CB_ANALYSIS else []
        if action == CB_ANALYSIS and not parts:
            await query.answer(tr(TEXTS, chat.lang, "no_analysis"), show_alert=True)
            return
        if action == CB_FIGURES and not render_figures(found):
            await query.answer(tr(TEXTS, chat.lang, "no_figures"), show_alert=True)
            return
        await query.answer(tr(TEXTS, chat.lang, "sent_privately") if privately else None)
        # The analysis (several messages, a second apart in a private chat) and the album
        # are sent in the background: the chat's next update need not wait for them.
        if action == CB_ANALYSIS:
            in_background(context, send_analysis(context.bot, chat.chat_id, found, thread,
                                                 parts=parts), "analysis", update)
        elif action == CB_FIGURES:
            in_background(context, send_figures(context.bot, chat.chat_id, found, thread),
                          "figures", update)
        elif action == CB_BIBTEX:  # a code block: one tap copies it in Telegram's apps
            entry = truncate(bibtex_entry(found, max_authors=30), 3900)  # one message
            await context.bot.send_message(chat.chat_id, f"<pre>{escape(entry)}</pre>",
                                           parse_mode="HTML", message_thread_id=thread)
        else:
            await send_card(context.bot, chat.chat_id, await self._card(found, chat, update),
                            thread)
