"""`python -m bench.botproc run`: `paperfeed run` with its rate limiter at BENCH_SEND_RATE.

The product's limiter is `bot.tg.app.rate_limiter()`: AIORateLimiter with a bucket of one
refilled SEND_RATE (28) times a second. For Telegram's paid broadcasts (up to 1000
messages a second) the benchmark builds the very same limiter with only that knob
raised, by setting the module constant before the bot is assembled; the product's
defaults are untouched. Without BENCH_SEND_RATE this is exactly `python -m bot`.
BENCH_PROFILE=<file> also writes a cProfile of the run there (where the bot's time goes).
"""

from __future__ import annotations

import os

import bot.tg.app as tg_app
from bot.cli import main


def _apply_rate() -> None:
    rate = os.environ.get("BENCH_SEND_RATE", "").strip()
    if rate:
        tg_app.SEND_RATE = float(rate)  # type: ignore[assignment]  # read by rate_limiter()


def _main() -> None:
    _apply_rate()
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
