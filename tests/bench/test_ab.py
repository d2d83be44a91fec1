"""The A/B probe (`python -m bench.ab`) runs end to end: two stacks, their servers on the
event loops asked for, every request checked, and a table with both sides. No timing is
asserted; only that the tool measures what it claims to and both loops serve calls."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from devstack.postgres import Postgres
from devstack.stack import ROOT


@pytest.mark.parametrize(("option", "unit"), [((), "calls"), (("--flow",), "jobs"), (("--stream",), "streams")])
def test_ab_probe_compares_the_standard_event_loop_with_uvloop(pg: Postgres, option: tuple[str, ...], unit: str):
    command = [sys.executable, "-m", "bench.ab", "--database-url", pg.admin_url, "--env-a", "SAAS_EVENT_LOOP=asyncio"]
    command += ["--rounds", "5", "--repeats", "1", "--window", "0.3", "--concurrency", "4", *option]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "A: server on the asyncio event loop" in done.stdout
    assert "B: server on the uvloop event loop" in done.stdout
    row = re.search(rf"gRPC {unit}/s at 4 in flight\s+([\d.]+)\s+([\d.]+)", done.stdout)
    assert row, done.stdout
    assert float(row.group(1)) > 0 and float(row.group(2)) > 0
    assert re.search(rf"CPU ms/{unit[:-1]}: server\s+[\d.]+\s+[\d.]+", done.stdout)
    if unit == "streams":
        assert re.search(r"c=1 REST 1st content p50 ms\s+[\d.]+\s+[\d.]+", done.stdout)
