"""The heaviest thing a reader can ask for, the longest allowed analysis of the most
hostile markdown, never holds up another chat."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from bot.domain.limits import Limits
from tests.botapi.server import FakeBotApi
from tests.tg.bot_harness import running_bot
from tests.tg.delivery_support import OLD_MTIME, SynthPaper, add_digest

DAY = date(2024, 6, 20)
ARXIV_ID = "2406.70001"


def hostile_analysis() -> str:
    """Markdown that costs the renderer most per byte: fences, nesting, open tags."""
    blocks = ["```x\n", "  - " * 40 + "item\n", "<b>open <i>tags <a href=\"x\">\n",
              "**bold *it `code [link](", " " * 500 + "\n", "| a | b |\n|---|---|\n"]
    return "".join(blocks[n % len(blocks)] for n in range(20_000))


async def test_another_chat_is_answered_while_the_longest_analysis_is_prepared(
    botapi: FakeBotApi, tmp_path: Path,
) -> None:
    digests = tmp_path / "digests"
    path = add_digest(digests, "NeRF", DAY, [SynthPaper(ARXIV_ID, "A Very Long Analysis")])
    text = path.read_text(encoding="utf-8")
    path.write_text(text + hostile_analysis(), encoding="utf-8")
    os.utime(path, (OLD_MTIME, OLD_MTIME))  # settled: the start-up scan reads it
    async with running_bot(tmp_path, botapi, digest_dir=digests) as bot:
        stored = await bot.deps.archive.get_paper(ARXIV_ID)
        assert stored is not None
        assert len(stored.paper.analysis.encode("utf-8")) > Limits().analysis_bytes - 1024
        reader, other = botapi.user("Reader"), botapi.user("Other")
        reader_chat, other_chat = botapi.private_chat(reader), botapi.private_chat(other)
        botapi.send_command(reader_chat, reader, f"/paper {ARXIV_ID}")
        await bot.settle()
        [card] = botapi.sent_to(reader_chat.id)
        botapi.press_button(reader_chat, reader, card.message_id, f"an:{ARXIV_ID}")
        botapi.send_command(other_chat, other, "/help")
        await botapi.wait_for_sent(1, chat_id=other_chat.id, timeout=1.0)
        await bot.settle(timeout=30)
        parts = botapi.sent_to(reader_chat.id)[1:]
        assert parts
        assert "This analysis was cut" in (parts[-1].plain_text or "")
