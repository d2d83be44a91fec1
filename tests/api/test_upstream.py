"""Upstream resilience: fallbacks decided by the server, bounded retries, deadlines, idle
streams, long streams. The fake provider records every request it receives, so the tests
see exactly which models were tried, in which order."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from sqlalchemy import text

from saaslitellm.v1 import job_pb2, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import clear_fake_requests, create_team, extra_app, fake_requests
from tests.api.test_job_flow import expect_error, user


async def recorded(app, call_id: str):
    async with app.db.transaction() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT status, served_model, attempted_models, error_reason, prompt_tokens, completion_tokens, "
                    "tokens_estimated, content, provider_cost_usd, cost_source FROM llm_calls WHERE call_id = :c"
                ),
                {"c": call_id},
            )
        ).one()


async def only_call(app, job_id: str):
    async with app.db.transaction() as conn:
        call_id = (
            await conn.execute(text("SELECT call_id FROM llm_calls WHERE job_id = :j"), {"j": job_id})
        ).scalar_one()
    return await recorded(app, str(call_id))


async def recorded_once_done(app, job_id: str):
    """The job's only call, once the server has recorded it: after a caller's deadline the
    server records the call in its own task, so this polls for its effect."""
    for _ in range(300):
        async with app.db.transaction() as conn:
            count = (
                await conn.execute(text("SELECT count(*) FROM llm_calls WHERE job_id = :j"), {"j": job_id})
            ).scalar()
        if count:
            break
        await _tick()
    return await only_call(app, job_id)


async def new_job(jobs, team) -> str:
    return (await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)).job_id


async def test_transient_failure_of_the_primary_falls_back(app, jobs, team, fake_url):
    await clear_fake_requests(fake_url)
    job_id = await new_job(jobs, team)
    reply = await jobs.LLMCall(
        pb.LLMCallRequest(job_id=job_id, messages=[user("hi [fake fail=primary status=503]")]), metadata=team.auth
    )
    assert reply.metadata.model == team.alias
    assert [r["model"] for r in await fake_requests(fake_url)] == ["fake-gpt", "fake-gpt-backup"]
    row = await recorded(app, reply.call_id)
    assert (row.status, row.served_model, row.attempted_models) == (
        "succeeded",
        "fake-gpt-backup",
        ["fake-gpt", "fake-gpt-backup"],
    )


async def test_rejected_request_does_not_fall_back(app, jobs, team, fake_url):
    await clear_fake_requests(fake_url)
    job_id = await new_job(jobs, team)
    await expect_error(
        jobs.LLMCall(
            pb.LLMCallRequest(job_id=job_id, messages=[user("hi [fake fail=primary status=400]")]), metadata=team.auth
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "UPSTREAM_REJECTED",
    )
    assert [r["model"] for r in await fake_requests(fake_url)] == ["fake-gpt"]
    row = await only_call(app, job_id)
    assert (row.status, row.error_reason, row.attempted_models) == ("failed", "UPSTREAM_REJECTED", ["fake-gpt"])


async def test_retries_are_bounded_then_the_next_model_is_tried(database_url, fake_url):
    async with extra_app(database_url, fake_url, upstream_retries=2) as (app, channel):
        from saaslitellm.v1 import admin_service_pb2_grpc

        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        await clear_fake_requests(fake_url)
        job_id = await new_job(jobs, team)
        reply = await jobs.LLMCall(
            pb.LLMCallRequest(job_id=job_id, messages=[user("x [fake fail=primary status=503]")]), metadata=team.auth
        )
        assert [r["model"] for r in await fake_requests(fake_url)] == ["fake-gpt"] * 3 + ["fake-gpt-backup"]
        # The record lists every attempt, retries too: each request a provider may bill.
        assert (await recorded(app, reply.call_id)).attempted_models == ["fake-gpt"] * 3 + ["fake-gpt-backup"]
        await clear_fake_requests(fake_url)
        await expect_error(
            jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("x [fake status=400]")]), metadata=team.auth),
            grpc.StatusCode.INVALID_ARGUMENT,
            "UPSTREAM_REJECTED",
        )
        assert len(await fake_requests(fake_url)) == 1  # a rejected request is never retried


async def test_a_retry_wait_past_the_callers_deadline_moves_on_to_the_next_model(database_url, fake_url):
    """A provider asking for 8 s when the caller has 5: the next model is tried at once,
    not the call given up."""
    async with extra_app(database_url, fake_url, upstream_retries=2) as (_app, channel):
        from saaslitellm.v1 import admin_service_pb2_grpc

        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = await new_job(jobs, team)
        for rpc, request in (
            (jobs.LLMCall, pb.LLMCallRequest),
            (jobs.LLMCallStream, pb.LLMCallStreamRequest),
        ):
            await clear_fake_requests(fake_url)
            started = time.monotonic()
            message = user("x [fake fail=primary status=429 retry_after=8]")
            reply = rpc(request(job_id=job_id, messages=[message]), metadata=team.auth, timeout=5)
            if rpc is jobs.LLMCallStream:
                assert [event async for event in reply][-1].done
            else:
                await reply
            assert time.monotonic() - started < 4
            assert [r["model"] for r in await fake_requests(fake_url)] == ["fake-gpt", "fake-gpt-backup"]


async def test_a_model_whose_set_up_the_provider_refuses_is_not_retried_but_falls_back(database_url, fake_url):
    """401, 403, 404: the operator's credentials or model name. The next model may be set
    up right; the same one will not be, and the client is told not to retry."""
    async with extra_app(database_url, fake_url, upstream_retries=2) as (app, channel):
        from saaslitellm.v1 import admin_service_pb2_grpc

        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = await new_job(jobs, team)
        for status in (401, 402, 403, 404):
            await clear_fake_requests(fake_url)
            message = user(f"x [fake fail=primary status={status}]")
            reply = await jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[message]), metadata=team.auth)
            assert [r["model"] for r in await fake_requests(fake_url)] == ["fake-gpt", "fake-gpt-backup"]
            assert (await recorded(app, reply.call_id)).served_model == "fake-gpt-backup"

        await clear_fake_requests(fake_url)
        call = jobs.LLMCall(
            pb.LLMCallRequest(job_id=job_id, messages=[user("x [fake status=401]")]), metadata=team.auth
        )
        error = await expect_error(call, grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE")
        assert "will not help" in error.details() and "retry later" not in error.details()
        assert ("x-should-retry", "false") in tuple(error.trailing_metadata())
        assert [r["model"] for r in await fake_requests(fake_url)] == ["fake-gpt", "fake-gpt-backup"]


async def test_other_4xx_answers_are_the_request_rejected_never_retried(database_url, fake_url):
    async with extra_app(database_url, fake_url, upstream_retries=2) as (_app, channel):
        from saaslitellm.v1 import admin_service_pb2_grpc

        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = await new_job(jobs, team)
        for status in (413, 409):
            await clear_fake_requests(fake_url)
            call = jobs.LLMCall(
                pb.LLMCallRequest(job_id=job_id, messages=[user(f"x [fake status={status}]")]), metadata=team.auth
            )
            error = await expect_error(call, grpc.StatusCode.INVALID_ARGUMENT, "UPSTREAM_REJECTED")
            assert f"(HTTP {status})" in error.details()
            assert len(await fake_requests(fake_url)) == 1


async def test_the_callers_deadline_bounds_the_upstream_call(app, jobs, team):
    job_id = await new_job(jobs, team)
    started = time.monotonic()
    with_deadline = jobs.LLMCall(
        pb.LLMCallRequest(job_id=job_id, messages=[user("slow [fake delay_ms=5000]")]), metadata=team.auth, timeout=0.6
    )
    try:
        await with_deadline
        raise AssertionError("the call should have exceeded its deadline")
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.5
    row = await recorded_once_done(app, job_id)
    assert row.status in ("failed", "cancelled")


async def test_a_deadline_spent_on_the_primary_sends_nothing_to_the_fallback(app, jobs, team, fake_url):
    # The primary takes all of the caller's 0.6 s; an attempt on the fallback could not
    # answer in time, so it is not made (it would load the provider for nothing).
    job_id = await new_job(jobs, team)
    await clear_fake_requests(fake_url)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await jobs.LLMCall(
            pb.LLMCallRequest(job_id=job_id, messages=[user("slow [fake delay_ms=5000]")]),
            metadata=team.auth,
            timeout=0.6,
        )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    row = await recorded_once_done(app, job_id)
    assert list(row.attempted_models) == ["fake-gpt"]
    assert [r["model"] for r in await fake_requests(fake_url)] == ["fake-gpt"]


async def test_the_server_timeout_is_upstream_timeout(database_url, fake_url):
    async with extra_app(database_url, fake_url, upstream_timeout_seconds=0.5) as (app, channel):
        from saaslitellm.v1 import admin_service_pb2_grpc

        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel), models=("fake-gpt",))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = await new_job(jobs, team)
        error = await expect_error(
            jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("[fake delay_ms=3000]")]), metadata=team.auth),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "UPSTREAM_TIMEOUT",
        )
        # The provider may have done the work: SDKs that retry 5xx (OpenAI's) are told not to.
        assert ("x-should-retry", "false") in tuple(error.trailing_metadata())
        assert "within 0.5 s" in error.details()
        row = await only_call(app, job_id)
        assert (row.status, row.error_reason) == ("failed", "UPSTREAM_TIMEOUT")
        # The provider had the prompt when the server gave up: it is counted (estimated),
        # and priced, as providers bill a prompt read before the caller left.
        assert row.tokens_estimated and row.prompt_tokens > 0 and row.completion_tokens == 0
        assert row.provider_cost_usd > 0 and row.cost_source == "price_table"


async def test_a_stream_falls_back_before_its_first_byte(app, jobs, team, fake_url):
    await clear_fake_requests(fake_url)
    job_id = await new_job(jobs, team)
    events = [
        e
        async for e in jobs.LLMCallStream(
            pb.LLMCallStreamRequest(job_id=job_id, messages=[user("story [fake fail=primary tokens=6]")]),
            metadata=team.auth,
        )
    ]
    assert events[-1].done and not events[-1].HasField("error")
    row = await only_call(app, job_id)
    assert (row.served_model, row.attempted_models) == ("fake-gpt-backup", ["fake-gpt", "fake-gpt-backup"])


async def test_an_idle_upstream_stream_is_cut_and_recorded(database_url, fake_url):
    async with extra_app(database_url, fake_url, stream_idle_timeout_seconds=0.4) as (app, channel):
        from saaslitellm.v1 import admin_service_pb2_grpc

        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = await new_job(jobs, team)
        started = time.monotonic()
        events = [
            e
            async for e in jobs.LLMCallStream(
                pb.LLMCallStreamRequest(
                    job_id=job_id, messages=[user("x [fake tokens=10 chunks=5 stall_after=2 usage=none]")]
                ),
                metadata=team.auth,
            )
        ]
        assert time.monotonic() - started < 3
        last = events[-1]
        assert last.done and last.error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
        received = "".join(e.content for e in events)
        row = await only_call(app, job_id)
        assert (row.status, row.error_reason) == ("failed", "UPSTREAM_TIMEOUT")
        assert row.content == received and row.tokens_estimated and row.completion_tokens > 0


async def test_a_long_healthy_stream_is_not_cut_by_any_timeout(database_url, fake_url):
    # Every timeout is far shorter than the stream: only the gaps between chunks count.
    async with extra_app(database_url, fake_url, upstream_timeout_seconds=0.5, stream_idle_timeout_seconds=0.5) as (
        app,
        channel,
    ):
        from saaslitellm.v1 import admin_service_pb2_grpc

        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = await new_job(jobs, team)
        started = time.monotonic()
        events = [
            e
            async for e in jobs.LLMCallStream(
                pb.LLMCallStreamRequest(job_id=job_id, messages=[user("x [fake tokens=12 chunks=12 delay_ms=150]")]),
                metadata=team.auth,
            )
        ]
        assert time.monotonic() - started > 1.5  # longer than every timeout
        assert events[-1].done and not events[-1].HasField("error")
        assert len("".join(e.content for e in events).split()) == 12
        assert (await only_call(app, job_id)).status == "succeeded"


async def test_calls_on_suspended_teams_are_refused(app, jobs, admin):
    team = await create_team(admin)
    job_id = await new_job(jobs, team)
    async with app.db.transaction() as conn:
        await conn.execute(text("UPDATE teams SET status = 'paused' WHERE team_id = :t"), {"t": team.team_id})
    await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("x")]), metadata=team.auth),
        grpc.StatusCode.PERMISSION_DENIED,
        "TEAM_PAUSED",
    )
    await expect_error(
        jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth),
        grpc.StatusCode.PERMISSION_DENIED,
        "TEAM_PAUSED",
    )
    # Finishing work already started is still allowed: nothing is lost.
    done = await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job_id, status=job_pb2.Job.FAILED), metadata=team.auth)
    assert done.status == job_pb2.Job.FAILED


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.01)


async def test_a_stream_in_flight_finishes_when_its_team_is_suspended(app, jobs, admin):
    from saaslitellm.v1 import admin_service_pb2 as admin_pb
    from saaslitellm.v1 import tenancy_pb2
    from tests.api.conftest import ADMIN

    team = await create_team(admin)
    job_id = await new_job(jobs, team)
    call = jobs.LLMCallStream(
        pb.LLMCallStreamRequest(job_id=job_id, messages=[user("x [fake tokens=10 chunks=10 delay_ms=20]")]),
        metadata=team.auth,
    )
    events = []
    async for event in call:
        events.append(event)
        if len(events) == 2:  # streaming has begun: suspend the team now
            await admin.UpdateTeam(
                admin_pb.UpdateTeamRequest(team_id=team.team_id, status=tenancy_pb2.Team.SUSPENDED), metadata=ADMIN
            )
    assert events[-1].done and not events[-1].HasField("error")
    assert len("".join(e.content for e in events).split()) == 10
    await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("x")]), metadata=team.auth),
        grpc.StatusCode.PERMISSION_DENIED,
        "TEAM_SUSPENDED",
    )
    assert (await only_call(app, job_id)).status == "succeeded"  # nothing lost


async def test_an_unreachable_upstream_is_unavailable_not_a_timeout(database_url, fake_url, admin):
    from devstack.processes import free_port

    team = await create_team(admin, models=("fake-gpt",))  # through the session's server
    async with extra_app(database_url, fake_url, litellm_base_url=f"http://127.0.0.1:{free_port()}") as (_app, channel):
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = await new_job(jobs, team)
        await expect_error(
            jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("x")]), metadata=team.auth),
            grpc.StatusCode.UNAVAILABLE,
            "UPSTREAM_UNAVAILABLE",
        )


async def test_a_connection_dropped_without_an_answer_is_unavailable(app, jobs, admin):
    team = await create_team(admin, models=("fake-gpt",))
    job_id = await new_job(jobs, team)
    await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user("x [fake drop_after=0]")]), metadata=team.auth),
        grpc.StatusCode.UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
    )
    assert (await only_call(app, job_id)).error_reason == "UPSTREAM_UNAVAILABLE"


async def test_a_stream_event_larger_than_64_kib_arrives_whole(app, jobs, team):
    # One content chunk of 100,000 words (about 650 KB in one SSE line): HTTP clients'
    # line readers often stop at 64 KiB; ours must not.
    job_id = await new_job(jobs, team)
    events = [
        e
        async for e in jobs.LLMCallStream(
            pb.LLMCallStreamRequest(job_id=job_id, messages=[user("x [fake tokens=100000 chunks=1]")]),
            metadata=team.auth,
        )
    ]
    content = "".join(e.content for e in events)
    assert len(content) > 64 * 1024
    assert len(content.split()) == 100000
    assert events[-1].done and not events[-1].HasField("error")
    assert (await only_call(app, job_id)).completion_tokens == 100000


async def _stream_events(jobs, team, job_id: str, prompt: str) -> list:
    request = pb.LLMCallStreamRequest(job_id=job_id, messages=[user(prompt)])
    return [e async for e in jobs.LLMCallStream(request, metadata=team.auth)]


@pytest.mark.parametrize("usage", ["zero", "negative", "huge"])
async def test_a_usage_no_provider_could_mean_is_counted_with_the_tokenizer(app, jobs, team, usage):
    """Zeros for an answer, negative counts, or billions of tokens: not believed (a free call
    would pass a job's cost limit, a negative one lower its spend, one past int32 could not
    even be recorded); the call's tokens are counted instead and marked estimated,
    streamed or not."""
    job_id = await new_job(jobs, team)
    prompt = f"one two three [fake tokens=6 usage={usage}]"
    plain = await jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user(prompt)]), metadata=team.auth)
    streamed = await _stream_events(jobs, team, job_id, prompt)
    assert streamed[-1].usage.estimated
    assert 0 < plain.metadata.tokens_used < 100 and 0 < streamed[-1].usage.total_tokens < 100
    async with app.db.transaction() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT status, prompt_tokens, completion_tokens, tokens_estimated FROM llm_calls WHERE job_id = :j"
                ),
                {"j": job_id},
            )
        ).all()
    assert len(rows) == 2
    assert all(
        r.status == "succeeded" and r.tokens_estimated and r.prompt_tokens > 0 and r.completion_tokens > 0 for r in rows
    )


async def test_a_chunk_of_the_wrong_shape_ends_the_stream_as_broken_off(app, jobs, team):
    """Valid JSON that is no chunk (here `[5]`, after two content chunks) is the provider's
    fault, reported in the stream's last event like a chunk that is not JSON at all, not an
    internal error of ours that cuts the stream without one."""
    job_id = await new_job(jobs, team)
    events = await _stream_events(jobs, team, job_id, "x [fake tokens=6 chunks=3 garbage_after=2]")
    last = events[-1]
    assert last.done and last.error.code and "broke off" in last.error.message
    row = await only_call(app, job_id)
    assert (row.status, row.error_reason) == ("failed", "UPSTREAM_STREAM_INTERRUPTED")
    assert row.content == "".join(e.content for e in events) and row.content


async def test_a_reply_of_the_wrong_shape_is_the_providers_fault_not_an_internal_error(app, jobs, team, fake_url):
    """Valid JSON that is no completion (`{"choices": "broken"}`) is a malformed reply, like
    one that is not JSON: UPSTREAM_UNAVAILABLE, so the next model is tried; it was INTERNAL."""
    await clear_fake_requests(fake_url)
    job_id = await new_job(jobs, team)
    call = jobs.LLMCall(
        pb.LLMCallRequest(job_id=job_id, messages=[user("x [fake garbage_after=0]")]), metadata=team.auth
    )
    error = await expect_error(call, grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE")
    assert "malformed" in error.details()
    assert [r["model"] for r in await fake_requests(fake_url)] == ["fake-gpt", "fake-gpt-backup"]
    row = await only_call(app, job_id)
    assert (row.status, row.error_reason) == ("failed", "UPSTREAM_UNAVAILABLE")
    # The provider did the work: the prompt is counted (estimated), as for a timeout.
    assert row.prompt_tokens > 0 and row.tokens_estimated


async def test_a_call_left_in_a_retrys_backoff_records_no_usage(database_url, fake_url):
    """The provider refused the attempt (429) and the client left while the server waited
    to retry: the provider has nothing, so the cancelled call records no tokens (it was
    charged an estimated prompt, 817 credits for a consumption team in the hunt)."""
    async with extra_app(database_url, fake_url, upstream_retries=1) as (app, channel):
        from prometheus_client import REGISTRY

        from saaslitellm.v1 import admin_service_pb2_grpc

        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        labels = {"model": "fake-gpt", "reason": "UPSTREAM_RATE_LIMITED"}
        for rpc, request in ((jobs.LLMCall, pb.LLMCallRequest), (jobs.LLMCallStream, pb.LLMCallStreamRequest)):
            job_id = await new_job(jobs, team)
            refused = REGISTRY.get_sample_value("saaslitellm_upstream_errors_total", labels) or 0
            call = rpc(request(job_id=job_id, messages=[user("x [fake status=429 retry_after=8]")]), metadata=team.auth)
            started = asyncio.ensure_future(call.read() if rpc is jobs.LLMCallStream else call)
            for _ in range(500):  # until the attempt was refused: the server is waiting to retry
                if (REGISTRY.get_sample_value("saaslitellm_upstream_errors_total", labels) or 0) > refused:
                    break
                await _tick()
            call.cancel()
            await asyncio.gather(started, return_exceptions=True)
            row = await recorded_once_done(app, job_id)
            assert (row.status, row.prompt_tokens, row.completion_tokens) == ("cancelled", 0, 0)


async def test_a_cut_streams_reasoning_counts_in_its_estimated_tokens(database_url, fake_url):
    # The provider reasons (30 words), starts its answer, then stalls with no usage sent:
    # the gateway's own count covers the reasoning the provider bills as output too.
    async with extra_app(database_url, fake_url, stream_idle_timeout_seconds=0.4) as (app, channel):
        from saaslitellm.v1 import admin_service_pb2_grpc

        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job_id = await new_job(jobs, team)
        prompt = "x [fake reasoning=30 tokens=10 chunks=5 stall_after=2 usage=none]"
        events = [
            e
            async for e in jobs.LLMCallStream(
                pb.LLMCallStreamRequest(job_id=job_id, messages=[user(prompt)]), metadata=team.auth
            )
        ]
        reasoning = "".join(e.choices[0].delta.reasoning_content for e in events if e.choices)
        assert len(reasoning.split()) == 30 and events[-1].done
        row = await only_call(app, job_id)
        assert row.error_reason == "UPSTREAM_TIMEOUT" and row.tokens_estimated
        assert row.completion_tokens >= 30, row.completion_tokens
