"""Tests of the fake Bot API server itself.

Why: every end-to-end test of the bot trusts this server to say "Telegram would
accept this" or "Telegram would refuse this".  These tests pin both sides: real
python-telegram-bot objects must work against it unchanged, and the requests
Telegram rejects must be rejected with Telegram's status codes and descriptions.
Nothing here sleeps; waits are event driven and bounded by timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import zlib
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from telegram import (
    Bot,
    ChatMemberAdministrator,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputMediaPhoto,
    InputTextMessageContent,
    LinkPreviewOptions,
    MenuButtonCommands,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    CallbackContext,
    CallbackQueryHandler,
    ChatMemberHandler,
    ChosenInlineResultHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from tests.botapi.faults import FloodControl, ManualClock, RateWindow
from tests.botapi.ptb_harness import builder_for, running_application, settle
from tests.botapi.server import FakeBotApi, FakeChat, FakeUser, _form_fields


def png_image(width: int = 1, height: int = 1) -> bytes:
    """A real PNG of that size (grey), made without an imaging library."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = png_image()


# -- helpers --------------------------------------------------------------------------


async def raw_call(
    server: FakeBotApi,
    method: str,
    *,
    token: str | None = None,
    as_json: bool = False,
    **params: Any,
) -> tuple[int, dict[str, Any]]:
    """POST like a minimal client would (form with JSON-encoded values, or JSON)."""
    url = f"{server.base_url}{token or server.token}/{method}"
    async with httpx.AsyncClient() as client:
        if as_json:
            response = await client.post(url, json=params)
        else:
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
            response = await client.post(url, data=form)
    return response.status_code, response.json()


def make_bot(server: FakeBotApi) -> Bot:
    return Bot(server.token, base_url=server.base_url, base_file_url=server.base_file_url)


def known_private_chat(server: FakeBotApi, name: str = "Alice") -> tuple[FakeUser, FakeChat]:
    user = server.user(name)
    return user, server.add_chat(server.private_chat(user))


def keyboard(*buttons: InlineKeyboardButton) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([list(buttons)])


# -- protocol -------------------------------------------------------------------------


async def test_get_me_over_form_json_and_real_bot(botapi: FakeBotApi) -> None:
    status, body = await raw_call(botapi, "getMe")
    assert status == 200
    assert body["result"]["username"] == "paperfeed_test_bot"
    status, body = await raw_call(botapi, "GETME", as_json=True)  # names are case-insensitive
    assert status == 200
    assert body["ok"] is True
    async with make_bot(botapi) as bot:
        assert bot.username == "paperfeed_test_bot"
        assert bot.id == 123


async def test_unknown_method_and_bad_tokens(botapi: FakeBotApi) -> None:
    assert await raw_call(botapi, "sendTelepathy") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    assert botapi.unknown_methods == ["sendTelepathy"]
    status, body = await raw_call(botapi, "getMe", token="999:WRONG")
    assert (status, body["description"]) == (401, "Unauthorized")
    status, _ = await raw_call(botapi, "getMe", token="not-a-token")
    assert status == 404


async def test_reply_markup_must_be_json_in_form_bodies(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    status, body = await raw_call(
        botapi, "sendMessage", chat_id=chat.id, text="hi", reply_markup="{'inline_keyboard': []}"
    )
    assert status == 400
    assert body["description"] == "Bad Request: can't parse reply keyboard markup JSON object"


async def test_json_body_with_native_objects(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    status, body = await raw_call(
        botapi,
        "sendMessage",
        as_json=True,
        chat_id=chat.id,
        text="<b>hi</b>",
        parse_mode="HTML",
        reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
    )
    assert status == 200, body
    assert botapi.last_sent().callback_data == ["a"]


# -- text validation ----------------------------------------------------------------


async def test_chat_must_be_known(botapi: FakeBotApi) -> None:
    async with make_bot(botapi) as bot:
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(chat_id=424242, text="hello")


async def test_text_limit_is_4096_utf16_units_after_parsing(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    async with make_bot(botapi) as bot:
        await bot.send_message(chat.id, "𝐱" * 2048)  # 4096 UTF-16 units
        await bot.send_message(chat.id, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)
        await bot.send_message(chat.id, "&amp;" * 4096, parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(chat.id, "𝐱" * 2049)
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(chat.id, "<b>" + "a" * 4097 + "</b>", parse_mode="HTML")
    assert [len(m.plain_text or "") for m in botapi.sent] == [2048, 4096, 4096]
    assert botapi.sent[2].plain_text == "&" * 4096


@pytest.mark.parametrize(
    ("text", "parse_mode"),
    [
        ("   \n ", None),
        ("<b> </b>", "HTML"),
        ("", None),
        # What TDLib's is_empty_string also counts as nothing (after clean_input_string).
        ("\u200b", None),
        ("<b>&#160;</b>\u2800", "HTML"),
        ("\ufeff\u3000\t\x01", None),
        ("\u2028", None),
    ],
)
async def test_empty_text_is_rejected(
    botapi: FakeBotApi, text: str, parse_mode: str | None
) -> None:
    _, chat = known_private_chat(botapi)
    params: dict[str, Any] = {"chat_id": chat.id, "text": text}
    if parse_mode:
        params["parse_mode"] = parse_mode
    status, body = await raw_call(botapi, "sendMessage", **params)
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")


async def test_zero_width_characters_around_text_are_fine(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    async with make_bot(botapi) as bot:
        await bot.send_message(chat.id, "\u200bx\u00a0")
        with pytest.raises(BadRequest, match="Message text is empty"):
            await bot.send_message(chat.id, "\u200b\u00a0")
        with pytest.raises(BadRequest, match="Message text is empty"):  # inline results too
            await bot.answer_inline_query(
                botapi.inline_query(botapi.user(), "x"),
                [InlineQueryResultArticle("1", "t", InputTextMessageContent("\u2800"))],
            )
    assert len(botapi.sent) == 1


async def test_bad_html_gives_telegrams_error(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    async with make_bot(botapi) as bot:
        with pytest.raises(BadRequest) as info:
            await bot.send_message(chat.id, "Score <3 points", parse_mode=ParseMode.HTML)
    assert info.value.message == (
        'Can\'t parse entities: unsupported start tag "3" at byte offset 6'
    )
    assert botapi.errors()[-1].description == (
        'Bad Request: can\'t parse entities: Unsupported start tag "3" at byte offset 6'
    )
    assert botapi.sent == []


async def test_parse_modes(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    status, body = await raw_call(
        botapi, "sendMessage", chat_id=chat.id, text="x", parse_mode="Foo"
    )
    assert (status, body["description"]) == (400, "Bad Request: unsupported parse_mode")
    status, body = await raw_call(
        botapi, "sendMessage", chat_id=chat.id, text="*x*", parse_mode="MarkdownV2"
    )
    assert status == 400
    status, _ = await raw_call(
        botapi, "sendMessage", chat_id=chat.id, text="<i>x</i>", parse_mode="html"
    )
    assert status == 200
    assert botapi.last_sent().entities == [{"type": "italic", "offset": 0, "length": 1}]


async def test_trimming_shifts_entities(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    async with make_bot(botapi) as bot:
        message = await bot.send_message(chat.id, "\n\n<b>Title</b>\n", parse_mode="HTML")
    assert message.text == "Title"
    assert message.entities[0].offset == 0
    assert botapi.last_sent().text == "\n\n<b>Title</b>\n"


async def test_a_repeated_text_is_checked_as_strictly_every_time(botapi: FakeBotApi) -> None:
    """The server remembers how it parsed a text (a broadcast repeats one card for
    thousands of chats); refusals are never remembered, and each message keeps its own
    entities."""
    _, chat = known_private_chat(botapi)
    card = "<b>Title</b> <a href=\"https://arxiv.org/abs/1\">arXiv</a> <i>end</i>"
    too_long = "<b>" + "a" * 4097 + "</b>"
    async with make_bot(botapi) as bot:
        for _ in range(3):
            await bot.send_message(chat.id, card, parse_mode=ParseMode.HTML)
            with pytest.raises(BadRequest, match="Can't parse entities"):
                await bot.send_message(chat.id, "Score <3 points", parse_mode=ParseMode.HTML)
            with pytest.raises(BadRequest, match="Message is too long"):
                await bot.send_message(chat.id, too_long, parse_mode=ParseMode.HTML)
            with pytest.raises(BadRequest, match="Button_data_invalid"):
                await bot.send_message(chat.id, card, parse_mode=ParseMode.HTML,
                                       reply_markup=keyboard(
                                           InlineKeyboardButton("A", callback_data="x" * 65)))
        plain = await bot.send_message(chat.id, card)  # the same text without parse mode
    first, second, third = botapi.sent[:3]
    assert first.entities == second.entities == third.entities
    assert first.entities is not second.entities
    first.entities[0]["length"] = 99
    assert second.entities[0]["length"] == 5
    assert plain.text == card  # parsed anew: no parse mode, no entities
    assert len(botapi.sent) == 4


def test_form_bodies_decode_like_parse_qsl() -> None:
    long = "x" * 300
    for body in ("", "a=1", "a=1&&b=2&c", "t=%3Cb%3E+%E4%B8%AD%F0%9F%98%80&t=2",
                 f"text={long}%26&chat_id=7", f"text={long}%26&chat_id=8", "a+b=c+d&=x",
                 "bad=%E4%B8&pct=%zz&plus=%2B"):
        assert _form_fields(body) == parse_qsl(body, keep_blank_values=True), body


async def test_link_preview_options(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    async with make_bot(botapi) as bot:
        await bot.send_message(
            chat.id,
            "see https://arxiv.org",
            link_preview_options=LinkPreviewOptions(
                url="https://arxiv.org/abs/1", prefer_large_media=True, show_above_text=True
            ),
        )
        await bot.send_message(chat.id, "quiet", link_preview_options=LinkPreviewOptions(True))
        with pytest.raises(BadRequest, match="http"):
            await bot.send_message(
                chat.id, "x", link_preview_options=LinkPreviewOptions(url="ftp://x.org")
            )
    assert botapi.sent[0].link_preview_options == {
        "url": "https://arxiv.org/abs/1",
        "prefer_large_media": True,
        "show_above_text": True,
    }
    assert botapi.sent[1].link_preview_options == {"is_disabled": True}


# -- keyboards ------------------------------------------------------------------------


async def test_callback_data_is_limited_to_64_bytes(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    async with make_bot(botapi) as bot:
        await bot.send_message(
            chat.id, "ok", reply_markup=keyboard(InlineKeyboardButton("A", callback_data="x" * 64))
        )
        for data in ("x" * 65, "é" * 33):  # 65 and 66 bytes
            with pytest.raises(BadRequest, match="Button_data_invalid"):
                await bot.send_message(
                    chat.id,
                    "no",
                    reply_markup=keyboard(InlineKeyboardButton("A", callback_data=data)),
                )
    assert len(botapi.sent) == 1


@pytest.mark.parametrize(
    ("button", "fragment"),
    [
        ({"text": "plain"}, "Text buttons are unallowed in the inline keyboard"),
        ({"text": "", "callback_data": "x"}, "text must be non-empty"),
        ({"text": "x", "callback_data": ""}, "BUTTON_DATA_INVALID"),
        ({"text": "x", "url": "javascript:alert(1)"}, "is invalid"),
        ({"text": "x", "url": "arxiv.org"}, "is invalid"),
        ({"text": "x", "url": "https://a.org", "callback_data": "x"}, "exactly one"),
    ],
)
async def test_inline_button_rules(
    botapi: FakeBotApi, button: dict[str, Any], fragment: str
) -> None:
    _, chat = known_private_chat(botapi)
    status, body = await raw_call(
        botapi,
        "sendMessage",
        chat_id=chat.id,
        text="x",
        reply_markup={"inline_keyboard": [[button]]},
    )
    assert status == 400
    assert fragment in body["description"]


async def test_switch_inline_buttons_are_refused_in_channels(botapi: FakeBotApi) -> None:
    """TDLib get_inline_keyboard_button: users of a channel don't know the bot's username."""
    _, chat = known_private_chat(botapi)
    channel = botapi.add_chat(botapi.channel("News"))
    for action, value in (
        ("switch_inline_query", "nerf"),
        ("switch_inline_query_current_chat", ""),
        ("switch_inline_query_chosen_chat", {"query": "x", "allow_user_chats": True}),
    ):
        markup = {"inline_keyboard": [[{"text": "Share", action: value}]]}
        status, body = await raw_call(
            botapi, "sendMessage", chat_id=channel.id, text="x", reply_markup=markup
        )
        assert status == 400
        assert "button in a channel chat" in body["description"]
        status, _ = await raw_call(
            botapi, "sendMessage", chat_id=chat.id, text="x", reply_markup=markup
        )
        assert status == 200


async def test_button_count_limits(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)

    def grid(rows: int, columns: int) -> dict[str, Any]:
        return {
            "inline_keyboard": [
                [{"text": f"{r}.{c}", "callback_data": f"{r}.{c}"} for c in range(columns)]
                for r in range(rows)
            ]
        }

    assert (
        await raw_call(botapi, "sendMessage", chat_id=chat.id, text="x", reply_markup=grid(12, 8))
    )[0] == 200
    status, body = await raw_call(
        botapi, "sendMessage", chat_id=chat.id, text="x", reply_markup=grid(13, 8)
    )
    assert (status, body["description"]) == (400, "Bad Request: reply markup is too long")
    status, _ = await raw_call(
        botapi, "sendMessage", chat_id=chat.id, text="x", reply_markup=grid(1, 9)
    )
    assert status == 400
    ok_urls = {
        "inline_keyboard": [
            [
                {"text": "t", "url": "tg://resolve?domain=x"},
                {"text": "h", "url": "https://arxiv.org"},
            ]
        ]
    }
    assert (await raw_call(botapi, "sendMessage", chat_id=chat.id, text="x", reply_markup=ok_urls))[
        0
    ] == 200


# -- commands -------------------------------------------------------------------------


async def test_bot_commands_per_scope_and_language(botapi: FakeBotApi) -> None:
    from telegram import BotCommand, BotCommandScopeAllPrivateChats

    async with make_bot(botapi) as bot:
        await bot.set_my_commands(
            [BotCommand("start", "Start"), BotCommand("sub_topic", "Subscribe")]
        )
        await bot.set_my_commands(
            [BotCommand("start", "Starten")],
            scope=BotCommandScopeAllPrivateChats(),
            language_code="de",
        )
        assert [c.command for c in await bot.get_my_commands()] == ["start", "sub_topic"]
        german = await bot.get_my_commands(
            scope=BotCommandScopeAllPrivateChats(), language_code="de"
        )
        assert [c.description for c in german] == ["Starten"]
        assert await bot.get_my_commands(language_code="fr") == ()
        for bad, fragment in [
            ([BotCommand("Start", "x")], "Bot_command_invalid"),
            ([BotCommand("a" * 33, "x")], "Bot_command_invalid"),
            ([BotCommand("with-dash", "x")], "Bot_command_invalid"),
            ([BotCommand("ok", "")], "Bot_command_description_invalid"),
            ([BotCommand("ok", "d" * 257)], "Bot_command_description_invalid"),
            ([BotCommand(f"c{i}", "x") for i in range(101)], "Bot_commands_too_much"),
        ]:
            with pytest.raises(BadRequest, match=fragment):
                await bot.set_my_commands(bad)
        await bot.set_my_commands([BotCommand(f"c{i}", "d" * 256) for i in range(100)])
        await bot.delete_my_commands()
        assert await bot.get_my_commands() == ()
    assert botapi.commands_for({"type": "all_private_chats"}, "de")[0]["command"] == "start"


# -- inline mode ----------------------------------------------------------------------


def article(result_id: str, text: str = "x", **kwargs: Any) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(result_id, "title", InputTextMessageContent(text, **kwargs))


async def test_answer_inline_query_limits(botapi: FakeBotApi) -> None:
    user = botapi.user()
    async with make_bot(botapi) as bot:
        with pytest.raises(BadRequest, match="Results_too_much"):
            await bot.answer_inline_query(
                botapi.inline_query(user, "nerf"), [article(str(i)) for i in range(51)]
            )
        with pytest.raises(BadRequest, match="Result_id_duplicate"):
            await bot.answer_inline_query(
                botapi.inline_query(user, "x"), [article("1"), article("1")]
            )
        with pytest.raises(BadRequest, match="Result_id_invalid"):
            await bot.answer_inline_query(botapi.inline_query(user, "x"), [article("é" * 33)])
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await bot.answer_inline_query(
                botapi.inline_query(user, "x"), [article("1", "<b>x", parse_mode="HTML")]
            )
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.answer_inline_query(
                botapi.inline_query(user, "x"), [article("1", "y" * 4097)]
            )
        query_id = botapi.inline_query(user, "nerf")
        await bot.answer_inline_query(
            query_id, [article(str(i)) for i in range(50)], next_offset="o" * 64
        )
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_inline_query(query_id, [article("1")])
        with pytest.raises(BadRequest, match="Next_offset_invalid"):
            await bot.answer_inline_query(
                botapi.inline_query(user, "x"), [article("1")], next_offset="o" * 65
            )
    assert len(botapi.inline_answers[query_id].results) == 50


async def test_inline_thumbnail_url_must_be_fetchable(botapi: FakeBotApi) -> None:
    user = botapi.user()
    content = InputTextMessageContent("card")
    async with make_bot(botapi) as bot:
        for bad in ("./crop/fig1.png", "https://", "https://bad host.org/x.png"):
            with pytest.raises(BadRequest, match="Webdocument_url_invalid"):
                await bot.answer_inline_query(
                    botapi.inline_query(user, "x"),
                    [InlineQueryResultArticle("1", "t", content, thumbnail_url=bad)],
                )
        query_id = botapi.inline_query(user, "x")
        await bot.answer_inline_query(
            query_id,
            [InlineQueryResultArticle("1", "t", content,
                                      thumbnail_url="https://arxiv.org/html/2401.1/x1.png")],
        )
    assert botapi.inline_answers[query_id].results[0]["thumbnail_url"].endswith("x1.png")


async def test_answer_callback_query_rules(botapi: FakeBotApi) -> None:
    user, chat = known_private_chat(botapi)
    async with make_bot(botapi) as bot:
        message = await bot.send_message(
            chat.id, "pick", reply_markup=keyboard(InlineKeyboardButton("A", callback_data="a"))
        )
        first = botapi.press_button(chat, user, message.message_id, "a")
        second = botapi.press_button(chat, user, message.message_id, text="A")
        with pytest.raises(BadRequest, match="Message_too_long"):
            await bot.answer_callback_query(first, text="x" * 201)
        await bot.answer_callback_query(first, text="x" * 200, show_alert=True)
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query(first)
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query("no-such-query")
    assert botapi.callback_answers[first].show_alert is True
    assert botapi.unanswered_callback_queries() == [second]
    with pytest.raises(LookupError, match="no callback button"):
        botapi.press_button(chat, user, message.message_id, "never-shown")


async def test_callback_queries_expire_on_the_injected_clock() -> None:
    clock = ManualClock()
    async with FakeBotApi(clock=clock) as server:
        user, chat = known_private_chat(server)
        async with make_bot(server) as bot:
            message = await bot.send_message(
                chat.id, "pick", reply_markup=keyboard(InlineKeyboardButton("A", callback_data="a"))
            )
            query_id = server.press_button(chat, user, message.message_id, "a")
            clock.advance(16)
            with pytest.raises(BadRequest, match="Query is too old"):
                await bot.answer_callback_query(query_id)


# -- editing & deleting ---------------------------------------------------------------


async def test_edit_rules(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    markup = keyboard(InlineKeyboardButton("A", callback_data="a"))
    async with make_bot(botapi) as bot:
        message = await bot.send_message(
            chat.id, "<b>v1</b>", parse_mode="HTML", reply_markup=markup
        )
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_text(
                "<b>v1</b>", chat.id, message.message_id, parse_mode="HTML", reply_markup=markup
            )
        edited = await bot.edit_message_text("v2", chat.id, message.message_id)
        assert isinstance(edited, Message)
        assert edited.text == "v2"
        assert edited.reply_markup is None  # editMessageText without markup drops it
        await bot.edit_message_reply_markup(chat.id, message.message_id, reply_markup=markup)
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_reply_markup(chat.id, message.message_id, reply_markup=markup)
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("x", chat.id, 999)
        photo = await bot.send_photo(chat.id, PNG, caption="c")
        with pytest.raises(BadRequest, match="There is no text in the message to edit"):
            await bot.edit_message_text("x", chat.id, photo.message_id)
        assert await bot.delete_message(chat.id, message.message_id)
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await bot.delete_message(chat.id, message.message_id)
    assert [e.method for e in botapi.edits] == ["editMessageText", "editMessageReplyMarkup"]
    assert botapi.deleted == [(chat.id, message.message_id)]
    assert botapi.is_deleted(chat.id, message.message_id)


# -- media ----------------------------------------------------------------------------


async def test_photo_upload_media_group_and_file_download(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    async with make_bot(botapi) as bot:
        photo = await bot.send_photo(chat.id, PNG, caption="<i>fig 1</i>", parse_mode="HTML")
        assert photo.caption == "fig 1"
        file = await bot.get_file(photo.photo[-1].file_id)
        assert bytes(await file.download_as_bytearray()) == PNG
        album = await bot.send_media_group(
            chat.id,
            [InputMediaPhoto(PNG, caption="a" * 1024), InputMediaPhoto(photo.photo[-1].file_id)],
        )
        assert len({m.media_group_id for m in album}) == 1
        with pytest.raises(BadRequest, match="Message caption is too long"):
            await bot.send_photo(chat.id, PNG, caption="a" * 1025)
        with pytest.raises(BadRequest, match="2-10"):
            await bot.send_media_group(chat.id, [InputMediaPhoto(PNG)])
        with pytest.raises(BadRequest, match="2-10"):
            await bot.send_media_group(chat.id, [InputMediaPhoto(PNG) for _ in range(11)])
        with pytest.raises(BadRequest, match="Wrong file identifier"):
            await bot.send_photo(chat.id, "not-a-file-id")
        for url in ("https://", "https://bad host.org/x.png", "http://localhost/x.png",
                    "https://arxiv.org:0/x.png"):
            with pytest.raises(BadRequest, match="Wrong file identifier/http url"):
                await bot.send_photo(chat.id, url)
            with pytest.raises(BadRequest, match="Wrong file identifier/http url"):
                await bot.send_media_group(
                    chat.id, [InputMediaPhoto("https://arxiv.org/a.png"), InputMediaPhoto(url)]
                )
        await bot.send_photo(chat.id, "https://arxiv.org/html/2401.1/x 1.png")  # space: encoded
    assert [m.method for m in botapi.sent] == [
        "sendPhoto", "sendMediaGroup", "sendMediaGroup", "sendPhoto"
    ]
    assert botapi.sent[0].media is not None
    upload = botapi.calls("sendPhoto")[0].files["photo"]
    assert (upload.field, upload.data) == ("photo", PNG)


async def test_uploaded_photos_must_be_images_of_allowed_size(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    jpeg = (b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
            + b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 30, 40) + b"\x00" * 10)
    async with make_bot(botapi) as bot:
        photo = await bot.send_photo(chat.id, png_image(300, 200))
        assert (photo.photo[-1].width, photo.photo[-1].height) == (300, 200)
        big = await bot.send_photo(chat.id, png_image(2000, 1000))
        assert (big.photo[-1].width, big.photo[-1].height) == (1280, 640)
        shot = await bot.send_photo(chat.id, jpeg)
        assert (shot.photo[-1].width, shot.photo[-1].height) == (40, 30)
        broken = bytearray(png_image(10, 10))
        broken[20] ^= 1  # the IHDR no longer matches its CRC
        for data, error in ((b"GIF89a not a photo", "IMAGE_PROCESS_FAILED"),
                            (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "IMAGE_PROCESS_FAILED"),
                            (bytes(broken), "IMAGE_PROCESS_FAILED"),
                            (png_image(2, 41), "PHOTO_INVALID_DIMENSIONS"),
                            (png_image(5001, 5000), "PHOTO_INVALID_DIMENSIONS")):
            with pytest.raises(BadRequest, match=f"(?i){error}"):
                await bot.send_photo(chat.id, data)
        with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
            await bot.send_media_group(chat.id, [InputMediaPhoto(PNG),
                                                 InputMediaPhoto(b"not a photo")])
        await bot.send_document(chat.id, b"not a photo either", filename="notes.txt")
    assert [m.method for m in botapi.sent] == ["sendPhoto"] * 3 + ["sendDocument"]


async def test_chat_action_menu_button_and_chat_info(botapi: FakeBotApi) -> None:
    user, chat = known_private_chat(botapi)
    group = botapi.add_chat(botapi.supergroup("Readers"))
    owner = botapi.user("Olga")
    botapi.set_member(group, owner, "creator")
    botapi.set_bot_status(group, "administrator", can_delete_messages=False)
    async with make_bot(botapi) as bot:
        assert await bot.send_chat_action(chat.id, "typing")
        with pytest.raises(BadRequest, match="Wrong parameter action"):
            await bot.send_chat_action(chat.id, "dancing")
        assert await bot.set_chat_menu_button(chat.id, MenuButtonCommands())
        info = await bot.get_chat(group.id)
        assert (info.title, info.type) == ("Readers", "supergroup")
        admins = await bot.get_chat_administrators(group.id)
        assert {type(a) for a in admins} == {ChatMemberOwner, ChatMemberAdministrator}
        me = await bot.get_chat_member(group.id, bot.id)
        assert isinstance(me, ChatMemberAdministrator)
        assert me.can_delete_messages is False
        assert (await bot.get_chat_member(group.id, user.id)).status == "left"
        with pytest.raises(BadRequest, match="no administrators in the private chat"):
            await bot.get_chat_administrators(chat.id)
    assert botapi.chat_actions == [(chat.id, "typing")]
    assert botapi.menu_buttons[chat.id] == {"type": "commands"}


# -- getUpdates -----------------------------------------------------------------------


async def test_long_poll_wakes_on_injected_update_and_honours_offset(botapi: FakeBotApi) -> None:
    user, chat = known_private_chat(botapi)
    poll = asyncio.create_task(raw_call(botapi, "getUpdates", timeout=30))
    await botapi.wait_until_polling()
    update = botapi.send_text(chat, user, "hello")
    status, body = await poll
    assert status == 200
    assert [u["update_id"] for u in body["result"]] == [update["update_id"]]
    # Not acknowledged yet: delivered again; offset acknowledges it.
    assert len((await raw_call(botapi, "getUpdates"))[1]["result"]) == 1
    _, body = await raw_call(botapi, "getUpdates", offset=update["update_id"] + 1)
    assert body["result"] == []


async def test_long_poll_times_out_empty(botapi: FakeBotApi) -> None:
    status, body = await raw_call(botapi, "getUpdates", timeout=0.05)
    assert (status, body["result"]) == (200, [])


async def test_concurrent_get_updates_conflict(botapi: FakeBotApi) -> None:
    first = asyncio.create_task(raw_call(botapi, "getUpdates", timeout=30))
    await botapi.wait_until_polling()
    second = asyncio.create_task(raw_call(botapi, "getUpdates", timeout=30))
    status, body = await first
    assert status == 409
    assert body["description"].startswith("Conflict: terminated by other getUpdates request")
    assert botapi.conflicts == 1
    await botapi.wait_until_polling()
    user, chat = known_private_chat(botapi)
    botapi.send_text(chat, user, "x")
    assert (await second)[0] == 200


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"url": "https://bot.example/hook"}, None),
        ({"url": "https://bot.example:8443/hook"}, None),
        ({"url": "https://bot.example:88/hook", "secret_token": "A-z_0" * 51}, None),
        ({"url": "https://bot.example:8080/hook"},
         "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"),
        ({"url": "https://bot.example/hook", "secret_token": "a+b/c="},
         "Bad Request: secret token contains unallowed characters"),
        ({"url": "https://bot.example/hook", "secret_token": "a" * 257},
         "Bad Request: secret token is too long"),
    ],
)
async def test_set_webhook_ports_and_secret_token(
    botapi: FakeBotApi, params: dict[str, str], description: str | None
) -> None:
    """setWebhook: "Ports currently supported for webhooks: 443, 80, 88, 8443"; secret_token
    is "1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed"."""
    status, body = await raw_call(botapi, "setWebhook", **params)
    if description is None:
        assert status == 200, body
        assert botapi.webhook_url == params["url"]
    else:
        assert (status, body["description"]) == (400, description)
        assert botapi.webhook_url == ""


async def test_get_updates_refused_while_webhook_is_set(botapi: FakeBotApi) -> None:
    assert (await raw_call(botapi, "setWebhook", url="http://insecure.example"))[0] == 400
    assert (await raw_call(botapi, "setWebhook", url="https://bot.example/hook"))[0] == 200
    status, body = await raw_call(botapi, "getUpdates")
    assert status == 409
    assert "webhook is active" in body["description"]
    _, info = await raw_call(botapi, "getWebhookInfo")
    assert info["result"]["url"] == "https://bot.example/hook"
    await raw_call(botapi, "deleteWebhook")
    assert (await raw_call(botapi, "getUpdates"))[0] == 200


# -- chat faults ----------------------------------------------------------------------


async def test_chat_faults(botapi: FakeBotApi) -> None:
    _, blocked = known_private_chat(botapi, "Blocker")
    _, gone = known_private_chat(botapi, "Gone")
    _, forgotten = known_private_chat(botapi, "Forgotten")
    group = botapi.add_chat(botapi.group("Old group"))
    kicked = botapi.add_chat(botapi.supergroup("Kicked us"))
    channel = botapi.add_chat(botapi.channel("News", username="paper_news", bot_can_post=False))
    botapi.block(blocked)
    botapi.deactivate(gone)
    botapi.forget_chat(forgotten)
    botapi.kick_bot(kicked)
    admin = botapi.user("Admin")
    new_group = botapi.migrate_group(group, admin)
    async with make_bot(botapi) as bot:
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(blocked.id, "x")
        with pytest.raises(Forbidden, match="user is deactivated"):
            await bot.send_message(gone.id, "x")
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(forgotten.id, "x")
        with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
            await bot.send_message(kicked.id, "x")
        with pytest.raises(ChatMigrated) as migrated:
            await bot.send_message(group.id, "x")
        assert migrated.value.new_chat_id == new_group.id
        with pytest.raises(BadRequest, match="Need administrator rights"):
            await bot.send_message("@paper_news", "x")
        botapi.set_bot_status(channel, "administrator")
        await bot.send_message("@paper_news", "x")
        await bot.send_message(new_group.id, "hello supergroup")
    assert [m.chat_id for m in botapi.sent] == [channel.id, new_group.id]


# -- flood control --------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_per_private_chat_with_manual_clock(manual_clock: ManualClock) -> None:
    async with FakeBotApi(clock=manual_clock, flood_control=FloodControl()) as server:
        _, chat = known_private_chat(server)
        async with make_bot(server) as bot:
            await bot.send_message(chat.id, "1")
            with pytest.raises(RetryAfter):
                await bot.send_message(chat.id, "2")
            assert server.flood is not None
            assert server.flood.rejections[-1].retry_after == 1
            manual_clock.advance(1.0)
            await bot.send_message(chat.id, "2")
        assert server.flood_429s == 1
        assert server.accepted_sends == [
            (1000.0, chat.id, "sendMessage"),
            (1001.0, chat.id, "sendMessage"),
        ]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_per_group_and_overall(manual_clock: ManualClock) -> None:
    flood = FloodControl(overall=RateWindow(30, 1.0), per_group=RateWindow(20, 60.0))
    async with FakeBotApi(clock=manual_clock, flood_control=flood) as server:
        group = server.add_chat(server.group())
        users = [known_private_chat(server, f"u{i}")[1] for i in range(31)]
        async with make_bot(server) as bot:
            for i in range(20):
                await bot.send_message(group.id, f"g{i}")
                manual_clock.advance(0.1)  # 2 s for 20 messages: under the global limit
            with pytest.raises(RetryAfter):
                await bot.send_message(group.id, "g20")
            assert flood.rejections[-1].retry_after == 58
            manual_clock.advance(60)
            for chat in users[:30]:
                await bot.send_message(chat.id, "bulk")
            with pytest.raises(RetryAfter):
                await bot.send_message(users[30].id, "bulk")
        assert [r.window for r in flood.rejections] == ["group", "global"]


# -- transport faults -----------------------------------------------------------------


async def test_scripted_transport_faults(botapi: FakeBotApi) -> None:
    _, chat = known_private_chat(botapi)
    botapi.script_fault("http_502", method="sendMessage")
    botapi.script_fault("drop", method="sendMessage")
    botapi.script_fault("drop_after", method="sendMessage")
    async with make_bot(botapi) as bot:
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(chat.id, "lost in 502")
        with pytest.raises(NetworkError):
            await bot.send_message(chat.id, "dropped before")
        with pytest.raises(NetworkError):
            await bot.send_message(chat.id, "dropped after")
        await bot.send_message(chat.id, "fine")
    # The message behind the lost response *was* delivered: a retry would duplicate it.
    assert [m.text for m in botapi.sent] == ["dropped after", "fine"]
    assert [f.kind for f in botapi.faults.injected] == ["http_502", "drop", "drop_after"]


async def test_hang_holds_the_request_until_the_client_gives_up(botapi: FakeBotApi) -> None:
    botapi.script_fault("hang", method="getMe")
    # Only reading times out: a busy CI machine may take longer than that to connect.
    timeout = httpx.Timeout(10.0, read=0.05)
    async with httpx.AsyncClient(timeout=timeout) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{botapi.base_url}{botapi.token}/getMe")
    await botapi.wait_for(lambda s: s.requests[-1].finished)
    assert botapi.requests[-1].status is None


async def test_random_faults_are_seeded() -> None:
    async def run(seed: int) -> list[str]:
        async with FakeBotApi() as server:
            _, chat = known_private_chat(server)
            server.enable_random_faults(0.5, seed=seed, kinds=("http_500", "http_502"))
            async with make_bot(server) as bot:
                for i in range(12):
                    with contextlib.suppress(NetworkError):
                        await bot.send_message(chat.id, str(i))
            return [f"{f.kind}" for f in server.faults.injected]

    first, again = await run(7), await run(7)
    assert first == again
    assert 0 < len(first) < 12


async def test_wait_for_timeout_explains_recent_calls(botapi: FakeBotApi) -> None:
    await raw_call(botapi, "getMe")
    with pytest.raises(TimeoutError, match="getMe -> 200"):
        await botapi.wait_for(lambda s: len(s.sent) > 0, timeout=0.01)


# -- end to end with a real Application -----------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    topic = " ".join(context.args or [])
    await update.effective_message.reply_html(
        f"Welcome, <b>{update.effective_user.first_name if update.effective_user else ''}</b>! "
        f"Topic: <code>{topic}</code>",
        reply_markup=keyboard(InlineKeyboardButton("Subscribe", callback_data=f"sub:{topic}")),
    )


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Subscribed!")
    await query.edit_message_text(f"Subscribed to {query.data}")


async def broken_html(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    try:
        await update.effective_message.reply_html("Results <3 <b>unclosed")
    except BadRequest as exc:
        context.bot_data["error"] = exc


def build_app(server: FakeBotApi) -> Application[Any, Any, Any, Any, Any, Any]:
    app = builder_for(server).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("broken", broken_html))
    app.add_handler(CallbackQueryHandler(on_button))
    return app


async def test_end_to_end_start_button_and_edit(botapi: FakeBotApi) -> None:
    app = build_app(botapi)
    async with running_application(app, botapi):
        alice = botapi.user("Alice", language_code="de")
        chat = botapi.private_chat(alice)
        botapi.send_command(chat, alice, "/start sub-NeRF")
        [reply] = await botapi.wait_for_sent(1, chat_id=chat.id)
        assert reply.plain_text == "Welcome, Alice! Topic: sub-NeRF"
        assert reply.parse_mode == "HTML"
        assert [e["type"] for e in reply.entities] == ["bold", "code"]
        assert reply.callback_data == ["sub:sub-NeRF"]

        query_id = botapi.press_button(chat, alice, reply.message_id, "sub:sub-NeRF")
        await settle(botapi, app)
        assert botapi.callback_answers[query_id].text == "Subscribed!"
        assert botapi.edits[-1].plain_text == "Subscribed to sub:sub-NeRF"
        assert botapi.message(chat.id, reply.message_id)["text"] == "Subscribed to sub:sub-NeRF"
    assert botapi.conflicts == 0
    assert botapi.errors() == []


async def test_end_to_end_bad_html_raises_bad_request_in_the_bot(botapi: FakeBotApi) -> None:
    app = build_app(botapi)
    async with running_application(app, botapi):
        bob = botapi.user("Bob")
        botapi.send_command(botapi.private_chat(bob), bob, "/broken")
        await settle(botapi, app)
    error = app.bot_data["error"]
    assert isinstance(error, BadRequest)
    assert 'unsupported start tag "3"' in error.message
    assert botapi.sent == []


async def test_end_to_end_many_chats_groups_topics_and_privacy(botapi: FakeBotApi) -> None:
    seen: list[str] = []

    async def record(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert update.effective_message is not None
        seen.append(update.effective_message.text or "")

    app = build_app(botapi)
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, record))
    async with running_application(app, botapi):
        users = [botapi.user(f"User{i}") for i in range(40)]
        for user in users:
            botapi.send_command(botapi.private_chat(user), user, "/start many")
        forum = botapi.supergroup("Forum", forum=True)
        topic = botapi.add_topic(forum, "Papers")
        botapi.send_command(
            forum, users[0], "/start@paperfeed_test_bot topic", message_thread_id=topic
        )
        group = botapi.group("Chatty")
        botapi.send_text(group, users[1], "just chatting")  # privacy mode: not delivered
        botapi.send_command(group, users[1], "/start@other_bot x")  # for another bot
        await settle(botapi, app)
    assert len(botapi.sent) == 41
    [in_topic] = botapi.sent_to(forum.id)
    assert in_topic.message_thread_id == topic
    assert seen == []
    assert len(botapi.privacy_filtered) == 2


async def test_end_to_end_inline_mode(botapi: FakeBotApi) -> None:
    async def inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.inline_query is not None
        await update.inline_query.answer(
            [article("p1", "<b>Paper 1</b>", parse_mode="HTML"), article("p2", "Paper 2")],
            next_offset="2",
        )

    chosen: list[str] = []

    async def on_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.chosen_inline_result is not None
        chosen.append(update.chosen_inline_result.result_id)

    app = builder_for(botapi).build()
    app.add_handler(InlineQueryHandler(inline))
    app.add_handler(ChosenInlineResultHandler(on_chosen))
    async with running_application(app, botapi):
        carol = botapi.user("Carol")
        query_id = botapi.inline_query(carol, "nerf")
        await settle(botapi, app)
        assert [r["id"] for r in botapi.inline_answers[query_id].results] == ["p1", "p2"]
        botapi.chosen_inline_result(carol, "p1", inline_message_id="inl-1")
        await settle(botapi, app)
        async with make_bot(botapi) as bot:
            assert await bot.edit_message_text(
                "<i>updated</i>", inline_message_id="inl-1", parse_mode="HTML"
            )
    assert chosen == ["p1"]
    assert botapi.edits[-1].inline_message_id == "inl-1"


async def test_end_to_end_bot_added_to_channel_then_posts(botapi: FakeBotApi) -> None:
    async def on_my_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        assert change is not None
        if change.new_chat_member.status == "administrator":
            await context.bot.send_message(change.chat.id, "Hello, channel!")

    app = builder_for(botapi).build()
    app.add_handler(ChatMemberHandler(on_my_member, ChatMemberHandler.MY_CHAT_MEMBER))
    async with running_application(app, botapi):
        channel = botapi.channel("Daily papers")
        botapi.set_bot_status(channel, "left")
        owner = botapi.user("Owner")
        botapi.my_chat_member(channel, owner, "administrator", can_post_messages=True)
        [post] = await botapi.wait_for_sent(1, chat_id=channel.id)
        assert post.plain_text == "Hello, channel!"
        assert "sender_chat" in botapi.message(channel.id, post.message_id)


async def test_end_to_end_migration_update(botapi: FakeBotApi) -> None:
    migrations: list[tuple[int | None, int | None]] = []

    async def on_migrate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        migrations.append((message.migrate_to_chat_id, message.migrate_from_chat_id))

    app = builder_for(botapi).build()
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, on_migrate))
    async with running_application(app, botapi):
        group = botapi.group("Small")
        botapi.set_bot_status(group, "administrator")  # admins see every message
        new = botapi.migrate_group(group, botapi.user("Admin"))
        await settle(botapi, app)
    assert migrations == [(new.id, None), (None, group.id)]


async def test_end_to_end_channel_posts_and_block_restart(botapi: FakeBotApi) -> None:
    posts: list[str] = []
    memberships: list[tuple[str, str]] = []

    async def on_post(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.channel_post is not None
        posts.append(update.channel_post.text or "")

    async def on_my_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        assert change is not None
        memberships.append((change.old_chat_member.status, change.new_chat_member.status))

    app = build_app(botapi)
    app.add_handler(MessageHandler(filters.UpdateType.CHANNEL_POST, on_post))
    app.add_handler(ChatMemberHandler(on_my_member, ChatMemberHandler.MY_CHAT_MEMBER))
    async with running_application(app, botapi):
        channel = botapi.channel("Papers", username="papers")
        botapi.send_text(channel, None, "new digest")
        dave = botapi.user("Dave")
        chat = botapi.private_chat(dave)
        botapi.send_command(chat, dave, "/start")
        await settle(botapi, app)
        botapi.block(chat, notify=True)
        await settle(botapi, app)
        botapi.send_command(chat, dave, "/start again")  # restarting unblocks the bot
        await settle(botapi, app)
    assert posts == ["new digest"]
    assert memberships == [("member", "kicked"), ("kicked", "member")]
    assert len(botapi.sent_to(chat.id)) == 2
