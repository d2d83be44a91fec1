"""Calls through the REST gateway still running when a server's shutdown grace runs out
are told why: a plain call in its error, a stream in its last event, as every failure
after streaming began is. Cancelled by grpc.aio instead, a stream would just end (Envoy
drops the trailing status of a response it has begun), and a REST client could not tell
a shutdown from a network cut."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from devstack.postgres import Postgres
from devstack.stack import Stack
from server.services.single_call import SHUTDOWN_CUT
from tests.conftest import own_stack
from tests.e2e.conftest import rest_team

SLOW = "[fake tokens=40 chunks=40 delay_ms=500]"  # 20 s of chunks: longer than the grace


@pytest.fixture(scope="module")
def stopping(pg: Postgres, tmp_path_factory) -> Iterator[Stack]:
    env = {"SAAS_SHUTDOWN_GRACE_SECONDS": "2", "SAAS_SHUTDOWN_DRAIN_SECONDS": "0"}
    with own_stack(pg, tmp_path_factory, "stopping", with_litellm=False, server_env=env) as stack:
        yield stack


def test_rest_calls_cut_by_a_shutdown_are_told_why_and_a_single_call_job_is_free(stopping):
    api = f"{stopping.api_url}/api"
    team = rest_team(api, credits=10, models=("fake-gpt",))
    job_id = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10).json()[
        "job_id"
    ]
    streams = [
        (f"{api}/jobs/{job_id}/llm-call-stream", {}),
        (f"{api}/jobs/create-and-call-stream", {"job_type": "single"}),
    ]
    opened = [
        requests.post(
            url,
            json={**body, "messages": [{"role": "user", "content": f"hi {SLOW}"}]},
            headers=team.headers,
            stream=True,
            timeout=30,
        )
        for url, body in streams
    ]
    lines = [response.iter_lines() for response in opened]
    firsts = [_first_content(each) for each in lines]  # both running, content under way
    marker = f"plain-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(1) as pool:
        plain = pool.submit(
            requests.post,
            f"{api}/jobs/{job_id}/llm-call",
            json={"messages": [{"role": "user", "content": f"{marker} [fake delay_ms=30000]"}]},
            headers=team.headers,
            timeout=30,
        )
        _until_sent(stopping.fake_url, marker)  # the plain call waits on the provider
        stopping.servers[0].signal(signal.SIGTERM)
        cut = plain.result()
    assert cut.status_code == 503, cut.text
    assert cut.json()["message"] == SHUTDOWN_CUT and cut.json()["details"][0]["reason"] == "SERVER_SHUTTING_DOWN"

    lasts = [[json.loads(line[6:]) for line in each if line.startswith(b"data: ")][-1] for each in lines]
    for last in lasts:
        assert last["done"] is True, last
        assert last["error"]["code"] == 14 and last["error"]["message"] == SHUTDOWN_CUT, last
        assert last["error"]["details"][0]["reason"] == "SERVER_SHUTTING_DOWN", last
    assert lasts[1]["job_status"] == "FAILED"  # the single call's job: failed, so free
    stopping.servers[0].process.wait(timeout=30)
    assert stopping.servers[0].process.returncode == 0

    single_job = firsts[1]["job_id"]
    with psycopg.connect(stopping.postgres.url) as conn:
        calls = conn.execute(
            "SELECT job_id::text, status, error_reason FROM llm_calls WHERE job_id IN (%s, %s) ORDER BY job_id",
            (job_id, single_job),
        ).fetchall()
        single = conn.execute("SELECT status, credits_charged FROM jobs WHERE job_id = %s", (single_job,)).fetchone()
    # Each recorded as cancelled, with what it had produced, and why.
    assert sorted(calls) == sorted(
        [(job_id, "cancelled", "SERVER_SHUTTING_DOWN")] * 2 + [(single_job, "cancelled", "SERVER_SHUTTING_DOWN")]
    )
    assert single == ("failed", 0)


def _until_sent(fake_url: str, marker: str) -> None:
    for _ in range(500):
        prompts = requests.get(f"{fake_url}/_fake/requests", timeout=5).json()["requests"]
        if any(marker in str(request["body"].get("messages")) for request in prompts):
            return
        time.sleep(0.01)
    raise AssertionError(f"the fake provider never got {marker}")


def _first_content(lines: Iterator[bytes]) -> dict:
    """The stream's events up to its first with content; that event, with the job's id."""
    job_id = ""
    for line in lines:
        if line.startswith(b"data: "):
            event = json.loads(line[6:])
            job_id = job_id or event.get("job_id", "")
            if event.get("content"):
                return {**event, "job_id": job_id}
    raise AssertionError("the stream ended before any content")
