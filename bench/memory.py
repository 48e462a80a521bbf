"""Benchmark 4, memory: peak RSS of `paperfeed run` while it fans a digest out.

The process is the paid-broadcast fan-out's bot (bench/fanout.py): `python -m bot run`
(limiter rate raised through bench/botproc.py) with the whole generated archive, its
related-paper vectors (the bot builds their index at start) and `fanout_chats`
subscribers, queueing and sending one digest to all of them. Its VmHWM
(/proc/<pid>/status) is sampled every 0.2 s until it exits. When the fan-out benchmark
ran in the same invocation its run is reused, not repeated.
"""

from __future__ import annotations

import re

from bench.common import Row, Workspace
from bench.fanout import Log, run_paid, specs

TARGET_RSS_MB = 200.0


def run(ws: Workspace, log: Log = print) -> list[Row]:
    result = run_paid(ws, log)
    paid = specs(ws)[1]
    assert ws.gen is not None
    mb = result.vmhwm_kb / 1024
    done = "all delivered" if result.completed else f"{result.accepted:,} delivered"
    found = re.search(r"index of (\d+) papers built \(([\d.]+) MB\)", result.index_line)
    index = (f"related index of {int(found[1]):,} papers ({found[2]} MB) loaded"
             if found else "NO related index loaded")
    return [Row("memory", "peak RSS of `paperfeed run`", f"< {TARGET_RSS_MB:.0f} MB",
                f"{mb:.0f} MB", mb < TARGET_RSS_MB and found is not None,
                f"VmHWM during the fan-out to {paid.chats:,} subscribers ({done}), "
                f"archive of {ws.gen.papers:,} papers, {index}")]
