"""How the bot answers a tag it does not know, the same way in every command."""

from __future__ import annotations

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
    return tr(COMMON, lang, "unknown_tag", tag=exc.tag, hint=hint, known=known)
