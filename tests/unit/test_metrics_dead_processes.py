"""With several processes sharing PROMETHEUS_MULTIPROC_DIR, a process that dies without
stopping (SIGKILL, a crash) leaves its live gauges' file behind: its last values (streams
open, pool connections) stayed in every scrape's sum for good. A scrape now drops the live
gauges of processes that no longer exist, and keeps what they counted."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from server.observability.metrics import MetricsEndpoint

# A process of the fleet: a live gauge and a counter in the shared directory, then it waits.
PROCESS = """
import sys
from prometheus_client import Counter, Gauge
Gauge("probe_open", "h", multiprocess_mode="livesum").set(float(sys.argv[1]))
Counter("probe_done", "h").inc(float(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
"""


def start(directory: Path, value: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", PROCESS, str(value)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    return process


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_killed_processs_live_gauges_leave_the_sum_and_its_counters_stay(tmp_path: Path):
    alive, killed = start(tmp_path, 2), start(tmp_path, 5)
    endpoint = MetricsEndpoint("127.0.0.1", 0, multiprocess_dir=str(tmp_path))
    port = endpoint.start()
    try:
        assert scrape(port)["probe_open"] == 7
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        after = scrape(port)
        assert (after["probe_open"], after["probe_done_total"]) == (2, 7)
    finally:
        endpoint.stop()
        alive.communicate("", timeout=10)
