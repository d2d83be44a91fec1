"""`python -m bench` (or `make bench`): measure the whole stack and print one table.

    python -m bench             # default run, a few minutes on 2 cores
    python -m bench --quick     # smoke run, under a minute
    python -m bench --json results.json

Exit status: 0 when every request succeeded and the accounting adds up, 1 when an
accounting check fails, 2 when requests failed (the report says which and why).

PostgreSQL is embedded (in .data/bench-postgres) unless DATABASE_URL is set; the benchmark
creates its own databases in it and drops them at the end. Every other component runs as
a child process on free ports and is stopped at the end, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path

from bench.report import derived, render
from bench.runner import FULL, QUICK, Bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer samples, shorter windows (< 60 s)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every measurement as JSON to PATH")
    parser.add_argument(
        "--keep-logs", type=Path, metavar="DIR", help="keep the stacks' logs in DIR (default: a temporary directory)"
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="profile a server process under load (default: on, off with --quick)",
    )
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    if args.profile is not None:
        mode = dataclasses.replace(mode, profile=args.profile)
    print(f"benchmark ({mode.name} mode): starting; progress below, the table at the end", flush=True)
    bench = Bench(mode, database_url=os.environ.get("DATABASE_URL") or None, data_dir=args.keep_logs)
    try:
        data = asyncio.run(bench.run())
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    data["derived"] = derived(data)
    data["command"] = "python -m bench" + (" --quick" if args.quick else "")
    print()
    machine = data["machine"]
    print(
        f"{machine['date']}  {machine['cpu_model']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"commit {machine['commit']}; {data['mode']} mode, {data['duration_seconds']} s; "
        f"load average at start {machine['load_average_at_start']}"
    )
    print(render(data))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    if not all(r.get("ok") for r in data.get("accounting", {}).values()):
        return 1  # the accounting does not add up: the figures are not "with accounting on"
    return 2 if data.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
