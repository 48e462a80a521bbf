"""Run paperfeed's benchmarks and print one table: `python -m bench.run [--quick]`.

    .venv/bin/python -m bench.run                      # the full sizes (about 12 min)
    .venv/bin/python -m bench.run --quick              # 10k papers, 200/1000 chats, 10 s
    .venv/bin/python -m bench.run --only ingest,search
    .venv/bin/python -m bench.run --workdir /tmp/pf    # keep (and reuse) generated data

Generated digests and databases go to a temporary folder that is removed afterwards,
unless --workdir is given: then they stay, and a later run with the same sizes reuses
the generated folder and the ingested archive (search, fan-out and memory need it).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import fanout, ingest, interactive, landing, memory, related, search
from bench.common import FULL, QUICK, Row, Workspace, machine, write_json

BENCHES: dict[str, Callable[..., list[Row]]] = {
    "ingest": ingest.run,
    "search": search.run,
    "fanout": fanout.run,
    "memory": memory.run,
    "interactive": interactive.run,
    "faults": fanout.run_faults,
    "related": related.run,
    "landing": landing.run,
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="scaled down: 10 000 papers, 200 / 1 000 chats, 10 s window")
    parser.add_argument("--only", default=",".join(BENCHES),
                        help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--workdir", type=Path,
                        help="keep generated data here and reuse it on the next run")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(BENCHES)}")
    args.only = wanted
    return args


def _table(rows: list[Row], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("benchmark", style="bold")
    table.add_column("metric")
    table.add_column("target")
    table.add_column("measured", justify="right")
    table.add_column("met?", justify="center")
    table.add_column("details", overflow="fold", max_width=90)
    for row in rows:
        met = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: ""}[row.met]
        table.add_row(row.bench, row.metric, row.target, row.measured, met, row.note)
    return table


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    console = Console(width=None if Console().is_terminal else 200)
    info = machine()
    scale = QUICK if args.quick else FULL
    root = args.workdir or Path(tempfile.mkdtemp(prefix="paperfeed-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root=root, scale=scale)
    ws.extras["keep"] = args.workdir is not None

    def log(message: str) -> None:
        console.log(message)

    rows: list[Row] = []
    started = time.perf_counter()
    try:
        for name in args.only:
            began = time.perf_counter()
            try:
                rows += BENCHES[name](ws, log)
            except Exception as exc:  # one broken benchmark must not hide the others
                console.print_exception()
                rows.append(Row(name, "error", "", type(exc).__name__, False, str(exc)[:300]))
            log(f"{name} took {time.perf_counter() - began:.0f} s")
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    info["benchmark time"] = f"{time.perf_counter() - started:.0f} s ({scale.name} mode)"
    info["load average at end"] = machine()["load average at start"]
    console.print(_table(rows, f"paperfeed benchmarks ({scale.name})"))
    machine_table = Table(title="machine", show_header=False)
    for key, value in info.items():
        machine_table.add_row(key, value)
    console.print(machine_table)
    if args.json:
        write_json(args.json, rows, info)
    return 0 if all(row.met is not False for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
