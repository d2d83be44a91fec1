"""A call recorded after its job was completed is charged at the rates the job was settled
under: changing the team's conversion rate or budget mode between the completion and the
late record must not re-price the calls the settlement already charged (neither charge
them again at a lower rate, nor let a higher one or a job-based budget swallow the call)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import credit_service_pb2 as cpb
from saaslitellm.v1 import credit_service_pb2_grpc, job_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from server.storage import operations
from tests.api.conftest import ADMIN, create_team, ledger_mismatches, past_first_content
from tests.api.test_credits import ledger_entries, set_billing
from tests.api.test_job_flow import user

# The fake counts a prompt's words plus one for the role: 4 + 202 tokens, then 7 + 4 for
# the stream, whose second chunk comes 800 ms after the first (the job completes and the
# team's rates change in between).
FIRST = "a [fake tokens=202]"
LATE = "b [fake tokens=4 chunks=2 first_delay_ms=0 delay_ms=800]"


async def complete_mid_stream(app, jobs, admin, credits: int, **billing):
    """A team billed with `billing` runs a call (FIRST), starts a stream (LATE) and
    completes its job while the stream runs. Returns the team, the job, the stream's
    remaining events and the completion."""
    team = await create_team(admin, credits=credits)
    await set_billing(app, team.team_id, **billing)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user(FIRST)]), metadata=team.auth)
    stream = jobs.LLMCallStream(pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(LATE)]), metadata=team.auth)
    events, _ = await past_first_content(stream)
    done = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    return team, job, events, done


async def complete_during_a_stream(app, channel, jobs, admin, credits: int, change: dict, **billing):
    """complete_mid_stream; then the operator changes the team's billing to `change`, and
    the stream ends and is recorded late. Returns the job's id, what its completion
    charged, its costs once the late call is recorded, and the team's credits remaining
    then."""
    team, job, events, done = await complete_mid_stream(app, jobs, admin, credits, **billing)
    await set_billing(app, team.team_id, **change)
    costs = (await jobs.GetJobCosts(pb.GetJobCostsRequest(job_id=job.job_id), metadata=team.auth)).costs
    assert done.costs.total_calls == costs.total_calls == 1, "the job must complete, and the rates change, mid-stream"
    last = [event async for event in events][-1]
    assert last.done and not last.HasField("error")  # the stream ran to its end
    after = (await jobs.GetJobCosts(pb.GetJobCostsRequest(job_id=job.job_id), metadata=team.auth)).costs
    assert after.total_calls == 2
    balance = await credit_service_pb2_grpc.CreditServiceStub(channel).GetCreditBalance(
        cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=team.auth
    )
    return job.job_id, done.costs, after, balance.credits_remaining


@pytest.mark.parametrize(
    ("billing", "change"),
    [
        ({"budget_mode": "consumption_tokens", "tokens_per_credit": 10}, {"tokens_per_credit": 1}),
        ({"budget_mode": "consumption_tokens", "tokens_per_credit": 10}, {"tokens_per_credit": 1000}),
        ({"budget_mode": "consumption_tokens", "tokens_per_credit": 10}, {"budget_mode": "job_based"}),
    ],
    ids=["rate-lowered", "rate-raised", "switched-to-job-based"],
)
async def test_a_late_call_is_charged_at_the_rates_its_job_was_settled_under(
    app, channel, jobs, admin, billing, change
):
    job_id, settled, after, remaining = await complete_during_a_stream(
        app, channel, jobs, admin, 100, change, **billing
    )
    assert (settled.prompt_tokens + settled.completion_tokens, settled.credits_charged) == (206, 21)
    assert after.prompt_tokens + after.completion_tokens == 217
    # ceil(217 / 10) = 22 over all the calls, less the 21 settled: 1 (the job's charge is
    # rounded up once, not once per call: the late 11 tokens alone would round up to 2).
    assert (after.credits_charged, after.credits_shortfall, remaining) == (22, 0, 78)
    assert await ledger_entries(app, job_id) == [("reservation", 0, 1), ("charge", -21, -1), ("late_charge", -1, 0)]
    assert await ledger_mismatches(app) == []


async def test_a_late_call_under_a_dollar_budget_is_charged_at_the_settled_credits_per_dollar(
    app, channel, jobs, admin
):
    """The fake's prices are $1 and $2 per million prompt and completion tokens: the job
    settled 4 + 202 tokens, $0.000408, at 100,000 credits a dollar (41); the late call
    adds $0.000015: $0.000423 is 43 credits, 2 more, though the rate is then 100 times
    higher."""
    job_id, settled, after, remaining = await complete_during_a_stream(
        app,
        channel,
        jobs,
        admin,
        100,
        {"credits_per_dollar": 10_000_000},
        budget_mode="consumption_usd",
        credits_per_dollar=100_000,
    )
    assert settled.credits_charged == 41
    assert (after.credits_charged, after.credits_shortfall, remaining) == (43, 0, 57)
    assert await ledger_entries(app, job_id) == [("reservation", 0, 1), ("charge", -41, -1), ("late_charge", -2, 0)]
    assert await ledger_mismatches(app) == []


async def test_a_late_charge_beyond_the_balance_is_shortfall_at_the_settled_rates(app, channel, jobs, admin):
    """The team's balance and overdraft now still cap the late charge (what it can pay is
    read when the call is recorded): a team left with nothing is charged nothing more, and
    the credit due at the settled rate counts as the job's shortfall."""
    job_id, settled, after, remaining = await complete_during_a_stream(
        app, channel, jobs, admin, 21, {"tokens_per_credit": 1}, budget_mode="consumption_tokens", tokens_per_credit=10
    )
    assert (settled.credits_charged, settled.credits_remaining) == (21, 0)
    assert (after.credits_charged, after.credits_shortfall, remaining) == (21, 1, 0)
    assert await ledger_entries(app, job_id) == [("reservation", 0, 1), ("charge", -21, -1), ("late_charge", 0, 0)]
    assert await ledger_mismatches(app) == []


async def switch_during_a_stream(app, channel, jobs, admin, billing: dict, switch: dict):
    """A team billed with `billing` runs a call (FIRST) and starts a stream (LATE); while
    the stream runs the operator switches the team's billing to `switch`, then the job is
    completed (settled under `switch`) and the stream ends and is recorded late. Returns
    the job's id, what its completion charged, its costs once the late call is recorded,
    and the team's credits remaining then."""
    team = await create_team(admin, credits=100)
    await set_billing(app, team.team_id, **billing)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user(FIRST)]), metadata=team.auth)
    stream = jobs.LLMCallStream(pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(LATE)]), metadata=team.auth)
    events, _ = await past_first_content(stream)
    await set_billing(app, team.team_id, **switch)
    done = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert done.costs.total_calls == 1, "the budget must switch, and the job complete, mid-stream"
    last = [event async for event in events][-1]
    assert last.done and not last.HasField("error")
    after = (await jobs.GetJobCosts(pb.GetJobCostsRequest(job_id=job.job_id), metadata=team.auth)).costs
    assert after.total_calls == 2
    balance = await credit_service_pb2_grpc.CreditServiceStub(channel).GetCreditBalance(
        cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=team.auth
    )
    return job.job_id, done.costs, after, balance.credits_remaining


async def test_a_call_started_under_a_job_based_budget_is_charged_late_if_its_job_settles_under_tokens(
    app, channel, jobs, admin
):
    """Whether a late call is charged follows the budget its job was settled under, not the
    one the call started under: a call started while the team was job-based, its job
    settled after a switch to tokens, adds what the job's charge over all its calls adds."""
    job_id, settled, after, remaining = await switch_during_a_stream(
        app,
        channel,
        jobs,
        admin,
        {"budget_mode": "job_based"},
        {"budget_mode": "consumption_tokens", "tokens_per_credit": 10},
    )
    assert (settled.prompt_tokens + settled.completion_tokens, settled.credits_charged) == (206, 21)
    # ceil(217 / 10) = 22 over all the calls, less the 21 settled.
    assert after.prompt_tokens + after.completion_tokens == 217
    assert (after.credits_charged, after.credits_shortfall, remaining) == (22, 0, 78)
    assert await ledger_entries(app, job_id) == [("reservation", 0, 1), ("charge", -21, -1), ("late_charge", -1, 0)]
    assert await ledger_mismatches(app) == []


async def test_a_call_started_under_tokens_is_not_charged_late_if_its_job_settles_job_based(app, channel, jobs, admin):
    """The reverse switch: a job settled under a job-based budget costs one credit however
    many calls it made, so a call started under tokens and recorded late adds nothing."""
    job_id, settled, after, remaining = await switch_during_a_stream(
        app,
        channel,
        jobs,
        admin,
        {"budget_mode": "consumption_tokens", "tokens_per_credit": 10},
        {"budget_mode": "job_based"},
    )
    assert settled.credits_charged == 1
    assert (after.credits_charged, after.credits_shortfall, remaining) == (1, 0, 99)
    assert await ledger_entries(app, job_id) == [("reservation", 0, 1), ("charge", -1, -1)]
    assert await ledger_mismatches(app) == []


async def test_a_call_that_ends_after_its_team_was_archived_is_recorded_not_charged(app, channel, jobs, admin):
    """The job completes while a stream runs, the operator deletes the team (archived: it has
    history), then the stream ends: the call is recorded, but the archived team's balance
    and ledger, read-only now, do not change (a charge there could not even be refunded)."""
    team, job, events, done = await complete_mid_stream(
        app, jobs, admin, 100, budget_mode="consumption_tokens", tokens_per_credit=10
    )
    assert done.costs.credits_charged == 21
    deleted = await admin.DeleteTeam(admin_pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert deleted.outcome == admin_pb.DeleteTeamResponse.ARCHIVED
    last = [event async for event in events][-1]
    assert last.done and not last.HasField("error")  # the stream ran to its end, and was recorded
    async with app.db.transaction() as conn:
        calls = (
            await conn.execute(text("SELECT count(*) FROM llm_calls WHERE job_id = :j"), {"j": job.job_id})
        ).scalar()
        charged = (
            await conn.execute(text("SELECT credits_charged FROM jobs WHERE job_id = :j"), {"j": job.job_id})
        ).scalar()
        used = (
            await conn.execute(text("SELECT credits_used FROM teams WHERE team_id = :t"), {"t": team.team_id})
        ).scalar()
    assert (calls, charged, used) == (2, 21, 21)
    assert await ledger_entries(app, job.job_id) == [("reservation", 0, 1), ("charge", -21, -1)]
    assert await ledger_mismatches(app) == []


async def test_a_late_call_counts_the_calls_retention_archived_meanwhile(app, jobs, admin):
    """The job completes under a stream, and retention then moves its first call to the
    archive (the stream outlived SAAS_CALL_RETENTION_DAYS): the late charge summed the live
    calls alone, 11 tokens, 2 credits, below the 21 settled: nothing was charged."""
    _, job, events, done = await complete_mid_stream(
        app, jobs, admin, 100, budget_mode="consumption_tokens", tokens_per_credit=10
    )
    assert done.costs.credits_charged == 21
    async with app.db.transaction() as conn:
        await conn.execute(
            text("UPDATE jobs SET completed_at = now() - interval '2 days' WHERE job_id = :j"), {"j": job.job_id}
        )
        await conn.execute(
            text("UPDATE llm_calls SET created_at = now() - interval '2 days' WHERE job_id = :j"), {"j": job.job_id}
        )
        assert await operations.archive_calls(conn, datetime.now(UTC) - timedelta(days=1), 100) == 1
    last = [event async for event in events][-1]
    assert last.done and not last.HasField("error")
    assert await ledger_entries(app, job.job_id) == [("reservation", 0, 1), ("charge", -21, -1), ("late_charge", -1, 0)]
    assert await ledger_mismatches(app) == []
