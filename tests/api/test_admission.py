"""A call that takes places before it goes upstream (a place of the team's calls a minute,
a place and a reservation under its job's limits) gives them back when it is refused or
abandoned during its admission, and a job's first limited call counts what the job did
before the team had the limit. The admission is paused at a chosen point by holding
`start_job`, the last statement it makes, so each case is exact rather than timed."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import grpc
import pytest
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import job_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from server.domain.chat import build_request
from server.domain.errors import DomainError
from server.services.auth import TeamPrincipal
from server.services.single_call import JobSpec, SingleCallUseCases
from server.storage import jobs as job_store
from tests.api.conftest import ADMIN, create_team
from tests.api.test_job_flow import expect_error, user
from tests.api.test_rate_limits import rate_rows


async def limits_row(app, job_id: str) -> tuple[int, Decimal] | None:
    async with app.db.transaction() as conn:
        row = (
            await conn.execute(
                text("SELECT calls, cost_reserved_usd FROM job_limits WHERE job_id = CAST(:j AS uuid)"), {"j": job_id}
            )
        ).one_or_none()
    return None if row is None else (row[0], Decimal(row[1]))


@pytest.fixture
def held_start(monkeypatch):
    """Holds every `start_job` until released: (entered, release)."""
    entered, release = asyncio.Event(), asyncio.Event()
    start_job = job_store.start_job

    async def held(*args, **kwargs):
        entered.set()
        await release.wait()
        return await start_job(*args, **kwargs)

    monkeypatch.setattr(job_store, "start_job", held)
    return entered, release


def principal(team) -> TeamPrincipal:
    return TeamPrincipal(team_id=team.team_id, key_id=uuid.uuid4(), key_prefix="sk-test")


def request(**params):
    return build_request(
        model="",
        messages=[{"role": "user", "content": "hi"}],
        params=params,
        extra_body={},
        purpose="",
        call_metadata={},
    )


async def test_a_call_abandoned_during_its_admission_gives_back_what_it_took(app, admin, jobs, held_start):
    entered, release = held_start
    team = await create_team(admin, calls_per_minute=3, max_calls_per_job=5, max_cost_usd_per_job="0.01")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    calling = asyncio.create_task(app.calls.call(principal(team), job.job_id, request(max_tokens=10)))
    await entered.wait()  # its places are taken; the job is about to start
    assert (await limits_row(app, job.job_id))[0] == 1
    calling.cancel()  # the client goes away
    with pytest.raises(asyncio.CancelledError):
        await calling
    release.set()
    await app.background.drain(timeout=10)  # the admission ends, then gives back
    assert await limits_row(app, job.job_id) == (0, 0)
    assert [round(ahead) for (ahead,) in await rate_rows(app, team.team_id)] == [0]  # its place is back
    async with app.db.transaction() as conn:
        recorded = (
            await conn.execute(
                text("SELECT count(*) FROM llm_calls WHERE job_id = CAST(:j AS uuid)"), {"j": job.job_id}
            )
        ).scalar_one()
    assert recorded == 0


async def test_a_call_whose_job_finished_during_its_admission_gives_back_what_it_took(app, admin, jobs, held_start):
    entered, release = held_start
    team = await create_team(admin, calls_per_minute=3, max_cost_usd_per_job="0.01")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    calling = asyncio.create_task(app.calls.call(principal(team), job.job_id, request(max_tokens=10)))
    await entered.wait()
    await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.FAILED), metadata=team.auth)
    release.set()
    with pytest.raises(DomainError) as refused:
        await calling
    assert refused.value.reason == "JOB_NOT_OPEN"
    assert await limits_row(app, job.job_id) == (0, 0)
    assert [round(ahead) for (ahead,) in await rate_rows(app, team.team_id)] == [0]


async def test_a_limit_set_on_an_open_job_counts_what_it_already_did(app, admin, jobs):
    team = await create_team(admin)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    for _ in range(3):
        await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("hi")]), metadata=team.auth)
    await admin.UpdateTeam(admin_pb.UpdateTeamRequest(team_id=team.team_id, max_calls_per_job=3), metadata=ADMIN)
    refused = await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("hi")]), metadata=team.auth),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_CALL_LIMIT_REACHED",
    )
    assert "made 3 LLM calls" in refused.details()
    costs = await jobs.GetJobCosts(pb.GetJobCostsRequest(job_id=job.job_id), metadata=team.auth)
    spent = Decimal(str(costs.costs.total_cost_usd))
    await admin.UpdateTeam(
        admin_pb.UpdateTeamRequest(team_id=team.team_id, max_calls_per_job=0, max_cost_usd_per_job=str(spent)),
        metadata=ADMIN,
    )
    await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("hi")], max_tokens=1), metadata=team.auth),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_COST_LIMIT_REACHED",
    )


async def test_a_single_call_abandoned_while_its_job_is_created_fails_the_job(app, admin, jobs, monkeypatch):
    # The client goes away after the job's insert but before it hears of it: the job must
    # not stay pending holding a credit and its idempotency key until it expires.
    entered, release = asyncio.Event(), asyncio.Event()
    create_or_replay = app.jobs.create_or_replay

    async def held(*args, **kwargs):
        created = await create_or_replay(*args, **kwargs)
        entered.set()
        await release.wait()
        return created

    monkeypatch.setattr(app.jobs, "create_or_replay", held)
    team = await create_team(admin)
    single = SingleCallUseCases(app.jobs, app.calls, app.background)
    spec = JobSpec(team_id="", job_type="t", user_id="", metadata={}, idempotency_key="abandoned")
    for run in (single.call(principal(team), spec, request()), _first(single.stream(principal(team), spec, request()))):
        calling = asyncio.create_task(run)
        await entered.wait()  # the job is inserted and its credit reserved
        calling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await calling
        release.set()
        await app.background.drain(timeout=10)
        entered.clear()
        release.clear()
        async with app.db.transaction() as conn:
            statuses = (
                (
                    await conn.execute(
                        text("SELECT status FROM jobs WHERE team_id = :t AND idempotency_key = 'abandoned'"),
                        {"t": team.team_id},
                    )
                )
                .scalars()
                .all()
            )
        assert set(statuses) == {"failed"}  # each try failed at once (the key free for the next)
        credits = await jobs_credits(app, team.team_id)
        assert credits == (100, 0, 0)  # allocated, used, reserved: nothing held
    assert len(statuses) == 2


async def _first(events):
    async for event in events:
        return event


async def jobs_credits(app, team_id: str) -> tuple[int, int, int]:
    async with app.db.transaction() as conn:
        return tuple(
            (
                await conn.execute(
                    text("SELECT credits_allocated, credits_used, credits_reserved FROM teams WHERE team_id = :t"),
                    {"t": team_id},
                )
            ).one()
        )
