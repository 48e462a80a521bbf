"""Inline mode: `@bot QUERY` offers shareable cards, paged, valid for Telegram."""

from __future__ import annotations

from typing import Any

from bot.tg.handlers.inline import CACHE_SECONDS, INLINE_PAGE
from tests.botapi.server import ApiCall, FakeUser, InlineAnswer
from tests.botapi.validation import format_text
from tests.fixtures.expected import FIXTURE_DISTINCT_IDS
from tests.tg.bot_harness import BotUnderTest


async def ask_inline(bot: BotUnderTest, user: FakeUser, query: str,
                     offset: str = "") -> InlineAnswer:
    query_id = bot.server.inline_query(user, query, offset=offset)
    await bot.settle()
    return bot.server.inline_answers[query_id]


def refused(bot: BotUnderTest) -> list[ApiCall]:
    """Calls Telegram would have refused, but the operators' menus at start (by design)."""
    return [c for c in bot.server.errors() if c.method != "setMyCommands"]


def message_text(result: dict[str, Any]) -> str:
    """What the shared message shows, parsed as Telegram would (raises if invalid)."""
    content = result["input_message_content"]
    assert content["parse_mode"] == "HTML"
    formatted = format_text(content["message_text"], parse_mode="HTML", entities=None,
                            kind="text", required=True)
    assert formatted is not None
    return formatted.text


async def test_empty_query_pages_through_the_newest_papers(bot: BotUnderTest) -> None:
    user = bot.server.user("Ana")
    first = await ask_inline(bot, user, "")
    assert len(first.results) == INLINE_PAGE <= 50
    assert first.next_offset == str(INLINE_PAGE)
    assert (first.cache_time, first.is_personal) == (CACHE_SECONDS, True)
    assert first.results[0]["id"].startswith("2405.0006")  # the newest digest comes first
    second = await ask_inline(bot, user, "", offset=first.next_offset)
    assert second.next_offset == ""
    ids = [r["id"] for r in first.results + second.results]
    assert len(ids) == len(set(ids)) == FIXTURE_DISTINCT_IDS
    assert refused(bot) == []


async def test_results_are_cards_with_url_buttons_and_thumbnails(bot: BotUnderTest) -> None:
    user = bot.server.user("Bo")
    answer = await ask_inline(bot, user, "teapots")
    [result] = answer.results
    assert result["type"] == "article"
    assert result["id"] == "2401.00001"
    assert result["title"] == "Radiance Fields for Tiny Teapots"
    assert "微型茶壶" in result["description"]
    assert result["thumbnail_url"].startswith("https://img.example.org/fig/2401.00001")
    shown = message_text(result)
    assert shown.startswith("Radiance Fields for Tiny Teapots")
    assert "Summary:" in shown
    preview = result["input_message_content"]["link_preview_options"]
    assert preview["url"] == result["thumbnail_url"]
    buttons = [b for row in result["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == ["arXiv", "📄 PDF"]
    assert all("url" in b and "callback_data" not in b for b in buttons)

    # Choosing a result needs no handler, and the shared message is a valid one.
    bot.server.chosen_inline_result(user, "2401.00001", inline_message_id="AAA-1")
    await bot.settle()


async def test_chinese_user_gets_chinese_cards(bot: BotUnderTest) -> None:
    user = bot.server.user("Chen", language_code="zh-hans")
    answer = await ask_inline(bot, user, "tag:3DGS")
    assert len(answer.results) == 8
    assert answer.next_offset == ""
    texts = [message_text(r) for r in answer.results]
    assert all("总结：" in t and "Summary:" not in t for t in texts)


async def test_a_paper_without_figures_has_no_thumbnail(bot: BotUnderTest) -> None:
    user = bot.server.user("Dan")
    answer = await ask_inline(bot, user, "hep-th/9901001")
    [result] = answer.results
    assert result["id"] == "hep-th/9901001"
    assert "thumbnail_url" not in result
    assert result["input_message_content"]["link_preview_options"] == {"is_disabled": True}


async def test_hostile_inline_queries_are_answered(bot: BotUnderTest) -> None:
    user = bot.server.user("Eve")
    for query in ['"', "*", "NEAR(a b)", "'; DROP TABLE papers; --", "😀" * 100,
                  "<b>x</b>&", "tag:", "x" * 256, "扩散 \"", "since:banana"]:
        await ask_inline(bot, user, query)
    for offset in ("abc", "-5", "99999999999999999999999", "1e3"):
        answer = await ask_inline(bot, user, "gaussian", offset=offset)
        assert len(answer.results) <= INLINE_PAGE
    assert refused(bot) == []
