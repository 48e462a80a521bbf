"""Share links: every tag gets a payload Telegram accepts, and it names that tag alone."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram.constants import MessageLimit
from telegram.helpers import create_deep_linked_url

from bot.domain.deeplinks import (
    PAYLOAD_RE,
    SubscribeLink,
    bot_username,
    channel_link,
    group_link,
    link_tag,
    parse_start,
    start_link,
    subscribe_link,
    tag_payload,
)

FIXTURE_TAGS = ["3DGS", "Diffusion Models", "NeRF", "Talking Head Generation", "元宇宙/虚拟人"]


def resolve(payload: str, tags: list[str]) -> str | None:
    link = parse_start(payload)
    assert link is not None, payload
    return link_tag(link, tags)


def test_telegram_limit_is_the_documented_one() -> None:
    assert MessageLimit.DEEP_LINK_LENGTH == 64


@pytest.mark.parametrize(("tag", "payload"), [
    ("NeRF", "sub-NeRF"),
    ("3DGS", "sub-3DGS"),
    ("Talking Head Generation", "sub-Talking_Head_Generation"),
    ("Multi-View Stereo", "sub-Multi-View_Stereo"),
    ("元宇宙/虚拟人", "sub64-5YWD5a6H5a6ZL-iZmuaLn-S6ug"),
    ("snake_case", "sub64-c25ha2VfY2FzZQ"),  # "_" would read back as a space
    ("All", "sub64-QWxs"),  # sub-all subscribes to everything
])
def test_payloads_are_readable_when_they_can_be(tag: str, payload: str) -> None:
    assert tag_payload(tag) == payload
    assert resolve(payload, [*FIXTURE_TAGS, tag]) == tag


def test_too_long_names_get_a_short_hashed_key() -> None:
    long_ascii = "Neural Radiance Fields for Unbounded Outdoor Scenes at City Scale"
    long_cjk = "面向大规模多模态基础模型的高效参数微调与知识蒸馏"
    for tag in (long_ascii, long_cjk):
        payload = tag_payload(tag)
        assert payload.startswith("subh-")
        assert len(payload) == 21
        assert resolve(payload, [*FIXTURE_TAGS, long_ascii, long_cjk]) == tag
    assert resolve(tag_payload(long_cjk), FIXTURE_TAGS) is None  # gone from the archive


def test_everything_and_links_of_other_bots_or_kinds() -> None:
    assert parse_start("sub-all") == SubscribeLink(everything=True)
    assert parse_start("sub-Everything") == SubscribeLink(everything=True)
    for payload in ("", "sub-", "sub64-", "subh-", "hello", "sub-a b", "x" * 65,
                    "sub64-@@", "sub64-QQ=", "sub64-QR"):  # QR: not canonical base64
        assert parse_start(payload) is None, payload


def test_old_links_still_resolve() -> None:
    """`sub-<as written>` and `sub-<base64url>` (what the README used to describe)."""
    cjk = base64.urlsafe_b64encode("元宇宙/虚拟人".encode()).decode().rstrip("=")
    legacy = parse_start(f"sub-{cjk}")
    assert legacy is not None
    assert link_tag(legacy, FIXTURE_TAGS) == "元宇宙/虚拟人"
    folded = parse_start("sub-talkingheadgeneration")
    assert folded is not None
    assert link_tag(folded, FIXTURE_TAGS) is None  # exact only: the archive folds the rest
    assert "talkingheadgeneration" in folded.names


def test_links_match_python_telegram_bot() -> None:
    for tag in FIXTURE_TAGS:
        payload = tag_payload(tag)
        assert start_link("paperfeed_bot", payload) == create_deep_linked_url(
            "paperfeed_bot", payload)
        assert group_link("paperfeed_bot", payload) == create_deep_linked_url(
            "paperfeed_bot", payload, group=True)
    assert subscribe_link("@paperfeed_bot") == "https://t.me/paperfeed_bot?start=sub-all"
    assert group_link("paperfeed_bot") == "https://t.me/paperfeed_bot?startgroup"
    assert channel_link("paperfeed_bot") == (
        "https://t.me/paperfeed_bot?startchannel&admin=post_messages")


def test_usernames_and_payloads_are_checked() -> None:
    assert bot_username(" @Paper_Bot ") == "Paper_Bot"
    for bad in ("", "@", "ab", "has space", "1starts_with_digit", "x" * 33, "name/evil"):
        with pytest.raises(ValueError, match="not a Telegram username"):
            bot_username(bad)
    with pytest.raises(ValueError, match="not a valid start parameter"):
        start_link("paperfeed_bot", "sub-a b")


# Names like real topics and their near twins: case, spaces, "_" and "-" variants.
_near = st.sampled_from(["NeRF", "nerf", "NERF", "Ne RF", "Ne_RF", "Ne-RF", " NeRF",
                         "NeRF ", "all", "ALL", "everything", "元宇宙/虚拟人", "元宇宙_虚拟人"])
_names = st.one_of(_near, st.text(min_size=0, max_size=80),
                   st.text(alphabet="AbZ09 -_", min_size=1, max_size=70))


@settings(max_examples=300, deadline=None)
@given(tags=st.lists(_names, min_size=1, max_size=30, unique=True))
def test_every_tag_gets_a_valid_payload_naming_it_alone(tags: list[str]) -> None:
    payloads = [tag_payload(t) for t in tags]
    assert len(set(payloads)) == len(tags)  # tags that differ only in case/spaces too
    for tag, payload in zip(tags, payloads, strict=True):
        assert PAYLOAD_RE.fullmatch(payload), (tag, payload)
        assert resolve(payload, tags) == tag
        create_deep_linked_url("paperfeed_bot", payload)  # PTB accepts it as well


@settings(max_examples=200, deadline=None)
@given(payload=st.text(max_size=80))
def test_any_payload_is_read_without_error(payload: str) -> None:
    link = parse_start(payload)
    if link is not None:
        assert PAYLOAD_RE.fullmatch(payload)
        assert link.everything or link.key or link.names
        link_tag(link, FIXTURE_TAGS)
