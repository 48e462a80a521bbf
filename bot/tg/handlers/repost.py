"""`/repost TARGET [WHERE]`: an operator sends papers again, even where they were delivered.

Above REPOST_CONFIRM chats the bot asks first (a button). The question is stored in the
database for CONFIRM_TTL, so the press works whichever process of the bot receives it,
and only for the operator who asked. Then the handler answers with one progress
message and the sending runs in the background, editing that message as the outbox
drains and ending with a summary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.domain.models import ArchivedPaper
from bot.domain.repost import BadRepost, RepostRequest, parse_repost
from bot.errors import UnknownTag
from bot.storage.records import DigestPapers
from bot.tg.background import in_background
from bot.tg.chats import refuse_button, require_operator
from bot.tg.deps import Deps
from bot.tg.keyboards import button, confirm_answer
from bot.tg.tags import unknown_tag_text
from bot.tg.texts import lang_of, tr

log = logging.getLogger(__name__)

REPOST_CONFIRM = 10
"""Chats above which a repost waits for the operator's confirmation."""

CONFIRM_TTL = timedelta(minutes=10)
"""How long a "Repost N papers to M chats?" button works."""

PROGRESS_EVERY = 2.0
"""Seconds between edits of the progress message (Telegram frowns on faster edits)."""

TEXTS = {
    "en": {
        "usage": ("Usage: /repost TARGET [WHERE]\n"
                  "TARGET: a date (2024-09-24), a digest (2024-09-24/NeRF), a topic and a "
                  "date (NeRF 2024-09-24) or an arXiv id.\n"
                  "WHERE: all (every subscriber the papers concern; default), a chat id, or "
                  "@channel."),
        "refused": "Can't repost that: {reason}.",
        "nothing": "Nothing in the archive matches {target}.",
        "no_chat": "I don't know chat {where}, or it has stopped receiving messages.",
        "no_audience": "No subscriber follows {target}; nothing to send.",
        "confirm": "Repost {papers} to {chats} chats?",
        "send": "✅ Send to {chats} chats",
        "cancel": "✖️ Cancel",
        "cancelled": "Repost cancelled.",
        "expired": "This confirmation has expired; send /repost again.",
        "queued": "Reposting {papers} to {chats} chats…",
        "progress": "Reposting {papers}: sent {sent} / {total}, {failed} failed",
        "done": "✅ Repost of {papers} done: sent {sent}, failed {failed}, still pending "
                "{pending}.",
        "busy": "Queued {rows} messages; another delivery is running and will send them.",
        "papers_one": "1 paper",
        "papers_many": "{n} papers",
    },
    "zh": {
        "usage": ("用法：/repost 目标 [范围]\n"
                  "目标：日期（2024-09-24）、日报（2024-09-24/NeRF）、主题加日期（NeRF 2024-09-24）"
                  "或 arXiv 编号。\n范围：all（默认，所有相关订阅者）、聊天 id 或 @频道。"),
        "refused": "无法重新推送：{reason}。",
        "nothing": "资料库中没有与 {target} 匹配的内容。",
        "no_chat": "不认识聊天 {where}，或它已停止接收消息。",
        "no_audience": "没有订阅者关注 {target}，无需推送。",
        "confirm": "将 {papers} 重新推送给 {chats} 个聊天？",
        "send": "✅ 推送给 {chats} 个聊天",
        "cancel": "✖️ 取消",
        "cancelled": "已取消重新推送。",
        "expired": "此确认已过期，请重新发送 /repost。",
        "queued": "正在把 {papers} 推送给 {chats} 个聊天…",
        "progress": "重新推送 {papers}：已发送 {sent} / {total}，失败 {failed}",
        "done": "✅ {papers} 重新推送完成：发送 {sent}，失败 {failed}，待发送 {pending}。",
        "busy": "已排队 {rows} 条消息；另一个推送任务正在运行，会一并发送。",
        "papers_one": "1 篇论文",
        "papers_many": "{n} 篇论文",
    },
}

Papers = Sequence[DigestPapers] | Sequence[ArchivedPaper]


def _count(papers: Papers) -> int:
    return sum(len(p.papers) if isinstance(p, DigestPapers) else 1 for p in papers)


class Repost:
    """The operator's resend, from target to progress to summary."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _papers_text(self, lang: str, n: int) -> str:
        return tr(TEXTS, lang, "papers_one") if n == 1 else tr(TEXTS, lang, "papers_many", n=n)

    async def repost(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Parse, find the papers and the chats, confirm when many, then send."""
        lang = await require_operator(update, self.deps, "repost")
        if lang is None:
            return
        message = update.effective_message
        user = update.effective_user
        assert message is not None
        assert user is not None
        if not context.args:
            await message.reply_text(tr(TEXTS, lang, "usage"))
            return
        try:
            request = parse_repost(context.args)
            papers = await self._papers(request)
        except BadRepost as exc:
            await message.reply_text(tr(TEXTS, lang, "refused", reason=exc))
            return
        except UnknownTag as exc:
            await message.reply_text(await unknown_tag_text(self.deps.archive, lang, exc))
            return
        count = _count(papers)
        if not count:
            await message.reply_text(tr(TEXTS, lang, "nothing", target=request.describe()))
            return
        chat_ids = await self._where(request, context)
        if chat_ids is not None and not chat_ids:
            where = request.channel or str(request.chat_id)
            await message.reply_text(tr(TEXTS, lang, "no_chat", where=where))
            return
        if chat_ids is None:
            audience = len(await self.deps.delivery.repost_audience(papers))
            if not audience:
                await message.reply_text(tr(TEXTS, lang, "no_audience",
                                            target=request.describe()))
                return
            if audience > REPOST_CONFIRM:
                token = await self.deps.chats.ask("repost", user.id, {"args": context.args},
                                                  CONFIRM_TTL)
                keyboard = InlineKeyboardMarkup([[
                    button(tr(TEXTS, lang, "send", chats=audience), f"rp:ok:{token}"),
                    button(tr(TEXTS, lang, "cancel"), f"rp:no:{token}"),
                ]])
                await message.reply_text(
                    tr(TEXTS, lang, "confirm", papers=self._papers_text(lang, count),
                       chats=audience), reply_markup=keyboard)
                return
        else:
            audience = len(chat_ids)
        progress = await message.reply_text(
            tr(TEXTS, lang, "queued", papers=self._papers_text(lang, count), chats=audience))
        in_background(context, self._send(progress, lang, papers, count, chat_ids), "repost",
                      update)

    async def confirm(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The operator's answer to "Repost N papers to M chats?"."""
        query = update.callback_query
        assert query is not None
        parsed = confirm_answer(query.data or "")
        if parsed is None:
            await refuse_button(update, "not a repost answer")
            return
        yes, token = parsed
        user_id = query.from_user.id
        lang = lang_of(query.from_user.language_code)
        if not self.deps.is_operator(user_id):
            await query.answer(tr(TEXTS, lang, "expired"), show_alert=True)
            return
        asked = await self.deps.chats.answer(token, "repost", user_id)
        if asked is None:
            await query.answer(tr(TEXTS, lang, "expired"), show_alert=True)
            return
        await query.answer()
        if not isinstance(query.message, Message):
            return
        if not yes:
            await query.edit_message_text(tr(TEXTS, lang, "cancelled"))
            return
        try:  # the same target again: the archive may have changed since the question
            papers = await self._papers(parse_repost([str(a) for a in asked.get("args", [])]))
        except (BadRepost, UnknownTag):
            papers = []
        count = _count(papers)
        audience = len(await self.deps.delivery.repost_audience(papers)) if count else 0
        if not audience:
            await query.edit_message_text(tr(TEXTS, lang, "cancelled"))
            return
        await query.edit_message_text(
            tr(TEXTS, lang, "queued", papers=self._papers_text(lang, count), chats=audience))
        in_background(context, self._send(query.message, lang, papers, count, None),
                      "repost", update)

    async def _papers(self, request: RepostRequest) -> Papers:
        archive = self.deps.archive
        if request.arxiv_id:
            paper = await archive.get_paper(request.arxiv_id)
            return [paper] if paper else []
        assert request.day is not None
        tag = await archive.resolve_tag(request.tag) if request.tag else None
        return await archive.papers_on(request.day, tag)

    async def _where(self, request: RepostRequest,
                     context: ContextTypes.DEFAULT_TYPE) -> list[int] | None:
        """None for every subscriber; else the named chat, if it can receive."""
        if request.to_all:
            return None
        chat_id = request.chat_id
        if request.channel is not None:
            try:
                chat_id = (await context.bot.get_chat(request.channel)).id
            except TelegramError:
                return []
        assert chat_id is not None
        chat = await self.deps.chats.get(chat_id)
        return [chat_id] if chat is not None and chat.active else []

    async def _send(self, progress: Message, lang: str, papers: Papers, count: int,
                    chat_ids: list[int] | None) -> None:
        rows = await self.deps.delivery.enqueue_repost(papers, chat_ids)
        label = self._papers_text(lang, count)
        loop = asyncio.get_running_loop()
        last_edit = [loop.time()]
        edits: set[asyncio.Task[None]] = set()

        def on_progress(sent: int, failed: int, total: int) -> None:
            """Called by the drain after each send: edit at most every PROGRESS_EVERY s."""
            now = loop.time()
            if now - last_edit[0] < PROGRESS_EVERY or edits:
                return
            last_edit[0] = now
            text = tr(TEXTS, lang, "progress", papers=label, sent=sent, total=total,
                      failed=failed)
            task = asyncio.ensure_future(self._edit(progress, text))
            edits.add(task)
            task.add_done_callback(edits.discard)

        report = await self.deps.delivery.drain(progress=on_progress)
        await asyncio.gather(*edits)
        if report.locked:
            await self._edit(progress, tr(TEXTS, lang, "busy", rows=rows))
            return
        await self._edit(progress, tr(TEXTS, lang, "done", papers=label, sent=report.sent,
                                      failed=report.failed, pending=report.pending_left))

    @staticmethod
    async def _edit(message: Message, text: str) -> None:
        try:
            await message.edit_text(text)
        except TelegramError as exc:  # e.g. "message is not modified"; progress is cosmetic
            log.debug("progress edit skipped: %s", exc)
