"""How the bot answers a tag it does not know, the same way in every command."""

from __future__ import annotations

from bot.domain.tgtext import MAX_MESSAGE_LEN, truncate
from bot.errors import UnknownTag
from bot.storage.repository import ArchiveRepo
from bot.tg.texts import COMMON, tr


async def unknown_tag_text(archive: ArchiveRepo, lang: str, exc: UnknownTag) -> str:
    """The plain-text answer to a tag the archive lacks: closest names, then all of them.

    Worded exactly like /subscribe's answer, so every command explains it the same way.
    """
    known = ", ".join(t.name for t in await archive.tags()) or "—"
    hint = (tr(COMMON, lang, "did_you_mean", suggestions=", ".join(exc.suggestions))
            if exc.suggestions else "")
    # The tag is the user's own words and the archive may know hundreds of tags: cut both
    # so that the answer stays one message Telegram accepts (4096 units).
    text = tr(COMMON, lang, "unknown_tag", tag=truncate(exc.tag, 100), hint=hint,
              known=truncate(known, MAX_MESSAGE_LEN // 2))
    return truncate(text, MAX_MESSAGE_LEN)
