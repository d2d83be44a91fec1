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


async def test_a_limit_set_below_what_a_job_made_says_both(admin, jobs):
    """The refusal says how many calls the job made, not only the limit it is over."""
    team = await create_team(admin)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    for _ in range(3):
        await call(jobs, team, job.job_id)
    await admin.UpdateTeam(admin_pb.UpdateTeamRequest(team_id=team.team_id, max_calls_per_job=2), metadata=ADMIN)
    refused = await expect_error(
        call(jobs, team, job.job_id), grpc.StatusCode.FAILED_PRECONDITION, "JOB_CALL_LIMIT_REACHED"
    )
    assert f"job {job.job_id} has made 3 LLM calls, and team '{team.team_id}' allows at most 2 in one job" in (
        refused.details()
    )


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


async def test_calls_the_provider_refused_without_work_give_their_place_back(app, admin, jobs, fake_url):
    """A provider's 429 or 503 (no tokens) does not use up the job's calls: retrying it,
    as clients do (the typed client by itself), leaves the job its limit. A failed call
    the provider worked on still counts. A limit set on a job already open counts its
    calls the same way."""
    team = await create_team(admin, max_calls_per_job=2)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    marker = f"marker-{job.job_id}"
    for directive, code, reason in (
        ("[fake status=503]", grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE"),
        ("[fake status=429]", grpc.StatusCode.RESOURCE_EXHAUSTED, "UPSTREAM_RATE_LIMITED"),
        ("[fake status=503]", grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE"),
    ):
        await expect_error(call(jobs, team, job.job_id, f"{marker} {directive}"), code, reason)
    # A stream cut after some content: the provider worked, so it counts.
    stream = jobs.LLMCallStream(
        pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(f"{marker} [fake tokens=10 chunks=5 drop_after=2]")]),
        metadata=team.auth,
    )
    assert [event async for event in stream][-1].error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    await call(jobs, team, job.job_id, marker)
    await expect_error(
        call(jobs, team, job.job_id, marker), grpc.StatusCode.FAILED_PRECONDITION, "JOB_CALL_LIMIT_REACHED"
    )
    assert await recorded_calls(app, job.job_id) == 5  # every call is recorded all the same

    unlimited = await create_team(admin)
    open_job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=unlimited.auth)
    for _ in range(2):
        await expect_error(
            call(jobs, unlimited, open_job.job_id, "[fake status=503]"),
            grpc.StatusCode.UNAVAILABLE,
            "UPSTREAM_UNAVAILABLE",
        )
    await call(jobs, unlimited, open_job.job_id)
    await admin.UpdateTeam(admin_pb.UpdateTeamRequest(team_id=unlimited.team_id, max_calls_per_job=2), metadata=ADMIN)
    await call(jobs, unlimited, open_job.job_id)  # the open job made 1 call that counts: one more
    await expect_error(
        call(jobs, unlimited, open_job.job_id), grpc.StatusCode.FAILED_PRECONDITION, "JOB_CALL_LIMIT_REACHED"
    )
