"""First contact and orientation: /start (with deep links), /help, and hints for the lost."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot.tg.chats import current_chat
from bot.tg.commands import publish_operator_commands
from bot.tg.deps import Deps
from bot.tg.handlers.subscriptions import Subscriptions
from bot.tg.keyboards import button
from bot.tg.texts import tr

log = logging.getLogger(__name__)

TEXTS = {
    "en": {
        "welcome": (
            "👋 <b>Welcome to paperfeed!</b>\n"
            "I send new arXiv papers from the daily digests as they arrive: title, authors, "
            "a one-line summary, key takeaways and links.\n\n"
            "The archive holds <b>{papers}</b> papers in <b>{tags}</b> topics. "
            "Subscribe to everything or choose topics below; /help lists everything I can do."
        ),
        "welcome_back": "👋 Welcome back! Deliveries to this chat are on again.",
        "sub_all": "📬 Subscribe to everything",
        "choose": "🏷 Choose topics",
        "help": (
            "<b>paperfeed</b> turns daily paper digests into a feed.\n\n"
            "<b>Subscribing</b>\n"
            "/subscribe — choose topics with buttons\n"
            "/subscribe NeRF, 3DGS — follow topics by name (/subscribe all for everything)\n"
            "/unsubscribe NeRF — stop following (/unsubscribe all to stop everything)\n"
            "/tags — every topic, its size and whether you follow it\n"
            "/settings — instant or daily delivery, keyword filters, card style, language\n\n"
            "<b>Reading</b>\n"
            "/latest [topic] — the newest papers of your topics (or of one), paged\n"
            "/search QUERY — search the archive (send /search alone for the syntax); in "
            "a private chat, just type the words, or paste an arXiv link to open its paper\n"
            "/tag NAME [QUERY] — the papers of one topic, newest first\n"
            "/paper 2409.12156 — one paper by arXiv id or URL\n"
            "In any chat, type @{bot} QUERY to share a paper."
        ),
        "help_admin": (
            "\n\n<b>Operators</b>\n"
            "/stats — subscribers, papers, last scan, deliveries\n"
            "/rescan — scan the digest folder now\n"
            "/repost TARGET [WHERE] — send papers again (a date, date/topic, topic date, or "
            "arXiv id; to all, a chat id or @channel)\n"
            "/subscribe @channel [topics] — subscribe a channel where I am an admin "
            "(a private one by its id, -100…)\n"
            "/settings @channel [setting value] — read or change a channel's settings"
        ),
        "unknown_command": "I don't know that command. /help lists what I can do.",
    },
    "zh": {
        "welcome": (
            "👋 <b>欢迎使用 paperfeed！</b>\n"
            "每当日报更新，我会把新的 arXiv 论文逐篇发给您："
            "标题、作者、一句话总结、要点和链接。\n\n"
            "资料库共有 <b>{papers}</b> 篇论文，<b>{tags}</b> 个主题。"
            "可以订阅全部或在下方选择主题；/help 查看全部功能。"
        ),
        "welcome_back": "👋 欢迎回来！本聊天的推送已恢复。",
        "sub_all": "📬 订阅全部",
        "choose": "🏷 选择主题",
        "help": (
            "<b>paperfeed</b> 把每日论文速递变成订阅源。\n\n"
            "<b>订阅</b>\n"
            "/subscribe — 用按钮选择主题\n"
            "/subscribe NeRF, 3DGS — 按名称订阅（/subscribe all 订阅全部）\n"
            "/unsubscribe NeRF — 取消订阅（/unsubscribe all 全部取消）\n"
            "/tags — 所有主题、论文数量及订阅状态\n"
            "/settings — 即时或每日推送、关键词过滤、卡片样式、界面语言\n\n"
            "<b>阅读</b>\n"
            "/latest [主题] — 你订阅主题（或某个主题）的最新论文，分页浏览\n"
            "/search 关键词 — 搜索资料库（单独发送 /search 查看语法）；私聊中直接输入关键词即可，"
            "粘贴 arXiv 链接可打开论文\n"
            "/tag 主题 [关键词] — 某个主题的论文，按时间倒序\n"
            "/paper 2409.12156 — 按 arXiv 编号或链接查看论文\n"
            "在任意聊天中输入 @{bot} 关键词 即可分享论文。"
        ),
        "help_admin": (
            "\n\n<b>管理员</b>\n"
            "/stats — 订阅者、论文、上次扫描、推送情况\n"
            "/rescan — 立即扫描日报目录\n"
            "/repost 目标 [范围] — 重新推送（日期、日期/主题、主题 日期或 arXiv 编号；"
            "发往 all、聊天 id 或 @频道）\n"
            "/subscribe @频道 [主题] — 为我担任管理员的频道订阅（私有频道用其 id，-100…）\n"
            "/settings @频道 [设置 值] — 查看或修改频道的设置"
        ),
        "unknown_command": "没有这个命令。/help 查看可用命令。",
    },
}


class Start:
    """Welcome, help and fallbacks."""

    def __init__(self, deps: Deps, subscriptions: Subscriptions) -> None:
        self.deps = deps
        self.subscriptions = subscriptions

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Welcome; `start=sub-<tag>` deep links subscribe straight away."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        user = update.effective_user
        if user is not None and self.deps.is_operator(user.id):
            # Operator menus can only be set once the operator has started the bot.
            await publish_operator_commands(context.bot, frozenset({user.id}))
        if not chat.active:
            await self.deps.chats.reactivate(chat.chat_id)
            await message.reply_text(tr(TEXTS, chat.lang, "welcome_back"))
        payload = context.args[0] if context.args else ""
        if payload.startswith("sub-"):
            await self.subscriptions.subscribe_by_link(update, context, payload[4:])
            return
        stats = await self.deps.archive.stats()
        keyboard = InlineKeyboardMarkup([[button(tr(TEXTS, chat.lang, "sub_all"), "sb:*")],
                                         [button(tr(TEXTS, chat.lang, "choose"), "sb:menu")]])
        await message.reply_html(
            tr(TEXTS, chat.lang, "welcome", papers=stats.papers, tags=stats.tags),
            reply_markup=keyboard,
        )

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Every command with a line on what it does; operators see theirs too."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        text = tr(TEXTS, chat.lang, "help", bot=context.bot.username)
        user = update.effective_user
        if self.deps.is_operator(user.id if user else None):
            text += tr(TEXTS, chat.lang, "help_admin")
        await message.reply_html(text)

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command we don't have: say so instead of staying silent."""
        message = update.effective_message
        if message is None or message.text is None:
            return
        # In groups, answer only commands addressed to us (/x@thisbot) or plain ones.
        command = message.text.split()[0]
        if "@" in command and command.split("@", 1)[1].lower() != (context.bot.username or
                                                                    "").lower():
            return
        chat = await current_chat(update, self.deps)
        await message.reply_text(tr(TEXTS, chat.lang, "unknown_command"))
