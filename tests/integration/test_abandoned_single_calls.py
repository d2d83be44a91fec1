"""A single-call request whose server process dies mid-call: its job must not hold its
credit and its idempotency key for the whole expiry TTL. Two real server processes on one
PostgreSQL (devstack); one is killed (SIGKILL) while its call waits on the fake provider,
and the client retries under the same key on the other."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator

import grpc
import httpx
import psycopg
import pytest
from google.protobuf import struct_pb2

from devstack.postgres import Postgres
from devstack.stack import Stack
from saaslitellm.v1 import chat_pb2, job_pb2, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from tests.conftest import own_stack
from tests.integration.test_credit_races import channels_to, make_team

# A TTL of 100 s: activity is refreshed every second, and a single-call job idle for 5 s
# (server.domain.jobs.single_call_abandon_seconds) is abandoned; the reaper runs twice a second.
SERVER_ENV = {"SAAS_JOB_TTL_SECONDS": "100", "SAAS_EXPIRY_INTERVAL_SECONDS": "0.5"}


@pytest.fixture(scope="module")
def two(pg: Postgres, tmp_path_factory) -> Iterator[Stack]:
    with own_stack(
        pg,
        tmp_path_factory,
        "abandon",
        with_litellm=False,
        with_dashboard=False,
        server_processes=2,
        server_env=SERVER_ENV,
    ) as stack:
        yield stack


def user(text: str) -> chat_pb2.ChatMessage:
    return chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))


async def sent_to_provider(fake_url: str, marker: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(500):
            received = (await client.get(f"{fake_url}/_fake/requests")).json()["requests"]
            if any(marker in str(r["body"]["messages"]) for r in received):
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the call never reached the provider")


async def test_a_single_call_job_whose_process_died_expires_soon_and_frees_its_key(two):
    async with channels_to(two.grpc_ports) as (victim, survivor):
        team_id, auth = await make_team(survivor, credits=10)
        key, marker = f"order-{uuid.uuid4().hex}", f"doomed-{uuid.uuid4().hex}"
        # A single-call stream on the survivor that outlasts the abandonment window (about
        # 7 s, against 5 s): its process refreshes its job, which is never taken for abandoned.
        long_stream = job_service_pb2_grpc.JobServiceStub(survivor).CreateAndCallStream(
            pb.CreateAndCallStreamRequest(job_type="long", messages=[user("[fake tokens=14 chunks=14 delay_ms=500]")]),
            metadata=auth,
        )
        reading = asyncio.ensure_future(_all(long_stream))

        doomed = asyncio.ensure_future(
            job_service_pb2_grpc.JobServiceStub(victim).CreateAndCall(
                pb.CreateAndCallRequest(
                    job_type="order", idempotency_key=key, messages=[user(f"{marker} [fake delay_ms=60000]")]
                ),
                metadata=auth,
            )
        )
        await sent_to_provider(two.fake_url, marker)
        two.servers[0].signal(signal.SIGKILL)  # the process dies mid-call
        (lost,) = await asyncio.gather(doomed, return_exceptions=True)
        assert isinstance(lost, grpc.aio.AioRpcError) and lost.code() == grpc.StatusCode.UNAVAILABLE

        jobs = job_service_pb2_grpc.JobServiceStub(survivor)
        retry = pb.CreateAndCallRequest(job_type="order", idempotency_key=key, messages=[user("again")])
        started, refusals = time.monotonic(), 0
        while True:  # the client retries its request under the same key
            try:
                answer = await jobs.CreateAndCall(retry, metadata=auth)
                break
            except grpc.aio.AioRpcError as refused:  # the lost request's job is still open
                assert refused.code() == grpc.StatusCode.ALREADY_EXISTS, refused.details()
                refusals += 1
                assert time.monotonic() - started < 20, "the abandoned job was never expired"
                await asyncio.sleep(0.2)
        assert refusals > 0  # it was refused while the job could still have been running
        assert answer.status == job_pb2.Job.COMPLETED and answer.costs.credits_charged == 1

        events = await reading
        assert events[-1].done and not events[-1].HasField("error") and events[-1].job_status == job_pb2.Job.COMPLETED
    with psycopg.connect(two.postgres.url) as conn:
        expired = conn.execute(
            "SELECT status, error_message FROM jobs WHERE team_id = %s AND job_type = 'order' AND status <> 'completed'",
            (team_id,),
        ).fetchall()
        remaining, reserved = conn.execute(
            "SELECT credits_allocated - credits_used, credits_reserved FROM teams WHERE team_id = %s", (team_id,)
        ).fetchone()
    ((status, why),) = expired
    assert status == "expired" and "no server process ran its call" in why, why
    assert (remaining, reserved) == (8, 0)  # the retried order and the long stream, charged once each


async def _all(stream) -> list:
    return [event async for event in stream]
