"""A job is not expired under a call still running in it (however long the call, against
the expiry TTL), and is charged when it completes. Its own server and database: the TTL
here is 0.3 s, and expiry in the shared database would expire other tests' jobs."""

from __future__ import annotations

import asyncio

import pytest

from saaslitellm.v1 import admin_service_pb2_grpc, job_pb2, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import create_team, ledger_mismatches, private_app
from tests.api.test_job_flow import user

TTL = 0.3
LONG_CALL = "[fake delay_ms=1200]"  # four TTLs
LONG_STREAM = "[fake tokens=12 chunks=12 delay_ms=100]"


@pytest.fixture(scope="module")
async def served(pg, fake_url):
    async with private_app(pg, fake_url, "expiry_calls", job_ttl_seconds=TTL, expiry_interval_seconds=0.05) as running:
        yield running


async def test_calls_longer_than_the_ttl_keep_their_job_open_and_it_is_charged(served):
    application, channel = served
    team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel), credits=10)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)

    answer = await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user(LONG_CALL)]), metadata=team.auth)
    assert answer.response.content
    events = [
        e
        async for e in jobs.LLMCallStream(
            pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(LONG_STREAM)]), metadata=team.auth
        )
    ]
    assert events[-1].done and not events[-1].HasField("error")

    completed = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert completed.status == job_pb2.Job.COMPLETED and completed.costs.credits_charged == 1
    assert completed.costs.total_calls == 2
    assert await ledger_mismatches(application) == []


async def test_a_single_call_job_whose_call_outlasts_the_ttl_completes(served):
    _, channel = served
    team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel), credits=10)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    result = await jobs.CreateAndCall(
        pb.CreateAndCallRequest(job_type="t", messages=[user(LONG_CALL)]), metadata=team.auth
    )
    assert result.status == job_pb2.Job.COMPLETED and result.costs.credits_charged == 1


async def test_a_job_whose_calls_ended_still_expires(served):
    application, channel = served
    team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel), credits=10)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("x")]), metadata=team.auth)
    assert not application.calls._running
    for _ in range(500):  # expiry runs in the server; poll for its effect
        fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
        if fetched.status == job_pb2.Job.EXPIRED:
            break
        await asyncio.sleep(0.01)
    assert fetched.status == job_pb2.Job.EXPIRED
