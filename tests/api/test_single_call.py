"""create-and-call and create-and-call-stream: one job, one call, settled in one request."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import grpc
import pytest
from google.protobuf import struct_pb2
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import job_pb2, tenancy_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from server.domain.chat import ChatRequest
from server.services.auth import TeamPrincipal
from server.services.calls import for_new_job
from server.storage import jobs as job_store
from tests.api.conftest import ADMIN, create_team
from tests.api.test_credits import credits, set_billing  # noqa: F401 (fixture)
from tests.api.test_job_call_limits import provider_requests
from tests.api.test_job_flow import error_info, expect_error, team_row, user


async def test_create_and_call_charges_on_success(app, jobs, team):
    result = await jobs.CreateAndCall(
        pb.CreateAndCallRequest(job_type="summary", messages=[user("hi")], purpose="only"), metadata=team.auth
    )
    assert result.status == job_pb2.Job.COMPLETED and result.response.content
    assert result.costs.credits_charged == 1 and result.costs.credits_remaining == 99
    assert result.metadata.model == team.alias and result.call_id
    job = await jobs.GetJob(pb.GetJobRequest(job_id=result.job_id), metadata=team.auth)
    assert job.job_type == "summary" and [c.purpose for c in job.calls] == ["only"]
    assert tuple(await team_row(app, team.team_id)) == (100, 1, 0)


async def test_create_and_call_fails_the_job_when_the_call_fails(app, jobs, team):
    error = await expect_error(
        jobs.CreateAndCall(
            pb.CreateAndCallRequest(job_type="t", messages=[user("x [fake status=503]")]), metadata=team.auth
        ),
        grpc.StatusCode.UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
    )
    job_id = error_info(error).metadata["job_id"]
    job = await jobs.GetJob(pb.GetJobRequest(job_id=job_id), metadata=team.auth)
    assert job.status == job_pb2.Job.FAILED and job.calls[0].status == job_pb2.CallSummary.FAILED
    assert tuple(await team_row(app, team.team_id)) == (100, 0, 0)  # released, not charged


async def job_count(app, team_id: str) -> int:
    async with app.db.transaction() as conn:
        return (await conn.execute(text("SELECT count(*) FROM jobs WHERE team_id = :t"), {"t": team_id})).scalar()


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("model", "max_tokens", "code", "reason"),
    [
        ("Typo", 10, grpc.StatusCode.PERMISSION_DENIED, "MODEL_NOT_ALLOWED"),
        ("", None, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),  # max_tokens, under a cost limit
        ("", 10_000_000, grpc.StatusCode.FAILED_PRECONDITION, "JOB_COST_LIMIT_REACHED"),  # a worst case past $1
    ],
)
async def test_a_refused_create_and_call_makes_no_job(app, admin, jobs, streamed, model, max_tokens, code, reason):
    """It made a job, failed at once with the refusal as its error: a failed job in the
    team's list and usage, a job.failed webhook, for a request that changed nothing."""
    team = await create_team(admin, max_cost_usd_per_job="1")
    fields = {"job_type": "t", "messages": [user("hi")], "model": model}
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    if streamed:
        sent = jobs.CreateAndCallStream(pb.CreateAndCallStreamRequest(**fields), metadata=team.auth)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in sent:
                pass
        error = caught.value
    else:
        error = await expect_error(
            jobs.CreateAndCall(pb.CreateAndCallRequest(**fields), metadata=team.auth), code, reason
        )
    assert (error.code(), error_info(error).reason) == (code, reason)
    assert "job_id" not in error_info(error).metadata
    assert await job_count(app, team.team_id) == 0
    assert tuple(await team_row(app, team.team_id)) == (100, 0, 0)


async def test_create_and_call_stream_tells_the_job_first_and_the_balance_last(app, jobs, team):
    events = [
        e
        async for e in jobs.CreateAndCallStream(
            pb.CreateAndCallStreamRequest(job_type="chat", messages=[user("story [fake tokens=6 chunks=3]")]),
            metadata=team.auth,
        )
    ]
    first, last = events[0], events[-1]
    assert first.job_id and first.call_id
    assert last.done and last.job_status == job_pb2.Job.COMPLETED
    assert last.credits_remaining == 99 and last.costs.credits_charged == 1 and last.usage.completion_tokens == 6
    assert len("".join(e.content for e in events).split()) == 6


async def test_create_and_call_stream_cut_by_the_upstream_fails_the_job(app, jobs, team):
    events = [
        e
        async for e in jobs.CreateAndCallStream(
            pb.CreateAndCallStreamRequest(
                job_type="chat", messages=[user("x [fake tokens=20 chunks=10 drop_after=3]")]
            ),
            metadata=team.auth,
        )
    ]
    last = events[-1]
    assert last.done and last.HasField("error") and last.job_status == job_pb2.Job.FAILED
    assert last.credits_remaining == 100 and not last.costs.credit_applied


async def test_create_and_call_stream_client_gone_settles_the_job(app, jobs, team):
    call = jobs.CreateAndCallStream(
        pb.CreateAndCallStreamRequest(job_type="chat", messages=[user("x [fake tokens=40 chunks=20 delay_ms=20]")]),
        metadata=team.auth,
    )
    job_id = ""
    async for event in call:
        job_id = job_id or event.job_id
        if event.content:
            call.cancel()
            break
    for _ in range(300):  # the server settles the job in its own task
        job = await jobs.GetJob(pb.GetJobRequest(job_id=job_id), metadata=team.auth)
        if job.status not in (job_pb2.Job.PENDING, job_pb2.Job.IN_PROGRESS):
            break
        await asyncio.sleep(0.01)
    # Content reached the client before it left: the job is completed and charged.
    assert job.status == job_pb2.Job.COMPLETED and job.costs.credits_charged == 1
    for _ in range(300):
        job = await jobs.GetJob(pb.GetJobRequest(job_id=job_id), metadata=team.auth)
        if job.calls:
            break
        await asyncio.sleep(0.01)
    assert job.calls[0].status == job_pb2.CallSummary.CANCELLED


async def test_a_retry_of_a_charged_create_and_call_is_told_so_whatever_changed_since(app, admin, jobs, team):
    """The checks made before a single-call job is made must not hide it: paused since, the
    team's retry was told TEAM_PAUSED, no job named, and could take it for a request not run."""
    request = pb.CreateAndCallRequest(job_type="t", messages=[user("hi")], idempotency_key="paused-since")
    first = await jobs.CreateAndCall(request, metadata=team.auth)
    await admin.UpdateTeam(
        admin_pb.UpdateTeamRequest(team_id=team.team_id, status=tenancy_pb2.Team.PAUSED), metadata=ADMIN
    )
    error = await expect_error(
        jobs.CreateAndCall(request, metadata=team.auth), grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ALREADY_PROCESSED"
    )
    assert error_info(error).metadata["job_id"] == first.job_id
    other = pb.CreateAndCallRequest(job_type="t", messages=[user("hi")], idempotency_key="never-used")
    await expect_error(jobs.CreateAndCall(other, metadata=team.auth), grpc.StatusCode.PERMISSION_DENIED, "TEAM_PAUSED")


@pytest.mark.parametrize("mode", ["job_based", "consumption_tokens", "consumption_usd"])
@pytest.mark.parametrize("limits", [{}, {"calls_per_minute": 5, "max_calls_per_job": 3, "max_cost_usd_per_job": 1}])
async def test_the_checks_read_is_the_new_jobs_context_as_a_read_after_its_creation(app, admin, mode, limits):
    """A single-call request reads the call's context before its job is made, and the call
    takes it (for_new_job) instead of reading it again: it must say what that read would."""
    team = await create_team(admin)
    await set_billing(app, team.team_id, budget_mode=mode, credits_overdraft_limit=7, **limits)
    principal = TeamPrincipal(team.team_id, uuid.uuid4(), team.key[:11])
    request = ChatRequest(model=team.alias, messages=({"role": "user", "content": "hi"},), params={"max_tokens": 5})
    context = await app.calls.check(principal, request)
    job, new = await app.jobs.create_or_replay(
        principal, team_id="", job_type="t", user_id="", metadata={}, idempotency_key="", single_call=True
    )
    assert new
    async with app.db.statements() as conn:
        fresh = await job_store.call_context(conn, job.job_id, team.team_id)
    assert fresh.job_idle_seconds < 1
    assert for_new_job(context, job) == dataclasses.replace(fresh, job_idle_seconds=0.0)
    await app.jobs.complete(principal, str(job.job_id), status="failed", metadata={}, error_message="")


async def test_a_refusal_under_a_key_whose_job_failed_is_the_refusal_and_makes_no_job(app, admin, jobs, team):
    """A failed key's job is tried again; refused before a job, the retry is told why, not
    that the request was processed, and no job is made."""
    failing = pb.CreateAndCallRequest(job_type="t", messages=[user("x [fake status=503]")], idempotency_key="k-fail")
    await expect_error(
        jobs.CreateAndCall(failing, metadata=team.auth), grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE"
    )
    retry = pb.CreateAndCallRequest(job_type="t", messages=[user("hi")], model="Typo", idempotency_key="k-fail")
    await expect_error(
        jobs.CreateAndCall(retry, metadata=team.auth), grpc.StatusCode.PERMISSION_DENIED, "MODEL_NOT_ALLOWED"
    )
    assert await job_count(app, team.team_id) == 1  # the failed one


@pytest.mark.parametrize("ended_by", ["expiry", "the team"])
@pytest.mark.parametrize("streamed", [False, True])
async def test_an_answer_whose_job_ended_under_it_is_sent_with_the_job_as_it_ended(app, jobs, team, streamed, ended_by):
    """Its process stalled past the single-call abandonment, another expired the job (or the
    team failed it by its id): the answer, recorded, was thrown away for "job ... is already
    expired; it cannot be completed now", and the client's retry paid the provider again."""
    fields = {"job_type": "stalled", "messages": [user("hi [fake first_delay_ms=400]")]}
    if streamed:
        sent = jobs.CreateAndCallStream(pb.CreateAndCallStreamRequest(**fields), metadata=team.auth)
        first = await sent.read()
        job_id = first.job_id
    else:
        sent = jobs.CreateAndCall(pb.CreateAndCallRequest(**fields), metadata=team.auth)
        for _ in range(200):  # until the call has started in its job (then with the provider)
            async with app.db.transaction() as conn:
                job_id = (
                    await conn.execute(
                        text(
                            "SELECT job_id FROM jobs WHERE team_id = :t AND job_type = 'stalled' AND status = 'in_progress'"
                        ),
                        {"t": team.team_id},
                    )
                ).scalar()
            if job_id:
                break
            await asyncio.sleep(0.01)
    if ended_by == "expiry":
        async with app.db.transaction() as conn:  # as if no process had touched it for an hour
            await conn.execute(
                text("UPDATE jobs SET last_activity_at = now() - interval '1 hour' WHERE job_id = :j"),
                {"j": str(job_id)},
            )
        assert await app.jobs.expire_abandoned(86_400.0) >= 1
        ended = job_pb2.Job.EXPIRED
    else:
        failed = pb.CompleteJobRequest(job_id=str(job_id), status=job_pb2.Job.FAILED)
        assert (await jobs.CompleteJob(failed, metadata=team.auth)).status == job_pb2.Job.FAILED
        ended = job_pb2.Job.FAILED
    if streamed:
        events = [first]
        while (event := await sent.read()) is not grpc.aio.EOF:
            events.append(event)
        last = events[-1]
        assert last.done and not last.HasField("error") and last.job_status == ended
        assert "".join(e.content for e in events)
    else:
        reply = await sent
        assert reply.status == ended and reply.response.content
        assert reply.costs.credits_charged == 0
    assert tuple(await team_row(app, team.team_id)) == (100, 0, 0)  # released, not charged


async def test_create_and_call_is_idempotent(app, jobs, team):
    request = pb.CreateAndCallRequest(job_type="t", messages=[user("hi")], idempotency_key="once")
    first = await jobs.CreateAndCall(request, metadata=team.auth)
    error = await expect_error(
        jobs.CreateAndCall(request, metadata=team.auth), grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ALREADY_PROCESSED"
    )
    assert error_info(error).metadata["job_id"] == first.job_id
    assert tuple(await team_row(app, team.team_id)) == (100, 1, 0)  # one job, one call, one charge


async def test_a_create_and_call_whose_job_failed_is_tried_again_under_its_key(app, jobs, team):
    # The first try fails (free); the retry under the same key runs, in a new job, and is
    # charged once; a third request with the key is then refused, naming the charged job.
    failing = pb.CreateAndCallRequest(job_type="t", messages=[user("x [fake status=503]")], idempotency_key="retry-me")
    error = await expect_error(
        jobs.CreateAndCall(failing, metadata=team.auth), grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE"
    )
    failed_job = error_info(error).metadata["job_id"]
    retry = pb.CreateAndCallRequest(job_type="t", messages=[user("hi")], idempotency_key="retry-me")
    second = await jobs.CreateAndCall(retry, metadata=team.auth)
    assert second.status == job_pb2.Job.COMPLETED and second.job_id != failed_job
    error = await expect_error(
        jobs.CreateAndCall(retry, metadata=team.auth), grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ALREADY_PROCESSED"
    )
    assert error_info(error).metadata["job_id"] == second.job_id
    assert tuple(await team_row(app, team.team_id)) == (100, 1, 0)
    # CreateJob with the key returns the key's charged job, as before.
    again = await jobs.CreateJob(pb.CreateJobRequest(job_type="t", idempotency_key="retry-me"), metadata=team.auth)
    assert again.job_id == second.job_id


async def test_keyed_creates_keep_working_once_their_statement_is_prepared(admin, jobs):
    # psycopg prepares a statement after a few executions on a connection, and PostgreSQL
    # may then plan it generically: the insert's ON CONFLICT must still find the partial
    # unique index of idempotency keys.
    team = await create_team(admin, credits=200)
    for n in range(120):
        request = pb.CreateJobRequest(job_type="t", idempotency_key=f"prepared-{n}")
        assert (await jobs.CreateJob(request, metadata=team.auth)).job_id


async def test_concurrent_retries_over_a_failed_job_make_one_new_job(app, jobs, team):
    failing = pb.CreateAndCallRequest(job_type="t", messages=[user("x [fake status=503]")], idempotency_key="race")
    await expect_error(
        jobs.CreateAndCall(failing, metadata=team.auth), grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE"
    )
    retry = pb.CreateAndCallRequest(job_type="t", messages=[user("hi")], idempotency_key="race")
    outcomes = await asyncio.gather(
        *(jobs.CreateAndCall(retry, metadata=team.auth) for _ in range(8)), return_exceptions=True
    )
    succeeded = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(succeeded) == 1 and len(refused) == 7
    assert {error_info(e).reason for e in refused} == {"REQUEST_ALREADY_PROCESSED"}
    assert {error_info(e).metadata["job_id"] for e in refused} == {succeeded[0].job_id}
    assert tuple(await team_row(app, team.team_id)) == (100, 1, 0)


async def test_a_field_of_the_request_sent_in_extra_body_is_refused_not_sent_to_the_provider(app, jobs, team, fake_url):
    # The Python client once put unknown keyword arguments in extra_body: `job_metadata=`
    # reached the provider with the team's data, and the job was made without it.
    for key in ("job_metadata", "team_id", "job_type", "call_metadata", "idempotency_key", "user_id"):
        extra = struct_pb2.Struct()
        extra.update({key: {"doc": "q3"} if key.endswith("metadata") else "x"})
        error = await expect_error(
            jobs.CreateAndCall(
                pb.CreateAndCallRequest(job_type="t", messages=[user("own-field-marker")], extra_body=extra),
                metadata=team.auth,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
        )
        assert error_info(error).metadata["field"] == f"extra_body.{key}", key
    assert await provider_requests(fake_url, "own-field-marker") == 0
    assert tuple(await team_row(app, team.team_id)) == (100, 0, 0)  # no job was made
    # A provider's own parameter still goes through.
    extra = struct_pb2.Struct()
    extra.update({"top_k": 40})
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    made = await jobs.LLMCall(
        pb.LLMCallRequest(job_id=job.job_id, messages=[user("hi")], extra_body=extra), metadata=team.auth
    )
    assert made.response.content
