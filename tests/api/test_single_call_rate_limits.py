"""A single-call job under its team's calls_per_minute: the call takes its place before the
job is made, so a create-and-call (or an OpenAI completion without x-job-id) past the limit
is refused like the other refusals no job could pass: no job, nothing in the team's jobs,
usage or webhooks, and no place taken. A refusal after the place was taken gives it back,
and a call that goes takes one place, not two. Time is moved in the team's rate state,
never by sleeping (tests/api/test_rate_limits.py)."""

from __future__ import annotations

import asyncio
import json
import uuid

import grpc
import pytest
from google.api import httpbody_pb2
from sqlalchemy import text

from saaslitellm.v1 import credit_service_pb2 as cpb
from saaslitellm.v1 import credit_service_pb2_grpc, openai_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from server.domain.chat import ChatRequest, build_request
from server.domain.errors import DomainError
from server.domain.jobs import JobStatus
from server.services.auth import TeamPrincipal
from server.services.single_call import JobSpec
from server.storage import jobs as job_store
from tests.api.conftest import ADMIN, create_team
from tests.api.test_job_flow import error_info, expect_error, user
from tests.api.test_rate_limits import move_time, rate_rows

RATE = (grpc.StatusCode.RESOURCE_EXHAUSTED, "TEAM_RATE_LIMITED")


async def next_place(app, team_id: str):
    """The team's rate state as stored (its next place), exactly."""
    async with app.db.transaction() as conn:
        rows = await conn.execute(text("SELECT tat FROM team_call_rates WHERE team_id = :t"), {"t": team_id})
        return rows.scalar_one_or_none()


async def jobs_of(app, team_id: str) -> list[str]:
    async with app.db.transaction() as conn:
        rows = await conn.execute(
            text("SELECT status FROM jobs WHERE team_id = :t ORDER BY created_at"), {"t": team_id}
        )
        return [status for (status,) in rows]


@pytest.fixture
async def failed_job_hooks(app):
    """Records the `job.failed` events of an organization: a webhook endpoint scoped to it
    (nothing is sent: the test server has no secrets key). Gives the deliveries counter."""
    made: list[uuid.UUID] = []

    async def endpoint_for(organization_id: str):
        endpoint_id = uuid.uuid4()
        made.append(endpoint_id)
        async with app.db.transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO webhook_endpoints (endpoint_id, url, event_types, organization_id,"
                    " secret_ciphertext, secret_prefix)"
                    " VALUES (:e, 'https://hooks.example.com/x', ARRAY['job.failed'], :o, '\\x00', 'whsec_test')"
                ),
                {"e": endpoint_id, "o": organization_id},
            )

        async def deliveries() -> int:
            async with app.db.transaction() as conn:
                counted = "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = :e"
                return (await conn.execute(text(counted), {"e": endpoint_id})).scalar_one()

        return deliveries

    yield endpoint_for
    async with app.db.transaction() as conn:
        await conn.execute(text("DELETE FROM webhook_endpoints WHERE endpoint_id = ANY(:e)"), {"e": made})


async def refused(call) -> grpc.aio.AioRpcError:
    """The error of a unary call or of a stream before its first event."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if isinstance(call, grpc.aio.UnaryStreamCall):
            async for _ in call:
                pass
        else:
            await call
    return caught.value


@pytest.mark.parametrize("how", ["create-and-call", "create-and-call-stream", "openai"])
async def test_a_single_call_past_the_teams_rate_makes_no_job_and_takes_no_place(
    app, admin, jobs, channel, failed_job_hooks, how
):
    """It used to make a job and fail it at once with TEAM_RATE_LIMITED: a failed job in
    the team's list and usage and a job.failed webhook, for a request that did nothing."""
    team = await create_team(admin, calls_per_minute=2)
    deliveries = await failed_job_hooks(team.organization_id)
    keyed = pb.CreateAndCallRequest(job_type="t", messages=[user("hi")], idempotency_key="charged")
    first = await jobs.CreateAndCall(keyed, metadata=team.auth)
    await jobs.CreateAndCall(pb.CreateAndCallRequest(job_type="t", messages=[user("hi")]), metadata=team.auth)
    full = await next_place(app, team.team_id)

    if how == "create-and-call":
        sent = jobs.CreateAndCall(pb.CreateAndCallRequest(job_type="t", messages=[user("hi")]), metadata=team.auth)
    elif how == "create-and-call-stream":
        request = pb.CreateAndCallStreamRequest(job_type="t", messages=[user("hi")])
        sent = jobs.CreateAndCallStream(request, metadata=team.auth)
    else:
        body = {"model": team.alias, "messages": [{"role": "user", "content": "hi"}]}
        openai = openai_service_pb2_grpc.OpenAIServiceStub(channel)
        sent = openai.CreateChatCompletion(httpbody_pb2.HttpBody(data=json.dumps(body).encode()), metadata=team.auth)
    error = await refused(sent)
    assert (error.code(), error_info(error).reason) == RATE
    assert "2 LLM calls a minute" in error.details()
    assert "job_id" not in error_info(error).metadata

    assert await jobs_of(app, team.team_id) == ["completed", "completed"]  # no failed job beside them
    usage = await jobs.GetUsage(pb.GetUsageRequest(), metadata=team.auth)
    assert (usage.totals.jobs, usage.totals.jobs_completed, usage.totals.jobs_failed) == (2, 2, 0)
    assert await deliveries() == 0  # no job.failed
    assert await next_place(app, team.team_id) == full  # the refusal took no place

    # A retry of the charged request is told so, as before, the rate spent or not.
    again = await expect_error(
        jobs.CreateAndCall(keyed, metadata=team.auth), grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ALREADY_PROCESSED"
    )
    assert error_info(again).metadata["job_id"] == first.job_id
    await move_time(app, team.team_id, 30)  # one place free
    moved = await next_place(app, team.team_id)
    again = await expect_error(
        jobs.CreateAndCall(keyed, metadata=team.auth), grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ALREADY_PROCESSED"
    )
    assert error_info(again).metadata["job_id"] == first.job_id
    assert await next_place(app, team.team_id) == moved  # the place it took is given back
    await jobs.CreateAndCall(pb.CreateAndCallRequest(job_type="t", messages=[user("hi")]), metadata=team.auth)
    await expect_error(
        jobs.CreateAndCall(pb.CreateAndCallRequest(job_type="t", messages=[user("hi")]), metadata=team.auth), *RATE
    )
    assert await jobs_of(app, team.team_id) == ["completed"] * 3
    assert await deliveries() == 0


async def test_a_retry_of_a_failed_single_call_past_the_rate_makes_no_new_job(app, admin, jobs):
    """A key whose job failed is tried again in a new job: not when the rate refuses it."""
    team = await create_team(admin, calls_per_minute=1)
    failing = pb.CreateAndCallRequest(job_type="t", messages=[user("x [fake status=503]")], idempotency_key="k")
    await expect_error(
        jobs.CreateAndCall(failing, metadata=team.auth), grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE"
    )
    retry = pb.CreateAndCallRequest(job_type="t", messages=[user("hi")], idempotency_key="k")
    await expect_error(jobs.CreateAndCall(retry, metadata=team.auth), *RATE)
    assert await jobs_of(app, team.team_id) == ["failed"]


async def test_a_single_call_refused_after_it_took_its_place_gives_it_back(app, admin, jobs, channel):
    """Refused once its place is taken, at its job's creation (no credit to reserve, a
    consumption budget spent), a call leaves the place to the next one; a call that goes
    takes one place, not two."""
    team = await create_team(admin, credits=0, calls_per_minute=1)

    def create_and_call(team):
        return jobs.CreateAndCall(pb.CreateAndCallRequest(job_type="t", messages=[user("hi")]), metadata=team.auth)

    await expect_error(create_and_call(team), grpc.StatusCode.RESOURCE_EXHAUSTED, "INSUFFICIENT_CREDITS")
    assert await jobs_of(app, team.team_id) == []
    assert [round(ahead) for (ahead,) in await rate_rows(app, team.team_id)] == [0]  # taken, then given back
    credits = credit_service_pb2_grpc.CreditServiceStub(channel)
    await credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=10), metadata=ADMIN)
    await create_and_call(team)  # the one place, still there
    await expect_error(create_and_call(team), *RATE)

    spending = await create_team(
        admin, credits=1, calls_per_minute=2, budget_mode="CONSUMPTION_TOKENS", tokens_per_credit=1
    )
    await create_and_call(spending)  # consumes more than the one credit it can pay
    await expect_error(create_and_call(spending), grpc.StatusCode.RESOURCE_EXHAUSTED, "INSUFFICIENT_CREDITS")
    assert await jobs_of(app, spending.team_id) == ["completed"]
    assert [round(ahead) for (ahead,) in await rate_rows(app, spending.team_id)] == [30]  # one place taken, not two


async def test_a_single_call_whose_job_ended_during_its_admission_gives_its_place_back(app, admin, monkeypatch):
    """The job failed by its id (a CompleteJob) while its call is admitted: refused,
    JOB_NOT_OPEN, in its job; the place it was given goes back."""
    entered, release = asyncio.Event(), asyncio.Event()
    start_job = job_store.start_job

    async def held(*args, **kwargs):
        entered.set()
        await release.wait()
        return await start_job(*args, **kwargs)

    monkeypatch.setattr(job_store, "start_job", held)
    team = await create_team(admin, calls_per_minute=1)
    principal = TeamPrincipal(team_id=team.team_id, key_id=uuid.uuid4(), key_prefix="sk-test")
    spec = JobSpec(team_id="", job_type="t", user_id="", metadata={}, idempotency_key="")
    calling = asyncio.create_task(app.single_call.call(principal, spec, _request()))
    await held_there(entered, calling)
    async with app.db.transaction() as conn:
        rows = await conn.execute(text("SELECT job_id FROM jobs WHERE team_id = :t"), {"t": team.team_id})
        job_id = str(rows.scalar_one())
    await app.jobs.complete(principal, job_id, status="failed", metadata={}, error_message="")
    release.set()
    with pytest.raises(DomainError) as refused:
        await calling
    assert (refused.value.reason, refused.value.metadata["job_id"]) == ("JOB_NOT_OPEN", job_id)
    assert [round(ahead) for (ahead,) in await rate_rows(app, team.team_id)] == [0]  # taken, then given back
    monkeypatch.undo()
    done = await app.single_call.call(principal, spec, _request())  # the place is there
    assert done.view.job.status is JobStatus.COMPLETED


async def held_there(entered: asyncio.Event, calling: asyncio.Task) -> None:
    """Until the call is held, or has ended without getting there (its outcome raised)."""
    waiting = asyncio.ensure_future(entered.wait())
    await asyncio.wait({waiting, calling}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if not entered.is_set():
        raise AssertionError(f"the call ended before it was held: {calling.result()!r}")


def _request(**call_metadata) -> ChatRequest:
    return build_request(
        model="",
        messages=[{"role": "user", "content": "hi"}],
        params={},
        extra_body={},
        purpose="",
        call_metadata=call_metadata,
    )


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    "held",
    [
        "take_call_place",  # the place being taken
        "create_or_replay",  # the job being made, after the place was taken
        "get_job",  # the call preparing (its call_metadata checked against the job's), before its admission
    ],
)
async def test_a_single_call_abandoned_before_its_admission_gives_its_place_back(
    app, admin, monkeypatch, held, streamed
):
    """The client goes away at each point between the place taken and the call's admission
    (held there until released, so each case is exact): the place is given back."""
    entered, release = asyncio.Event(), asyncio.Event()
    owner = app.jobs if held == "create_or_replay" else job_store
    original = getattr(owner, held)

    async def holding(*args, **kwargs):
        if not entered.is_set():  # the first one only
            entered.set()
            await release.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(owner, held, holding)
    team = await create_team(admin, calls_per_minute=1)
    principal = TeamPrincipal(team_id=team.team_id, key_id=uuid.uuid4(), key_prefix="sk-test")
    spec = JobSpec(team_id="", job_type="t", user_id="", metadata={}, idempotency_key="")
    request = _request(step="checked")
    if streamed:
        calling = asyncio.create_task(_first(app.single_call.stream(principal, spec, request)))
    else:
        calling = asyncio.create_task(app.single_call.call(principal, spec, request))
    await held_there(entered, calling)
    calling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await calling
    release.set()
    await app.background.drain(timeout=10)
    assert [round(ahead) for (ahead,) in await rate_rows(app, team.team_id)] == [0]  # taken, then given back
    assert set(await jobs_of(app, team.team_id)) <= {"failed"}  # a job made meanwhile is failed at once
    monkeypatch.undo()
    done = await app.single_call.call(principal, spec, _request())  # the place is there
    assert done.view.job.status is JobStatus.COMPLETED


async def _first(events):
    async for event in events:
        return event
