"""The `paperfeed` command line (also `python -m bot`): thin wrappers over the services."""

from __future__ import annotations

import asyncio
import calendar
import csv
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape as escape_markup
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bot.bootstrap import Services, open_services, setup_logging
from bot.config import Settings, load_settings
from bot.domain.bibtex import unique_entry
from bot.domain.chat_settings import language, style_of
from bot.domain.models import Appearance, ArchivedPaper, IngestReport
from bot.domain.parsing import decode_digest, parse_digest
from bot.domain.query import parse_query
from bot.domain.related import RelatedPapers
from bot.domain.rendering import MAX_CALLBACK_BYTES, Button, render_analysis, render_card
from bot.domain.tgtext import (
    MAX_MESSAGE_LEN,
    safe_url,
    utf16_len,
    validate_telegram_html,
    visible_len,
)
from bot.errors import ConfigError, DigestError, NotFound, PaperfeedError, UnknownTag

app = typer.Typer(
    name="paperfeed",
    help="Turn a folder of daily paper digests into a searchable, subscribable feed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    """The settings, and logging set up from them: warnings (secrets redacted) only, since
    a command's output is its report; `run` sets the full LOG_LEVEL up again."""
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    setup_logging(settings, quiet=True)
    return settings


def _run(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Open the services (migrating the database) around one piece of async work."""

    async def main() -> T:
        async with open_services(settings) as services:
            return await work(services)

    try:
        return asyncio.run(main())
    except UnknownTag as exc:
        hint = f" (did you mean {', '.join(exc.suggestions)}?)" if exc.suggestions else ""
        err.print(f"[red]error:[/red] unknown tag {exc.tag!r}{hint}; `paperfeed tags` lists them")
        raise typer.Exit(1) from None
    except PaperfeedError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def _print_report(report: IngestReport, verbose: bool) -> None:
    table = Table(title="ingest", show_header=False)
    for label, value in (
        ("files seen", report.files_seen),
        ("files read", report.files_read),
        ("files unchanged", report.files_unchanged),
        ("files deleted", report.files_deleted),
        ("files still being written (next scan)", report.files_waiting),
        ("papers new", report.papers_new),
        ("papers updated", report.papers_updated),
        ("papers unchanged", report.papers_unchanged),
        ("skipped", len(report.skipped)),
        ("warnings", len(report.warnings)),
    ):
        table.add_row(label, str(value))
    out.print(table)
    for path, reason in report.skipped:
        out.print(f"[yellow]skipped[/yellow] {path}: {reason}")
    shown = report.warnings if verbose else report.warnings[:20]
    for warning in shown:
        out.print(f"[yellow]warning[/yellow] {warning}")
    if len(shown) < len(report.warnings):
        out.print(f"… and {len(report.warnings) - len(shown)} more warnings (use --verbose)")
    if report.deletions_held:
        out.print(f"[red]kept[/red] the papers of {report.deletions_held} digest files that "
                  "are gone from the folder: too many at once to be a deliberate deletion. "
                  "If they were deleted on purpose, run paperfeed ingest --prune")


@app.command()
def ingest(
    directory: Annotated[
        Path | None, typer.Argument(help="Digest folder; default DIGEST_DIR.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every warning.")] = False,
    settle: Annotated[
        float | None,
        typer.Option(help="Seconds a file must be unchanged before it is read (default 5)."),
    ] = None,
    archive_only: Annotated[
        bool,
        typer.Option("--archive-only",
                     help="Store without sending: the bot will not push these papers."),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune",
                     help="Remove the papers of every file gone from the folder, even when "
                          "that is most of them (the scans hold such a removal back)."),
    ] = False,
) -> None:
    """Scan the digest folder and store new or changed digests.

    The bot sends what this stores to its subscribers at its next scan, unless
    --archive-only (importing a long history into a bot that has subscribers).
    """
    settings = _settings(**({"digest_dir": directory} if directory else {}))

    async def work(services: Services) -> tuple[IngestReport, int | str]:
        ingestor = services.ingestor
        if settle is not None:
            ingestor.settle_seconds = settle
        with _progress() as bar:
            task = bar.add_task("reading digests", total=None)
            report = await ingestor.scan(lambda done, total: bar.update(task, completed=done,
                                                                        total=total),
                                         prune=prune)
        if archive_only:  # only this ingest's listings: others may wait for the bot
            stored = set(report.new_appearances)
            await services.archive.mark_announced(
                [a.id for a in await services.archive.unannounced()
                 if (a.arxiv_id, a.digest_path) in stored])
        return report, await _embed_papers(services)

    report, embedded = _run(settings, work)
    _print_report(report, verbose)
    if isinstance(embedded, str):
        out.print(f"[yellow]warning[/yellow] papers not embedded for Related: "
                  f"{escape_markup(embedded)}; the bot tries again at its next scan")
    elif embedded:
        out.print(f"embedded {_papers(embedded)} for Related")
    if report.skipped and report.skipped[0][1] == "digest folder does not exist":
        raise typer.Exit(1)


def _progress() -> Progress:
    """A progress bar on standard error, shown only on a terminal."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


async def _embed_papers(services: Services) -> int | str:
    """Embed the papers that lack a vector, with the model loaded in this process (it
    ends soon anyway): how many, or why not (the model missing), as a warning."""
    from bot.services.embedding import Embedder, ModelMissing
    from bot.services.related import Related

    related = Related(services.vectors, Embedder().embed_papers)
    missing = await services.vectors.count_missing(related.model)
    if not missing:
        return 0
    try:
        with _progress() as bar:
            task = bar.add_task("embedding papers", total=missing)
            return await related.refresh(lambda done: bar.update(task, completed=done))
    except ModelMissing as exc:
        return str(exc)


def _paper_json(paper: ArchivedPaper) -> dict[str, Any]:
    p = paper.paper
    first = paper.first_seen
    return {
        "arxiv_id": p.arxiv_id,
        "version": p.version,
        "title": p.title,
        "authors": list(p.authors),
        "abstract": p.abstract,
        "summary": p.summary,
        "takeaways": list(p.takeaways),
        "tags": list(paper.tags),
        "first_seen": first.isoformat() if first else None,
        "last_seen": paper.last_seen.isoformat() if paper.last_seen else None,
        "abs_url": p.abs_url,
        "pdf_url": p.pdf_url,
        "comment": p.comment,
        "links": list(p.links),
        "figures": list(p.figures),
        "sources": list(paper.sources),
    }


def _parse_date(value: str | None, name: str, *, end: bool = False) -> date | None:
    """YYYY-MM-DD, or YYYY-MM: its first day (its last with ``end``, for --until)."""
    if value is None:
        return None
    try:
        if len(value) == 7:  # YYYY-MM
            first = date.fromisoformat(value + "-01")
            if not end:
                return first
            return first.replace(day=calendar.monthrange(first.year, first.month)[1])
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD or YYYY-MM)",
                                 param_hint=name) from None


def _papers(n: int) -> str:
    return f"{n} paper{'' if n == 1 else 's'}"


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Words, \"phrases\", author names, arXiv ids.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Only this tag.")] = None,
    since: Annotated[str | None, typer.Option(help="Listed on or after YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Listed on or before YYYY-MM-DD.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one per paper.")] = False,
) -> None:
    """Full-text search over titles, authors, abstracts, summaries and takeaways."""
    settings = _settings()
    parsed = parse_query(query)
    since_date = _parse_date(since, "--since")
    until_date = _parse_date(until, "--until", end=True)
    tags = tuple(tag or ())

    async def work(services: Services) -> tuple[list[Any], int]:
        # tag:X in the query as --tag X: an unknown one is named, with the closest known
        resolved = tuple([await services.archive.resolve_tag(t) for t in parsed.tags + tags])
        q = replace(parsed, tags=resolved, since=since_date or parsed.since,
                    until=until_date or parsed.until)
        return await services.archive.search(q, limit=limit, offset=0)

    hits, total = _run(settings, work)
    if as_json:
        for hit in hits:
            sys.stdout.write(json.dumps(_paper_json(hit.paper), ensure_ascii=False) + "\n")
        return
    if not hits:
        out.print("no papers match")
        return
    table = Table(title=f"{_papers(total)} match{'es' if total == 1 else ''}, showing "
                        f"{len(hits)}")
    table.add_column("arXiv")
    table.add_column("date")
    table.add_column("title")
    table.add_column("tags")
    for hit in hits:
        last = hit.paper.last_seen
        table.add_row(hit.paper.arxiv_id, last.isoformat() if last else "",
                      hit.paper.paper.title, ", ".join(hit.paper.tags))
    out.print(table)


@app.command()
def related(
    arxiv_id: Annotated[str, typer.Argument(help="An arXiv id or link of a paper in the archive.")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many papers.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one per paper.")] = False,
) -> None:
    """The papers nearest in meaning (title and abstract) to one paper, those of its
    topics first, as the bot's 🔗 Related button lists them: date, the tags they share
    with it, and similarity (cosine, 1 at most). Papers not embedded yet are embedded
    first."""
    settings = _settings()

    async def work(services: Services) -> RelatedPapers:
        await _embed_papers(services)
        found = await services.related.related(arxiv_id, limit)
        if found is None:
            raise NotFound(f"no paper {arxiv_id!r} in the archive")
        return found

    found = _run(settings, work)
    if not found.ready:
        err.print(f"[red]error:[/red] {found.paper.arxiv_id} has no vector yet: the model "
                  "could not be loaded (see the warning above)")
        raise typer.Exit(1)
    if as_json:
        for item in found.papers:
            line = {**_paper_json(item.paper), "score": round(item.score, 4),
                    "shared_tags": list(item.shared_tags)}
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        return
    if not found.papers:
        out.print("no other papers in the archive")
        return
    table = Table(title=f"related to {found.paper.arxiv_id} "
                        f"{escape_markup(found.paper.paper.title)}")
    for column in ("arXiv", "date", "title", "shared tags"):
        table.add_column(column)
    table.add_column("score", justify="right")
    for item in found.papers:
        first = item.paper.first_seen
        table.add_row(item.paper.arxiv_id, first.isoformat() if first else "",
                      escape_markup(item.paper.paper.title), ", ".join(item.shared_tags),
                      f"{item.score:.3f}")
    out.print(table)


@app.command()
def tags() -> None:
    """Every tag with its paper count and last digest date."""
    settings = _settings()
    infos = _run(settings, lambda s: s.archive.tags())
    if not infos:
        out.print("the archive is empty: run `paperfeed ingest` first")
        return
    table = Table()
    table.add_column("tag")
    table.add_column("papers", justify="right")
    table.add_column("last digest")
    for info in infos:
        table.add_row(info.name, str(info.papers),
                      info.last_date.isoformat() if info.last_date else "")
    out.print(table)


@app.command()
def links(
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only this tag's links.")] = None,
    bot: Annotated[str | None, typer.Option(
        "--bot", help="The bot's username; by default asked from Telegram (getMe through "
                      "BOT_API_URL with TELEGRAM_TOKEN).")] = None,
) -> None:
    """The links to share, tab-separated: subscribe to everything, add the bot to a group
    or a channel; then per tag its name, the link that subscribes whoever opens it, and
    the link that adds the bot to a group following it."""
    from bot.domain.deeplinks import (
        bot_username,
        channel_link,
        group_link,
        subscribe_link,
        tag_payload,
    )

    username = None
    if bot is not None:
        try:
            username = bot_username(bot)
        except ValueError as exc:
            err.print(f"[red]error:[/red] --bot: {escape_markup(str(exc))}")
            raise typer.Exit(2) from None
    settings = _settings()

    async def work(services: Services) -> tuple[str, list[str]]:
        from bot.tg.profile import fetch_username  # imports telegram: only without --bot

        names = ([await services.archive.resolve_tag(tag)] if tag
                 else [info.name for info in await services.archive.tags()])
        return username or bot_username(await fetch_username(settings)), names

    username, names = _run(settings, work)
    lines = [] if tag else [
        f"subscribe to everything\t{subscribe_link(username)}",
        f"add to a group\t{group_link(username)}",
        f"add to a channel\t{channel_link(username)}",
        "",
    ]
    lines += [f"{name}\t{subscribe_link(username, name)}\t"
              f"{group_link(username, tag_payload(name))}" for name in names]
    sys.stdout.write("\n".join(lines) + "\n")
    if not names:
        err.print("the archive has no tags yet: run `paperfeed ingest` first")


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    bibtex = "bibtex"
    csv = "csv"


CSV_COLUMNS = ("arxiv_id", "version", "title", "authors", "tags", "first_seen", "last_seen",
               "summary", "abs_url", "pdf_url")


@app.command()
def export(
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only this tag.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only papers listed on or after YYYY-MM-DD (or YYYY-MM).")] = None,
    fmt: Annotated[ExportFormat, typer.Option(
        "--format", help="jsonl: one JSON object per paper; bibtex: @misc entries; csv.")
    ] = ExportFormat.jsonl,
) -> None:
    """Every paper of the archive (or of a tag) on standard output."""
    settings = _settings()
    since_date = _parse_date(since, "--since")

    async def work(services: Services) -> int:
        resolved = await services.archive.resolve_tag(tag) if tag else None
        count = 0
        table = csv.writer(sys.stdout, lineterminator="\n")
        if fmt is ExportFormat.csv:
            table.writerow(CSV_COLUMNS)
        keys: set[str] = set()
        async for paper in services.archive.export(resolved):
            if since_date and (paper.last_seen is None or paper.last_seen < since_date):
                continue
            if fmt is ExportFormat.bibtex:
                entry = unique_entry(paper, keys)
                sys.stdout.write(("\n" if count else "") + entry + "\n")
            elif fmt is ExportFormat.csv:
                data = _paper_json(paper)
                data["authors"] = "; ".join(data["authors"])
                data["tags"] = "; ".join(data["tags"])
                table.writerow([data[c] for c in CSV_COLUMNS])
            else:
                sys.stdout.write(json.dumps(_paper_json(paper), ensure_ascii=False) + "\n")
            count += 1
        return count

    count = _run(settings, work)
    err.print(f"exported {_papers(count)}")


def _write_whole(out_file: Path, body: bytes) -> None:
    """Write through a temporary file renamed over the target, so a web server serving
    the file never sends half of it; a failure is one error line and exit status 1."""
    partial = out_file.with_name(f".{out_file.name}.partial")
    try:
        partial.write_bytes(body)
        partial.replace(out_file)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        err.print(f"[red]error:[/red] cannot write {escape_markup(str(out_file))}: "
                  f"{escape_markup(exc.strerror or str(exc))}")
        raise typer.Exit(1) from None
    err.print(f"wrote {escape_markup(str(out_file))} ({len(body)} bytes)")


@app.command()
def feed(
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only this tag.")] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write to this file (replaced whole) instead of standard output.")
    ] = None,
) -> None:
    """The Atom feed of the newest 50 papers (of a tag), as the bot serves it at
    /feeds/all.atom or /feeds/<tag>.atom: for a static web server. FEED_BASE_URL sets
    its self link."""
    from bot.services.feeds import Feeds
    from bot.services.ports import SystemClock

    settings = _settings()

    async def work(services: Services) -> bytes:
        feeds = Feeds(services.archive, SystemClock(), base_url=settings.feed_base_url,
                      blog_base_url=settings.blog_base_url)
        return (await feeds.feed(tag)).body

    body = _run(settings, work)
    if out_file is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    _write_whole(out_file, body)


@app.command()
def trends(
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only this tag.")] = None,
    weeks: Annotated[int, typer.Option(
        "--weeks", "-w", min=1, max=104, help="Weeks shown, up to the newest digest.")] = 12,
    lang: Annotated[str, typer.Option(
        "--lang", help="Language of the chart's words: en or zh.")] = "en",
    out_file: Annotated[Path, typer.Option(
        "--out", "-o", help="The PNG file to write (replaced whole).")] = Path("trends.png"),
) -> None:
    """The /trends chart as a PNG file: papers per topic (or of one tag) per week over
    the last weeks; its caption on standard output."""
    from bot.domain.tgtext import html_unescape, strip_tags

    settings = _settings()

    async def work(services: Services) -> tuple[bytes, str] | None:
        chart = await services.trends.chart(tag, weeks, lang)
        return None if chart is None else (chart.png, chart.caption)

    made = _run(settings, work)
    if made is None:
        err.print("the archive is empty: run `paperfeed ingest` first")
        raise typer.Exit(1)
    png, caption = made
    _write_whole(out_file, png)
    sys.stdout.write(html_unescape(strip_tags(caption)) + "\n")


@app.command()
def run() -> None:
    """Run the bot: long polling (or a webhook server when WEBHOOK_URL is set), a folder
    scan at start and every SCAN_INTERVAL, delivery to subscribers."""
    settings = _settings()
    if not settings.telegram_token.get_secret_value():
        err.print("[red]configuration error:[/red] TELEGRAM_TOKEN: not set; create a bot with "
                  "@BotFather and put its token in .env (see README)")
        raise typer.Exit(2)
    setup_logging(settings)
    from bot.runner import run_bot  # imports telegram: only the bot needs it

    run_bot(settings)


@app.command()
def doctor() -> None:
    """Check the settings, database, digest folder and bot token; exit 1 if one fails."""
    from bot.doctor import doctor as diagnose  # imports telegram: only this command needs it
    from bot.doctor import failed

    settings: Settings | None
    try:
        settings = load_settings()
    except ConfigError:
        settings = None  # the doctor reports it, as its first check
    if settings is not None:
        setup_logging(settings, quiet=True)
    checks = asyncio.run(diagnose(settings))
    for check in checks:
        style = {True: "green", False: "red", None: "yellow"}[check.ok]
        out.print(check.line(), markup=False, emoji=False, highlight=False, style=style)
    if failed(checks):
        raise typer.Exit(1)


# --- preview: a digest's cards as they would be sent -----------------------------------


MAX_BUTTONS_PER_ROW = 8  # Telegram's limit for one row of an inline keyboard


class CardStyle(StrEnum):
    """The option's choices: bot.domain.models.CARD_STYLES (typer wants an Enum)."""

    full = "full"
    compact = "compact"


class Language(StrEnum):
    en = "en"
    zh = "zh"


def message_problems(html: str, limit: int = MAX_MESSAGE_LEN) -> list[str]:
    """Why Telegram would refuse this HTML message; an empty list means it would be sent."""
    if not html.strip():
        return ["empty message"]
    try:
        text = validate_telegram_html(html)
    except ValueError as exc:
        return [f"invalid HTML: {exc}"]
    if not text.strip():
        return ["no visible text (Telegram: message text is empty)"]
    size = utf16_len(text)
    if size > limit:
        return [f"too long: {size}/{limit} UTF-16 units"]
    return []


def button_problems(rows: Sequence[Sequence[Button]]) -> list[str]:
    """Why Telegram would refuse this inline keyboard (and with it the whole message)."""
    problems: list[str] = []
    for number, row in enumerate(rows, 1):
        if len(row) > MAX_BUTTONS_PER_ROW:
            problems.append(f"row {number} has {len(row)} buttons (at most "
                            f"{MAX_BUTTONS_PER_ROW})")
        for b in row:
            if not b.text.strip():
                problems.append("a button without text")
            if b.url is not None:
                if safe_url(b.url) != b.url:
                    problems.append(f"button {b.text!r}: URL {b.url!r} would be refused")
            elif b.callback is not None:
                size = len(b.callback.encode("utf-8"))
                if not 1 <= size <= MAX_CALLBACK_BYTES:
                    problems.append(f"button {b.text!r}: callback data of {size} bytes "
                                    f"(1..{MAX_CALLBACK_BYTES})")
            else:
                problems.append(f"button {b.text!r} has neither a URL nor callback data")
    return problems


def _describe_buttons(rows: Sequence[Sequence[Button]]) -> str:
    described = [" ".join(f"[{b.text} → {b.url or b.callback}]" for b in row) for row in rows]
    return " | ".join(described) or "none"


def _raw(text: str, style: str | None = None) -> None:
    """Print text exactly: no rich markup, emoji codes or highlighting inside it."""
    out.print(text, markup=False, emoji=False, highlight=False, style=style)


@app.command()
def preview(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="One digest file, e.g. digests/2024-09-24/NeRF.md")],
    style: Annotated[CardStyle, typer.Option(help="Card style.")] = CardStyle.full,
    lang: Annotated[Language, typer.Option(help="Interface language of the cards.")] =
    Language.en,
    analysis: Annotated[bool, typer.Option("--analysis",
                                           help="Print the analysis messages too.")] = False,
) -> None:
    """Show a digest's cards as the bot would send them; exit 1 if Telegram would refuse one."""
    settings = _settings()
    # Relative to the file's parent's parent, so the <YYYY-MM-DD> folder gives the date.
    resolved = file.resolve()
    rel = resolved.relative_to(resolved.parent.parent).as_posix()
    raw = resolved.read_bytes()
    text, repaired = decode_digest(raw, rel)
    for warning in repaired:
        out.print(f"[yellow]warning[/yellow] {escape_markup(warning.message)}")
    try:
        digest = parse_digest(text, rel, blog_base_url=settings.blog_base_url)
    except DigestError as exc:  # NotADigest included
        err.print(f"[red]error:[/red] {escape_markup(rel)}: {escape_markup(str(exc))}",
                  soft_wrap=True)
        raise typer.Exit(1) from None

    out.print(f"[bold]{escape_markup(rel)}[/bold]: topic {escape_markup(digest.topic)}, "
              f"{digest.date.isoformat()}, {_papers(len(digest.papers))} "
              f"(style {style.value}, language {lang.value})")
    rejected = 0
    for index, paper in enumerate(digest.papers, 1):
        appearance = Appearance(digest.path, digest.topic, digest.date, paper.summary,
                                paper.takeaways, position=index - 1)
        archived = ArchivedPaper(paper, (appearance,))
        card = render_card(archived, blog_base_url=settings.blog_base_url,
                           style=style_of(style.value), appearance=appearance,
                           lang=language(lang.value))
        out.rule(Text(f"{index}/{len(digest.papers)} {paper.arxiv_id} {paper.title}"[:100]))
        _raw(card.html)
        out.print()
        html_problems = message_problems(card.html)
        problems = html_problems + button_problems(card.buttons)
        size = 0 if html_problems else visible_len(card.html)
        mark = "[red]✗[/red]" if problems else "[green]✓[/green]"
        out.print(f"{mark} card {size}/{MAX_MESSAGE_LEN} UTF-16 units · buttons: ", end="")
        _raw(_describe_buttons(card.buttons))
        if card.preview_url:
            _raw(f"  preview image: {card.preview_url}")
        parts = render_analysis(archived)
        part_problems = [(n, p) for n, part in enumerate(parts, 1)
                         for p in message_problems(part)]
        if parts:
            sizes = ", ".join(str(visible_len(p)) if not message_problems(p) else "?"
                              for p in parts)
            mark = "[red]✗[/red]" if part_problems else "[green]✓[/green]"
            out.print(f"{mark} analysis: {len(parts)} message(s), {sizes} /{MAX_MESSAGE_LEN} "
                      "UTF-16 units")
            if analysis:
                for part in parts:
                    _raw(part, style="dim")
                    out.print()
        for problem in problems:
            _raw(f"  card would be rejected: {problem}", style="red")
        for number, problem in part_problems:
            _raw(f"  analysis message {number} would be rejected: {problem}", style="red")
        if problems or part_problems:
            rejected += 1

    if digest.warnings:
        out.rule("skipped sections and warnings")
        for warning in digest.warnings:
            _raw(f"warning {warning}", style="yellow")
    out.print(f"{len(digest.papers)} card{'' if len(digest.papers) == 1 else 's'}, "
              f"{len(digest.warnings)} warning{'' if len(digest.warnings) == 1 else 's'}, "
              f"{_papers(rejected)} with messages Telegram would refuse")
    if rejected:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the `paperfeed` console script."""
    app()
