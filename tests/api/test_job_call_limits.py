"""A team's limit on LLM calls per job (Team.max_calls_per_job): a call past it is refused
before it reaches the provider, changes nothing, and the job can still be completed.
Concurrent calls in one job over two processes: tests/integration/test_credit_races.py."""

from __future__ import annotations

import grpc
import httpx

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import job_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import ADMIN, create_team
from tests.api.test_job_flow import error_info, expect_error, user
from tests.api.test_rate_limits import recorded_calls


def call(jobs, team, job_id: str, text_: str = "hi"):
    return jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user(text_)]), metadata=team.auth)


async def provider_requests(fake_url: str, job_marker: str) -> int:
    """Requests the fake provider received whose prompt carries `job_marker`."""
    async with httpx.AsyncClient() as client:
        received = (await client.get(f"{fake_url}/_fake/requests")).json()["requests"]
    return sum(job_marker in str(r["body"]["messages"]) for r in received)


async def test_calls_past_the_limit_are_refused_before_the_provider_and_change_nothing(app, admin, jobs, fake_url):
    team = await create_team(admin, max_calls_per_job=2)
    shown = await admin.GetTeam(admin_pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert shown.max_calls_per_job == 2
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    marker = f"marker-{job.job_id}"
    # A failed call counts: it went to the provider.
    await expect_error(
        call(jobs, team, job.job_id, f"{marker} [fake status=400]"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "UPSTREAM_REJECTED",
    )
    await call(jobs, team, job.job_id, marker)

    refused = await expect_error(
        call(jobs, team, job.job_id, marker), grpc.StatusCode.FAILED_PRECONDITION, "JOB_CALL_LIMIT_REACHED"
    )
    assert "made 2 LLM calls" in refused.details() and "new job" in refused.details()
    assert dict(error_info(refused).metadata) == {"job_id": job.job_id, "max_calls_per_job": "2"}
    stream = jobs.LLMCallStream(pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(marker)]), metadata=team.auth)
    await expect_error(
        anext(aiter(stream)), grpc.StatusCode.FAILED_PRECONDITION, "JOB_CALL_LIMIT_REACHED"
    )  # streams too, before their first event
    assert await provider_requests(fake_url, marker) == 2
    assert await recorded_calls(app, job.job_id) == 2

    done = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert done.costs.credits_charged == 1 and done.costs.total_calls == 2
    # A new job has its own count.
    other = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    await call(jobs, team, other.job_id)


async def test_the_limit_can_be_raised_removed_and_is_checked(admin, jobs):
    team = await create_team(admin, max_calls_per_job=1)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    await call(jobs, team, job.job_id)
    await expect_error(call(jobs, team, job.job_id), grpc.StatusCode.FAILED_PRECONDITION, "JOB_CALL_LIMIT_REACHED")

    raised = await admin.UpdateTeam(
        admin_pb.UpdateTeamRequest(team_id=team.team_id, max_calls_per_job=2), metadata=ADMIN
    )
    assert raised.max_calls_per_job == 2
    await call(jobs, team, job.job_id)  # the open job counts the call it made: one more
    await expect_error(call(jobs, team, job.job_id), grpc.StatusCode.FAILED_PRECONDITION, "JOB_CALL_LIMIT_REACHED")

    await admin.UpdateTeam(admin_pb.UpdateTeamRequest(team_id=team.team_id, max_calls_per_job=0), metadata=ADMIN)
    await call(jobs, team, job.job_id)  # no limit

    for value in (-1, 1_000_001):
        bad = await expect_error(
            admin.UpdateTeam(admin_pb.UpdateTeamRequest(team_id=team.team_id, max_calls_per_job=value), metadata=ADMIN),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
        )
        assert bad.details().startswith("max_calls_per_job:")
