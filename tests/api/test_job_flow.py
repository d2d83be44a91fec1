"""The job flow over native gRPC: create, call, stream, complete, with real accounting."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import chat_pb2, job_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import ADMIN, create_team, random_job_id


def user(text_: str) -> chat_pb2.ChatMessage:
    content = struct_pb2.Value(string_value=text_)
    return chat_pb2.ChatMessage(role="user", content=content)


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo in status details")


async def expect_error(call, code: grpc.StatusCode, reason: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    assert error_info(caught.value).reason == reason
    return caught.value


async def team_row(app, team_id: str):
    async with app.db.transaction() as conn:
        return (
            await conn.execute(
                text("SELECT credits_allocated, credits_used, credits_reserved FROM teams WHERE team_id = :t"),
                {"t": team_id},
            )
        ).one()


async def ledger_sums(app, team_id: str):
    async with app.db.transaction() as conn:
        return (
            await conn.execute(
                text("SELECT sum(amount), sum(reserved_delta) FROM credit_ledger WHERE team_id = :t"), {"t": team_id}
            )
        ).one()


async def test_full_job_flow_charges_one_credit_for_many_calls(app, jobs, team):
    job = await jobs.CreateJob(
        pb.CreateJobRequest(team_id=team.team_id, job_type="document_analysis"), metadata=team.auth
    )
    assert job.status == job_pb2.Job.PENDING
    for purpose in ("extract", "classify", "summarise"):
        reply = await jobs.LLMCall(
            pb.LLMCallRequest(job_id=job.job_id, messages=[user(f"{purpose} this")], purpose=purpose),
            metadata=team.auth,
        )
        assert reply.response.content.startswith("Hello from fake!")
        assert reply.metadata.model == team.alias
        assert reply.metadata.tokens_used == reply.metadata.prompt_tokens + reply.metadata.completion_tokens > 0
    running = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert running.status == job_pb2.Job.IN_PROGRESS and len(running.calls) == 3

    result = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert result.status == job_pb2.Job.COMPLETED
    assert result.costs.total_calls == 3 and result.costs.successful_calls == 3
    assert result.costs.credit_applied and result.costs.credits_charged == 1
    assert result.costs.credits_remaining == 99
    assert [c.purpose for c in result.calls] == ["extract", "classify", "summarise"]
    assert tuple(await team_row(app, team.team_id)) == (100, 1, 0)
    assert tuple(await ledger_sums(app, team.team_id)) == (99, 0)


async def test_failed_job_costs_nothing_and_releases_its_reservation(app, jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    assert tuple(await team_row(app, team.team_id)) == (100, 0, 1)
    result = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.FAILED, error_message="gave up"),
        metadata=team.auth,
    )
    assert result.status == job_pb2.Job.FAILED
    assert not result.costs.credit_applied and result.costs.credits_remaining == 100
    assert tuple(await team_row(app, team.team_id)) == (100, 0, 0)
    assert tuple(await ledger_sums(app, team.team_id)) == (100, 0)


async def test_completing_twice_returns_the_same_result_and_charges_once(app, jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    request = pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED)
    first, second = [await jobs.CompleteJob(request, metadata=team.auth) for _ in range(2)]
    assert first == second
    assert tuple(await team_row(app, team.team_id)) == (100, 1, 0)
    await expect_error(
        jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.FAILED), metadata=team.auth),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_ALREADY_FINISHED",
    )


async def test_concurrent_completions_of_one_job_charge_once(app, jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    request = pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED)
    results = await asyncio.gather(*(jobs.CompleteJob(request, metadata=team.auth) for _ in range(20)))
    assert {r.costs.credits_remaining for r in results} == {99}
    assert tuple(await team_row(app, team.team_id)) == (100, 1, 0)


async def test_calls_on_a_finished_job_are_refused(jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth)
    await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("hi")]), metadata=team.auth),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_NOT_OPEN",
    )


async def test_a_team_without_credits_cannot_start_work(app, admin, jobs):
    poor = await create_team(admin, credits=1)
    await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=poor.auth)
    error = await expect_error(
        jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=poor.auth),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INSUFFICIENT_CREDITS",
    )
    assert error_info(error).metadata["credits_available"] == "0"
    assert tuple(await team_row(app, poor.team_id)) == (1, 0, 1)  # the refusal changed nothing


async def test_concurrent_creates_never_overshoot(app, admin, jobs):
    team = await create_team(admin, credits=5)
    outcomes = await asyncio.gather(
        *(jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth) for _ in range(30)),
        return_exceptions=True,
    )
    created = [o for o in outcomes if isinstance(o, job_pb2.Job)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(created) == 5 and len(refused) == 25
    assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused)
    assert tuple(await team_row(app, team.team_id)) == (5, 0, 5)


async def test_idempotent_create_returns_the_same_job_and_reserves_once(app, jobs, team):
    request = pb.CreateJobRequest(job_type="t", idempotency_key="retry-me")
    jobs_ = await asyncio.gather(*(jobs.CreateJob(request, metadata=team.auth) for _ in range(10)))
    assert len({j.job_id for j in jobs_}) == 1
    again = await jobs.CreateJob(
        pb.CreateJobRequest(job_type="t"), metadata=(*team.auth, ("idempotency-key", "retry-me"))
    )
    assert again.job_id == jobs_[0].job_id
    assert tuple(await team_row(app, team.team_id)) == (100, 0, 1)
    await expect_error(
        jobs.CreateJob(pb.CreateJobRequest(job_type="other", idempotency_key="retry-me"), metadata=team.auth),
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )


async def test_metadata_round_trips(jobs, team):
    metadata = struct_pb2.Struct()
    metadata.update({"test": True, "nested": {"n": [1, 2]}, "s": "x"})
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t", metadata=metadata), metadata=team.auth)
    fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert fetched.metadata == metadata


async def test_streamed_call_events_and_record(app, jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="chat"), metadata=team.auth)
    events = [
        e
        async for e in jobs.LLMCallStream(
            pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user("story [fake tokens=9 chunks=3]")]),
            metadata=team.auth,
        )
    ]
    first, last = events[0], events[-1]
    assert first.call_id and first.job_id == job.job_id and first.model == team.alias
    text_ = "".join(e.content for e in events)
    assert len(text_.split()) == 9
    assert "".join(e.choices[0].delta.content for e in events if e.choices) == text_
    assert last.done and last.finish_reason == "stop" and not last.HasField("error")
    assert last.usage.completion_tokens == 9
    assert sum(1 for e in events if e.done) == 1
    fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert fetched.calls[0].call_id == first.call_id and fetched.calls[0].streamed


async def test_model_defaults_and_access(admin, jobs):
    team = await create_team(admin)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    named = await jobs.LLMCall(
        pb.LLMCallRequest(job_id=job.job_id, model=team.alias, messages=[user("hi")]), metadata=team.auth
    )
    assert named.metadata.model == team.alias
    for forbidden in ("fake-gpt", "NoSuchAlias"):
        error = await expect_error(
            jobs.LLMCall(
                pb.LLMCallRequest(job_id=job.job_id, model=forbidden, messages=[user("x")]), metadata=team.auth
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "MODEL_NOT_ALLOWED",
        )
        assert forbidden in error.details()


async def test_default_model_set_at_team_creation(admin, jobs):
    team = await create_team(admin)
    # A second alias in the same group makes the choice ambiguous without a default.
    await admin.CreateModel(
        admin_pb.CreateModelRequest(model_alias=team.alias + "-2", actual_model="fake-gpt", access_groups=[team.group]),
        metadata=ADMIN,
    )
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("x")]), metadata=team.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "NO_DEFAULT_MODEL",
    )
    with_default = await create_team(admin, default_model="")
    assert with_default.key


async def test_upstream_failure_is_recorded_and_reported(jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    error = await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("x [fake status=503]")]), metadata=team.auth),
        grpc.StatusCode.UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
    )
    assert "fake-gpt" not in error.details()  # tenants see aliases, never provider models
    fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert fetched.calls[0].status == job_pb2.CallSummary.FAILED and fetched.calls[0].error
    result = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert (result.costs.total_calls, result.costs.failed_calls) == (1, 1)


async def test_rate_limited_upstream_gives_resource_exhausted_with_retry_info(jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    error = await expect_error(
        jobs.LLMCall(
            pb.LLMCallRequest(job_id=job.job_id, messages=[user("x [fake status=429 retry_after=7]")]),
            metadata=team.auth,
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "UPSTREAM_RATE_LIMITED",
    )
    retry = [d for d in rpc_status.from_call(error).details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    info = error_details_pb2.RetryInfo()
    retry[0].Unpack(info)
    assert info.retry_delay.seconds == 7


async def test_provider_bad_request_is_invalid_argument_with_its_message(jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    error = await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("x [fake status=400]")]), metadata=team.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "UPSTREAM_REJECTED",
    )
    assert "rejected" in error.details()


async def test_stream_error_before_first_event_is_an_rpc_error(jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    call = jobs.LLMCallStream(
        pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user("x [fake status=500]")]), metadata=team.auth
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_stream_cut_midway_ends_with_an_in_band_error_and_is_recorded(jobs, team, caplog):
    caplog.set_level(logging.INFO, logger="saaslitellm.access")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    events = [
        e
        async for e in jobs.LLMCallStream(
            # The chunks are 5 ms apart so that they are read before the reset (aiohttp drops bytes
            # that arrive in the same instant as a reset; see server/upstream/transport.py).
            pb.LLMCallStreamRequest(
                job_id=job.job_id, messages=[user("x [fake tokens=20 chunks=10 drop_after=3 delay_ms=5]")]
            ),
            metadata=team.auth,
        )
    ]
    last = events[-1]
    assert last.done and last.HasField("error")
    assert last.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    received = "".join(e.content for e in events)
    fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    call = fetched.calls[0]
    assert call.status == job_pb2.CallSummary.FAILED
    assert call.usage.estimated and call.usage.completion_tokens > 0 and received
    # Its RPC ended OK (the error is in its last event); the access line says how it ended.
    (line,) = [r for r in caplog.records if r.name == "saaslitellm.access" and r.rpc == "JobService/LLMCallStream"]
    assert (line.code, line.reason) == ("OK", "UPSTREAM_STREAM_INTERRUPTED")


async def test_client_disconnect_mid_stream_is_recorded_as_cancelled(app, jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    call = jobs.LLMCallStream(
        pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user("x [fake tokens=40 chunks=20 delay_ms=20]")]),
        metadata=team.auth,
    )
    seen = 0
    async for event in call:
        seen += bool(event.content)
        if seen == 3:
            call.cancel()
            break
    for _ in range(200):  # the server records the call in its own task; poll its effect
        fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
        if fetched.calls:
            break
        await asyncio.sleep(0.01)
    recorded = fetched.calls[0]
    assert recorded.status == job_pb2.CallSummary.CANCELLED
    assert 3 <= recorded.usage.completion_tokens < 40
    assert recorded.usage.estimated


async def test_a_call_still_streaming_when_its_job_completes_is_recorded_after_the_settlement(jobs, team):
    # Documented (README, Jobs): the settlement is made at completion, without the call
    # still running; the call finishes, is recorded and shows in the job afterwards.
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    call = jobs.LLMCallStream(
        pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user("x [fake tokens=4 chunks=2 delay_ms=500]")]),
        metadata=team.auth,
    )
    events = []
    async for event in call:
        events.append(event)
        if len(events) == 1:  # started, nothing recorded yet
            settled = await jobs.CompleteJob(
                pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
            )
    assert settled.costs.total_calls == 0 and settled.costs.credits_charged == 1
    assert events[-1].done and not events[-1].HasField("error")
    fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert fetched.status == job_pb2.Job.COMPLETED
    assert [c.status for c in fetched.calls] == [job_pb2.CallSummary.SUCCEEDED]
    assert fetched.costs.total_calls == 1 and fetched.costs.credits_charged == 1
    assert fetched.costs.credits_remaining == 99  # charged once, at the settlement


async def test_authentication(jobs, team):
    await expect_error(
        jobs.CreateJob(pb.CreateJobRequest(job_type="t")), grpc.StatusCode.UNAUTHENTICATED, "MISSING_API_KEY"
    )
    error = await expect_error(
        jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=(("authorization", "Bearer sk-wrong-key-123"),)),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_API_KEY",
    )
    assert "sk-wrong" not in error.details()
    await expect_error(
        jobs.CreateJob(pb.CreateJobRequest(job_type="t", team_id="someone-else"), metadata=team.auth),
        grpc.StatusCode.PERMISSION_DENIED,
        "TEAM_MISMATCH",
    )
    # Not a team id at all: refused naming the field, without echoing what was sent.
    junk = await expect_error(
        jobs.CreateJob(pb.CreateJobRequest(job_type="t", team_id="x" * 5000), metadata=team.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    assert junk.details().startswith("team_id:") and len(junk.details()) < 200
    # Spaces, letters that show nothing, and marks with nothing to mark.
    for looks_blank in ("   ", "\u00a0\u3000", "\u2800", "\u3164", "\u034f", "\ufe0f", "\u17b4\u17b5", "\U00016fe4"):
        blank = await expect_error(
            jobs.CreateJob(pb.CreateJobRequest(job_type=looks_blank), metadata=team.auth),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
        )
        assert blank.details() == "job_type: must not be blank"


async def test_another_teams_job_is_not_found(admin, jobs, team):
    other = await create_team(admin)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=other.auth)
    for call in (
        jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth),
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("x")]), metadata=team.auth),
        jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth),
    ):
        await expect_error(call, grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    await expect_error(
        jobs.GetJob(pb.GetJobRequest(job_id=random_job_id()), metadata=team.auth),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )


async def test_bad_input_names_the_field_and_changes_nothing(app, jobs, team):
    await expect_error(
        jobs.GetJob(pb.GetJobRequest(job_id="not-a-uuid"), metadata=team.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    error = await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id), metadata=team.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    assert error.details().startswith("messages:")
    fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert fetched.status == job_pb2.Job.PENDING and not fetched.calls
    await expect_error(
        jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id), metadata=team.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )


async def test_a_team_lists_the_models_it_may_use(admin, jobs, team):
    listed = await jobs.ListTeamModels(pb.ListTeamModelsRequest(team_id=team.team_id), metadata=team.auth)
    assert [m.model_alias for m in listed.models] == [team.alias]
    assert listed.default_model == team.alias and listed.models[0].is_default
    assert "fake-gpt" not in str(listed)  # never the real model names
    assert await jobs.ListTeamModels(pb.ListTeamModelsRequest(team_id=team.team_id), metadata=ADMIN) == listed
    other = await create_team(admin)
    await expect_error(
        jobs.ListTeamModels(pb.ListTeamModelsRequest(team_id=team.team_id), metadata=other.auth),
        grpc.StatusCode.PERMISSION_DENIED,
        "TEAM_MISMATCH",
    )


async def test_job_metadata_is_merged_in_any_status_and_checked(jobs, team):
    job = await jobs.CreateJob(
        pb.CreateJobRequest(job_type="t", metadata=struct({"document": "q3", "pages": 4})), metadata=team.auth
    )
    merged = await jobs.UpdateJobMetadata(
        pb.UpdateJobMetadataRequest(job_id=job.job_id, metadata=struct({"pages": 5, "reviewer": "ann"})),
        metadata=team.auth,
    )
    assert json_format.MessageToDict(merged.metadata) == {"document": "q3", "pages": 5, "reviewer": "ann"}
    await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth)
    after = await jobs.UpdateJobMetadata(
        pb.UpdateJobMetadataRequest(job_id=job.job_id, metadata=struct({"outcome": "approved"})), metadata=team.auth
    )
    assert after.status == job_pb2.Job.COMPLETED and after.metadata["outcome"] == "approved"
    assert after.costs.credits_charged == 1  # a metadata change is not a charge

    missing = await expect_error(
        jobs.UpdateJobMetadata(pb.UpdateJobMetadataRequest(job_id=job.job_id), metadata=team.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    assert missing.details().startswith("metadata:")
    await expect_error(
        jobs.UpdateJobMetadata(
            pb.UpdateJobMetadataRequest(job_id=job.job_id, metadata=struct({"x": "a\x00b"})), metadata=team.auth
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    await expect_error(
        jobs.UpdateJobMetadata(
            pb.UpdateJobMetadataRequest(job_id=random_job_id(), metadata=struct({"x": 1})), metadata=team.auth
        ),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
    unchanged = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert json_format.MessageToDict(unchanged.metadata) == {
        "document": "q3",
        "pages": 5,
        "reviewer": "ann",
        "outcome": "approved",
    }


def struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


async def test_a_call_asking_for_logprobs_gets_the_providers_in_answers_and_events(jobs, team):
    """The request took `logprobs` and `top_logprobs`; the answer and each streamed event
    carry what the provider sent (the fake: one entry per word, two alternatives each)."""
    from fakeprovider.replies import logprobs_for

    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    plain = await jobs.LLMCall(
        pb.LLMCallRequest(job_id=job.job_id, messages=[user("x [fake tokens=4]")], logprobs=True, top_logprobs=2),
        metadata=team.auth,
    )
    answer = json_format.MessageToDict(plain.response.logprobs)
    assert answer["content"] == logprobs_for(plain.response.content, 2) and len(answer["content"]) == 4
    events = [
        e
        async for e in jobs.LLMCallStream(
            pb.LLMCallStreamRequest(
                job_id=job.job_id, messages=[user("x [fake tokens=4 chunks=2]")], logprobs=True, top_logprobs=2
            ),
            metadata=team.auth,
        )
    ]
    with_text = [e for e in events if e.content]
    assert len(with_text) == 2
    for event in with_text:
        streamed = json_format.MessageToDict(event.choices[0].logprobs)
        assert streamed["content"] == logprobs_for(event.content, 2)
    without = await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("x")]), metadata=team.auth)
    assert not without.response.HasField("logprobs")
