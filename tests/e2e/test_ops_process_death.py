"""A server process that dies (SIGKILL: no drain) behind Envoy: the requests Envoy sends it
before its health check sees it gone never reached a server, so Envoy sends them to the
other process instead of answering 503 (the virtual host's retry policy, connect failures
only). Its own stack: the test kills a process."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
import requests

from devstack.postgres import Postgres
from devstack.stack import Stack
from tests.conftest import own_stack
from tests.e2e.conftest import ADMIN_HEADERS, rest_team


@pytest.fixture(scope="module")
def two(pg: Postgres, tmp_path_factory) -> Iterator[Stack]:
    with own_stack(pg, tmp_path_factory, "death", with_litellm=False, server_processes=2) as stack:
        yield stack


def test_requests_right_after_a_process_dies_go_to_the_other_one(two):
    api = f"{two.api_url}/api"
    team = rest_team(api, credits=100, models=("fake-gpt",))
    job_id = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10).json()[
        "job_id"
    ]
    body = {"messages": [{"role": "user", "content": "hi"}]}
    victim, port = two.servers[0], two.grpc_ports[0]
    victim.signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    # Once Envoy has seen the dead process's connections close: a request it had already
    # written to one of them may have been read, and is not sent again (503).
    deadline = time.monotonic() + 10
    while connections_to(two, port) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert connections_to(two, port) == 0

    # Then at once, before a health check can mark it down: about half of these would be
    # sent to the dead process, and refused at its port.
    statuses = [
        requests.post(f"{api}/jobs/{job_id}/llm-call", json=body, headers=team.headers, timeout=10).status_code
        for _ in range(10)
    ]
    statuses += [requests.get(f"{api}/jobs/{job_id}", headers=team.headers, timeout=10).status_code for _ in range(20)]
    scrapes = [requests.get(f"{two.api_url}/metrics", headers=ADMIN_HEADERS, timeout=10) for _ in range(10)]
    assert statuses == [200] * 30
    assert [s.status_code for s in scrapes] == [200] * 10, scrapes[0].text[:200]
    calls = requests.get(f"{api}/jobs/{job_id}", headers=team.headers, timeout=10).json()["calls"]
    assert len(calls) == 10  # each call made and recorded once


def connections_to(stack: Stack, port: int) -> int:
    """Connections Envoy holds open to the server process on `port` (its admin /clusters)."""
    clusters = requests.get(f"http://127.0.0.1:{stack.config.ports.envoy_admin}/clusters", timeout=5).text
    prefix = f"grpc_server::127.0.0.1:{port}::cx_active::"
    return next(int(line[len(prefix) :]) for line in clusters.splitlines() if line.startswith(prefix))
