"""A chat's settings as a person changes them: a typed form (`/settings daily 07:30`) or a
button (`st:time:7`) becomes one `Change`; the Telegram handler applies every change the
same way. Pure: no Telegram, no database, no clock.
"""

from __future__ import annotations

import difflib
import functools
import re
import shlex
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Final

from bot.domain.models import CARD_STYLES, DELIVERY_MODES, LANGUAGES, Lang, Mode, Style

__all__ = [
    "COMMON_ZONES",
    "HOURS",
    "MAX_KEYWORDS",
    "MAX_KEYWORD_LEN",
    "OFF_WORDS",
    "ON_WORDS",
    "Change",
    "Refusal",
    "applied",
    "hhmm",
    "language",
    "mode_of",
    "parse_button",
    "parse_form",
    "parse_time",
    "resolve_timezone",
    "split_keywords",
    "style_of",
    "time_of",
    "timezone_suggestions",
    "zone_of",
]

HOURS: Final = tuple(range(6, 24))  # the menu's time grid: 18 hours
MAX_KEYWORDS: Final = 20
MAX_KEYWORD_LEN: Final = 60
OFF_WORDS: Final = frozenset({"off", "none", "clear", "-", "default", "关闭", "清除", "默认"})
ON_WORDS: Final = frozenset({"on", "yes", "true", "1", "开", "开启", "打开"})
COMMON_ZONES: Final = (
    ("UTC", "UTC"),
    ("Europe/London", "London"),
    ("Europe/Berlin", "Berlin"),
    ("America/New_York", "New York"),
    ("America/Los_Angeles", "Los Angeles"),
    ("Asia/Shanghai", "Shanghai"),
    ("Asia/Tokyo", "Tokyo"),
    ("Asia/Kolkata", "Kolkata"),
    ("Australia/Sydney", "Sydney"),
)
"""The time zones offered as buttons; any other is typed (`/settings tz Europe/Paris`)."""

_TIME_RE: Final = re.compile(r"(\d{1,2})(?::(\d{2}))?")
_LANGUAGE_WORDS: Final[dict[str, Lang]] = {"zh": "zh", "中文": "zh", "chinese": "zh", "en": "en",
                          "english": "en"}


@dataclass(frozen=True, slots=True)
class Change:
    """What to set on the chat (Chat field names), which setting that is (for the note
    that confirms it) and which part of the menu to show afterwards."""

    setting: str  # mode | time | tz | only | never | style | lang | silent | pause | weekly
    values: Mapping[str, object]
    view: str = "main"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A typed form that cannot be applied: the UI text to answer with, and its values."""

    text: str
    params: Mapping[str, object] = field(default_factory=dict)
    suggestions: tuple[str, ...] = ()  # what the person may have meant


def language(code: str | None) -> Lang:
    """One of LANGUAGES from a Telegram language_code or a stored value: zh-hans → zh."""
    base = (code or "").lower().replace("_", "-").split("-")[0]
    return "zh" if base == "zh" else "en"


def mode_of(value: str | None) -> Mode:
    """A stored delivery mode; anything unknown is the default, instant."""
    if value == "daily":
        return "daily"
    return "digest" if value == "digest" else "instant"


def style_of(value: str | None) -> Style:
    """A stored card style; anything unknown is the default, full."""
    return "compact" if value == "compact" else "full"


def time_of(value: str | None) -> time | None:
    """A stored or typed ``HH:MM`` as a time; None when empty or not a time."""
    text = parse_time(value) if value else None
    return None if text is None else time(int(text[:2]), int(text[3:]))


def hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def zone_of(name: str | None) -> zoneinfo.ZoneInfo | None:
    """A stored IANA name as a zone; None when empty or unknown to this system."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def parse_time(text: str) -> str | None:
    """``"7:30"``/``"07:30"``/``"7"`` → ``"07:30"``/``"07:00"``; None if not a 24-hour time."""
    m = _TIME_RE.fullmatch(text.strip().replace("：", ":"))
    if m is None:
        return None
    hour, minute = int(m[1]), int(m[2] or 0)
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def resolve_timezone(text: str) -> str | None:
    """The IANA name the user meant: exact, any case, or a unique city (``paris``)."""
    name = text.strip().replace(" ", "_")
    zones = _zones()
    if name not in zones:
        folded = name.casefold()
        by_case = [z for z in zones if z.casefold() == folded]
        by_city = [z for z in zones if "/" in z and z.rsplit("/", 1)[1].casefold() == folded]
        found = by_case or (by_city if len(by_city) == 1 else [])
        if not found:
            return None
        name = found[0]
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return name


def timezone_suggestions(text: str) -> list[str]:
    """Up to three zone names close to what the user typed."""
    name = text.strip().replace(" ", "_")
    zones = sorted(_zones())
    by_lower = {z.casefold(): z for z in zones}
    close = difflib.get_close_matches(name.casefold(), list(by_lower), n=3, cutoff=0.6)
    cities = [z for z in zones if "/" in z and
              z.rsplit("/", 1)[1].casefold() == name.casefold()]
    return list(dict.fromkeys(cities + [by_lower[c] for c in close]))[:3]


def split_keywords(text: str) -> list[str]:
    """Keywords from a command: comma-separated (phrases kept), else quoted or single words."""
    text = text.replace("，", ",").replace("、", ",").strip()
    if "," in text:
        parts = text.split(",")
    else:
        try:
            parts = shlex.split(text)
        except ValueError:  # an unbalanced quote
            parts = text.split()
    seen: dict[str, str] = {}
    for part in parts:
        word = " ".join(part.split())
        if word:
            seen.setdefault(word.casefold(), word)
    return list(seen.values())


def _strict_hour(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[0-9]{1,2}", text) else None


def applied(change: Change, mode: Mode) -> dict[str, object]:
    """The values to store for ``change`` in a chat whose mode is ``mode``: a new time
    keeps a digest chat a digest (the time is that of both scheduled modes)."""
    values = dict(change.values)
    if change.setting == "time" and mode == "digest":
        values["mode"] = "digest"
    return values


def _switch(rest: str, *, default: bool = True) -> bool | None:
    """on/off from a typed value (none: ``default``); None when it is neither."""
    word = rest.strip().lower()
    if not word:
        return default
    if word in ON_WORDS:
        return True
    return False if word in OFF_WORDS else None


def parse_form(what: str, rest: str) -> Change | Refusal:
    """A typed form (``what`` its first word, lower-cased; ``rest`` the value)."""
    off = rest.lower() in OFF_WORDS
    if what == "instant":
        return Change("mode", {"mode": "instant"})
    if what in ("silent", "quiet", "sound"):
        on = _switch(rest)
        if on is None:
            return Refusal("bad_choice", {"choices": "on, off"})
        return Change("silent", {"silent": on if what != "sound" else not on})
    if what in ("pause", "resume"):
        return Change("pause", {"paused": what == "pause"})
    if what in ("weekly", "roundup"):
        on = _switch(rest)
        if on is None:
            return Refusal("bad_choice", {"choices": "on, off"})
        return Change("weekly", {"weekly": on})
    if what in ("daily", "time", "digest"):
        values: dict[str, object] = {"mode": "digest" if what == "digest" else "daily"}
        if rest:
            at = None if off else time_of(rest)
            if at is None and not off:
                return Refusal("bad_time", {"value": rest})
            values["daily_time"] = at
        return Change("time" if what == "time" else "mode", values)
    if what in ("tz", "timezone"):
        if off:
            return Change("tz", {"timezone": None})
        zone = resolve_timezone(rest)
        if zone is None:
            return Refusal("bad_tz", {"value": rest}, tuple(timezone_suggestions(rest)))
        return Change("tz", {"timezone": zone_of(zone)})
    if what in ("only", "never"):
        name = "include" if what == "only" else "exclude"
        if off:
            return Change(what, {name: ()}, "filters")
        words = split_keywords(rest)
        if not words:
            return Refusal("no_words")
        if len(words) > MAX_KEYWORDS or any(len(w) > MAX_KEYWORD_LEN for w in words):
            return Refusal("too_many", {"count": MAX_KEYWORDS, "length": MAX_KEYWORD_LEN})
        return Change(what, {name: tuple(words)}, "filters")
    if what in ("filters", "keywords"):
        return Refusal("no_words")
    if what == "style":
        if rest.lower() not in CARD_STYLES:
            return Refusal("bad_choice", {"choices": ", ".join(CARD_STYLES)})
        return Change("style", {"style": style_of(rest.lower())})
    code = _LANGUAGE_WORDS.get(rest.lower())
    if code is None:
        return Refusal("bad_choice", {"choices": ", ".join(LANGUAGES)})
    return Change("lang", {"lang": code})


def parse_button(setting: str, value: str) -> Change | None:
    """A menu button's ``st:<setting>:<value>``; None when it is not one we draw."""
    if setting == "mode" and value in DELIVERY_MODES:
        return Change("mode", {"mode": mode_of(value)}, "main" if value == "instant" else "time")
    if setting in ("silent", "pause", "weekly") and value in ("on", "off"):
        field = {"pause": "paused"}.get(setting, setting)
        return Change(setting, {field: value == "on"})
    if setting == "time" and (value == "default" or _strict_hour(value) in HOURS):
        at = None if value == "default" else time(int(value))
        return Change("time", {"mode": "daily", "daily_time": at})
    if setting == "tz" and (value == "default" or value in dict(COMMON_ZONES)):
        return Change("tz", {"timezone": None if value == "default" else zone_of(value)})
    if setting in ("only", "never") and value == "off":
        return Change(setting, {"include" if setting == "only" else "exclude": ()}, "filters")
    if setting == "style" and value in CARD_STYLES:
        return Change("style", {"style": style_of(value)})
    if setting == "lang" and value in LANGUAGES:
        return Change("lang", {"lang": language(value)})
    return None
