"""AdminJobService.ListTeamJobs: a team's jobs with their calls, for the operator
(the admin dashboard's team page) and for the team itself."""

from __future__ import annotations

import grpc
import pytest

from saaslitellm.v1 import admin_job_service_pb2 as pb
from saaslitellm.v1 import admin_job_service_pb2_grpc, job_pb2
from saaslitellm.v1 import job_service_pb2 as job_pb
from tests.api.admin_support import fails, user
from tests.api.conftest import ADMIN, create_team


@pytest.fixture(scope="module")
def admin_jobs(channel: grpc.aio.Channel) -> admin_job_service_pb2_grpc.AdminJobServiceStub:
    return admin_job_service_pb2_grpc.AdminJobServiceStub(channel)


async def run_job(jobs, team, job_type: str, calls: int, status: int) -> str:
    job = await jobs.CreateJob(job_pb.CreateJobRequest(job_type=job_type), metadata=team.auth)
    for index in range(calls):
        await jobs.LLMCall(
            job_pb.LLMCallRequest(job_id=job.job_id, messages=[user(f"call {index} [fake tokens=7]")]),
            metadata=team.auth,
        )
    if status:
        await jobs.CompleteJob(job_pb.CompleteJobRequest(job_id=job.job_id, status=status), metadata=team.auth)
    return job.job_id


async def test_lists_jobs_newest_first_with_calls_and_costs_as_the_team_sees_them(admin_jobs, jobs, team) -> None:
    first = await run_job(jobs, team, "extract", 2, job_pb2.Job.COMPLETED)
    second = await run_job(jobs, team, "summarize", 1, job_pb2.Job.FAILED)
    third = await run_job(jobs, team, "extract", 0, 0)

    listed = await admin_jobs.ListTeamJobs(pb.ListTeamJobsRequest(team_id=team.team_id), metadata=ADMIN)

    assert [job.job_id for job in listed.jobs] == [third, second, first]
    assert listed.next_page_token == ""
    for job in listed.jobs:  # exactly what the team itself gets from GetJob
        own = await jobs.GetJob(job_pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
        assert job == own
    completed = listed.jobs[2]
    assert completed.status == job_pb2.Job.COMPLETED and len(completed.calls) == 2
    assert completed.costs.credits_charged == 1 and completed.costs.total_tokens > 0
    assert all(call.status == job_pb2.CallSummary.SUCCEEDED and call.tokens > 0 for call in completed.calls)


async def test_pages_and_filters(admin_jobs, jobs, team) -> None:
    ids = [await run_job(jobs, team, "batch", 0, job_pb2.Job.FAILED) for _ in range(5)]
    await run_job(jobs, team, "other", 0, job_pb2.Job.COMPLETED)

    seen, token = [], ""
    while True:
        page = await admin_jobs.ListTeamJobs(
            pb.ListTeamJobsRequest(team_id=team.team_id, job_type="batch", page_size=2, page_token=token),
            metadata=ADMIN,
        )
        assert len(page.jobs) <= 2
        seen += [job.job_id for job in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids[::-1]

    completed = await admin_jobs.ListTeamJobs(
        pb.ListTeamJobsRequest(team_id=team.team_id, status=job_pb2.Job.COMPLETED), metadata=ADMIN
    )
    assert [job.job_type for job in completed.jobs] == ["other"]


async def test_the_team_reads_its_own_jobs_and_no_other_teams(admin, admin_jobs, jobs, team) -> None:
    job = await jobs.CreateJob(job_pb.CreateJobRequest(job_type="mine"), metadata=team.auth)
    own = await admin_jobs.ListTeamJobs(pb.ListTeamJobsRequest(team_id=team.team_id), metadata=team.auth)
    assert job.job_id in [j.job_id for j in own.jobs]
    other = await create_team(admin)
    await fails(
        admin_jobs.ListTeamJobs(pb.ListTeamJobsRequest(team_id=other.team_id), metadata=team.auth),
        grpc.StatusCode.PERMISSION_DENIED,
        "TEAM_MISMATCH",
    )
    await fails(
        admin_jobs.ListTeamJobs(pb.ListTeamJobsRequest(team_id=team.team_id)),
        grpc.StatusCode.UNAUTHENTICATED,
        "MISSING_API_KEY",
    )


async def test_refuses_bad_input_naming_it(admin_jobs, team) -> None:
    await fails(
        admin_jobs.ListTeamJobs(pb.ListTeamJobsRequest(team_id="no-such-team"), metadata=ADMIN),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
    await fails(
        admin_jobs.ListTeamJobs(pb.ListTeamJobsRequest(team_id="bad id!"), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        field="team_id",
    )
    await fails(
        admin_jobs.ListTeamJobs(pb.ListTeamJobsRequest(team_id=team.team_id, page_token="garbage"), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        field="page_token",
    )
    for job_type in (" ", "x" * 101, "a\nb"):  # as a job's own job_type could never be
        await fails(
            admin_jobs.ListTeamJobs(pb.ListTeamJobsRequest(team_id=team.team_id, job_type=job_type), metadata=ADMIN),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            field="job_type",
        )
    page = await admin_jobs.ListTeamJobs(pb.ListTeamJobsRequest(team_id=team.team_id, page_size=1), metadata=ADMIN)
    await fails(
        admin_jobs.ListTeamJobs(
            pb.ListTeamJobsRequest(team_id=team.team_id, job_type="other", page_token=page.next_page_token or "x"),
            metadata=ADMIN,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        field="page_token",
    )
