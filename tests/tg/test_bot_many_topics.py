"""An archive with many topics: every answer must still be something Telegram accepts.

Why: the tag list, the ✅ toggle keyboard and the "unknown tag" answer all grow with the
number of topics. Telegram refuses a message over 4096 characters, a keyboard of more than
100 buttons ("reply markup is too long") and an edit that changes nothing ("message is
not modified"); the fake Bot API refuses them too, so this drives the bot over 100 topics
and asserts that no request was refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.botapi.server import FakeBotApi
from tests.fixtures.expected import FIXTURE_DIR
from tests.tg.bot_harness import running_bot

TOPICS = 120


def many_topics(root: Path) -> Path:
    """A digest folder with TOPICS one-paper digests, each its own topic."""
    template = (FIXTURE_DIR / "2024-02-01" / "NeRF.md").read_text(encoding="utf-8")
    day = root / "digests" / "2024-02-01"
    day.mkdir(parents=True)
    for i in range(TOPICS):
        name = f"Topic {i:03d} on rather long generative things"
        text = (template.replace("title: NeRF", f"title: {name}")
                .replace("    - NeRF", f"    - {name}")
                .replace("keywords: NeRF", f"keywords: {name}")
                .replace("2401.00001", f"2401.{10000 + i}"))
        path = day / f"{name}.md"
        path.write_text(text, encoding="utf-8")
        os.utime(path, (1_000_000_000, 1_000_000_000))
    return root / "digests"


def refused(server: FakeBotApi) -> list[str]:
    """Refused requests, except the operator menu (that operator never wrote to the bot)."""
    return [f"{c.method}: {c.description}" for c in server.errors()
            if c.method != "setMyCommands"]


async def test_many_topics_tags_toggles_and_unknown_tag(botapi: FakeBotApi,
                                                        tmp_path: Path) -> None:
    s = botapi
    async with running_bot(tmp_path, s, digest_dir=many_topics(tmp_path)) as bot:
        ann = s.user("Ann")
        chat = s.private_chat(ann)

        s.send_command(chat, ann, "/tags")
        await bot.settle(timeout=20)
        parts = s.sent_to(chat.id)
        assert len(parts) > 1  # one message would be far over 4096 characters
        shown = "\n".join(m.plain_text or "" for m in parts)
        assert all(f"Topic {i:03d}" in shown for i in range(TOPICS))

        s.send_command(chat, ann, "/subscribe")
        await bot.settle(timeout=20)
        menu = s.last_sent(chat.id)
        assert len(menu.buttons) < 100
        assert "sb:p:1" in menu.callback_data

        def keyboard() -> list[str]:
            rows = s.message(chat.id, menu.message_id)["reply_markup"]["inline_keyboard"]
            return [b["text"] for row in rows for b in row]

        # Next page, tapped twice; "Everything" and "Nothing" tapped twice each.
        for data in ("sb:p:1", "sb:p:1", "sb:*", "sb:*", "sb:-", "sb:-"):
            s.press_button(chat, ann, menu.message_id, data)
            await bot.settle(timeout=20)
        assert any("Topic 040" in label for label in keyboard())
        s.press_button(chat, ann, menu.message_id, text=keyboard()[0])
        await bot.settle(timeout=20)
        assert keyboard()[0].startswith("✅ Topic 040")
        stored = await bot.deps.chats.get(chat.id)
        assert stored is not None
        assert stored.tags == ("Topic 040 on rather long generative things",)

        s.send_command(chat, ann, "/subscribe no such topic at all")
        await bot.settle(timeout=20)
        assert "Known tags: Topic 000" in (s.last_sent(chat.id).plain_text or "")
        assert s.unanswered_callback_queries() == []
        assert refused(s) == []
