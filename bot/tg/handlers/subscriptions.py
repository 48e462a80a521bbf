"""Following topics: /subscribe, /unsubscribe, /tags, the ✅ toggle keyboard, deep links,
and channels subscribed by an operator."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.domain.deeplinks import SubscribeLink, link_tag, subscribe_link
from bot.domain.models import Chat, TagInfo
from bot.domain.tgtext import escape, split_html, truncate
from bot.errors import UnknownTag
from bot.tg.chats import (
    ANSWER_LEN,
    channel_ref,
    current_chat,
    may_manage,
    may_manage_channel,
    thread_of,
)
from bot.tg.deps import Deps
from bot.tg.keyboards import (
    parse_toggle_page,
    shown_toggle_page,
    tag_key,
    tag_toggles,
    toggle_page_of,
    toggle_pages,
)
from bot.tg.tags import unknown_tag_text
from bot.tg.texts import COMMON, tr

log = logging.getLogger(__name__)

TEXTS = {
    "en": {
        "choose": "Tap a topic to follow or stop following it (✅ = followed).",
        "all": "Everything",
        "none": "Nothing",
        "subscribed_all": "✅ Subscribed to everything. New papers arrive as digests do.",
        "subscribed": "✅ Subscribed to {tags}.",
        "unsubscribed_all": "🔕 Unsubscribed from everything.",
        "unsubscribed": "🔕 No longer following {tags}.",
        "now_following": "Now following: {tags}.",
        "following_nothing": "This chat follows nothing now.",
        "toggled_on": "Following {tag}",
        "toggled_off": "Stopped following {tag}",
        "tags_title": "<b>Topics</b> ({count})",
        "tag_line": "{mark}<a href=\"{link}\">{name}</a> — {papers}, last {last}",
        "tag_papers_one": "1 paper",
        "tag_papers_many": "{n} papers",
        "tags_footer": "✅ = followed here. /subscribe NAME to follow, /tag NAME to browse.\n"
                       "🔗 Each name is a share link: whoever opens it follows that topic in "
                       "their own chat with me.",
        "channel_usage": "Send /subscribe @channel [topics] to subscribe a channel.",
        "channel_unknown": "I can't find {channel}, or I'm not a member of it.",
        "channel_not_admin": "Make me an admin of {channel} with the right to post, then try "
                             "again.",
        "channel_done": "✅ {channel} now receives {what}.",
        "channel_off": "🔕 {channel} no longer receives papers.",
        "channel_admins_only": "Only an admin of {channel} (or the bot's operator) can change "
                               "what it receives.",
        "everything": "everything",
        "link_gone": "This link's topic is no longer in the archive; /tags lists the topics "
                     "there are.",
    },
    "zh": {
        "choose": "点击主题即可订阅或取消（✅ = 已订阅）。",
        "all": "全部",
        "none": "全不选",
        "subscribed_all": "✅ 已订阅全部主题，新日报到达时推送。",
        "subscribed": "✅ 已订阅 {tags}。",
        "unsubscribed_all": "🔕 已取消全部订阅。",
        "unsubscribed": "🔕 已取消订阅 {tags}。",
        "now_following": "当前订阅：{tags}。",
        "following_nothing": "本聊天目前没有订阅。",
        "toggled_on": "已订阅 {tag}",
        "toggled_off": "已取消 {tag}",
        "tags_title": "<b>主题</b>（{count}）",
        "tag_line": "{mark}<a href=\"{link}\">{name}</a> — {papers}，最近 {last}",
        "tag_papers_one": "1 篇",
        "tag_papers_many": "{n} 篇",
        "tags_footer": "✅ = 本聊天已订阅。/subscribe 主题 订阅，/tag 主题 浏览。\n"
                       "🔗 每个主题名都是分享链接：打开的人会在与我的私聊中订阅该主题。",
        "channel_usage": "发送 /subscribe @频道 [主题] 为频道订阅。",
        "channel_unknown": "找不到 {channel}，或我不是其成员。",
        "channel_not_admin": "请先把我设为 {channel} 的管理员并允许发消息，然后重试。",
        "channel_done": "✅ {channel} 将收到{what}。",
        "channel_off": "🔕 {channel} 不再接收论文。",
        "channel_admins_only": "只有 {channel} 的管理员（或机器人的运营者）可以修改它的订阅。",
        "everything": "全部主题",
        "link_gone": "此链接的主题已不在资料库中；/tags 查看现有主题。",
    },
}

EVERYTHING = {"all", "everything", "*", "全部"}


def split_tag_args(text: str) -> list[str]:
    """Tag names from command arguments: comma-separated, else one per word."""
    text = text.strip()
    if "," in text or "，" in text:
        return [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]
    return text.split()


class Subscriptions:
    """Tag choices of a chat, by command, by button or by link."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def _resolve(self, names: list[str]) -> tuple[list[str], UnknownTag | None]:
        """Resolve names; a whole multi-word argument may itself be one tag."""
        joined = " ".join(names)
        if len(names) > 1:
            try:
                return [await self.deps.archive.resolve_tag(joined)], None
            except UnknownTag:
                pass
        tags: list[str] = []
        for name in names:
            try:
                tags.append(await self.deps.archive.resolve_tag(name))
            except UnknownTag as exc:
                return tags, exc
        return tags, None

    async def _unknown(self, update: Update, chat: Chat, exc: UnknownTag) -> None:
        message = update.effective_message
        assert message is not None
        await message.reply_text(await unknown_tag_text(self.deps.archive, chat.lang, exc))

    def _following(self, chat: Chat) -> str:
        if chat.all_topics:
            return tr(TEXTS, chat.lang, "subscribed_all")
        if chat.tags:
            return tr(TEXTS, chat.lang, "now_following", tags=", ".join(chat.tags))
        return tr(TEXTS, chat.lang, "following_nothing")

    async def show_toggles(self, update: Update, chat: Chat) -> None:
        message = update.effective_message
        assert message is not None
        tags = [t.name for t in await self.deps.archive.tags()]
        if not tags:
            await message.reply_text(tr(COMMON, chat.lang, "no_papers"))
            return
        await message.reply_text(
            tr(TEXTS, chat.lang, "choose"),
            reply_markup=tag_toggles(tags, set(chat.tags), chat.all_topics,
                                     tr(TEXTS, chat.lang, "all"), tr(TEXTS, chat.lang, "none")),
        )

    async def _common(self, update: Update, context: ContextTypes.DEFAULT_TYPE, *,
                      subscribe: bool) -> tuple[Message, Chat, list[str]] | None:
        """What /subscribe and /unsubscribe share: channels, rights, the bare keyboard.

        Returns the message, chat and arguments when there is still a choice to apply.
        """
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        args = context.args or []
        if args and (args[0].startswith("@") or channel_ref(args[0]) is not None):
            await self._channel(update, context, chat, args[0], args[1:], subscribe=subscribe)
            return None
        if not await may_manage(update, context.bot, self.deps):
            await message.reply_text(tr(COMMON, chat.lang, "admins_only"))
            return None
        if not args:
            await self.show_toggles(update, chat)
            return None
        return message, chat, args

    async def subscribe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/subscribe [all | tag …] or, for operators, /subscribe @channel [tags]."""
        found = await self._common(update, context, subscribe=True)
        if found is None:
            return
        message, chat, args = found
        if args[0].lower() in EVERYTHING:
            chat = await self.deps.chats.subscribe(chat.chat_id, everything=True,
                                                   thread_id=thread_of(update))
            await message.reply_text(tr(TEXTS, chat.lang, "subscribed_all"))
            return
        tags, error = await self._resolve(split_tag_args(" ".join(args)))
        if error is not None:
            await self._unknown(update, chat, error)
            return
        chat = await self.deps.chats.subscribe(chat.chat_id, tags, thread_id=thread_of(update))
        await message.reply_text(tr(TEXTS, chat.lang, "subscribed", tags=", ".join(tags)) + "\n"
                                 + self._following(chat))

    async def unsubscribe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unsubscribe [all | tag …]; without arguments the toggle keyboard."""
        found = await self._common(update, context, subscribe=False)
        if found is None:
            return
        message, chat, args = found
        if args[0].lower() in EVERYTHING:
            chat = await self.deps.chats.unsubscribe(chat.chat_id, everything=True)
            await self.deps.delivery.unfollowed(chat)
            await message.reply_text(tr(TEXTS, chat.lang, "unsubscribed_all"))
            return
        tags, error = await self._resolve(split_tag_args(" ".join(args)))
        if error is not None:
            await self._unknown(update, chat, error)
            return
        if chat.all_topics:  # "everything but these"
            others = [t.name for t in await self.deps.archive.tags() if t.name not in tags]
            chat = await self.deps.chats.set_subscription(chat.chat_id, others,
                                                          everything=False,
                                                          thread_id=chat.thread_id)
        else:
            chat = await self.deps.chats.unsubscribe(chat.chat_id, tags)
        await self.deps.delivery.unfollowed(chat)
        await message.reply_text(tr(TEXTS, chat.lang, "unsubscribed", tags=", ".join(tags))
                                 + "\n" + self._following(chat))

    async def subscribe_by_link(self, update: Update, context: ContextTypes.DEFAULT_TYPE,
                                link: SubscribeLink) -> None:
        """A share link (`/start sub-…`, bot.domain.deeplinks) subscribes this chat: the
        opener's private chat, or the group a `?startgroup=` link added the bot to."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        if not await may_manage(update, context.bot, self.deps):
            await message.reply_text(tr(COMMON, chat.lang, "admins_only"))
            return
        if link.everything:
            await self.deps.chats.subscribe(chat.chat_id, everything=True,
                                            thread_id=thread_of(update))
            await message.reply_text(tr(TEXTS, chat.lang, "subscribed_all"))
            return
        tag = await self._link_tag(link)
        if isinstance(tag, UnknownTag):  # gone from the archive since the link was made
            if link.names:
                await self._unknown(update, chat, tag)
            else:
                await message.reply_text(tr(TEXTS, chat.lang, "link_gone"))
            return
        chat = await self.deps.chats.subscribe(chat.chat_id, [tag], thread_id=thread_of(update))
        await message.reply_text(tr(TEXTS, chat.lang, "subscribed", tags=tag) + "\n"
                                 + self._following(chat))

    async def _link_tag(self, link: SubscribeLink) -> str | UnknownTag:
        """The tag a share link names: exactly (bot.domain.deeplinks) or, for an older
        hand-made link, as the archive matches names (ignoring case and spaces)."""
        tag = link_tag(link, [t.name for t in await self.deps.archive.tags()])
        if tag is not None:
            return tag
        error = UnknownTag(link.names[0] if link.names else "")
        for i, candidate in enumerate(link.names):
            try:
                return await self.deps.archive.resolve_tag(candidate)
            except UnknownTag as exc:
                error = exc if i == 0 else error
        return error

    async def toggle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap on the toggle keyboard (sb:<key>, sb:*, sb:-, sb:menu)."""
        query = update.callback_query
        assert query is not None
        assert query.data is not None
        chat = await current_chat(update, self.deps)
        if not await may_manage(update, context.bot, self.deps):
            await query.answer(tr(COMMON, chat.lang, "admins_only"), show_alert=True)
            return
        key = query.data.removeprefix("sb:")
        names = [t.name for t in await self.deps.archive.tags()]
        if key == "menu":
            await query.answer()
            await self.show_toggles(update, chat)
            return
        message = query.message if isinstance(query.message, Message) else None
        shown = shown_toggle_page(message.reply_markup if message else None, names)
        page = parse_toggle_page(query.data)
        if page is not None:  # ◀ ▶ of a long tag list
            await query.answer()
            if message is not None and page != shown and page < toggle_pages(names):
                await self._refresh_toggles(message, chat, names, page)
            return
        if key == "*":
            chat = await self.deps.chats.subscribe(chat.chat_id, everything=True,
                                                   thread_id=chat.thread_id)
            note = tr(TEXTS, chat.lang, "subscribed_all")
        elif key == "-":
            chat = await self.deps.chats.unsubscribe(chat.chat_id, everything=True)
            note = tr(TEXTS, chat.lang, "unsubscribed_all")
        else:
            tag = next((n for n in names if tag_key(n) == key), None)
            if tag is None:
                await query.answer(tr(COMMON, chat.lang, "expired"), show_alert=True)
                return
            followed = set(names) if chat.all_topics else set(chat.tags)
            if tag in followed:
                followed.discard(tag)
                note = tr(TEXTS, chat.lang, "toggled_off", tag=tag)
            else:
                followed.add(tag)
                note = tr(TEXTS, chat.lang, "toggled_on", tag=tag)
            chat = await self.deps.chats.set_subscription(
                chat.chat_id, sorted(followed), everything=followed >= set(names),
                thread_id=thread_of(update) or chat.thread_id)
            shown = toggle_page_of(names, tag)
        await self.deps.delivery.unfollowed(chat)
        await query.answer(truncate(note, ANSWER_LEN))  # UTF-16 units, not code points
        if message is not None:
            if message.text == tr(TEXTS, chat.lang, "choose"):
                await self._refresh_toggles(message, chat, names, shown)
            else:
                await context.bot.send_message(chat.chat_id, self._following(chat),
                                               message_thread_id=chat.thread_id)

    async def _refresh_toggles(self, message: Message, chat: Chat, names: list[str],
                               page: int) -> None:
        """Show ``page`` of the toggle keyboard with the chat's current choice.

        Nothing is sent when the keyboard would not change ("Everything" tapped twice):
        Telegram refuses such an edit ("message is not modified").
        """
        keyboard = tag_toggles(names, set(chat.tags), chat.all_topics,
                               tr(TEXTS, chat.lang, "all"), tr(TEXTS, chat.lang, "none"), page)
        current = message.reply_markup
        if current is None or current.to_dict() != keyboard.to_dict():
            await message.edit_reply_markup(keyboard)

    async def tags(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Every tag with its size, last digest date and whether this chat follows it."""
        message = update.effective_message
        assert message is not None
        chat = await current_chat(update, self.deps)
        infos = await self.deps.archive.tags()
        if not infos:
            await message.reply_text(tr(COMMON, chat.lang, "no_papers"))
            return
        # One message per 4096 units and 100 entities (each linked name is one): a long
        # tag list would be refused, or lose its links past the 100th.
        for part in split_html(self.render_tags(infos, chat, context.bot.username)):
            await message.reply_html(part)

    def render_tags(self, infos: list[TagInfo], chat: Chat, bot: str) -> str:
        """One line per tag; the name links to the private-chat link subscribing whoever
        opens it (in a group too: sharing a topic is a personal invitation)."""
        lines = [tr(TEXTS, chat.lang, "tags_title", count=len(infos))]
        for info in infos:
            mark = "✅ " if chat.all_topics or info.name in chat.tags else "▫️ "
            last = info.last_date.isoformat() if info.last_date else "—"
            papers = tr(TEXTS, chat.lang, "tag_papers_one" if info.papers == 1
                        else "tag_papers_many", n=info.papers)
            lines.append(tr(TEXTS, chat.lang, "tag_line", mark=mark, name=escape(info.name),
                            link=escape(subscribe_link(bot, info.name), quote=True),
                            papers=papers, last=last))
        lines.append("")
        lines.append(tr(TEXTS, chat.lang, "tags_footer"))
        return "\n".join(lines)

    async def _channel(self, update: Update, context: ContextTypes.DEFAULT_TYPE, chat: Chat,
                       channel: str, names: list[str], *, subscribe: bool) -> None:
        """An operator, or an admin of the channel (checked with Telegram now), subscribes
        a channel where the bot is an admin."""
        message = update.effective_message
        user = update.effective_user
        assert message is not None
        ref = channel_ref(channel)
        if ref is None:
            await message.reply_text(tr(TEXTS, chat.lang, "channel_unknown", channel=channel))
            return
        try:
            target = await context.bot.get_chat(ref)
            member = await context.bot.get_chat_member(target.id, context.bot.id)
        except TelegramError:
            await message.reply_text(tr(TEXTS, chat.lang, "channel_unknown", channel=channel))
            return
        if target.type != ChatType.CHANNEL and target.type != ChatType.SUPERGROUP:
            await message.reply_text(tr(TEXTS, chat.lang, "channel_unknown", channel=channel))
            return
        if not await may_manage_channel(context.bot, self.deps, user.id if user else None,
                                        target.id):
            log.warning("user %s tried to manage channel %s but is neither an operator nor "
                        "its admin", user.id if user else None, channel)
            await message.reply_text(tr(TEXTS, chat.lang, "channel_admins_only",
                                        channel=channel))
            return
        can_post = member.status == ChatMemberStatus.OWNER or (
            member.status == ChatMemberStatus.ADMINISTRATOR
            and getattr(member, "can_post_messages", None) is not False)
        if subscribe and not can_post:
            await message.reply_text(tr(TEXTS, chat.lang, "channel_not_admin", channel=channel))
            return
        await self.deps.chats.ensure(target.id, str(target.type), target.title or channel,
                                     lang=chat.lang)
        if not subscribe:
            await self.deps.delivery.unfollowed(
                await self.deps.chats.unsubscribe(target.id, everything=True))
            await message.reply_text(tr(TEXTS, chat.lang, "channel_off", channel=channel))
            return
        if not names or names[0].lower() in EVERYTHING:
            await self.deps.chats.subscribe(target.id, everything=True)
            what = tr(TEXTS, chat.lang, "everything")
        else:
            tags, error = await self._resolve(split_tag_args(" ".join(names)))
            if error is not None:
                await self._unknown(update, chat, error)
                return
            await self.deps.chats.subscribe(target.id, tags)
            what = ", ".join(tags)
        await message.reply_text(tr(TEXTS, chat.lang, "channel_done", channel=channel,
                                    what=what))
