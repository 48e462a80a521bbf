"""The Atom feeds over HTTP, end to end: the real archive, the real tornado server of
bot.health, a real HTTP client.

The detailed behaviour (encoded tags, 404, conditional GET, HEAD, a digest landing) runs
in-process against the bot of tests/tg/bot_harness.py, one scan being one `scan_once`;
then `paperfeed run` as a real process serves the same on HEALTH_PORT (polling) and on
the webhook port, picks up a new digest with its own scan job, and `paperfeed feed`
writes the very bytes the server sends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import feedparser
import httpx
import pytest

from bot.domain.atom import CONTENT_TYPE
from bot.health import HttpServer, web_app
from bot.services.feeds import Feeds
from bot.services.ports import SystemClock
from bot.services.scan import scan_once
from tests.botapi.server import FakeBotApi
from tests.fixtures.expected import FIXTURE_DISTINCT_IDS
from tests.fixtures.folder import SETTLED, copy_fixture_folder
from tests.tg.bot_harness import BotUnderTest, running_bot
from tests.tg.test_health import start_bot
from tests.tg.test_run_process import bot_env
from tests.tg.test_webhook import finish, free_port, webhook_process

BASE_URL = "https://bot.example.org/feeds"
CHINESE = "神经渲染"


def write_digest(folder: Path, day: str, topic: str, *papers: tuple[str, str]) -> Path:
    """A digest file in the real format, settled (a scan reads it at once); written
    beside the folder and moved in, so no scan sees half of it."""
    sections = "".join(
        f"## {title}\n\n**Authors:Ada Test, Bo Test**\n\nAn abstract about {title}.\n\n"
        f"[PDF](http://arxiv.org/abs/{arxiv_id}v1)\n\n**Summary**\n关于{title}的总结。\n\n"
        "**Key Takeaways**\n1. 第一个要点。\n2. 第二个要点。\n\n"
        for arxiv_id, title in papers
    )
    text = (f"---\ntitle: {topic}\ndate: {day} 09:00:00\ntags:\n    - {topic}\n---\n\n"
            f"# {day} 更新\n\n{sections}")
    target = folder / day / f"{topic.replace('/', '_')}.md"
    target.parent.mkdir(exist_ok=True)
    partial = folder.parent / f"{day}-{target.name}.partial"
    partial.write_text(text, encoding="utf-8")
    os.utime(partial, (SETTLED, SETTLED))
    partial.replace(target)
    return target


def digest_folder(tmp_path: Path) -> Path:
    """The fixture folder plus a Chinese topic of two papers."""
    folder = copy_fixture_folder(tmp_path / "digests")
    write_digest(folder, "2024-06-01", CHINESE, ("2406.00001", "First Chinese Topic Paper"),
                 ("2406.00002", "Second Chinese Topic Paper"))
    return folder


def entry_ids(response: httpx.Response) -> list[str]:
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return [e.id.removeprefix("https://arxiv.org/abs/") for e in parsed.entries]


def tags_of(response: httpx.Response) -> list[set[str]]:
    return [{t.term for t in e.tags} for e in feedparser.parse(response.content).entries]


@asynccontextmanager
async def served(tmp_path: Path, botapi: FakeBotApi) -> AsyncIterator[tuple[BotUnderTest, str]]:
    """The bot on the folder, and an HTTP server with the feeds as `paperfeed run` builds it."""
    async with running_bot(tmp_path, botapi, digest_dir=digest_folder(tmp_path),
                           feed_base_url=BASE_URL) as bot:
        settings = bot.deps.settings
        feeds = Feeds(bot.deps.archive, SystemClock(), base_url=settings.feed_base_url,
                      blog_base_url=settings.blog_base_url)

        async def healthy() -> tuple[int, dict[str, Any]]:
            return 200, {"status": "ok"}

        server = HttpServer.start(web_app(healthy, feeds=feeds), "127.0.0.1", 0)
        try:
            yield bot, f"http://127.0.0.1:{server.port}/feeds"
        finally:
            await server.stop()


async def test_every_tag_and_one_tag(botapi: FakeBotApi, tmp_path: Path) -> None:
    async with served(tmp_path, botapi) as (_, feeds), httpx.AsyncClient(timeout=10) as client:
        everything = await client.get(f"{feeds}/all.atom")
        assert everything.status_code == 200
        assert everything.headers["content-type"] == CONTENT_TYPE
        assert everything.headers["cache-control"] == "no-cache"
        assert everything.headers["etag"].startswith('"')
        assert everything.headers["last-modified"].endswith(" GMT")
        listed = entry_ids(everything)
        assert len(listed) == FIXTURE_DISTINCT_IDS + 2  # fewer than 50: all of them
        assert listed[:2] == ["2406.00001", "2406.00002"]  # the newest digest first
        parsed = feedparser.parse(everything.content)
        assert parsed.feed.id == f"{BASE_URL}/all.atom"

        spaced = await client.get(f"{feeds}/Talking%20Head%20Generation.atom")
        assert spaced.status_code == 200
        assert entry_ids(spaced)
        assert all("Talking Head Generation" in tags for tags in tags_of(spaced))
        assert feedparser.parse(spaced.content).feed.links[0].href == (
            f"{BASE_URL}/Talking%20Head%20Generation.atom")

        chinese = await client.get(f"{feeds}/{quote(CHINESE)}.atom")
        assert chinese.status_code == 200
        assert entry_ids(chinese) == ["2406.00001", "2406.00002"]
        first = feedparser.parse(chinese.content).entries[0]
        assert first.title == "First Chinese Topic Paper"
        assert "关于First Chinese Topic Paper的总结。" in first.content[0].value
        assert "<li>第一个要点。</li>" in first.content[0].value

        # A tag with a slash: %2F keeps it in one path segment.
        slashed = await client.get(f"{feeds}/{quote('元宇宙/虚拟人', safe='')}.atom")
        assert slashed.status_code == 200
        assert all("元宇宙/虚拟人" in tags for tags in tags_of(slashed))
        assert len(entry_ids(slashed)) == 2

        # Tags are matched as the bot matches them: case, spaces, punctuation ignored.
        nerf = await client.get(f"{feeds}/NeRF.atom")
        for spelling in ("nerf", "NERF", "ne-rf"):
            other = await client.get(f"{feeds}/{spelling}.atom")
            assert other.status_code == 200
            assert other.content == nerf.content
            assert other.headers["etag"] == nerf.headers["etag"]


@pytest.mark.parametrize("path", ["nerff.atom", "all.atom.atom", "x" * 300 + ".atom",
                                  "%E2%80%8B.atom"])
async def test_an_unknown_tag_is_404(botapi: FakeBotApi, tmp_path: Path, path: str) -> None:
    async with served(tmp_path, botapi) as (_, feeds), httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{feeds}/{path}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "unknown tag" in response.text
        assert "未知标签" in response.text
        for other in ("nested/NeRF.atom", "NeRF.rss", ".atom"):
            assert (await client.get(f"{feeds}/{other}")).status_code == 404
        assert (await client.get(f"{feeds}/%FF.atom")).status_code == 400  # not UTF-8


async def test_conditional_get_head_and_methods(botapi: FakeBotApi, tmp_path: Path) -> None:
    async with served(tmp_path, botapi) as (_, feeds), httpx.AsyncClient(timeout=10) as client:
        url = f"{feeds}/NeRF.atom"
        full = await client.get(url)
        etag, modified = full.headers["etag"], full.headers["last-modified"]

        same = await client.get(url, headers={"If-None-Match": etag})
        assert same.status_code == 304
        assert same.content == b""
        assert same.headers["etag"] == etag
        weak = await client.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
        assert weak.status_code == 304
        assert (await client.get(url, headers={"If-Modified-Since": modified})).status_code == 304

        assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
        # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
        both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
        assert (await client.get(url, headers=both)).status_code == 200
        old = {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
        assert (await client.get(url, headers=old)).status_code == 200
        assert (await client.get(url, headers={"If-Modified-Since": "yesterday"})
                ).status_code == 200

        head = await client.head(url)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(full.content))
        assert (head.headers["etag"], head.headers["content-type"]) == (etag, CONTENT_TYPE)
        assert (await client.head(url, headers={"If-None-Match": etag})).status_code == 304
        assert (await client.head(f"{feeds}/nerff.atom")).status_code == 404

        for method in ("POST", "PUT", "DELETE"):
            assert (await client.request(method, url)).status_code == 405


async def test_a_new_digest_is_in_the_feed_after_one_scan(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    """The acceptance test: a reader subscribed to NeRF sees the new paper within one scan
    of the digest landing, and gets 304 until then."""
    async with served(tmp_path, botapi) as (bot, feeds), httpx.AsyncClient(timeout=10) as client:
        url = f"{feeds}/NeRF.atom"
        before = await client.get(url)
        etag = before.headers["etag"]
        assert "2406.00101" not in entry_ids(before)

        write_digest(bot.digest_dir, "2024-06-02", "NeRF", ("2406.00101", "A New NeRF Paper"))
        polled = await client.get(url, headers={"If-None-Match": etag})
        assert polled.status_code == 304  # landed, not scanned yet

        await scan_once(bot.deps.ingestor, bot.deps.scan_status)
        after = await client.get(url, headers={"If-None-Match": etag})
        assert after.status_code == 200
        assert after.headers["etag"] != etag
        assert entry_ids(after)[0] == "2406.00101"
        assert entry_ids(after)[1:] == entry_ids(before)
        assert entry_ids(await client.get(f"{feeds}/all.atom"))[0] == "2406.00101"
        again = await client.get(url, headers={"If-None-Match": after.headers["etag"]})
        assert again.status_code == 304


# --- paperfeed run and paperfeed feed as processes -----------------------------------------


async def cli_feed(tmp_path: Path, env: dict[str, str], *args: str) -> bytes:
    """`python -m bot feed ARGS` with the bot's settings: what it wrote to standard output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "feed", *args, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out


async def test_polling_serves_feeds_on_health_port_and_the_cli_writes_the_same(
    botapi: FakeBotApi, tmp_path: Path
) -> None:
    port = free_port()
    folder = digest_folder(tmp_path)
    extra = {"HEALTH_PORT": str(port), "SCAN_INTERVAL": "1", "FEED_BASE_URL": BASE_URL}
    bot = await start_bot(tmp_path, botapi, **extra)
    try:
        await bot.wait_for_line(f"health server listening on 127.0.0.1:{port}")
        await bot.wait_for_line(f"{FIXTURE_DISTINCT_IDS + 2} papers new")  # start-up scan
        url = f"http://127.0.0.1:{port}/feeds/NeRF.atom"
        async with httpx.AsyncClient(timeout=10) as client:
            before = await client.get(url)
            assert before.status_code == 200
            etag = before.headers["etag"]
            write_digest(folder, "2024-06-02", "NeRF", ("2406.00101", "A New NeRF Paper"))
            await bot.wait_for_line("1 papers new")  # the bot's own scan job
            after = await client.get(url, headers={"If-None-Match": etag})
            chinese = await client.get(
                f"http://127.0.0.1:{port}/feeds/{quote(CHINESE)}.atom")
        assert after.status_code == 200
        assert entry_ids(after)[0] == "2406.00101"

        env = bot_env(tmp_path, botapi)
        env.update(extra)
        assert await cli_feed(tmp_path, env, "--tag", "nerf") == after.content
        assert await cli_feed(tmp_path, env, "--tag", CHINESE) == chinese.content
        assert await cli_feed(tmp_path, env, "--out", str(tmp_path / "all.atom")) == b""
        written = httpx.Response(200, content=(tmp_path / "all.atom").read_bytes())
        assert entry_ids(written)[0] == "2406.00101"

        bot.proc.send_signal(signal.SIGTERM)
        code, log = await finish(bot)
        assert code == 0, log
        assert "Traceback" not in log
    finally:
        if bot.proc.returncode is None:
            bot.proc.kill()
            await bot.proc.wait()


async def test_webhook_mode_serves_feeds_on_both_ports(botapi: FakeBotApi, tmp_path: Path) -> None:
    health_port = free_port()
    digest_folder(tmp_path)
    async with webhook_process(tmp_path, botapi, HEALTH_PORT=str(health_port)) as (bot, port):
        await bot.wait_for_line(f"health server listening on 127.0.0.1:{health_port}")
        await bot.wait_for_line(f"{FIXTURE_DISTINCT_IDS + 2} papers new")
        async with httpx.AsyncClient(timeout=10) as client:
            public = await client.get(f"http://127.0.0.1:{port}/feeds/{quote(CHINESE)}.atom")
            private = await client.get(
                f"http://127.0.0.1:{health_port}/feeds/{quote(CHINESE)}.atom")
            cached = await client.get(f"http://127.0.0.1:{port}/feeds/{quote(CHINESE)}.atom",
                                      headers={"If-None-Match": public.headers["etag"]})
            missing = await client.get(f"http://127.0.0.1:{port}/feeds/nerff.atom")
        assert public.status_code == 200
        assert entry_ids(public) == ["2406.00001", "2406.00002"]
        assert private.content == public.content
        assert cached.status_code == 304
        assert missing.status_code == 404
        # Without FEED_BASE_URL the self link is relative to the feed's own URL.
        assert feedparser.parse(public.content).feed.links[0].href == (
            f"{quote(CHINESE)}.atom")
        bot.proc.send_signal(signal.SIGTERM)
        code, log = await finish(bot)
        assert code == 0, log
        assert "Traceback" not in log
