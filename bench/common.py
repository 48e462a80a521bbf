"""What every benchmark shares: the scale, the work folder, result rows, small helpers."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.gen import GenResult, GenSpec

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Scale:
    """How big each benchmark is: the issue's sizes by default, `--quick` scales them down."""

    name: str
    papers: int
    days: int
    queries: int
    broadcast_chats: int  # the 30/s broadcast
    broadcast_window: float  # seconds measured from its first send
    fanout_chats: int  # the paid-broadcast fan-out (one digest of fanout_papers)
    fanout_papers: int
    fanout_deadline: float  # stop waiting for the fan-out to finish after this long

    @property
    def gen_spec(self) -> GenSpec:
        return GenSpec(papers=self.papers, days=self.days)


FULL = Scale("full", papers=100_000, days=1095, queries=1000, broadcast_chats=2000,
             broadcast_window=60.0, fanout_chats=10_000, fanout_papers=10,
             fanout_deadline=300.0)
QUICK = Scale("quick", papers=10_000, days=110, queries=1000, broadcast_chats=200,
              broadcast_window=10.0, fanout_chats=1000, fanout_papers=10,
              fanout_deadline=120.0)


@dataclass(slots=True)
class Row:
    """One line of the results table."""

    bench: str
    metric: str
    target: str
    measured: str
    met: bool | None  # None: informational, no target
    note: str = ""


@dataclass(slots=True)
class Workspace:
    """The work folder: generated digests and the ingested archive, shared by benchmarks."""

    root: Path
    scale: Scale
    gen: GenResult | None = None
    archive_db: Path | None = None  # a database holding the whole generated folder
    extras: dict[str, Any] = field(default_factory=dict)  # results passed between benches

    @property
    def digests(self) -> Path:
        return self.root / f"digests-{self.scale.name}"

    def path(self, name: str) -> Path:
        return self.root / name


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def bot_env(api_url: str, token: str, folder: Path, db: Path, **extra: str) -> dict[str, str]:
    """The environment of a `paperfeed run` subprocess pointed at the loopback server:
    this one's, less settings of the developer's that would change what is measured."""
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_IDS", "BLOG_BASE_URL")}
    env.update(
        TELEGRAM_TOKEN=token,
        BOT_API_URL=api_url,
        DIGEST_DIR=str(folder),
        DATABASE_URL=sqlite_url(db),
        SCAN_INTERVAL="3600",
        LOG_LEVEL="INFO",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        **extra,
    )
    return env


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite database (WAL included) via the backup API."""
    remove_db(dst)
    with sqlite3.connect(src) as source, sqlite3.connect(dst) as target:
        source.backup(target)
    # The backup leaves the target in the source's journal mode (WAL); nothing else to do.


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Timer:
    """Wall and CPU (this process, all threads) seconds of a block."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Timer:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "?"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine() -> dict[str, str]:
    """nproc, CPU model, RAM, Python and SQLite versions, load at start."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "CPU": cpu,
        "RAM": ram,
        "Python": sys.version.split()[0],
        "SQLite": sqlite3.sqlite_version,
        "OS": f"{platform.system()} {platform.release()}",
        "load average at start": load_average(),
    }


def write_json(path: Path, rows: list[Row], info: dict[str, Any]) -> None:
    path.write_text(json.dumps({"machine": info, "rows": [asdict(r) for r in rows]},
                               ensure_ascii=False, indent=2))


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS (kB) of a process from /proc/<pid>/status; {} once it is gone."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                values[name] = int(rest.split()[0])
    except (OSError, ValueError):
        return {}
    return values


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
