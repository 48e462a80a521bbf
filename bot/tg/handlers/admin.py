"""Operator commands: /stats and /rescan, for user ids in ADMIN_IDS only.

Anyone else gets a polite refusal, and the attempt is logged at WARNING with the user id
(a stranger probing operator commands is worth knowing about). /repost lives elsewhere.

The last scan is kept on `deps.scan_status` (bot.services.scan.ScanStatus), which the
scheduled scans update too, so /stats shows whichever scan ran last.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.domain.models import CHAT_KINDS, IngestReport
from bot.domain.tgtext import escape, truncate
from bot.redaction import Redactor
from bot.services.scan import hand_on_report, scan_once
from bot.tg.background import in_background
from bot.tg.chats import require_operator
from bot.tg.deps import Deps
from bot.tg.texts import tr

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

MAX_SKIPPED_SHOWN = 10
MAX_NEW_SHOWN = 10
MAX_REASON_LEN = 150
MAX_PATH_LEN = 120

TEXTS = {
    "en": {
        "stats_title": "<b>📊 paperfeed</b>",
        "chats": "<b>Chats</b>: {total} total · {subscribed} subscribed · {inactive} inactive",
        "kinds": "by kind: {kinds}",
        "archive": "<b>Archive</b>: {papers} papers · {digests} digests · {tags} tags",
        "span": "digests from {first} to {last}",
        "skipped_files": "{count} files are not digests",
        "unembedded": "{count} papers are waiting for their vectors (🔗 Related)",
        "scan": "<b>Last scan</b>: {when}",
        "scan_none": "<b>Last scan</b>: none since the bot started",
        "scan_result": "{read} files read · {new} papers new · {updated} updated · "
                       "{skipped} skipped · {warnings} warnings",
        "scan_error": "⚠️ the last attempt failed: {error}",
        "held": "⚠️ {count} digest files are gone from the folder; their papers are kept "
                "(too many at once to be deliberate). paperfeed ingest --prune removes them.",
        "deliveries": "<b>Deliveries</b>: {counts}",
        "unavailable": "—",
        "pending": "pending",
        "failed": "failed",
        "ago_now": "just now",
        "ago_min": "{n} min ago",
        "ago_hour": "{n} h ago",
        "ago_day": "{n} d ago",
        "scanning": "🔄 Scanning the digest folder…",
        "scan_done": "<b>🔄 Scan finished</b> in {seconds:.1f} s",
        "files": "Files: {seen} seen · {read} read · {unchanged} unchanged · {deleted} deleted"
                 " · {waiting} still being written",
        "papers": "Papers: {new} new · {updated} updated · {unchanged} unchanged",
        "new_ids": "New: {ids}",
        "skipped": "Skipped ({count}):",
        "more": "… and {count} more",
        "warnings": "Warnings: {count}",
        "warnings_hint": " (paperfeed ingest -v lists them)",
        "scan_failed": "❌ The scan failed: {error}",
        "hook_failed": "⚠️ Scanned, but handing the new papers on failed: {error}",
    },
    "zh": {
        "stats_title": "<b>📊 paperfeed</b>",
        "chats": "<b>聊天</b>：共 {total} · 已订阅 {subscribed} · 已停用 {inactive}",
        "kinds": "按类型：{kinds}",
        "archive": "<b>资料库</b>：{papers} 篇论文 · {digests} 期日报 · {tags} 个主题",
        "span": "日报日期 {first} 至 {last}",
        "skipped_files": "{count} 个文件不是日报",
        "unembedded": "{count} 篇论文尚待生成向量（🔗 相关论文）",
        "scan": "<b>上次扫描</b>：{when}",
        "scan_none": "<b>上次扫描</b>：启动以来尚未扫描",
        "scan_result": "读取 {read} 个文件 · 新论文 {new} · 更新 {updated} · "
                       "跳过 {skipped} · 警告 {warnings}",
        "scan_error": "⚠️ 最近一次扫描失败：{error}",
        "held": "⚠️ 日报目录中有 {count} 个文件不见了；其论文已保留"
                "（一次消失太多，不像是有意删除）。如确为删除，请运行 paperfeed ingest --prune。",
        "deliveries": "<b>推送</b>：{counts}",
        "unavailable": "—",
        "pending": "待发送",
        "failed": "失败",
        "ago_now": "刚刚",
        "ago_min": "{n} 分钟前",
        "ago_hour": "{n} 小时前",
        "ago_day": "{n} 天前",
        "scanning": "🔄 正在扫描日报目录…",
        "scan_done": "<b>🔄 扫描完成</b>，用时 {seconds:.1f} 秒",
        "files": "文件：发现 {seen} · 读取 {read} · 未变 {unchanged} · 删除 {deleted} · "
                 "写入中 {waiting}",
        "papers": "论文：新增 {new} · 更新 {updated} · 未变 {unchanged}",
        "new_ids": "新论文：{ids}",
        "skipped": "跳过（{count}）：",
        "more": "… 另有 {count} 个",
        "warnings": "警告：{count}",
        "warnings_hint": "（paperfeed ingest -v 可查看）",
        "scan_failed": "❌ 扫描失败：{error}",
        "hook_failed": "⚠️ 扫描完成，但转交新论文失败：{error}",
    },
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Admin:
    """/stats and /rescan."""

    def __init__(self, deps: Deps, *, clock: Clock = _utc_now) -> None:
        self.deps = deps
        self.clock = clock

    # -- /stats ----------------------------------------------------------------------

    async def stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Subscribers, archive size, last scan and deliveries, in one message."""
        lang = await require_operator(update, self.deps, "stats")
        if lang is None:
            return
        message = update.effective_message
        assert message is not None
        await message.reply_html(await self.render_stats(lang))

    async def render_stats(self, lang: str) -> str:
        counts = await self.deps.chats.counts()
        kinds = await self.deps.chats.counts_by_kind()
        archive = await self.deps.archive.stats()
        order = [k for k in CHAT_KINDS if k in kinds] + sorted(set(kinds) - set(CHAT_KINDS))
        lines = [
            tr(TEXTS, lang, "stats_title"),
            tr(TEXTS, lang, "chats", total=counts.get("chats", 0),
               subscribed=counts.get("subscribed", 0), inactive=counts.get("inactive", 0)),
        ]
        if order:
            lines.append(tr(TEXTS, lang, "kinds",
                            kinds=" · ".join(f"{escape(k)} {kinds[k]}" for k in order)))
        lines.append(tr(TEXTS, lang, "archive", papers=archive.papers, digests=archive.digests,
                        tags=archive.tags))
        if archive.first_date and archive.last_date:
            lines.append(tr(TEXTS, lang, "span", first=archive.first_date.isoformat(),
                            last=archive.last_date.isoformat()))
        if archive.skipped_files:
            lines.append(tr(TEXTS, lang, "skipped_files", count=archive.skipped_files))
        unembedded = await self.deps.related.missing()
        if unembedded:
            lines.append(tr(TEXTS, lang, "unembedded", count=unembedded))
        lines.extend(self._scan_lines(lang))
        lines.append(tr(TEXTS, lang, "deliveries", counts=await self._deliveries(lang)))
        return "\n".join(lines)

    def _scan_lines(self, lang: str) -> list[str]:
        status = self.deps.scan_status
        lines: list[str] = []
        if status.last_at is None or status.last_report is None:
            lines.append(tr(TEXTS, lang, "scan_none"))
        else:
            report = status.last_report
            lines.append(tr(TEXTS, lang, "scan", when=self._when(status.last_at, lang)))
            lines.append(tr(TEXTS, lang, "scan_result", read=report.files_read,
                            new=report.papers_new, updated=report.papers_updated,
                            skipped=len(report.skipped), warnings=len(report.warnings)))
        if status.last_report is not None and status.last_report.deletions_held:
            lines.append(tr(TEXTS, lang, "held", count=status.last_report.deletions_held))
        if status.last_error:
            lines.append(tr(TEXTS, lang, "scan_error",
                            error=escape(truncate(status.last_error, MAX_REASON_LEN))))
        return lines

    def _when(self, at: datetime, lang: str) -> str:
        """The time in the operator's TIMEZONE, and how long ago."""
        local = at.astimezone(self.deps.settings.tz)
        seconds = max(0.0, (self.clock() - at).total_seconds())
        if seconds < 60:
            ago = tr(TEXTS, lang, "ago_now")
        elif seconds < 3600:
            ago = tr(TEXTS, lang, "ago_min", n=int(seconds // 60))
        elif seconds < 86400:
            ago = tr(TEXTS, lang, "ago_hour", n=int(seconds // 3600))
        else:
            ago = tr(TEXTS, lang, "ago_day", n=int(seconds // 86400))
        return f"{local:%Y-%m-%d %H:%M} {escape(self.deps.settings.timezone)} ({ago})"

    async def _deliveries(self, lang: str) -> str:
        """Pending/failed from the outbox, "—" when there is none (yet) or it fails."""
        try:
            counts = await self.deps.outbox.counts()
        except Exception:  # /stats must work even when the outbox is broken
            log.exception("delivery counts for /stats failed")
            return tr(TEXTS, lang, "unavailable")
        order = [k for k in ("pending", "failed") if k in counts] + sorted(
            set(counts) - {"pending", "failed"})
        if not order:
            return tr(TEXTS, lang, "unavailable")
        return " · ".join(f"{escape(tr(TEXTS, lang, k) if k in ('pending', 'failed') else k)} "
                          f"{counts[k]}" for k in order)

    # -- /rescan ---------------------------------------------------------------------

    async def rescan(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Say "Scanning…" at once; the scan, its report (edited into that message) and
        the delivery of new papers run in the background."""
        lang = await require_operator(update, self.deps, "rescan")
        if lang is None:
            return
        message = update.effective_message
        assert message is not None
        progress = await message.reply_text(tr(TEXTS, lang, "scanning"))
        in_background(context, self.run_rescan(progress, lang), "rescan", update)

    async def run_rescan(self, progress: Message, lang: str) -> None:
        """Scan, edit the report into ``progress``, then hand new papers on."""
        status = self.deps.scan_status
        started = time.monotonic()
        try:
            report = await scan_once(self.deps.ingestor, status, hand_on=False)
        except Exception as exc:  # told to the operator here, so not re-raised
            log.exception("/rescan failed")
            await self._edit(progress, tr(TEXTS, lang, "scan_failed",
                                          error=escape(truncate(self._reason(exc), 500))))
            return
        await self._edit(progress, self.render_report(report, lang, time.monotonic() - started))
        try:
            await hand_on_report(status, report)
        except Exception as exc:
            log.exception("handing new papers on after /rescan failed")
            await progress.reply_text(tr(TEXTS, lang, "hook_failed",
                                         error=truncate(self._reason(exc), 500)))

    def _reason(self, exc: BaseException) -> str:
        """The error as the operator reads it: redacted like the logs (a driver's or
        httpx's message may quote a URL with a password or the token)."""
        return Redactor.from_settings(self.deps.settings)(str(exc))

    @staticmethod
    async def _edit(progress: Message, html: str) -> None:
        await progress.edit_text(html, parse_mode="HTML")

    @staticmethod
    def render_report(report: IngestReport, lang: str, seconds: float) -> str:
        """What a scan did, within Telegram's limit (long lists are cut, with a count)."""
        lines = [
            tr(TEXTS, lang, "scan_done", seconds=seconds),
            tr(TEXTS, lang, "files", seen=report.files_seen, read=report.files_read,
               unchanged=report.files_unchanged, deleted=report.files_deleted,
               waiting=report.files_waiting),
            tr(TEXTS, lang, "papers", new=report.papers_new, updated=report.papers_updated,
               unchanged=report.papers_unchanged),
        ]
        if report.new_papers:
            ids = ", ".join(escape(i) for i in report.new_papers[:MAX_NEW_SHOWN])
            if len(report.new_papers) > MAX_NEW_SHOWN:
                ids += " " + tr(TEXTS, lang, "more",
                                count=len(report.new_papers) - MAX_NEW_SHOWN)
            lines.append(tr(TEXTS, lang, "new_ids", ids=ids))
        if report.skipped:
            lines.append(tr(TEXTS, lang, "skipped", count=len(report.skipped)))
            for path, reason in report.skipped[:MAX_SKIPPED_SHOWN]:
                lines.append(f"• <code>{escape(truncate(path, MAX_PATH_LEN))}</code>: "
                             f"{escape(truncate(reason, MAX_REASON_LEN))}")
            if len(report.skipped) > MAX_SKIPPED_SHOWN:
                lines.append(tr(TEXTS, lang, "more",
                                count=len(report.skipped) - MAX_SKIPPED_SHOWN))
        warnings = tr(TEXTS, lang, "warnings", count=len(report.warnings))
        if report.warnings:
            warnings += tr(TEXTS, lang, "warnings_hint")
        lines.append(warnings)
        return "\n".join(lines)
