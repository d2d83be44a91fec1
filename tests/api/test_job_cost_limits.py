"""A team's limit on the cost of a job (Team.max_cost_usd_per_job, in billed dollars):
each call reserves its worst-case cost before it reaches the provider and its record
settles the reservation at the actual cost, so a job never costs more than the limit; a
call that cannot fit is refused and changes nothing. The API tests' server calls the fake provider directly,
which prices fake-gpt at $1 per million input and $2 per million output tokens, as
LiteLLM does. Concurrent calls over two processes: tests/integration/test_credit_races.py."""

from __future__ import annotations

from decimal import Decimal

import grpc
from google.protobuf import struct_pb2
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import job_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import ADMIN, create_team
from tests.api.test_job_call_limits import provider_requests
from tests.api.test_job_flow import error_info, expect_error, user
from tests.api.test_rate_limits import recorded_calls

INPUT_PRICE, OUTPUT_PRICE = Decimal("0.000001"), Decimal("0.000002")


def call(jobs, team, job_id: str, text_: str, **params):
    return jobs.LLMCall(pb.LLMCallRequest(job_id=job_id, messages=[user(text_)], **params), metadata=team.auth)


async def job_limits(app, job_id: str) -> tuple[Decimal, Decimal]:
    """(spent, reserved) dollars in the job's row of job_limits."""
    async with app.db.transaction() as conn:
        row = (
            await conn.execute(
                text("SELECT cost_spent_usd, cost_reserved_usd FROM job_limits WHERE job_id = CAST(:j AS uuid)"),
                {"j": job_id},
            )
        ).one()
    return Decimal(row[0]), Decimal(row[1])


async def recorded_cost(app, job_id: str) -> Decimal:
    async with app.db.transaction() as conn:
        return Decimal(
            (
                await conn.execute(
                    text("SELECT coalesce(sum(billed_cost_usd), 0) FROM llm_calls WHERE job_id = CAST(:j AS uuid)"),
                    {"j": job_id},
                )
            ).scalar_one()
        )


async def test_calls_reserve_their_worst_case_and_the_one_that_cannot_fit_is_refused(app, admin, jobs, fake_url):
    # Each call asks for 200 words with max_tokens 250: it costs about $0.0004 and may cost
    # $0.0005 plus its input (about $0.00012). Two fit in $0.0012; the third's worst case does not.
    team = await create_team(admin, max_cost_usd_per_job="0.0012")
    shown = await admin.GetTeam(admin_pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert shown.max_cost_usd_per_job == "0.0012"
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    marker = f"marker-{job.job_id} [fake tokens=200]"
    for _ in range(2):
        await call(jobs, team, job.job_id, marker, max_tokens=250)
    spent, reserved = await job_limits(app, job.job_id)
    assert reserved == 0 and spent == await recorded_cost(app, job.job_id)
    assert Decimal("0.0008") < spent < Decimal("0.0009")

    refused = await expect_error(
        call(jobs, team, job.job_id, marker, max_tokens=250),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_COST_LIMIT_REACHED",
    )
    info = dict(error_info(refused).metadata)
    assert info["job_id"] == job.job_id and info["max_cost_usd_per_job"] == "0.0012"
    assert Decimal(info["spent_usd"]) == spent and info["reserved_usd"] == "0"
    worst = Decimal(info["call_worst_case_usd"])
    assert 250 * OUTPUT_PRICE < worst < 250 * OUTPUT_PRICE + 200 * INPUT_PRICE  # output bound + input bytes
    assert spent + worst > Decimal("0.0012")
    assert "could cost up to" in refused.details() and "new one" in refused.details()
    stream = jobs.LLMCallStream(
        pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(marker)], max_tokens=250), metadata=team.auth
    )
    await expect_error(anext(aiter(stream)), grpc.StatusCode.FAILED_PRECONDITION, "JOB_COST_LIMIT_REACHED")

    # Refused calls reached no provider and changed nothing; a smaller call still fits.
    assert await provider_requests(fake_url, f"marker-{job.job_id}") == 2
    assert await recorded_calls(app, job.job_id) == 2
    assert await job_limits(app, job.job_id) == (spent, 0)
    await call(jobs, team, job.job_id, f"marker-{job.job_id}", max_tokens=10)
    done = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert done.costs.credits_charged == 1 and done.costs.total_calls == 3
    assert await recorded_cost(app, job.job_id) <= Decimal("0.0012")


async def test_failed_and_streamed_calls_settle_their_reservation(app, admin, jobs):
    team = await create_team(admin, max_cost_usd_per_job="0.01")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    await expect_error(
        call(jobs, team, job.job_id, "no [fake status=400]", max_tokens=100),
        grpc.StatusCode.INVALID_ARGUMENT,
        "UPSTREAM_REJECTED",
    )
    assert await job_limits(app, job.job_id) == (0, 0)  # the provider refused it: it cost nothing

    stream = jobs.LLMCallStream(
        pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user("go [fake tokens=50]")], max_completion_tokens=60),
        metadata=team.auth,
    )
    events = [event async for event in stream]
    assert events[-1].done and not events[-1].HasField("error")
    spent, reserved = await job_limits(app, job.job_id)
    assert reserved == 0 and spent == await recorded_cost(app, job.job_id) > 0


async def test_a_limited_team_must_bound_the_output_and_a_worst_case_over_the_limit_is_refused(app, admin, jobs):
    team = await create_team(admin, max_cost_usd_per_job="0.0001")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    unbounded = await expect_error(
        call(jobs, team, job.job_id, "hi"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"
    )
    assert unbounded.details().startswith("max_tokens:") and "max_cost_usd_per_job" in unbounded.details()
    # 1000 output tokens may cost $0.002, more than the whole limit: refused on the first call.
    too_big = await expect_error(
        call(jobs, team, job.job_id, "hi", max_tokens=1000),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_COST_LIMIT_REACHED",
    )
    assert "more than the $0.0001" in too_big.details() and "fewer tokens" in too_big.details()
    assert await recorded_calls(app, job.job_id) == 0
    await call(jobs, team, job.job_id, "hi", max_tokens=10)  # $0.00002 plus its input (61 bytes) fits


async def test_the_limit_can_be_changed_removed_and_is_checked(admin, jobs):
    team = await create_team(admin)
    assert (
        await admin.GetTeam(admin_pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    ).max_cost_usd_per_job == "0"
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    await call(jobs, team, job.job_id, "hi")  # no limit: no bound needed

    updated = await admin.UpdateTeam(
        admin_pb.UpdateTeamRequest(team_id=team.team_id, max_cost_usd_per_job="0.0000100000"), metadata=ADMIN
    )
    assert updated.max_cost_usd_per_job == "0.00001"
    await expect_error(
        call(jobs, team, job.job_id, "hi", max_tokens=100),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_COST_LIMIT_REACHED",
    )
    await admin.UpdateTeam(admin_pb.UpdateTeamRequest(team_id=team.team_id, max_cost_usd_per_job="0"), metadata=ADMIN)
    await call(jobs, team, job.job_id, "hi", max_tokens=100)

    for value in ("-1", "abc", "0.00000000001", "10000000000", "", "1_000", "+5", "5.", "-0", "1e-3", "\uff11"):
        bad = await expect_error(
            admin.UpdateTeam(
                admin_pb.UpdateTeamRequest(team_id=team.team_id, max_cost_usd_per_job=value), metadata=ADMIN
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
        )
        assert bad.details().startswith("max_cost_usd_per_job:"), bad.details()


async def test_the_limit_counts_what_calls_cost_the_team_with_its_markup(app, admin, jobs):
    # With a 100% markup a call asking for 200 words with max_tokens 250 may cost the team
    # twice its provider price: one fits in $0.0018, the second's worst case does not.
    team = await create_team(admin, max_cost_usd_per_job="0.0018", markup_percent="100")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    made = await call(jobs, team, job.job_id, "go [fake tokens=200]", max_tokens=250)
    spent, _ = await job_limits(app, job.job_id)
    assert spent == await recorded_cost(app, job.job_id) == Decimal(str(made.metadata.cost_usd))
    refused = await expect_error(
        call(jobs, team, job.job_id, "go [fake tokens=200]", max_tokens=250),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_COST_LIMIT_REACHED",
    )
    worst = Decimal(dict(error_info(refused).metadata)["call_worst_case_usd"])
    assert 2 * 250 * OUTPUT_PRICE < worst < 2 * (250 * OUTPUT_PRICE + 200 * INPUT_PRICE)


async def test_a_count_made_for_a_provider_that_reported_none_stays_within_the_bound(app, admin, jobs):
    """The fake provider echoes 200 emoji (about 400 tokens by OpenAI's tokenizer) and
    reports no usage: the count the server makes is capped at max_tokens, which the
    provider was told to stop at, so the job stays within its limit."""
    team = await create_team(admin, max_cost_usd_per_job="0.001")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    made = await call(jobs, team, job.job_id, "[fake echo=1 usage=none] " + "\U0001f600" * 200, max_tokens=1)
    assert made.metadata.tokens_used > 1  # the prompt, counted
    spent, reserved = await job_limits(app, job.job_id)
    assert reserved == 0 and spent == await recorded_cost(app, job.job_id) <= Decimal("0.001")
    async with app.db.transaction() as conn:
        completion, estimated = (
            await conn.execute(
                text("SELECT completion_tokens, tokens_estimated FROM llm_calls WHERE job_id = CAST(:j AS uuid)"),
                {"j": job.job_id},
            )
        ).one()
    assert (completion, estimated) == (1, True)


async def test_a_tool_call_the_provider_reported_no_usage_for_counts_its_arguments(app, admin, jobs):
    team = await create_team(admin)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    tool = struct_pb2.Struct()
    tool.update(
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    )
    made = await jobs.LLMCall(
        pb.LLMCallRequest(
            job_id=job.job_id, messages=[user("weather [fake usage=none tool=get_weather]")], tools=[tool]
        ),
        metadata=team.auth,
    )
    assert made.response.tool_calls and made.metadata.completion_tokens > 0
    assert made.metadata.prompt_tokens > 10  # the tool's definition is input too
