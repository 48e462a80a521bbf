"""First contact and orientation: /start (with deep links), /help, and hints for the lost."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.domain.deeplinks import channel_link, group_link, parse_start
from bot.tg.chats import current_chat
from bot.tg.commands import publish_operator_commands
from bot.tg.deps import Deps
from bot.tg.handlers.saved import START_PAYLOAD as SAVED_PAYLOAD
from bot.tg.handlers.saved import Saved
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
        "add_group": "➕ Add to a group",
        "add_channel": "📢 Add to a channel",
        "help": (
            "<b>paperfeed</b> turns daily paper digests into a feed.\n\n"
            "<b>Subscribing</b>\n"
            "/subscribe — choose topics with buttons\n"
            "/subscribe NeRF, 3DGS — follow topics by name (/subscribe all for everything)\n"
            "/unsubscribe NeRF — stop following (/unsubscribe all to stop everything)\n"
            "/tags — every topic, its size and whether you follow it; each name is a link "
            "to share that subscribes whoever opens it\n"
            "/start — in a private chat, buttons to add me to a group or a channel\n"
            "/settings — instant, daily or daily-digest delivery (one list a topic a day), "
            "silent, pause and resume, a weekly roundup with the trend chart, keyword "
            "filters, card style, language\n"
            "/subscribe @channel [topics] — for a channel's admins: subscribe it from here "
            "(/settings @channel … changes its settings)\n\n"
            "<b>Reading</b>\n"
            "/latest [topic] — the newest papers of your topics (or of one), paged\n"
            "/search QUERY — search the archive (send /search alone for the syntax); in "
            "a private chat, just type the words, or paste an arXiv link to open its paper\n"
            "/tag NAME [QUERY] — the papers of one topic, newest first\n"
            "/paper 2409.12156 — one paper by arXiv id or URL\n"
            "BibTeX (a card's button) — the paper's @misc entry, ready to copy\n"
            "🔗 Related (a card's button) — the 5 papers nearest in meaning, with the "
            "topics they share\n"
            "/saved — the papers you saved with ☆ Save on a card (only you see them), as a "
            "list, a BibTeX file or links\n"
            "/trends [topic] [weeks] — a chart of papers per topic per week (last 12 weeks; "
            "/trends NeRF 26: one topic, half a year)\n"
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
            "/settings @channel [setting value] — read or change a channel's settings\n"
            "paperfeed links (on the server) — every share link: each topic, everything, "
            "add to a group or a channel"
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
        "add_group": "➕ 加入群组",
        "add_channel": "📢 加入频道",
        "help": (
            "<b>paperfeed</b> 把每日论文速递变成订阅源。\n\n"
            "<b>订阅</b>\n"
            "/subscribe — 用按钮选择主题\n"
            "/subscribe NeRF, 3DGS — 按名称订阅（/subscribe all 订阅全部）\n"
            "/unsubscribe NeRF — 取消订阅（/unsubscribe all 全部取消）\n"
            "/tags — 所有主题、论文数量及订阅状态；每个主题名都是可分享的链接，打开即订阅\n"
            "/start — 私聊中提供把我加入群组或频道的按钮\n"
            "/settings — 即时、每日或每日摘要推送（每个主题每天一条列表）、静音、暂停与恢复、"
            "带趋势图的每周回顾、关键词过滤、卡片样式、界面语言\n"
            "/subscribe @频道 [主题] — 频道管理员在此为频道订阅（/settings @频道 … 修改其设置）\n\n"
            "<b>阅读</b>\n"
            "/latest [主题] — 你订阅主题（或某个主题）的最新论文，分页浏览\n"
            "/search 关键词 — 搜索资料库（单独发送 /search 查看语法）；私聊中直接输入关键词即可，"
            "粘贴 arXiv 链接可打开论文\n"
            "/tag 主题 [关键词] — 某个主题的论文，按时间倒序\n"
            "/paper 2409.12156 — 按 arXiv 编号或链接查看论文\n"
            "BibTeX（卡片上的按钮）— 论文的 @misc 条目，可直接复制\n"
            "🔗 相关（卡片上的按钮）— 语义最接近的 5 篇论文，附共同的主题\n"
            "/saved — 你在卡片上用 ☆ 收藏 保存的论文（仅你可见），可导出 BibTeX 文件或链接列表\n"
            "/trends [主题] [周数] — 各主题每周论文数的趋势图（默认最近 12 周；"
            "/trends NeRF 26：一个主题半年的趋势）\n"
            "在任意聊天中输入 @{bot} 关键词 即可分享论文。"
        ),
        "help_admin": (
            "\n\n<b>管理员</b>\n"
            "/stats — 订阅者、论文、上次扫描、推送情况\n"
            "/rescan — 立即扫描日报目录\n"
            "/repost 目标 [范围] — 重新推送（日期、日期/主题、主题 日期或 arXiv 编号；"
            "发往 all、聊天 id 或 @频道）\n"
            "/subscribe @频道 [主题] — 为我担任管理员的频道订阅（私有频道用其 id，-100…）\n"
            "/settings @频道 [设置 值] — 查看或修改频道的设置\n"
            "paperfeed links（在服务器上运行）— 全部分享链接：每个主题、全部订阅、加入群组或频道"
        ),
        "unknown_command": "没有这个命令。/help 查看可用命令。",
    },
}


class Start:
    """Welcome, help and fallbacks."""

    def __init__(self, deps: Deps, subscriptions: Subscriptions, *,
                 saved: Saved | None = None) -> None:
        self.deps = deps
        self.subscriptions = subscriptions
        self.saved = saved

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Welcome; share links (`start=sub-…`, bot.domain.deeplinks) subscribe at once."""
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
        user_id = user.id if user is not None else None
        if (context.args == [SAVED_PAYLOAD] and self.saved is not None
                and chat.kind == ChatType.PRIVATE and user_id is not None):
            await self.saved.show(message, user_id, chat.lang)  # the button under /saved
            return
        link = parse_start(context.args[0]) if context.args else None
        if link is not None:
            await self.subscriptions.subscribe_by_link(update, context, link)
            return
        stats = await self.deps.archive.stats()
        rows = [[button(tr(TEXTS, chat.lang, "sub_all"), "sb:*")],
                [button(tr(TEXTS, chat.lang, "choose"), "sb:menu")]]
        if update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE:
            # Sharing: the bot joins a group or channel of the user's choice, whose admins
            # then subscribe it (in the group, or with /subscribe @channel from here).
            bot = context.bot.username
            rows.append([
                InlineKeyboardButton(tr(TEXTS, chat.lang, "add_group"), url=group_link(bot)),
                InlineKeyboardButton(tr(TEXTS, chat.lang, "add_channel"),
                                     url=channel_link(bot)),
            ])
        keyboard = InlineKeyboardMarkup(rows)
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
