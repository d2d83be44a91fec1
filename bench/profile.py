"""Where a server process spends its CPU: cProfile, summarised by library and by our layer.

`ProfiledStack` runs each server process as `python -m bench.profiled_server`, which is the
server with cProfile switched on by SIGUSR1 and off (and written) by SIGUSR2, so the profile
covers the measurement window only. `breakdown()` adds up the functions' own time by the
package they live in, so the answer reads "SQLAlchemy 30%, psycopg 12%, httpx 10%..."
rather than as a list of thousands of functions. Time in C functions (builtins) goes to
the package of the Python function that called them. Waiting in epoll is idle time and is
left out. cProfile roughly doubles the server's CPU per call, so read shares, not absolute
times, and never mix a profiled run with the timed ones.
"""

from __future__ import annotations

import pstats
import re
import sys
from pathlib import Path

from devstack.stack import Stack

_SITE = re.compile(r"site-packages/([A-Za-z0-9_]+)")
_OURS = re.compile(r"/(server|saaslitellm)/(?:v1/)?([a-z_]+)")
_GROUPS = {
    "httpcore": "httpx (httpx, httpcore, h11, anyio)",
    "httpx": "httpx (httpx, httpcore, h11, anyio)",
    "h11": "httpx (httpx, httpcore, h11, anyio)",
    "anyio": "httpx (httpx, httpcore, h11, anyio)",
    "sqlalchemy": "SQLAlchemy (incl. greenlet)",
    "greenlet": "SQLAlchemy (incl. greenlet)",
    "psycopg": "psycopg",
    "grpc": "grpc.aio",
    "google": "protobuf",
}


class ProfiledStack(Stack):
    """A devstack Stack whose server processes run under cProfile."""

    def profile_path(self, port: int) -> Path:
        return self.config.data_dir / f"server-{port}.prof"

    def server_command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "bench.profiled_server", str(self.profile_path(port))]


def _category(filename: str) -> str:
    if filename == "~":
        return "~"
    site = _SITE.search(filename)
    if site:
        return _GROUPS.get(site.group(1), site.group(1))
    ours = _OURS.search(filename)
    if ours:
        return f"our code: {ours.group(1)}/{ours.group(2)}" if ours.group(1) == "server" else "generated protos"
    if "/asyncio/" in filename:
        return "asyncio event loop"
    if "<frozen importlib" in filename:
        return "imports"
    return "Python stdlib / other"


def _idle(function: str) -> bool:
    return "poll' of 'select.epoll" in function or "select.select" in function


def breakdown(path: Path) -> dict[str, float]:
    """Share of the profiled CPU time (0..1) by package; idle waiting excluded."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, tottime, _cumtime, callers) in stats.items():
        if _idle(function):
            continue
        category = _category(filename)
        if category != "~":
            totals[category] = totals.get(category, 0.0) + tottime
            continue
        # A C function: split its time over its Python callers' packages.
        caller_time = sum(entry[2] for entry in callers.values()) or 1.0
        for (caller_file, _l, _f), entry in callers.items():
            caller_category = _category(caller_file)
            if caller_category == "~":
                caller_category = "C builtins"
            totals[caller_category] = totals.get(caller_category, 0.0) + tottime * entry[2] / caller_time
    whole = sum(totals.values()) or 1.0
    return dict(sorted(((k, v / whole) for k, v in totals.items()), key=lambda kv: -kv[1]))


def top_functions(path: Path, limit: int = 15) -> list[tuple[str, float]]:
    """The functions with the most own time (seconds), idle waiting excluded."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    rows = [
        (f"{Path(filename).name}:{line}({function})" if filename != "~" else function, tottime)
        for (filename, line, function), (_cc, _nc, tottime, _ct, _callers) in stats.items()
        if not _idle(function)
    ]
    return sorted(rows, key=lambda row: -row[1])[:limit]
