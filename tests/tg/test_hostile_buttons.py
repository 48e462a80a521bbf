"""Buttons and inline offsets from hostile clients: strict parsing, a short answer,
never an exception (which would page every operator)."""

from __future__ import annotations

import logging

import pytest
from telegram.constants import InlineKeyboardButtonLimit

from bot.domain.rendering import MAX_CALLBACK_BYTES
from bot.tg.keyboards import confirm_answer, parse_page_data, parse_toggle_page, strict_int
from tests.tg.bot_harness import OPERATOR_ID, BotUnderTest
from tests.tg.test_bot_inline import ask_inline

STALE = "This button has expired."

FORGED = [
    "pg:²:1", "pg:1:²", "pg:٣:1", "pg:99999999999999999999:1", "pg:-1:2", "pg::", "pg",
    "pp:", "pp:../../etc/passwd", "pp:2402.00002\n", "an:<b>x</b>", "fg:" + "9" * 60,
    "zz:whatever", "x", "st:time:²", "st:time:99", "st:tz:Mars/Olympus", "st:lang:xx",
    "sb:p:²", "sb:p:99999999999", "sb:nope", "rp:ok:notatoken", "rp:maybe:0123456789abcdef",
    "rp:ok:0123456789abcdef",  # well-formed, but nobody asked
]


@pytest.mark.parametrize(("text", "number"), [
    ("0", 0), ("42", 42), ("123456789", 123456789), ("²", None), ("٣", None), ("", None),
    ("1234567890", None), ("-1", None), (" 1", None), ("1\n", None), ("1e3", None)])
def test_strict_int_takes_ascii_digits_only(text: str, number: int | None) -> None:
    assert strict_int(text) == number


def test_callback_parsers_refuse_what_they_did_not_write() -> None:
    assert parse_page_data("pg:12:3") == (12, 3)
    assert parse_page_data("pg:1²:3") is None
    assert parse_toggle_page("sb:p:2") == 2
    assert parse_toggle_page("sb:p:²") is None
    assert confirm_answer("rp:ok:0123456789abcdef") == (True, "0123456789abcdef")
    assert confirm_answer("rp:no:0123456789abcdef") == (False, "0123456789abcdef")
    assert confirm_answer("rp:ok:0123456789ABCDEF") is None
    assert confirm_answer("rp:yes:0123456789abcdef") is None


async def test_forged_buttons_are_answered_as_expired(bot: BotUnderTest,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    s = bot.server
    operator = s.user("Operator", user_id=OPERATOR_ID)
    op_chat = s.add_chat(s.private_chat(operator))
    caplog.set_level(logging.INFO)
    answers: dict[str, str] = {}
    for n in range(0, len(FORGED), 8):  # a few people, each below the throttle
        eve = s.user(f"Eve{n}")
        chat = s.add_chat(s.private_chat(eve))
        s.send_command(chat, eve, "/search gaussian")
        await bot.settle()
        listing = s.sent_to(chat.id)[-1]
        answers |= {data: s.forge_press(chat, eve, listing.message_id, data)
                    for data in FORGED[n:n + 8]}
    await bot.settle()
    assert s.unanswered_callback_queries() == []
    for data, query_id in answers.items():
        text = s.callback_answers[query_id].text or ""
        assert "expired" in text or (data.startswith("pp:") and "No paper" in text), (
            data, text)
    assert "refused the button 'pg:²:1'" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert s.sent_to(op_chat.id) == []  # no failure notice to the operators
    assert [c for c in s.errors() if c.method != "setMyCommands"] == []


async def test_hostile_inline_offsets_start_at_the_beginning(bot: BotUnderTest) -> None:
    user = bot.server.user("Mallory")
    first = await ask_inline(bot, user, "gaussian")
    for offset in ("²", "٣٣", "1²", "0x10", " 5", "5 ", "9" * 40):
        answer = await ask_inline(bot, user, "gaussian", offset=offset)
        assert [r["id"] for r in answer.results] == [r["id"] for r in first.results]


def test_the_callback_limit_is_telegrams() -> None:
    assert MAX_CALLBACK_BYTES == InlineKeyboardButtonLimit.MAX_CALLBACK_DATA
