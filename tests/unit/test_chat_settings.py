"""Typed forms and buttons become the same Change: one thing for the handler to apply."""

from __future__ import annotations

from datetime import time

import pytest

from bot.domain.chat_settings import (
    Change,
    Refusal,
    applied,
    language,
    parse_button,
    parse_form,
)


@pytest.mark.parametrize(("form", "button"), [
    (("instant", ""), ("mode", "instant")),
    (("time", "7"), ("time", "7")),
    (("silent", ""), ("silent", "on")),
    (("sound", "on"), ("silent", "off")),
    (("silent", "off"), ("silent", "off")),
    (("pause", ""), ("pause", "on")),
    (("resume", ""), ("pause", "off")),
    (("time", "default"), ("time", "default")),
    (("tz", "Asia/Tokyo"), ("tz", "Asia/Tokyo")),
    (("tz", "off"), ("tz", "default")),
    (("only", "off"), ("only", "off")),
    (("never", "clear"), ("never", "off")),
    (("style", "Compact"), ("style", "compact")),
    (("lang", "中文"), ("lang", "zh")),
])
def test_a_form_and_its_button_are_one_change(form: tuple[str, str],
                                              button: tuple[str, str]) -> None:
    typed, tapped = parse_form(*form), parse_button(*button)
    assert isinstance(typed, Change)
    assert tapped is not None
    assert (typed.setting, dict(typed.values)) == (tapped.setting, dict(tapped.values))


def test_forms_that_cannot_be_applied_say_why() -> None:
    assert parse_form("daily", "25:00") == Refusal("bad_time", {"value": "25:00"})
    refused = parse_form("tz", "paris town")
    assert isinstance(refused, Refusal)
    assert refused.text == "bad_tz"
    assert parse_form("only", " , ") == Refusal("no_words")
    assert parse_form("only", ", ".join(f"w{n}" for n in range(30))).text == "too_many"  # type: ignore[union-attr]
    assert parse_form("lang", "klingon") == Refusal("bad_choice", {"choices": "en, zh"})
    assert parse_form("only", "gaussian, avatar") == Change(
        "only", {"include": ("gaussian", "avatar")}, "filters")


@pytest.mark.parametrize(("setting", "value"), [
    ("time", "²"), ("time", "5"), ("time", "24"), ("tz", "Mars/Olympus"), ("mode", "weekly"),
    ("only", "gaussian"), ("style", "tiny"), ("lang", "xx"), ("nope", "1")])
def test_buttons_we_never_drew_are_none(setting: str, value: str) -> None:
    assert parse_button(setting, value) is None


@pytest.mark.parametrize(("code", "lang"), [
    ("zh", "zh"), ("zh-hans", "zh"), ("ZH_TW", "zh"), ("en-US", "en"), ("fr", "en"),
    ("", "en"), (None, "en")])
def test_language_codes_fold_to_ours(code: str | None, lang: str) -> None:
    assert language(code) == lang


def test_the_digest_mode_is_a_scheduled_mode_of_its_own() -> None:
    assert parse_form("digest", "") == Change("mode", {"mode": "digest"})
    assert parse_form("digest", "7:30") == Change(
        "mode", {"mode": "digest", "daily_time": time(7, 30)})
    assert parse_button("mode", "digest") == Change("mode", {"mode": "digest"}, "time")
    assert parse_form("digest", "later") == Refusal("bad_time", {"value": "later"})


def test_a_new_time_keeps_a_digest_chat_a_digest_but_daily_switches_it() -> None:
    tapped = parse_button("time", "9")
    assert tapped is not None
    assert applied(tapped, "digest") == {"mode": "digest", "daily_time": time(9)}
    assert applied(tapped, "instant") == {"mode": "daily", "daily_time": time(9)}
    typed = parse_form("daily", "9")
    assert isinstance(typed, Change)
    assert applied(typed, "digest") == {"mode": "daily", "daily_time": time(9)}


def test_switches_refuse_what_is_neither_on_nor_off() -> None:
    assert parse_form("silent", "maybe") == Refusal("bad_choice", {"choices": "on, off"})
    assert parse_form("silent", "关闭") == Change("silent", {"silent": False})
    assert parse_button("silent", "loud") is None
    assert parse_button("pause", "") is None
