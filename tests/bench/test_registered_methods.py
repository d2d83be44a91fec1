"""The handler-table probe (`python -m bench.registered_methods`) runs end to end: both
variants serve every RPC it sends, and it prints the server's CPU per RPC of each. No
timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys

from devstack.stack import ROOT


def test_the_probe_measures_both_variants() -> None:
    command = [sys.executable, "-m", "bench.registered_methods", "--rounds", "1", "--rpcs", "320"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for variant in ("registered", "table"):
        assert re.search(rf"round 1/1 {variant}: [\d.]+ ms of server CPU per RPC", done.stdout), done.stdout
    assert re.search(r"median: registered [\d.]+ ms, table [\d.]+ ms, table/registered \S+", done.stdout)
