"""Two server processes behind Envoy, over REST: credits, idempotency and key revocation
hold whichever process serves a request (tests/integration/test_credit_races.py covers the
same races over native gRPC, straight to each process); and SIGTERM to one of them
loses nothing: its streams finish, Envoy sends new requests to the other one."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest
import requests

from devstack.postgres import Postgres
from devstack.stack import Stack
from saaslitellm.v1 import job_service_pb2, job_service_pb2_grpc
from tests.conftest import own_stack
from tests.e2e.conftest import ADMIN_HEADERS, rest_team
from tests.integration.test_credit_races import invariants


@pytest.fixture(scope="module")
def two(pg: Postgres, tmp_path_factory) -> Iterator[Stack]:
    with own_stack(pg, tmp_path_factory, "two", with_litellm=False, server_processes=2) as stack:
        yield stack


def served_by(stack: Stack, request_ids: set[str]) -> dict[str, int]:
    """How many of these requests each server process logged, once every one is logged (a
    process writes a request's line just after its response)."""
    deadline = time.monotonic() + 10
    while True:
        counts = {}
        for child in stack.servers:
            text = child.log_path.read_text()
            lines = [json.loads(line) for line in text.splitlines() if '"saaslitellm.access"' in line]
            counts[child.name] = sum(1 for line in lines if line["request_id"] in request_ids)
        if sum(counts.values()) >= len(request_ids) or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


def test_credits_stay_exact_when_envoy_spreads_a_race_over_two_processes(two):
    api = f"{two.api_url}/api"
    team = rest_team(api, credits=30, models=("fake-gpt",))
    session = requests.Session()

    def create(_: int) -> requests.Response:
        return session.post(f"{api}/jobs/create", json={"job_type": "race"}, headers=team.headers, timeout=30)

    with ThreadPoolExecutor(16) as pool:
        created = list(pool.map(create, range(90)))
    assert sorted({r.status_code for r in created}) == [200, 429]
    jobs = [r.json()["job_id"] for r in created if r.status_code == 200]
    assert len(jobs) == 30
    assert all(r.json()["details"][0]["reason"] == "INSUFFICIENT_CREDITS" for r in created if r.status_code == 429)

    def complete(index: int) -> requests.Response:
        job_id = jobs[index % 30]
        status = "failed" if index % 30 < 5 else "completed"
        return session.post(f"{api}/jobs/{job_id}/complete", json={"status": status}, headers=team.headers, timeout=30)

    with ThreadPoolExecutor(16) as pool:
        completed = list(pool.map(complete, range(90)))  # each job three times, in parallel
    assert {r.status_code for r in completed} == {200}
    ids = {r.headers["x-request-id"] for r in created + completed}
    assert all(count > 0 for count in served_by(two, ids).values()), "Envoy should use both processes"
    remaining, ledger_amount, reserved, ledger_reserved, charges = invariants(two.postgres.url, team.team_id)
    assert (remaining, ledger_amount, reserved, ledger_reserved, charges) == (5, 5, 0, 0, 25)


def test_idempotent_creates_through_envoy_reserve_once(two):
    api = f"{two.api_url}/api"
    team = rest_team(api, credits=5, models=("fake-gpt",))
    headers = {**team.headers, "Idempotency-Key": "order-42"}

    def create(_: int) -> requests.Response:
        return requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=headers, timeout=30)

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(create, range(40)))
    assert {r.status_code for r in replies} == {200}
    assert len({r.json()["job_id"] for r in replies}) == 1
    assert all(count > 0 for count in served_by(two, {r.headers["x-request-id"] for r in replies}).values())
    assert invariants(two.postgres.url, team.team_id)[2:4] == (1, 1)


def test_a_key_revoked_through_envoy_is_refused_by_both_processes_at_once(two):
    api = f"{two.api_url}/api"
    team = rest_team(api, models=("fake-gpt",))
    probe = job_service_pb2.GetJobRequest(job_id=str(uuid.uuid4()))
    auth = (("authorization", team.headers["Authorization"]),)
    stubs = [job_service_pb2_grpc.JobServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}")) for port in two.grpc_ports]

    def accepted(stub) -> bool:
        try:
            stub.GetJob(probe, metadata=auth, timeout=10)
        except grpc.RpcError as error:
            assert error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED)
            return error.code() == grpc.StatusCode.NOT_FOUND
        raise AssertionError("a random job id was found")

    assert all(accepted(stub) for stub in stubs)  # cached by both processes now
    keys = requests.get(f"{api}/teams/{team.team_id}/keys", headers=ADMIN_HEADERS, timeout=10).json()["keys"]
    revoked = requests.post(
        f"{api}/teams/{team.team_id}/keys/{keys[0]['key_id']}/revoke", json={}, headers=ADMIN_HEADERS, timeout=10
    )
    assert revoked.status_code == 200
    assert not any(accepted(stub) for stub in stubs)
    replies = [
        requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10) for _ in range(20)
    ]
    assert {r.status_code for r in replies} == {401}
    assert all(count > 0 for count in served_by(two, {r.headers["x-request-id"] for r in replies}).values())


def read_stream(api: str, job_id: str, headers: dict) -> list[dict]:
    with requests.post(
        f"{api}/jobs/{job_id}/llm-call-stream",
        json={"messages": [{"role": "user", "content": "story [fake tokens=12 chunks=12 delay_ms=150]"}]},
        headers=headers,
        stream=True,
        timeout=60,
    ) as response:
        assert response.status_code == 200, response.text
        return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith(b"data: ")]


def test_sigterm_lets_streams_finish_and_envoy_moves_new_requests_to_the_other_process(two):
    """Last in the module: it stops server-0."""
    api = f"{two.api_url}/api"
    team = rest_team(api, credits=100, models=("fake-gpt",))
    jobs = [
        requests.post(f"{api}/jobs/create", json={"job_type": "drain"}, headers=team.headers, timeout=10).json()[
            "job_id"
        ]
        for _ in range(8)
    ]
    with ThreadPoolExecutor(8) as pool:
        streams = [pool.submit(read_stream, api, job_id, team.headers) for job_id in jobs]  # about 1.8 s each
        victim, port = two.servers[0], two.grpc_ports[0]
        deadline = time.monotonic() + 10
        while active_requests(two, port) < 2 and time.monotonic() < deadline:  # streams in flight on server-0
            time.sleep(0.02)
        assert active_requests(two, port) >= 2
        victim.signal(signal.SIGTERM)

        # New requests keep coming, several at a time, while server-0 drains and stops:
        # none may fail (without the drain, those Envoy sends before its next health
        # check would find server-0 refusing calls).
        outcomes: list[tuple[int, str]] = []
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set():
                reply = requests.get(f"{api}/jobs/{jobs[0]}", headers=team.headers, timeout=10)
                outcomes.append((reply.status_code, reply.headers.get("x-request-id", "")))

        askers = [threading.Thread(target=keep_asking) for _ in range(6)]
        for asker in askers:
            asker.start()
        results = [future.result(timeout=60) for future in streams]
        victim.process.wait(timeout=30)
        after_exit = len(outcomes)
        while len(outcomes) < after_exit + 20:
            time.sleep(0.01)
        stop.set()
        for asker in askers:
            asker.join()

    assert victim.process.returncode == 0
    assert all(events[-1]["done"] is True and "error" not in events[-1] for events in results)
    assert {status for status, _ in outcomes} == {200}, [o for o in outcomes if o[0] != 200][:3]
    late = {request_id for _, request_id in outcomes[after_exit:]}
    assert served_by(two, late) == {"server-0": 0, "server-1": len(late)}
    # Nothing lost: every streamed call is recorded, whichever process served it.
    with psycopg.connect(two.postgres.url) as conn:
        recorded = conn.execute(
            "SELECT count(*) FROM llm_calls WHERE job_id = ANY(%s::uuid[]) AND status = 'succeeded'", (jobs,)
        ).fetchone()[0]
    assert recorded == len(jobs)


def active_requests(stack: Stack, port: int) -> int:
    """Requests Envoy has in flight to the server process on `port` (its admin /clusters)."""
    clusters = requests.get(f"http://127.0.0.1:{stack.config.ports.envoy_admin}/clusters", timeout=5).text
    prefix = f"grpc_server::127.0.0.1:{port}::rq_active::"
    return next(int(line[len(prefix) :]) for line in clusters.splitlines() if line.startswith(prefix))
