"""A call the provider has answered is recorded even if the database connection its
record would use is lost meanwhile (an idle backend ended by `idle_session_timeout`, a
proxy, a failover): the provider has done the work, and its cost is in no other place.
The record is written again on a new connection; the client gets its answer. The
connections are ended with PostgreSQL's own pg_terminate_backend, as a DBA would."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import psycopg
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2_grpc, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from server.services import calls as calls_module
from tests.api.conftest import create_team, extra_app, fake_requests, private_app
from tests.api.test_job_flow import user

# No background task that would find the lost connection first (the webhook sender's tick,
# the usage rollup): the call's record is the first to use it.
QUIET = {"webhook_interval_seconds": 0, "usage_rollup_interval_seconds": 0}


async def _until_sent(fake_url: str, marker: str) -> None:
    for _ in range(500):
        if any(marker in str(r["body"].get("messages")) for r in await fake_requests(fake_url)):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the fake provider never got {marker}")


def _end_idle_connections(app, database_url: str) -> int:
    """End the backends of the connections this server keeps idle between uses."""
    pids = [kept.conn.info.backend_pid for kept in app.db._kept]
    with psycopg.connect(database_url, autocommit=True) as conn:
        ended = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM unnest(%s::int[]) pid", (pids,)
        )
        return ended.fetchone()[0]


async def test_a_call_answered_while_its_connection_was_lost_is_recorded_and_answered(database_url, fake_url):
    async with extra_app(database_url, fake_url, **QUIET) as (app, channel):
        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = (await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)).job_id
        for rpc, request in ((jobs.LLMCall, pb.LLMCallRequest), (jobs.LLMCallStream, pb.LLMCallStreamRequest)):
            marker = f"lost-{uuid.uuid4().hex}"
            call = rpc(request(job_id=job_id, messages=[user(f"{marker} [fake delay_ms=300]")]), metadata=team.auth)
            answer = asyncio.ensure_future(call if rpc is jobs.LLMCall else _last_event(call))
            await _until_sent(fake_url, marker)
            assert _end_idle_connections(app, database_url) >= 1
            reply = await answer
            assert reply.call_id  # answered, not DATABASE_UNAVAILABLE
            async with app.db.transaction() as conn:
                status = (
                    await conn.execute(text("SELECT status FROM llm_calls WHERE call_id = :c"), {"c": reply.call_id})
                ).scalar_one()
            assert status == "succeeded"
        assert await call.code() == grpc.StatusCode.OK


async def _last_event(stream):
    events = [event async for event in stream]
    assert events[-1].done and not events[-1].HasField("error"), events[-1]
    return events[0]  # the first carries the call's id


async def test_a_call_whose_context_read_finds_its_connection_lost_reads_it_again(database_url, fake_url):
    """Its first statement is a read: it is read again on a new connection, so the first
    call after the idle connections were ended does not fail."""
    async with extra_app(database_url, fake_url, **QUIET) as (app, channel):
        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = (await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)).job_id
        await jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("first")]), metadata=team.auth)
        assert _end_idle_connections(app, database_url) >= 1
        reply = await jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("after")]), metadata=team.auth)
        assert reply.call_id


async def test_a_stream_whose_record_cannot_be_written_ends_with_a_last_event_saying_so(
    database_url, fake_url, monkeypatch
):
    """After streaming began, an error is the stream's last event, as an upstream failure
    is: a status after the first event never reaches a REST client. The record's retries
    are cut to none here (30 s of them otherwise)."""
    monkeypatch.setattr(calls_module, "RECORD_RETRY_SECONDS", 0.0)
    async with extra_app(database_url, fake_url, **QUIET) as (app, channel):
        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = (await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)).job_id
        for rpc, request, extra in (
            (jobs.LLMCallStream, pb.LLMCallStreamRequest, {"job_id": job_id}),
            (jobs.CreateAndCallStream, pb.CreateAndCallStreamRequest, {"job_type": "single"}),
        ):
            marker = f"lost-{uuid.uuid4().hex}"
            stream = rpc(request(messages=[user(f"{marker} [fake delay_ms=300]")], **extra), metadata=team.auth)
            events = asyncio.ensure_future(_all(stream))
            await _until_sent(fake_url, marker)
            assert _end_idle_connections(app, database_url) >= 1
            last = (await events)[-1]
            assert last.done and last.error.code == grpc.StatusCode.UNAVAILABLE.value[0], last
            assert "database is unavailable" in last.error.message
            assert await stream.code() == grpc.StatusCode.OK


async def _all(stream) -> list:
    return [event async for event in stream]


async def test_the_first_call_after_every_connection_was_ended_is_served(pg, fake_url):
    """All of a server's connections ended at once, as a PostgreSQL restart ends them: its
    key cache stops trusting itself (its LISTEN connection is gone), so the key is read
    from the database, on a lost connection; that read, like the call's context read, is
    done again on a new one. (6 of 8 such calls failed.)"""
    async with private_app(pg, fake_url, "lost_all", **QUIET) as (app, channel):
        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = (await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)).job_id
        await jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("first")]), metadata=team.auth)
        database = app.settings.database_url
        with psycopg.connect(database, autocommit=True) as conn:
            ended = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
        assert ended >= 2  # the pool's, the kept ones and the listener's
        reply = await jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("after")]), metadata=team.auth)
        assert reply.call_id
