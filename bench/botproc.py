"""`python -m bench.botproc run`: `paperfeed run` with its rate limiter set by the benchmark.

The product's limiter is `bot.tg.ratelimit.rate_limiter()`: the overall limit kept by a
Pacer, SEND_LIMIT (30) messages in any SEND_WINDOW (1 s), and each chat's own limit.
For Telegram's paid broadcasts (up to 1000 messages a second) the benchmark builds the
very same limiter with only those knobs changed, BENCH_SEND_LIMIT and
BENCH_SEND_WINDOW, by setting the module constants before the bot is assembled; the
product's defaults are untouched. Without them this is exactly `python -m bot`.
BENCH_PROFILE=<file> also writes a cProfile of the run there (where the bot's time goes).
"""

from __future__ import annotations

import os

import bot.tg.ratelimit as tg_ratelimit
from bot.cli import main


def _apply_limits() -> None:
    limit = os.environ.get("BENCH_SEND_LIMIT", "").strip()
    if limit:
        tg_ratelimit.SEND_LIMIT = int(limit)  # read by rate_limiter()
    window = os.environ.get("BENCH_SEND_WINDOW", "").strip()
    if window:
        tg_ratelimit.SEND_WINDOW = float(window)


def _main() -> None:
    _apply_limits()
    profile = os.environ.get("BENCH_PROFILE", "").strip()
    if not profile:
        main()
        return
    import cProfile  # diagnosis: BENCH_PROFILE=<file> writes a cProfile of the whole run

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        main()
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


if __name__ == "__main__":
    _main()
