"""Share links: the t.me links that subscribe whoever opens them, and reading them back.

Telegram opens ``https://t.me/<bot>?start=<payload>`` as a chat with the bot whose START
button sends ``/start <payload>``; ``?startgroup=<payload>`` first asks for a group, adds
the bot there and sends ``/start@<bot> <payload>`` in it. A payload is 1-64 characters
of ``A-Z a-z 0-9 _ -``, while a tag is any text. So a tag's payload is, first that fits:

- ``sub-<tag>``, spaces written ``_``: readable (``sub-Talking_Head_Generation``), for
  tags of ASCII letters, digits, spaces and ``-`` only;
- ``sub64-<base64url of the UTF-8 name>``: any other tag of up to 43 bytes
  (``sub64-5YWD5a6H5a6ZL-iZmuaLn-S6ug`` is 元宇宙/虚拟人);
- ``subh-<16 characters of a hash of the name>``: a longer tag, found again by comparing
  with the hash of every tag the archive has.

The three forms never overlap, and each names one tag exactly, so a link resolves to
that tag whatever other tags exist (``tests/unit/test_deeplinks.py`` proves it with
hypothesis). ``sub-all`` subscribes to everything, so tags spelled "all" or "everything"
take the base64 form. Older hand-made links keep working: ``sub-<the name as written,
spaces dropped>`` and ``sub-<base64url>`` are offered as names to look up (the archive
matches those ignoring case, spaces and punctuation).

Built here rather than with ``telegram.helpers.create_deep_linked_url`` because the core
does not import ``telegram``, and that helper cannot write ``?startgroup`` without a
payload nor ``?startchannel``; the tests check both give the same ``start`` links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

MAX_PAYLOAD_LEN: Final = 64
"""Telegram's limit for a start parameter (telegram.constants.MessageLimit.DEEP_LINK_LENGTH)."""

PAYLOAD_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What Telegram accepts as a start parameter."""

READABLE: Final = "sub-"
ENCODED: Final = "sub64-"
HASHED: Final = "subh-"
EVERYTHING_PAYLOAD: Final = "sub-all"
CHANNEL_RIGHTS: Final = "post_messages"
"""The admin right asked for when the bot is added to a channel: posting the cards."""

_EVERYTHING_WORDS: Final = frozenset({"all", "everything"})
_READABLE_TAG = re.compile(r"[A-Za-z0-9 -]+")
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_HASH_BYTES = 12  # 16 base64url characters, 96 bits: no two tags of an archive collide


@dataclass(frozen=True, slots=True)
class SubscribeLink:
    """What a ``/start`` payload asks for: everything, or one tag.

    ``key`` is a hashed tag; ``names`` are the names the payload may mean, best first.
    """

    everything: bool = False
    key: str | None = None
    names: tuple[str, ...] = ()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> str | None:
    """The text a base64url payload spells, or None when it spells no printable text."""
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        name = decoded.decode("utf-8", "surrogatepass")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    # Canonical only: "sub64-QQ" and "sub64-QR" must not both mean "A".
    if _b64(decoded) != text:
        return None
    return name


def tag_key(tag: str) -> str:
    """The short stable key of a tag for links: its name hashed (exact, not case-folded)."""
    digest = hashlib.blake2b(tag.encode("utf-8", "surrogatepass"), digest_size=_HASH_BYTES)
    return _b64(digest.digest())


def tag_payload(tag: str) -> str:
    """The start parameter of a link subscribing to ``tag``: readable when it can be."""
    if (_READABLE_TAG.fullmatch(tag) and len(READABLE) + len(tag) <= MAX_PAYLOAD_LEN
            and tag.casefold() not in _EVERYTHING_WORDS):
        return READABLE + tag.replace(" ", "_")
    encoded = _b64(tag.encode("utf-8", "surrogatepass"))
    if tag and len(ENCODED) + len(encoded) <= MAX_PAYLOAD_LEN:
        return ENCODED + encoded
    return HASHED + tag_key(tag)


def parse_start(payload: str) -> SubscribeLink | None:
    """What ``/start <payload>`` asks for; None when it is not a subscribe link."""
    if not PAYLOAD_RE.fullmatch(payload):
        return None
    if payload.startswith(HASHED):
        key = payload.removeprefix(HASHED)
        return SubscribeLink(key=key) if key else None
    if payload.startswith(ENCODED):
        name = _unb64(payload.removeprefix(ENCODED))
        return SubscribeLink(names=(name,)) if name else None
    if not payload.startswith(READABLE):
        return None
    body = payload.removeprefix(READABLE)
    if not body:
        return None
    if body.casefold() in _EVERYTHING_WORDS:
        return SubscribeLink(everything=True)
    names = [body.replace("_", " "), body]
    legacy = _unb64(body)  # sub-<base64url>, as the README once told people to write
    if legacy and legacy.isprintable():
        names.append(legacy)
    return SubscribeLink(names=tuple(dict.fromkeys(names)))


def link_tag(link: SubscribeLink, tags: Iterable[str]) -> str | None:
    """The tag among ``tags`` that ``link`` names exactly, if one does.

    None leaves the fuzzy lookup of ``link.names`` (case, spaces) to the archive.
    """
    if link.key is not None:
        return next((t for t in tags if tag_key(t) == link.key), None)
    known = set(tags)
    return next((name for name in link.names if name in known), None)


def bot_username(value: str) -> str:
    """A bot's username as links need it (no "@"); ValueError when it cannot be one."""
    name = value.strip().removeprefix("@")
    if not _USERNAME.fullmatch(name):
        raise ValueError(f"not a Telegram username: {value!r}")
    return name


def _link(bot: str, key: str, payload: str | None) -> str:
    if payload is not None and not PAYLOAD_RE.fullmatch(payload):
        raise ValueError(f"not a valid start parameter: {payload!r}")
    value = "" if payload is None else f"={payload}"
    return f"https://t.me/{bot_username(bot)}?{key}{value}"


def start_link(bot: str, payload: str) -> str:
    """Opens a private chat with the bot; START sends ``/start <payload>``."""
    return _link(bot, "start", payload)


def group_link(bot: str, payload: str | None = None) -> str:
    """Asks for a group to add the bot to; there it gets ``/start@bot [payload]``."""
    return _link(bot, "startgroup", payload)


def channel_link(bot: str) -> str:
    """Asks for a channel to add the bot to as an admin that may post."""
    return _link(bot, "startchannel", None) + f"&admin={CHANNEL_RIGHTS}"


def subscribe_link(bot: str, tag: str | None = None) -> str:
    """The link that subscribes whoever opens it to ``tag`` (None: to everything)."""
    return start_link(bot, EVERYTHING_PAYLOAD if tag is None else tag_payload(tag))
