"""A team's limit on LLM calls per minute (Team.calls_per_minute): a full minute's calls at
once, then one every 60/limit seconds; a call past it is refused before it costs or
records anything. Time is moved by shifting the team's rate state in the database, never
by sleeping. Races over several server processes: tests/integration/test_credit_races.py."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import job_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import ADMIN, create_team
from tests.api.test_job_flow import expect_error, user


async def rate_rows(app, team_id: str) -> list[tuple]:
    async with app.db.transaction() as conn:
        rows = await conn.execute(
            text("SELECT date_part('epoch', tat - now()) FROM team_call_rates WHERE team_id = :t"), {"t": team_id}
        )
        return [tuple(row) for row in rows]


async def move_time(app, team_id: str, seconds: float) -> None:
    """As if `seconds` had passed for the team's limit."""
    async with app.db.transaction() as conn:
        await conn.execute(
            text("UPDATE team_call_rates SET tat = tat - make_interval(secs => :s) WHERE team_id = :t"),
            {"s": seconds, "t": team_id},
        )


async def recorded_calls(app, job_id: str) -> int:
    async with app.db.transaction() as conn:
        return (
            await conn.execute(text("SELECT count(*) FROM llm_calls WHERE job_id = CAST(:j AS uuid)"), {"j": job_id})
        ).scalar_one()


def call(jobs, team, job_id: str, text_: str = "hi"):
    return jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user(text_)]), metadata=team.auth)


async def test_a_minute_of_calls_then_one_every_interval_and_refusals_change_nothing(app, admin, jobs):
    team = await create_team(admin, calls_per_minute=3)
    shown = await admin.GetTeam(admin_pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert shown.calls_per_minute == 3
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="limited"), metadata=team.auth)
    for _ in range(3):
        await call(jobs, team, job.job_id)

    refused = await expect_error(call(jobs, team, job.job_id), grpc.StatusCode.RESOURCE_EXHAUSTED, "TEAM_RATE_LIMITED")
    assert "3 LLM calls a minute" in refused.details()
    retry = [d for d in rpc_status.from_call(refused).details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    delay = error_details_pb2.RetryInfo()
    retry[0].Unpack(delay)
    assert 15 <= delay.retry_delay.ToTimedelta().total_seconds() <= 20  # the next place: 60/3 s after the first
    stream = jobs.LLMCallStream(pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user("hi")]), metadata=team.auth)
    with_stream = await expect_error(stream.read(), grpc.StatusCode.RESOURCE_EXHAUSTED, "TEAM_RATE_LIMITED")
    assert "3 LLM calls a minute" in with_stream.details()  # the delay has moved on meanwhile
    assert await recorded_calls(app, job.job_id) == 3  # the refused ones left nothing
    still = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert still.status == job_pb2.Job.IN_PROGRESS

    await move_time(app, team.team_id, 20)  # one interval later: one place, not more
    await call(jobs, team, job.job_id)
    await expect_error(call(jobs, team, job.job_id), grpc.StatusCode.RESOURCE_EXHAUSTED, "TEAM_RATE_LIMITED")
    await move_time(app, team.team_id, 3600)  # an idle hour gives a minute's calls, not an hour's
    for _ in range(3):
        await call(jobs, team, job.job_id)
    await expect_error(call(jobs, team, job.job_id), grpc.StatusCode.RESOURCE_EXHAUSTED, "TEAM_RATE_LIMITED")
    assert await recorded_calls(app, job.job_id) == 7


async def test_the_limit_is_changed_and_removed_at_once_and_bad_values_change_nothing(app, admin, jobs):
    team = await create_team(admin)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="limited"), metadata=team.auth)
    for _ in range(5):
        await call(jobs, team, job.job_id)
    assert await rate_rows(app, team.team_id) == []  # no limit: no state, no write

    await admin.UpdateTeam(admin_pb.UpdateTeamRequest(team_id=team.team_id, calls_per_minute=1), metadata=ADMIN)
    await call(jobs, team, job.job_id)
    refused = await expect_error(call(jobs, team, job.job_id), grpc.StatusCode.RESOURCE_EXHAUSTED, "TEAM_RATE_LIMITED")
    assert "may make 1 LLM call a minute" in refused.details()
    for bad in (-1, 1_000_001):
        error = await expect_error(
            admin.UpdateTeam(admin_pb.UpdateTeamRequest(team_id=team.team_id, calls_per_minute=bad), metadata=ADMIN),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
        )
        assert "calls_per_minute" in error.details()
    shown = await admin.GetTeam(admin_pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert shown.calls_per_minute == 1

    await admin.UpdateTeam(admin_pb.UpdateTeamRequest(team_id=team.team_id, calls_per_minute=0), metadata=ADMIN)
    for _ in range(3):
        await call(jobs, team, job.job_id)  # no limit any more
    await expect_error(
        admin.CreateTeam(
            admin_pb.CreateTeamRequest(organization_id=team.organization_id, team_id="t-bad", calls_per_minute=-5),
            metadata=ADMIN,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    await expect_error(
        admin.GetTeam(admin_pb.GetTeamRequest(team_id="t-bad"), metadata=ADMIN), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"
    )


async def test_calls_refused_for_any_other_reason_take_no_place(app, admin, jobs):
    """A limit of 2 calls a minute: refusals before and after the place is taken (an alias
    the team may not use, an unknown or finished job, a missing max_tokens, the job's call
    and cost limits, a consumption budget spent) leave both places to the calls that go."""
    team = await create_team(admin, calls_per_minute=2, max_calls_per_job=1, max_cost_usd_per_job="0.001")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="limited"), metadata=team.auth)

    def bounded(job_id: str, **params):
        return jobs.LLMCall(
            pb.LLMCallRequest(job_id=job_id, messages=[user("hi")], max_tokens=params.pop("max_tokens", 10), **params),
            metadata=team.auth,
        )

    await expect_error(bounded(job.job_id, model="NotOurs"), grpc.StatusCode.PERMISSION_DENIED, "MODEL_NOT_ALLOWED")
    unknown = "8c5f3c1e-0000-4000-8000-000000000000"
    await expect_error(bounded(unknown), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    await expect_error(call(jobs, team, job.job_id), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    await expect_error(
        bounded(job.job_id, max_tokens=1000), grpc.StatusCode.FAILED_PRECONDITION, "JOB_COST_LIMIT_REACHED"
    )
    await bounded(job.job_id)  # the first place
    await expect_error(bounded(job.job_id), grpc.StatusCode.FAILED_PRECONDITION, "JOB_CALL_LIMIT_REACHED")
    await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth)
    await expect_error(bounded(job.job_id), grpc.StatusCode.FAILED_PRECONDITION, "JOB_NOT_OPEN")
    other = await jobs.CreateJob(pb.CreateJobRequest(job_type="limited"), metadata=team.auth)
    await bounded(other.job_id)  # the second place
    third = await jobs.CreateJob(pb.CreateJobRequest(job_type="limited"), metadata=team.auth)
    await expect_error(bounded(third.job_id), grpc.StatusCode.RESOURCE_EXHAUSTED, "TEAM_RATE_LIMITED")


async def test_a_consumption_job_out_of_credits_gives_its_place_back(app, admin, jobs):
    team = await create_team(
        admin, credits=1, calls_per_minute=2, budget_mode="CONSUMPTION_TOKENS", tokens_per_credit=1
    )
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="limited"), metadata=team.auth)
    await call(jobs, team, job.job_id)  # consumes more than the one credit it can pay
    await expect_error(call(jobs, team, job.job_id), grpc.StatusCode.RESOURCE_EXHAUSTED, "INSUFFICIENT_CREDITS")
    assert [round(ahead) for (ahead,) in await rate_rows(app, team.team_id)] == [30]  # one place taken, not two


async def test_a_call_its_job_refuses_is_told_so_and_takes_no_place_even_when_the_rate_is_spent(app, admin, jobs):
    """The job's limits come before the team's rate: a call they refuse never holds a place
    (calls running at once would otherwise be refused TEAM_RATE_LIMITED for it), and is
    told the refusal no retry can lift, not to come back after a delay."""
    team = await create_team(admin, calls_per_minute=1, max_calls_per_job=1)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="limited"), metadata=team.auth)
    await call(jobs, team, job.job_id)  # the job's one call, and the team's one place of the minute
    before = await rate_rows(app, team.team_id)
    await expect_error(call(jobs, team, job.job_id), grpc.StatusCode.FAILED_PRECONDITION, "JOB_CALL_LIMIT_REACHED")
    after = await rate_rows(app, team.team_id)
    assert [round(a) for (a,) in after] == [round(b) for (b,) in before]  # no place taken, none given back
